"""The `waqup` command.

  waqup migrate          apply database migrations (WAQUP_DATABASE_URL)
  waqup serve            serve every context over gRPC (WAQUP_GRPC_HOST/PORT)
  waqup up               migrate, serve, and run Envoy in front (REST + gRPC on
                         WAQUP_HTTP_PORT); Ctrl-C stops both
  waqup service-token    print a short-lived access token with the `service`
                         role, for calling internal methods by hand
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from services.bootstrap import MEMORY_URL, Container, build
from services.logs import configure_logging
from services.settings import Settings

log = logging.getLogger("waqup")


def migrate(settings: Settings) -> None:
    if settings.database_url == MEMORY_URL:
        return
    from adapters.sql.migrate import migrate as run_migrations

    run_migrations(settings.database_url)
    log.info("database migrated")


async def _serve(settings: Settings, *, with_envoy: bool) -> None:
    from services.server import start_server, wait_for_signal

    container: Container = build(settings)
    await container.start()
    running = await start_server(container, settings.grpc_host, settings.grpc_port)
    envoy = None
    try:
        if with_envoy:
            envoy = _start_envoy(settings, running.port)
            log.info("ready", extra={
                "rest": f"http://{settings.http_host}:{settings.http_port}",
                "grpc": f"{settings.http_host}:{settings.http_port}"})
        await wait_for_signal()
        log.info("shutting down")
    finally:
        if envoy is not None:
            envoy.stop()
        await running.stop()
        await container.close()


def _start_envoy(settings: Settings, grpc_port: int):
    from services.edge import DESCRIPTOR_PATH, EnvoyProcess, embedded_upstreams, write_envoy_config

    if not DESCRIPTOR_PATH.exists():
        raise SystemExit(f"{DESCRIPTOR_PATH} is missing: run `make gen` first")
    config = write_envoy_config(
        settings.data_dir / "envoy.yaml", listen_host=settings.http_host,
        listen_port=settings.http_port, admin_port=settings.envoy_admin_port,
        upstreams=embedded_upstreams(settings.grpc_host, grpc_port))
    envoy = EnvoyProcess(admin_port=settings.envoy_admin_port)
    envoy.start(config)
    envoy.wait_ready(timeout=30)
    return envoy


def service_token(settings: Settings, name: str) -> str:
    from adapters.jwt.keys import KeyRing
    from adapters.jwt.tokens import JwtTokenIssuer
    from adapters.system.clock import SystemClock

    issuer = JwtTokenIssuer(KeyRing.load_or_create(settings.key_dir), settings.jwt_issuer,
                            settings.jwt_audience, settings.access_token_ttl_seconds)
    return issuer.issue(f"service:{name}", ("service",), SystemClock().now()).token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="waqup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations")
    serve = sub.add_parser("serve", help="serve over gRPC")
    serve.add_argument("--context", default="all", choices=["all"],
                       help="which bounded contexts to serve (mesh mode comes next)")
    sub.add_parser("up", help="migrate, serve and run Envoy in front")
    token = sub.add_parser("service-token", help="print a service access token")
    token.add_argument("name", help="calling service, e.g. content")
    args = parser.parse_args(argv)

    settings = Settings()
    configure_logging(settings.log_level)
    try:
        if args.command == "migrate":
            migrate(settings)
        elif args.command == "serve":
            asyncio.run(_serve(settings, with_envoy=False))
        elif args.command == "up":
            migrate(settings)
            asyncio.run(_serve(settings, with_envoy=True))
        elif args.command == "service-token":
            print(service_token(settings, args.name))
    except KeyboardInterrupt:
        return 130
    except RuntimeError as error:  # unreachable backends and the like: say it plainly
        log.error("startup failed: %s", error)
        print(f"waqup: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
