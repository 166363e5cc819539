"""The `waqup` command.

  waqup migrate          apply database migrations (WAQUP_DATABASE_URL)
  waqup serve            serve contexts over gRPC: all of them (embedded) or one
                         (`--context credits`, mesh mode); `--workers N` runs N
                         worker processes on ports PORT .. PORT+N-1
  waqup up               migrate, run the workers (one per core by default) and
                         Envoy in front (REST + gRPC on WAQUP_HTTP_PORT);
                         `--mesh` runs each context in its own processes
                         (needs PostgreSQL/SQLite, NATS); Ctrl-C stops everything
  waqup edge             run Envoy alone, in front of processes started elsewhere
  waqup rotate-key       add a new signing key (older ones keep verifying)
  waqup service-token    print a short-lived access token with the `service`
                         role, for calling internal methods by hand
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

from services.contexts import BY_NAME
from services.contexts import NAMES as CONTEXTS
from services.runtime.bootstrap import MEMORY_URL, Container, build
from services.runtime.logs import configure_logging
from services.runtime.proc import PARENT_PID_ENV, die_with_parent
from services.runtime.settings import DEFAULT_UP_METRICS_PORT, Settings

#: A worker's HTTP server (WebSocket, signed media) listens on its gRPC port
#: plus this, unless WAQUP_WORKER_HTTP_PORT says otherwise (`waqup serve`).
HTTP_PORT_OFFSET = 1000

log = logging.getLogger("waqup")


def migrate(settings: Settings) -> None:
    if settings.database_url == MEMORY_URL:
        return
    from adapters.sql.migrate import migrate as run_migrations

    run_migrations(settings.database_url)
    log.info("database migrated")


def _contexts(value: str) -> tuple[str, ...]:
    if value == "all":
        return CONTEXTS
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in CONTEXTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown context {', '.join(unknown) or value!r}; choose from all, "
            + ", ".join(CONTEXTS))
    return names


async def _serve_here(settings: Settings, contexts: tuple[str, ...], host: str,
                      port: int) -> None:
    """One worker: this process serves `contexts` until SIGINT/SIGTERM, with
    its metrics on WAQUP_METRICS_PORT and its spans sent to WAQUP_OTLP_ENDPOINT
    (when set)."""
    from services.api.http import start_http_server
    from services.api.server import start_server, wait_for_signal
    from services.runtime import metrics, tracing

    tracing.configure(settings.otlp_endpoint,
                      "waqup" if contexts == CONTEXTS else f"waqup-{'+'.join(contexts)}")
    try:
        container: Container = build(settings, contexts)
        await container.start()
        metrics_server = None
        try:
            observer: Any = tracing.TracingObserver()
            if settings.metrics_port:
                observer, metrics_server = metrics.start(container, host,
                                                         settings.metrics_port, observer)
            running = await start_server(container, host, port, observer=observer)
            http = await start_http_server(container, host,
                                           settings.worker_http_port or port + HTTP_PORT_OFFSET)
            try:
                await wait_for_signal()
                log.info("shutting down")
            finally:
                if http is not None:
                    await http.stop()
                await running.stop()
        finally:
            if metrics_server is not None:
                metrics_server.stop()
            await container.close()
    finally:
        await tracing.shutdown()


def run_loop(settings: Settings, main: Any) -> None:
    """Run a worker's main coroutine on the configured event loop: uvloop (the
    default) spends less CPU per gRPC call than asyncio's own loop (see bench/)."""
    if settings.event_loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def _workers(groups: list[tuple[str, tuple[str, ...]]], host: str, base_port: int,
             count: int, extra_env: dict[str, dict[str, str]] | None = None, *,
             metrics_port: int = 0):
    """Worker specs: `count` processes per group, consecutive ports from base_port
    (and from metrics_port for their metrics, when it is not 0)."""
    from services.runtime.supervisor import Worker

    workers, port = [], base_port
    for label, contexts in groups:
        for _ in range(count):
            index = len(workers)
            env = {**(extra_env or {}).get(label, {}),
                   "WAQUP_METRICS_PORT": str(metrics_port + index if metrics_port else 0)}
            workers.append(Worker(",".join(contexts), host, port, env=env))
            port += 1
    return workers


async def _supervise(settings: Settings, workers, *, with_envoy: bool) -> None:
    from services.api.server import wait_for_signal
    from services.runtime.supervisor import Supervisor

    supervisor = Supervisor(workers)
    await supervisor.start()
    envoy = None
    try:
        if with_envoy:
            upstreams: dict[str, list[tuple[str, int]]] = {}
            http: dict[str, list[tuple[str, int]]] = {}
            for worker in workers:
                for name in _contexts(worker.context):
                    upstreams.setdefault(name, []).append((_local(worker.host), worker.port))
                    if BY_NAME[name].http_routes:
                        http.setdefault(name, []).append(
                            (_local(worker.host), worker.port + HTTP_PORT_OFFSET))
            envoy = await _start_envoy(settings, upstreams, http)
            log.info("ready", extra={
                "rest": f"http://{settings.http_host}:{settings.http_port}",
                "grpc": f"{settings.http_host}:{settings.http_port}",
                "workers": len(workers)})
        await wait_for_signal()
        log.info("shutting down")
    finally:
        if envoy is not None:
            envoy.stop()
        await supervisor.stop()


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


async def _start_envoy(settings: Settings, upstreams, http_upstreams=None):
    from services.edge import DESCRIPTOR_PATH, EnvoyProcess, write_envoy_config

    if not DESCRIPTOR_PATH.exists():
        raise SystemExit(f"{DESCRIPTOR_PATH} is missing: run `make gen` first")
    config = write_envoy_config(
        settings.data_dir / "envoy.yaml", listen_host=settings.http_host,
        listen_port=settings.http_port, admin_port=settings.envoy_admin_port,
        upstreams=upstreams, http_upstreams=http_upstreams, jwt_issuer=settings.jwt_issuer,
        jwt_audience=settings.jwt_audience, jwks_cache_seconds=settings.edge_jwks_cache_seconds,
        cors_origins=[o.strip() for o in settings.edge_cors_origins.split(",") if o.strip()],
        global_rate_limit=settings.edge_rate_limit_per_second or None,
        credential_rate_limit=settings.edge_auth_rate_limit_per_minute or None,
        credential_rate_limit_interval_seconds=60.0,
        xff_num_trusted_hops=settings.edge_xff_trusted_hops)
    envoy = EnvoyProcess(admin_port=settings.envoy_admin_port)
    envoy.start(config)
    try:
        await envoy.wait_ready_async(timeout=30)
        if "identity" in upstreams:
            # Until the edge has identity's keys, every authenticated call is a 401.
            await envoy.wait_jwks_async(timeout=30)
    except BaseException:
        envoy.stop()
        raise
    return envoy


def up(settings: Settings, *, mesh: bool, workers: int | None) -> None:
    from adapters.jwt.keys import KeyRing

    migrate(settings)
    # Create the signing key once, before several processes race to do it.
    KeyRing.load_or_create(settings.key_dir)
    count = workers or settings.worker_count
    host, port = settings.grpc_host, settings.grpc_port
    metrics_port = (DEFAULT_UP_METRICS_PORT if settings.metrics_port is None
                    else settings.metrics_port)
    if mesh:
        if settings.database_url == MEMORY_URL or not settings.nats_url:
            raise RuntimeError("--mesh needs a shared database (WAQUP_DATABASE_URL) and "
                               "NATS (WAQUP_NATS_URL)")
        groups = [(name, (name,)) for name in CONTEXTS]
        identity_ports = ",".join(f"{_local(host)}:{port + i}" for i in range(count))
        env = {name: {} for name in CONTEXTS}
        # Every process learns where the others are (WAQUP_<CONTEXT>_TARGET:
        # library calls credits and content, conversation calls library).
        targets = {f"WAQUP_{name.upper()}_TARGET": "ipv4:" + ",".join(
            f"{_local(host)}:{port + index * count + i}" for i in range(count))
            for index, name in enumerate(CONTEXTS)}
        for name in CONTEXTS:
            env[name].update({k: v for k, v in targets.items() if k not in os.environ})
            if name != "identity" and not settings.identity_target:
                env[name]["WAQUP_IDENTITY_TARGET"] = f"ipv4:{identity_ports}"
        specs = _workers(groups, host, port, count, env, metrics_port=metrics_port)
    else:
        if settings.database_url == MEMORY_URL and count > 1:
            log.warning("memory:// lives in one process: serving with one worker")
            count = 1
        specs = _workers([("all", CONTEXTS)], host, port, count, metrics_port=metrics_port)
    if metrics_port:
        log.info("metrics", extra={"first": f"{_local(host)}:{metrics_port}",
                                   "last": f"{_local(host)}:{metrics_port + len(specs) - 1}"})
    asyncio.run(_supervise(settings, specs, with_envoy=True))


def edge(settings: Settings, upstream_args: list[str]) -> None:
    """Envoy alone, in front of workers started elsewhere."""
    from services.api.server import wait_for_signal

    upstreams: dict[str, list[tuple[str, int]]] = {}
    for arg in upstream_args:
        name, _, addresses = arg.partition("=")
        for address in filter(None, addresses.split(",")):
            h, _, p = address.rpartition(":")
            if name not in CONTEXTS or not h or not p.isdigit():
                raise RuntimeError(f"--upstream {arg!r}: expected CONTEXT=HOST:PORT[,HOST:PORT] "
                                   f"with CONTEXT one of {', '.join(CONTEXTS)}")
            upstreams.setdefault(name, []).append((h, int(p)))
    if "identity" not in upstreams:
        raise RuntimeError("--upstream identity=... is required: the edge fetches the "
                           "token keys (JWKS) from identity")

    async def run() -> None:
        envoy = await _start_envoy(settings, upstreams)
        try:
            await wait_for_signal()
        finally:
            envoy.stop()

    asyncio.run(run())


def service_token(settings: Settings, name: str) -> str:
    from datetime import timedelta

    from adapters.jwt.keys import KeyRing
    from adapters.jwt.tokens import JwtTokenIssuer
    from adapters.system.clock import SystemClock

    # The same signing key the running identity workers use (not a pending one).
    ring = KeyRing.load_or_create(
        settings.key_dir, activation=timedelta(seconds=settings.jwt_key_activation_seconds))
    issuer = JwtTokenIssuer(ring, settings.jwt_issuer,
                            settings.jwt_audience, settings.access_token_ttl_seconds)
    return issuer.issue(f"service:{name}", ("service",), SystemClock().now()).token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="waqup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations")
    serve = sub.add_parser("serve", help="serve over gRPC")
    serve.add_argument("--context", default="all", type=_contexts,
                       help="`all` (embedded), or the contexts this process serves, "
                            "e.g. `credits` (mesh mode)")
    serve.add_argument("--host", help="listen address (default WAQUP_GRPC_HOST)")
    serve.add_argument("--port", type=int, help="first port (default WAQUP_GRPC_PORT)")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes, one port each (0: one per core)")
    start = sub.add_parser("up", help="migrate, serve and run Envoy in front")
    start.add_argument("--workers", type=int, default=None,
                       help="worker processes per context (default WAQUP_WORKERS, "
                            "0 = one per core)")
    start.add_argument("--mesh", action="store_true",
                       help="one group of processes per context, events over NATS")
    edge_cmd = sub.add_parser("edge", help="run Envoy in front of running workers")
    edge_cmd.add_argument("--upstream", action="append", required=True,
                          metavar="CONTEXT=HOST:PORT[,HOST:PORT]")
    sub.add_parser("rotate-key", help="add a new signing key to WAQUP_JWT_KEY_DIR")
    token = sub.add_parser("service-token", help="print a service access token")
    token.add_argument("name", help="calling service, e.g. content")
    args = parser.parse_args(argv)

    if args.command == "serve" and os.environ.get(PARENT_PID_ENV, "").isdigit():
        die_with_parent(int(os.environ[PARENT_PID_ENV]))  # a supervised worker
    settings = Settings()
    label = "embedded"
    if args.command == "serve" and len(args.context) == 1:
        label = args.context[0]
    configure_logging(settings.log_level, context=label)
    try:
        if args.command == "migrate":
            migrate(settings)
        elif args.command == "serve":
            host = args.host or settings.grpc_host
            port = settings.grpc_port if args.port is None else args.port
            count = args.workers or settings.worker_count
            if settings.database_url == MEMORY_URL and count > 1:
                raise RuntimeError("memory:// lives in one process: serve it with one worker "
                                   "(or use a database: WAQUP_DATABASE_URL)")
            if count == 1:
                run_loop(settings, _serve_here(settings, args.context, host, port))
            else:
                specs = _workers([("serve", args.context)], host, port, count,
                                 metrics_port=settings.metrics_port or 0)
                asyncio.run(_supervise(settings, specs, with_envoy=False))
        elif args.command == "up":
            up(settings, mesh=args.mesh, workers=args.workers)
        elif args.command == "edge":
            edge(settings, args.upstream)
        elif args.command == "rotate-key":
            from adapters.jwt.keys import KeyRing

            print(KeyRing.load_or_create(settings.key_dir).rotate(settings.key_dir))
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
