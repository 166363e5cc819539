"""Identity use cases, on the in-memory fakes (no I/O)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.jwt.keys import KeyRing
from adapters.jwt.tokens import JwtTokenIssuer, JwtTokenVerifier
from adapters.memory.cache import MemoryCache
from adapters.memory.identity import memory_identity_uow
from adapters.memory.outbox import MemoryOutboxStore
from adapters.memory.store import MemoryStore
from core.identity.model import Pace, Preferences, Tone, UserRegistered, normalize_email
from core.identity.service import (
    IdentityService,
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenReused,
    profile_key,
)
from core.shared.errors import AlreadyExists, InvalidArgument
from tests.contract.codec import JsonEventCodec
from tests.unit.fakes import FakeClock, PlainHasher


@pytest.fixture
def world():
    store, clock, cache, hasher = MemoryStore(), FakeClock(), MemoryCache(), PlainHasher()
    keyring = KeyRing.generate()
    service = IdentityService(memory_identity_uow(store, JsonEventCodec()), hasher,
                              JwtTokenIssuer(keyring, "iss", "aud", 900), clock, cache)
    return service, store, clock, cache, hasher, JwtTokenVerifier(keyring, "iss", "aud")


@pytest.mark.parametrize(("raw", "expected"), [
    ("  A.B@Example.COM ", "a.b@example.com"), ("x@y.io", "x@y.io")])
def test_normalize_email(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "no-at", "a@b", "a b@c.io", "a@@c.io", "@c.io",
                                 "a@c.", "x" * 65 + "@c.io"])
def test_normalize_email_rejects(raw: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        normalize_email(raw)
    assert caught.value.reason == "INVALID_EMAIL"


async def test_register_writes_user_session_audit_and_event_atomically(world) -> None:
    service, store, clock, _, _, verifier = world
    result = await service.register(" New@Example.com ", "password1", " Ann ")
    assert result.user.email == "new@example.com" and result.user.display_name == "Ann"
    assert verifier.verify(result.access_token).subject == str(result.user.id)
    [row] = (await MemoryOutboxStore(store).fetch_pending(10, clock.now()))
    event = JsonEventCodec().decode(row.topic, row.payload, row.event_id)
    assert isinstance(event, UserRegistered) and event.user_id == result.user.id

    with pytest.raises(AlreadyExists):
        await service.register("new@example.com", "password2", "")
    # the failed registration left nothing behind
    assert len(store.tables.users) == 1
    assert len(await MemoryOutboxStore(store).fetch_pending(10, clock.now())) == 1


@pytest.mark.parametrize("password", ["1234567", "x" * 129])
async def test_register_checks_password_length(world, password: str) -> None:
    service = world[0]
    with pytest.raises(InvalidArgument) as caught:
        await service.register("a@example.com", password, "")
    assert caught.value.reason == "INVALID_PASSWORD"


async def test_login_rehashes_old_hashes(world) -> None:
    service, store, _, _, hasher, _ = world
    await service.register("a@example.com", "password1", "")
    hasher.rehash = True
    await service.login("a@example.com", "password1")
    [user] = store.tables.users.values()
    assert user.password_hash == await hasher.hash("password1")
    with pytest.raises(InvalidCredentials):
        await service.login("a@example.com", "password2")
    with pytest.raises(InvalidCredentials):
        await service.login("not an email", "password2")


async def test_expired_refresh_token_is_refused(world) -> None:
    service, _, clock, _, _, _ = world
    session = await service.register("a@example.com", "password1", "")
    clock.advance(timedelta(days=31))
    with pytest.raises(InvalidRefreshToken):
        await service.refresh(session.refresh_token)


async def test_reuse_after_rotation_revokes_family(world) -> None:
    service = world[0]
    first = await service.register("a@example.com", "password1", "")
    second = await service.refresh(first.refresh_token)
    with pytest.raises(RefreshTokenReused):
        await service.refresh(first.refresh_token)
    with pytest.raises(InvalidRefreshToken):
        await service.refresh(second.refresh_token)


async def test_profile_is_cached_and_invalidated(world) -> None:
    service, store, _, cache, _, _ = world
    user = (await service.register("a@example.com", "password1", "")).user
    await service.get_profile(user.id)
    assert await cache.get(profile_key(user.id)) is not None
    # a read served from the cache does not touch the store
    store.tables.users.clear()
    assert (await service.get_profile(user.id)).email == "a@example.com"


async def test_update_preferences_merges_and_invalidates(world) -> None:
    service, _, _, cache, _, _ = world
    user = (await service.register("a@example.com", "password1", "")).user
    await service.get_profile(user.id)
    prefs = await service.update_preferences(
        user.id, Preferences(voice="v1", pace=Pace.FAST, tone=Tone.WARM),
        frozenset({"pace"}))
    assert prefs == Preferences(pace=Pace.FAST)
    assert await cache.get(profile_key(user.id)) is None
    assert (await service.get_profile(user.id)).preferences.pace is Pace.FAST
    with pytest.raises(InvalidArgument):
        await service.update_preferences(user.id, Preferences(voice="BAD VOICE"),
                                         frozenset({"voice"}))


class BrokenCache(MemoryCache):
    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("cache down")

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        raise ConnectionError("cache down")


async def test_a_broken_cache_falls_back_to_the_store() -> None:
    store, clock = MemoryStore(), FakeClock()
    keyring = KeyRing.generate()
    service = IdentityService(memory_identity_uow(store, JsonEventCodec()), PlainHasher(),
                              JwtTokenIssuer(keyring, "i", "a", 900), clock, BrokenCache())
    user = (await service.register("a@example.com", "password1", "")).user
    assert (await service.get_profile(user.id)).email == "a@example.com"
