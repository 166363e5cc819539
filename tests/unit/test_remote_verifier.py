"""A context without identity verifies tokens with identity's published keys."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from adapters.jwt import JwtTokenIssuer, KeyRing
from adapters.jwt.remote import RemoteKeyVerifier
from core.shared.errors import Unauthenticated

ISS, AUD = "waqup-identity", "waqup-api"


class FakeJwks:
    """ports.identity.JwksSource serving a ring's public keys; can be switched off."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self.fetches = 0
        self.down = False

    async def fetch_jwks(self) -> list[dict[str, str]]:
        self.fetches += 1
        if self.down:
            raise ConnectionError("identity is unreachable")
        return self.ring.public_jwks()


def token(ring: KeyRing) -> str:
    issuer = JwtTokenIssuer(ring, ISS, AUD, ttl_seconds=900)
    return issuer.issue(str(uuid.uuid4()), ("user",), datetime.now(UTC)).token


async def test_verifies_with_fetched_keys_and_follows_rotation(tmp_path) -> None:
    ring = KeyRing.load_or_create(tmp_path)
    source = FakeJwks(ring)
    verifier = RemoteKeyVerifier(source, ISS, AUD, refresh_seconds=3600,
                                 min_refetch_seconds=0.05)
    await verifier.start()
    try:
        old = token(ring)
        assert verifier.verify(old).has_role("user")
        ring.rotate(tmp_path)
        new = token(ring)
        # The new key is unknown until refetched; the rejection triggers the refetch.
        with pytest.raises(Unauthenticated):
            verifier.verify(new)
        for _ in range(100):
            await asyncio.sleep(0.02)
            try:
                verifier.verify(new)
                break
            except Unauthenticated:
                pass
        assert verifier.verify(new).has_role("user")
        assert verifier.verify(old).has_role("user")  # the previous key still verifies
    finally:
        await verifier.close()


async def test_unknown_keys_refetch_at_most_every_min_interval(tmp_path) -> None:
    source = FakeJwks(KeyRing.load_or_create(tmp_path))
    verifier = RemoteKeyVerifier(source, ISS, AUD, refresh_seconds=3600,
                                 min_refetch_seconds=0.5)
    await verifier.start()
    try:
        forged = token(KeyRing.generate())
        for _ in range(50):
            with pytest.raises(Unauthenticated):
                verifier.verify(forged)
            await asyncio.sleep(0.01)
        assert source.fetches <= 3  # start + at most one or two refetches, not fifty
    finally:
        await verifier.close()


async def test_start_fails_when_identity_is_unreachable(tmp_path) -> None:
    source = FakeJwks(KeyRing.load_or_create(tmp_path))
    source.down = True
    verifier = RemoteKeyVerifier(source, ISS, AUD, start_timeout=0.3)
    with pytest.raises(RuntimeError, match="JWKS"):
        await verifier.start()


async def test_refresh_failure_keeps_known_keys(tmp_path) -> None:
    ring = KeyRing.load_or_create(tmp_path)
    source = FakeJwks(ring)
    verifier = RemoteKeyVerifier(source, ISS, AUD, refresh_seconds=0.05)
    await verifier.start()
    try:
        source.down = True
        await asyncio.sleep(0.2)
        assert verifier.verify(token(ring)).has_role("user")
    finally:
        await verifier.close()


async def test_close_while_a_refetch_is_being_triggered(tmp_path) -> None:
    """A wake-up and close() in the same instant: the refresh task still stops
    (asyncio.wait_for on 3.11 returned the event's result and dropped the
    cancellation, and close() then waited forever)."""
    for _ in range(20):
        verifier = RemoteKeyVerifier(FakeJwks(KeyRing.load_or_create(tmp_path)), ISS, AUD,
                                     refresh_seconds=3600, min_refetch_seconds=0)
        await verifier.start()
        await asyncio.sleep(0.01)  # the task is waiting for a wake-up

        async def wake_and_close(verifier: RemoteKeyVerifier = verifier) -> None:
            with pytest.raises(Unauthenticated):
                verifier.verify(token(KeyRing.generate()))  # unknown key: wakes the task
            await verifier.close()  # cancels it in the same loop iteration

        # asyncio.wait, not wait_for: a hung stop must show, not be cancelled.
        running = asyncio.ensure_future(wake_and_close())
        finished, _ = await asyncio.wait({running}, timeout=2)
        if not finished:
            running.cancel()
        assert finished, "it never stopped"
