"""The grpc.aio server of one process: every method of the served contexts'
services through the shared request path, health checking, reflection and
graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from services.api.access_log import AccessLog
from services.api.handlers import Access, Observer, RequestPath
from services.runtime.bootstrap import Container

log = logging.getLogger(__name__)

#: The health service; its Check is public (the edge's no-op baseline, probes).
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"]
HEALTH_CHECK = f"/{HEALTH_SERVICE.full_name}/Check"


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: HealthServicer
    access_log: AccessLog | None = None

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking new calls (health NOT_SERVING), let running ones finish."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.access_log is not None:
            self.access_log.flush()


def _register(server: grpc.aio.Server, path: RequestPath, service: ServiceDescriptor,
              servicer: object, access: dict[str, Access],
              unlogged: frozenset[str] = frozenset()) -> None:
    """Every method of `service` through the request path. `access` maps method
    names to their access rule (default: a user token)."""
    handlers = {}
    for method in service.methods:
        full = f"/{service.full_name}/{method.name}"
        args = (full, getattr(servicer, method.name),
                message_factory.GetMessageClass(method.input_type),
                message_factory.GetMessageClass(method.output_type),
                access.get(method.name, Access.USER))
        if method.client_streaming or method.server_streaming:
            handlers[method.name] = path.stream(
                *args, client_streaming=method.client_streaming,
                server_streaming=method.server_streaming, logged=full not in unlogged)
        else:
            handlers[method.name] = path.unary(*args, logged=full not in unlogged)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)


async def start_server(container: Container, host: str, port: int, *,
                       observer: Observer | None = None,
                       access_log: AccessLog | bool | None = True) -> RunningServer:
    """Serve the contexts of `container` on host:port (port 0 picks a free one).

    access_log: True writes one line per call to stderr when the `waqup.access`
    logger is enabled for INFO (WAQUP_LOG_LEVEL); False none; or an AccessLog.
    """
    if access_log is True:
        access_log = (AccessLog(_label(container))
                      if logging.getLogger("waqup.access").isEnabledFor(logging.INFO) else None)
    elif access_log is False:
        access_log = None
    # Compressed request messages are inflated by the request path, which
    # answers a corrupt one with INVALID_ARGUMENT (grpc core: INTERNAL).
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0),
                                      ("grpc.per_message_decompression", 0)])
    path = RequestPath(container.verifier, observer, access_log)
    public: list[str] = []
    for declaration in container.declarations:
        built = container.built[declaration.name]
        for short in declaration.public:
            service = declaration.service(short)
            access = {m.name: Access.TOKEN_LESS for m in service.methods
                      if f"{short}/{m.name}" in declaration.token_less}
            _register(server, path, service, built.servicers[short], access)
            public.append(service.full_name)
        for short in declaration.internal:
            service = declaration.service(short)
            _register(server, path, service, built.servicers[short],
                      {m.name: Access.INTERNAL for m in service.methods})

    # Health through the request path too, token-less and not logged (Envoy
    # probes it every second). Statuses exist for the whole server ("") and the
    # public services only: internal services are not for outsiders to discover.
    health = HealthServicer()
    _register(server, path, HEALTH_SERVICE, health,
              {m.name: Access.TOKEN_LESS for m in HEALTH_SERVICE.methods},
              unlogged=frozenset(f"/{HEALTH_SERVICE.full_name}/{m.name}"
                                 for m in HEALTH_SERVICE.methods))
    internal = [d.full_name(s) for d in container.declarations for s in d.internal]
    reflection.enable_server_reflection(
        [*public, *internal, HEALTH_SERVICE.full_name, reflection.SERVICE_NAME], server)

    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"cannot listen on {host}:{port}")
    await server.start()
    for name in ("", *public):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("grpc server listening", extra={"address": f"{host}:{bound}"})
    return RunningServer(server=server, port=bound, health=health, access_log=access_log)


def _label(container: Container) -> str:
    """How log lines name this process: `embedded` when it serves every context."""
    from services.contexts import NAMES

    return "embedded" if container.contexts == NAMES else "+".join(container.contexts)


async def wait_for_signal() -> None:
    """Return on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
