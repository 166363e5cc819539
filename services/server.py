"""The grpc.aio server: servicers, interceptors, health checking, reflection,
graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from services.bootstrap import Container
from services.credits_servicer import CreditAccountServicer, CreditLedgerServicer
from services.gen.waqup.credits.v1 import credits_pb2, credits_pb2_grpc
from services.gen.waqup.identity.v1 import identity_pb2, identity_pb2_grpc
from services.identity_servicer import AuthServicer, UserServicer
from services.interceptors import interceptors

log = logging.getLogger(__name__)

#: Fully qualified service names per bounded context.
CONTEXT_SERVICES: dict[str, tuple[str, ...]] = {
    "identity": tuple(identity_pb2.DESCRIPTOR.services_by_name[name].full_name
                      for name in ("AuthService", "UserService")),
    "credits": tuple(credits_pb2.DESCRIPTOR.services_by_name[name].full_name
                     for name in ("CreditAccountService", "CreditLedgerService")),
}


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: HealthServicer

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking new calls (health NOT_SERVING), let running ones finish."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def start_server(container: Container, host: str, port: int) -> RunningServer:
    """Serve the contexts of `container` on host:port (port 0 picks a free one)."""
    server = grpc.aio.server(interceptors=interceptors(container.verifier),
                             options=[("grpc.so_reuseport", 0)])
    if container.identity is not None:
        identity_pb2_grpc.add_AuthServiceServicer_to_server(
            AuthServicer(container.identity), server)
        identity_pb2_grpc.add_UserServiceServicer_to_server(
            UserServicer(container.identity), server)
    if container.credits is not None:
        credits_pb2_grpc.add_CreditAccountServiceServicer_to_server(
            CreditAccountServicer(container.credits), server)
        credits_pb2_grpc.add_CreditLedgerServiceServicer_to_server(
            CreditLedgerServicer(container.credits), server)

    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    names = [name for ctx in container.contexts for name in CONTEXT_SERVICES[ctx]]
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME], server)

    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"cannot listen on {host}:{port}")
    await server.start()
    for name in ("", *names):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("grpc server listening", extra={"address": f"{host}:{bound}"})
    return RunningServer(server=server, port=bound, health=health)


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
