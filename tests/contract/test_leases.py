"""The Leases contract, for every adapter: memory, SQLite, PostgreSQL (a lease
row) and Redis (SET NX PX). One holder at a time, even among contenders at
once; renewal by the holder; release; a dead holder's lease expires."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from adapters.memory.leases import MemoryLeases
from adapters.redis.leases import RedisLeases
from adapters.sql.engine import create_engine, dispose_engine
from adapters.sql.leases import SqlLeases
from ports.common import Leases
from tests.contract.conftest import truncate_all


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("redis", marks=pytest.mark.redis)])
async def leases(request: pytest.FixtureRequest) -> AsyncIterator[Leases]:
    kind = request.param
    if kind == "memory":
        yield MemoryLeases(SystemClock())
    elif kind == "redis":
        made = RedisLeases(request.getfixturevalue("redis_url"),
                           key_prefix=f"waqup-test:{uuid.uuid4().hex}:lock:")
        await made.ping()
        yield made
        await made.close()
    else:
        url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url")
        engine = create_engine(url)
        if kind == "postgres":
            await truncate_all(engine)
        yield SqlLeases(engine, SystemClock())
        await dispose_engine(engine)


def name() -> str:
    return f"job:{uuid.uuid4().hex[:8]}"


MINUTE = timedelta(minutes=1)


async def test_one_holder_at_a_time(leases: Leases) -> None:
    job = name()
    assert await leases.acquire(job, "a", MINUTE)
    assert not await leases.acquire(job, "b", MINUTE)
    assert await leases.acquire(job, "a", MINUTE)  # the holder renews
    assert not await leases.acquire(job, "b", MINUTE)
    other = name()
    assert await leases.acquire(other, "b", MINUTE)  # names are independent


async def test_release_frees_the_lease_for_others(leases: Leases) -> None:
    job = name()
    assert await leases.acquire(job, "a", MINUTE)
    await leases.release(job, "b")  # not b's: a no-op
    assert not await leases.acquire(job, "b", MINUTE)
    await leases.release(job, "a")
    assert await leases.acquire(job, "b", MINUTE)
    await leases.release(job, "a")  # a's lease is gone: nothing to do
    assert not await leases.acquire(job, "a", MINUTE)
    await leases.release(name(), "a")  # an unknown name: nothing to do


async def test_a_dead_holders_lease_expires(leases: Leases) -> None:
    job = name()
    short = timedelta(milliseconds=300)
    assert await leases.acquire(job, "dead", short)
    assert not await leases.acquire(job, "alive", short)
    await asyncio.sleep(0.5)  # "dead" did not renew
    assert await leases.acquire(job, "alive", MINUTE)
    # The old holder coming back finds it taken; its release takes nothing.
    assert not await leases.acquire(job, "dead", MINUTE)
    await leases.release(job, "dead")
    assert not await leases.acquire(job, "dead", MINUTE)


async def test_renewal_keeps_the_lease_past_its_first_expiry(leases: Leases) -> None:
    job = name()
    short = timedelta(milliseconds=400)
    assert await leases.acquire(job, "a", short)
    for _ in range(3):
        await asyncio.sleep(0.2)
        assert await leases.acquire(job, "a", short)
        assert not await leases.acquire(job, "b", short)


async def test_contenders_at_once_one_wins(leases: Leases) -> None:
    for _ in range(5):
        job = name()
        won = await asyncio.gather(*(leases.acquire(job, f"owner-{n}", MINUTE)
                                     for n in range(10)))
        assert sum(won) == 1


async def test_ttl_must_be_positive(leases: Leases) -> None:
    with pytest.raises(ValueError):
        await leases.acquire(name(), "a", timedelta(0))


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_contender_that_waited_still_gets_a_whole_lease(
        kind: str, request: pytest.FixtureRequest) -> None:
    """Another transaction holds the lease's row (or SQLite's write lock) for a
    while: the acquire that waited for it counts its lease from when it got it,
    not from when it asked."""
    url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url")
    engine = create_engine(url)
    try:
        if kind == "postgres":
            await truncate_all(engine)
        leases = SqlLeases(engine, SystemClock())
        job = name()
        assert await leases.acquire(job, "before", timedelta(milliseconds=100))
        await asyncio.sleep(0.15)  # expired
        async with engine.begin() as blocker:  # SQLite: BEGIN IMMEDIATE
            await blocker.execute(text("SELECT name FROM leases WHERE name = :n FOR UPDATE"
                                       if kind == "postgres" else
                                       "SELECT name FROM leases WHERE name = :n"), {"n": job})
            waiting = asyncio.create_task(leases.acquire(job, "a", timedelta(seconds=0.5)))
            await asyncio.sleep(0.7)  # longer than the lease it asked for
            assert not waiting.done()
        assert await waiting
        assert not await leases.acquire(job, "b", timedelta(seconds=0.5))
    finally:
        await dispose_engine(engine)


def _contend(kind: str, url: str, job: str, owner: str, start_at: float) -> bool:
    """In another process: try to take `job` at `start_at`."""

    async def run() -> bool:
        made: Any
        engine = None
        if kind == "redis":
            made = RedisLeases(url, key_prefix="waqup-test:lock:")
        else:
            engine = create_engine(url)
            made = SqlLeases(engine, SystemClock())
        try:
            await asyncio.sleep(max(0.0, start_at - time.time()))
            return await made.acquire(job, owner, MINUTE)
        finally:
            await made.close()
            if engine is not None:
                await dispose_engine(engine)

    return asyncio.run(run())


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                                  pytest.param("redis", marks=pytest.mark.redis)])
async def test_contending_processes_one_wins(kind: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue({"sqlite": "sqlite_url", "postgres": "pg_url",
                                   "redis": "redis_url"}[kind])
    job = name()
    start_at = time.time() + 2.0  # time enough for the spawned interpreters to start
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        won = await asyncio.gather(*(
            loop.run_in_executor(pool, _contend, kind, url, job, f"process-{n}", start_at)
            for n in range(4)))
    assert sum(won) == 1
