"""How a context calls another's internal methods in mesh mode: a gRPC
channel to the peer's target with a service token (`service:<name>`, role
`service`), minted from the signing keys this process can read
(WAQUP_JWT_KEY_DIR, shared with identity) and renewed before it expires."""

from __future__ import annotations

import time
from typing import Any

import grpc

from services.api.clients import channel
from services.runtime.settings import Settings

#: Renew a service token this long before it expires.
RENEW_MARGIN_SECONDS = 60.0


class ServiceTokens:
    def __init__(self, settings: Settings, name: str, keyring: Any = None) -> None:
        self._settings = settings
        self._name = name
        self._keyring = keyring
        self._issuer: Any = None
        self._token = ""
        self._expires = 0.0

    def _mint(self) -> None:
        from datetime import timedelta

        from adapters.jwt.keys import KeyRing
        from adapters.jwt.tokens import JwtTokenIssuer
        from adapters.system.clock import SystemClock

        if self._issuer is None:
            ring = self._keyring or KeyRing.load_or_create(
                self._settings.key_dir,
                activation=timedelta(seconds=self._settings.jwt_key_activation_seconds))
            self._issuer = JwtTokenIssuer(ring, self._settings.jwt_issuer,
                                          self._settings.jwt_audience,
                                          self._settings.access_token_ttl_seconds)
        self._token = self._issuer.issue(f"service:{self._name}", ("service",),
                                         SystemClock().now()).token
        self._expires = time.monotonic() + self._settings.access_token_ttl_seconds

    def metadata(self) -> tuple[tuple[str, str], ...]:
        if time.monotonic() > self._expires - RENEW_MARGIN_SECONDS:
            self._mint()
        return (("authorization", f"Bearer {self._token}"),)


class Peer:
    """A channel to another context and the token to call it with."""

    def __init__(self, target: str, tokens: ServiceTokens, *, timeout: float = 30.0) -> None:
        self.channel: grpc.aio.Channel = channel(target)
        self.tokens = tokens
        self.timeout = timeout

    async def close(self) -> None:
        await self.channel.close()


def peer_error(error: grpc.aio.AioRpcError) -> Exception:
    """A peer's refusal as the domain error it was (code and ErrorInfo reason
    kept: FAILED_PRECONDITION, RESOURCE_EXHAUSTED, or UNAVAILABLE with a
    reason, or INVALID_ARGUMENT), so the caller's own request path answers it
    the same way; any
    other failure stays a transport error (INTERNAL, or retried by a job)."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    from core.shared.errors import (
        DomainError,
        FailedPrecondition,
        InvalidArgument,
        ResourceExhausted,
        Unavailable,
    )

    reason = ""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            reason = info.reason
    kinds: dict[grpc.StatusCode, type[DomainError]] = {
        grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
        grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
        grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument}
    if reason:
        kinds[grpc.StatusCode.UNAVAILABLE] = Unavailable
    kind = kinds.get(error.code())
    if kind is None:
        return error
    return kind(error.details() or "refused", reason=reason or None)


def optional_peer_target(context: str) -> str | None:
    """WAQUP_<CONTEXT>_TARGET when set: for a peer a context can serve
    without (the library without the marketplace)."""
    import os

    return os.environ.get(f"WAQUP_{context.upper()}_TARGET") or None


def peer_target(settings: Settings, context: str) -> str:
    """WAQUP_<CONTEXT>_TARGET (mesh mode), required when `context` is served elsewhere."""
    import os

    target = os.environ.get(f"WAQUP_{context.upper()}_TARGET", "")
    if not target:
        raise RuntimeError(f"{context} is served by another process: set "
                           f"WAQUP_{context.upper()}_TARGET to its gRPC address")
    return target
