"""The Cache contract, held by every adapter: in-memory and Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from adapters.memory.cache import MemoryCache
from adapters.redis.cache import RedisCache
from ports.common import Cache

PREFIX = f"waqup-test:{uuid.uuid4().hex}:"  # unique per test run


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        yield MemoryCache()
        return
    url = request.getfixturevalue("redis_url")
    redis_cache = RedisCache(url, key_prefix=PREFIX)
    await redis_cache.ping()
    yield redis_cache
    await redis_cache.close()
    import redis.asyncio as redis

    client = redis.from_url(url)
    keys = [key async for key in client.scan_iter(match=f"{PREFIX}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def _key() -> str:
    return f"user:{uuid.uuid4()}:profile"


async def test_set_get_delete(cache: Cache) -> None:
    key = _key()
    await cache.set(key, b"\x00profile\xff", 60)
    assert await cache.get(key) == b"\x00profile\xff"
    await cache.delete(key)
    assert await cache.get(key) is None
    await cache.delete(key)  # deleting a missing key is fine


async def test_missing_key(cache: Cache) -> None:
    assert await cache.get(_key()) is None


async def test_overwrite(cache: Cache) -> None:
    key = _key()
    await cache.set(key, b"one", 60)
    await cache.set(key, b"two", 60)
    assert await cache.get(key) == b"two"


async def test_ttl_expiry(cache: Cache) -> None:
    short, long = _key(), _key()
    await cache.set(short, b"soon gone", 1)
    await cache.set(long, b"stays", 60)
    assert await cache.get(short) == b"soon gone"
    await asyncio.sleep(1.2)
    assert await cache.get(short) is None
    assert await cache.get(long) == b"stays"


async def test_ttl_must_be_positive(cache: Cache) -> None:
    with pytest.raises(ValueError):
        await cache.set(_key(), b"x", 0)


async def test_memory_cache_is_bounded() -> None:
    cache = MemoryCache(max_entries=3)
    for i in range(5):
        await cache.set(f"k{i}", b"v", 60)
    assert len(cache) == 3
    assert await cache.get("k0") is None and await cache.get("k1") is None
    assert await cache.get("k4") == b"v"


async def test_redis_ping_fails_fast_on_a_closed_port() -> None:
    cache = RedisCache("redis://:s3cret@127.0.0.1:1/0")
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"redis unreachable at redis://:\*\*\*@127.0.0.1:1"):
        await cache.ping()
    assert time.monotonic() - started < 3
    await cache.close()
