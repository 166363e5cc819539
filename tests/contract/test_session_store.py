"""The SessionStore contract, held by the in-memory store, the database
(SQLite, PostgreSQL: the embedded mode's worker processes share sessions
there) and Redis alike.

Time: the memory and database stores run on a fake clock that the test moves; Redis runs on
its own clock, so there the test waits for real (TTLs of one second). Redis keys
of a test run carry a private prefix and are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as redis

from adapters.memory.session_store import MemorySessionStore
from adapters.redis.session_store import RedisSessionStore
from ports.conversation import SessionStore
from tests.unit.fakes import FakeClock

PREFIX = f"waqup-test:{uuid.uuid4().hex}:"  # unique per test run


@dataclass
class Sessions:
    """The store under test, how to let time pass for it, and how to get more
    stores on the same data (other processes)."""

    store: SessionStore
    advance: Callable[[float], Awaitable[None]]
    another: Callable[[], SessionStore]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("redis", marks=pytest.mark.redis)])
def session_backend(request: pytest.FixtureRequest) -> tuple[str, Any]:
    """The backend and what it needs, resolved outside the event loop (an async
    fixture cannot request an async fixture by name)."""
    needs = {"sqlite": "sqlite_url", "postgres": "pg_engine", "redis": "redis_url"}
    name = request.param
    return name, request.getfixturevalue(needs[name]) if name in needs else None


@pytest.fixture
async def sessions(session_backend: tuple[str, Any]) -> AsyncIterator[Sessions]:
    kind, resource = session_backend
    if kind in ("sqlite", "postgres"):
        from adapters.sql.engine import create_engine, dispose_engine
        from adapters.sql.session_store import SqlSessionStore

        clock = FakeClock()
        engine = create_engine(resource) if kind == "sqlite" else resource

        async def move_sql(seconds: float) -> None:
            clock.advance(timedelta(seconds=seconds))

        def another_sql() -> SessionStore:
            return SqlSessionStore(engine, clock)

        yield Sessions(SqlSessionStore(engine, clock), move_sql, another_sql)
        if kind == "sqlite":
            await dispose_engine(engine)
        return
    if kind == "memory":
        clock = FakeClock()
        store = MemorySessionStore(clock)

        async def move(seconds: float) -> None:
            clock.advance(timedelta(seconds=seconds))

        yield Sessions(store, move, lambda: store)
        return
    url = resource
    made: list[RedisSessionStore] = []

    def another() -> RedisSessionStore:
        made.append(RedisSessionStore(url, key_prefix=PREFIX))
        return made[-1]

    first = another()
    await first.ping()
    yield Sessions(first, asyncio.sleep, another)
    for store in made:
        await store.close()
    client = redis.from_url(url)
    keys = [key async for key in client.scan_iter(match=f"{PREFIX}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_save_and_load(sessions: Sessions) -> None:
    store, session = sessions.store, uuid.uuid4()
    assert await store.load(session) is None

    assert await store.save(session, 1, b"\x00first\xff", 60)
    assert await store.load(session) == (1, b"\x00first\xff")
    assert await store.save(session, 2, b"", 60)
    assert await store.load(session) == (2, b"")
    assert await store.load(uuid.uuid4()) is None, "sessions are kept apart"


async def test_save_is_a_compare_and_set_on_the_version(sessions: Sessions) -> None:
    store, session = sessions.store, uuid.uuid4()
    assert not await store.save(session, 2, b"no version 1 yet", 60)
    assert await store.save(session, 1, b"one", 60)

    assert not await store.save(session, 1, b"a second start", 60)
    assert not await store.save(session, 3, b"a version skipped", 60)
    assert await store.save(session, 2, b"two", 60)
    assert not await store.save(session, 2, b"stale: from version 1 too", 60)

    assert await store.load(session) == (2, b"two")


async def test_versions_start_at_one_and_ttls_are_positive(sessions: Sessions) -> None:
    with pytest.raises(ValueError):
        await sessions.store.save(uuid.uuid4(), 0, b"x", 60)
    with pytest.raises(ValueError):
        await sessions.store.save(uuid.uuid4(), 1, b"x", 0)


async def test_a_session_expires_after_its_ttl(sessions: Sessions) -> None:
    store, gone, kept = sessions.store, uuid.uuid4(), uuid.uuid4()
    assert await store.save(gone, 1, b"one", 1)
    assert await store.save(gone, 2, b"two", 1)
    assert await store.save(kept, 1, b"kept", 60)

    await sessions.advance(1.3)

    assert await store.load(gone) is None
    assert await store.load(kept) == (1, b"kept")
    # Expired is absent: it starts again at version 1, never from where it was.
    assert not await store.save(gone, 3, b"three", 60)
    assert await store.save(gone, 1, b"again", 60)
    assert await store.load(gone) == (1, b"again")


async def test_each_save_restarts_the_ttl(sessions: Sessions) -> None:
    store, session = sessions.store, uuid.uuid4()
    assert await store.save(session, 1, b"one", 1)
    await sessions.advance(0.7)
    assert await store.save(session, 2, b"two", 1)
    await sessions.advance(0.7)  # 1.4 s after the first save

    assert await store.load(session) == (2, b"two")
    await sessions.advance(0.7)
    assert await store.load(session) is None


async def test_a_refused_save_changes_nothing_not_even_the_ttl(sessions: Sessions) -> None:
    store, session = sessions.store, uuid.uuid4()
    assert await store.save(session, 1, b"one", 1)
    await sessions.advance(0.7)
    assert not await store.save(session, 1, b"refused", 60)
    assert await store.load(session) == (1, b"one")

    await sessions.advance(0.7)
    assert await store.load(session) is None


async def test_delete(sessions: Sessions) -> None:
    store, session = sessions.store, uuid.uuid4()
    assert await store.save(session, 1, b"one", 60)
    await store.delete(session)
    assert await store.load(session) is None
    await store.delete(session)  # deleting a missing session is fine
    assert await store.save(session, 1, b"new", 60)
    assert await store.load(session) == (1, b"new")


async def test_of_twenty_savers_racing_from_one_version_exactly_one_wins(
        sessions: Sessions) -> None:
    # Several clients, as several processes would be (one for the memory store).
    stores = [sessions.another() for _ in range(4)]
    session = uuid.uuid4()
    assert await sessions.store.save(session, 1, b"start", 60)

    for _ in range(5):
        loaded = await sessions.store.load(session)
        assert loaded is not None
        version = loaded[0]
        documents = [f"turn {version + 1} by saver {i}".encode() for i in range(20)]
        results = await asyncio.gather(*(
            stores[i % len(stores)].save(session, version + 1, documents[i], 60)
            for i in range(20)))

        assert sum(results) == 1, f"exactly one winner, got {sum(results)}"
        winner = documents[results.index(True)]
        assert await sessions.store.load(session) == (version + 1, winner)


@pytest.mark.redis
async def test_redis_keeps_a_session_under_its_key_with_a_ttl(redis_url: str) -> None:
    store = RedisSessionStore(redis_url, key_prefix=PREFIX)
    client = redis.from_url(redis_url)
    session = uuid.uuid4()
    try:
        assert await store.save(session, 1, b"one", 60)
        key = f"{PREFIX}session:{session}"
        assert store.key(session) == key
        assert await client.type(key) == b"hash"
        assert 0 < await client.ttl(key) <= 60
    finally:
        await client.delete(f"{PREFIX}session:{session}")
        await client.aclose()
        await store.close()


async def test_redis_ping_fails_clearly_on_a_closed_port() -> None:
    store = RedisSessionStore("redis://:s3cret@127.0.0.1:1/0")
    with pytest.raises(RuntimeError,
                       match=r"redis unreachable at redis://:\*\*\*@127.0.0.1:1") as error:
        await store.ping()
    assert "s3cret" not in str(error.value)
    await store.close()
