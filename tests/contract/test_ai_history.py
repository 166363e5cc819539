"""The AiHistory contract, held by every adapter: memory, SQLite and PostgreSQL.

The SQL adapters run on the `ai_history` table of adapters/sql/schema.py,
created here directly (on a fresh SQLite file per test and on a fresh
PostgreSQL database for the session), independently of the migrations."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from adapters.memory.ai_history import MemoryAiHistory
from adapters.sql.ai_history import SqlAiHistory
from adapters.sql.engine import create_engine
from adapters.sql.schema import metadata
from core.content.model import AiCall
from ports.content import AiHistory
from tests.backends import create_pg_database, drop_pg_database

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
TABLE = metadata.tables["ai_history"]


@pytest.fixture(scope="session")
def ai_history_pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this module's tests (dropped at the end)."""
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """The backend's database URL, resolved outside the event loop."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'ai.db'}"
    if request.param == "postgres":
        return request.getfixturevalue("ai_history_pg_url")
    return None


@pytest.fixture
async def history(database: str | None) -> AsyncIterator[AiHistory]:
    if database is None:
        yield MemoryAiHistory()
        return
    engine = create_engine(database)
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: TABLE.create(sync, checkfirst=True))
        await conn.execute(delete(TABLE))
    try:
        yield SqlAiHistory(engine)
    finally:
        await engine.dispose()


def call(user: uuid.UUID, at: datetime, **changes: Any) -> AiCall:
    fields: dict[str, Any] = {
        "user_id": user, "request_id": "req-1", "template": "guided_meditation",
        "template_version": "v1", "model": "gpt-test", "input_tokens": 1200,
        "output_tokens": 800, "latency_ms": 2345, "outcome": "ok", "created_at": at,
        "id": uuid.uuid4()}
    fields.update(changes)
    return AiCall(**fields)


async def test_round_trip(history: AiHistory) -> None:
    user = uuid.uuid4()
    written = call(user, T0, request_id="req-" + "x" * 190, model="m" * 128,
                   outcome="rate_limited", input_tokens=0, output_tokens=0, latency_ms=0)
    await history.add(written)
    assert await history.list_for(user, 10) == [written]
    [read] = await history.list_for(user, 10)
    assert read.created_at.tzinfo is not None
    assert read.created_at.utcoffset() == timedelta(0)


async def test_newest_first_with_a_limit(history: AiHistory) -> None:
    user = uuid.uuid4()
    calls = [call(user, T0 + timedelta(seconds=i)) for i in range(5)]
    for c in (calls[2], calls[0], calls[4], calls[1], calls[3]):
        await history.add(c)
    assert [c.id for c in await history.list_for(user, 3)] == [c.id for c in calls[:1:-1]]
    assert [c.id for c in await history.list_for(user, 100)] == [c.id for c in calls[::-1]]


async def test_same_time_ordered_by_id(history: AiHistory) -> None:
    user = uuid.uuid4()
    ids = sorted((uuid.uuid4() for _ in range(3)), key=lambda u: u.bytes)
    for i in ids:
        await history.add(call(user, T0, id=i))
    assert [c.id for c in await history.list_for(user, 10)] == ids[::-1]


async def test_users_are_apart(history: AiHistory) -> None:
    ann, bob = uuid.uuid4(), uuid.uuid4()
    await history.add(call(ann, T0, request_id="ann"))
    await history.add(call(bob, T0, request_id="bob"))
    assert [c.request_id for c in await history.list_for(ann, 10)] == ["ann"]
    assert await history.list_for(uuid.uuid4(), 10) == []


async def test_times_in_other_zones_are_kept_as_instants(history: AiHistory) -> None:
    user = uuid.uuid4()
    paris = T0.astimezone(timezone(timedelta(hours=2)))
    await history.add(call(user, paris))
    [read] = await history.list_for(user, 1)
    assert read.created_at == T0 and read.created_at.utcoffset() == timedelta(0)


async def test_naive_times_and_duplicate_ids_are_refused(history: AiHistory) -> None:
    user = uuid.uuid4()
    with pytest.raises(Exception, match="naive datetime"):
        await history.add(call(user, T0.replace(tzinfo=None)))
    first = call(user, T0)
    await history.add(first)
    with pytest.raises(Exception):  # noqa: B017 - each store names it its own way
        await history.add(call(user, T0, id=first.id, request_id="again"))
    assert [c.request_id for c in await history.list_for(user, 10)] == ["req-1"]


async def test_delete_before_oldest_first_in_batches(history: AiHistory) -> None:
    user = uuid.uuid4()
    calls = [call(user, T0 + timedelta(days=i)) for i in range(6)]
    for c in calls[::-1]:
        await history.add(c)
    cutoff = T0 + timedelta(days=4)  # calls 0..3 are older; call 4 is exactly at it
    assert await history.delete_before(cutoff, 3) == 3
    assert [c.id for c in await history.list_for(user, 10)] == [c.id for c in calls[:2:-1]]
    assert await history.delete_before(cutoff, 3) == 1
    assert await history.delete_before(cutoff, 3) == 0
    assert [c.id for c in await history.list_for(user, 10)] == [calls[5].id, calls[4].id]


async def test_delete_before_spans_users(history: AiHistory) -> None:
    ann, bob = uuid.uuid4(), uuid.uuid4()
    await history.add(call(ann, T0))
    await history.add(call(bob, T0 + timedelta(hours=1)))
    await history.add(call(bob, T0 + timedelta(days=40)))
    assert await history.delete_before(T0 + timedelta(days=30), 100) == 2
    assert await history.list_for(ann, 10) == []
    assert len(await history.list_for(bob, 10)) == 1


@pytest.mark.parametrize("limit", [0, -1])
async def test_limits_must_be_positive(history: AiHistory, limit: int) -> None:
    with pytest.raises(ValueError, match="limit must be positive"):
        await history.list_for(uuid.uuid4(), limit)
    with pytest.raises(ValueError, match="limit must be positive"):
        await history.delete_before(T0, limit)
