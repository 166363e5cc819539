"""Token verification for a process that does not hold identity's keys.

In mesh mode only identity's processes read the signing keys. Every other context
verifies access tokens (defence in depth behind the edge) with identity's public
keys, fetched through a JwksSource port (a gRPC client of AuthService.GetJwks)
at start, refreshed in the background, and refetched soon after a token names a
key the ring does not know (a rotation that happened since the last fetch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from adapters.jwt.keys import KeyRing
from adapters.jwt.tokens import JwtTokenVerifier
from core.shared.auth import Principal
from ports.identity import JwksSource

log = logging.getLogger(__name__)


class RemoteKeyVerifier:
    """ports.identity.TokenVerifier over a JwksSource. start() must succeed once
    (an unreachable identity is a startup error); later fetch failures keep the
    keys already known and are retried."""

    def __init__(self, source: JwksSource, issuer: str, audience: str, *,
                 refresh_seconds: float = 60.0, min_refetch_seconds: float = 5.0,
                 start_timeout: float = 30.0) -> None:
        self._source = source
        self._issuer = issuer
        self._audience = audience
        self._refresh = refresh_seconds
        self._min_refetch = min_refetch_seconds
        self._start_timeout = start_timeout
        self._ring: KeyRing | None = None
        self._verifier: JwtTokenVerifier | None = None
        self._wake = asyncio.Event()
        self._last_fetch = 0.0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        deadline = time.monotonic() + self._start_timeout
        while True:
            try:
                ring = KeyRing.from_jwks(await self._source.fetch_jwks())
                break
            except Exception as error:
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"cannot fetch identity's JWKS: {error}") from error
                await asyncio.sleep(0.5)
        self._last_fetch = time.monotonic()
        self._ring = ring
        self._verifier = JwtTokenVerifier(ring, self._issuer, self._audience,
                                          on_unknown_key=self._wake.set)
        self._task = asyncio.create_task(self._run(), name="jwks-refresh")

    def verify(self, token: str) -> Principal:
        if self._verifier is None:
            raise RuntimeError("RemoteKeyVerifier.start() was not awaited")
        return self._verifier.verify(token)

    async def refresh(self) -> bool:
        """Fetch the JWKS now; True if the keys changed."""
        assert self._ring is not None
        ring = KeyRing.from_jwks(await self._source.fetch_jwks())
        self._last_fetch = time.monotonic()
        changed = self._ring.replace(ring)
        if changed:
            log.info("identity signing keys changed", extra={"kids": self._ring.kids()})
        return changed

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancellation
                # that arrives as the event is set, and close() then waits forever.
                async with asyncio.timeout(self._refresh):
                    await self._wake.wait()
            self._wake.clear()
            # An unknown kid may be a forgery: refetch at most every min_refetch s.
            wait = self._last_fetch + self._min_refetch - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self.refresh()
            except Exception as error:
                log.warning("JWKS refresh failed; keeping the known keys",
                            extra={"error": repr(error)})

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
