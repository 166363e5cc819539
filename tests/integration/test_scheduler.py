"""The scheduler: periodic jobs, one runner at a time across processes (leases
on memory, SQLite, PostgreSQL and Redis), failures retried next interval,
dead runners taken over, clean shutdown; and the jobs the composition root
schedules (hold sweep, retention) running in a built application."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import random
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.jwt.keys import KeyRing
from adapters.memory.leases import MemoryLeases
from adapters.memory.store import MemoryStore
from adapters.sql.migrate import migrate
from core.credits.model import HoldState, TransactionType
from core.identity.model import AuditAction, AuditEntry
from core.shared.ids import uuid7
from ports.common import Leases
from services.runtime.bootstrap import build
from services.runtime.scheduler import Job, Scheduler
from services.runtime.settings import Settings
from tests.unit.fakes import FakeClock


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def eventually(check: Callable[[], Awaitable[bool] | bool], what: str,
                     within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(*schedulers: Scheduler) -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks = [asyncio.create_task(s.run()) for s in schedulers]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def quick(scheduler_jobs: list[Job], leases: Leases, owner: str) -> Scheduler:
    return Scheduler(scheduler_jobs, leases, owner=owner, max_start_delay=0.05)


class Recorder:
    """A job that records each run's (owner, start, end), taking `seconds`."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.runs: list[tuple[str, float, float]] = []

    def job_for(self, owner: str, interval: float, name: str = "record") -> Job:
        async def run() -> int:
            start = time.monotonic()
            await asyncio.sleep(self.seconds)
            self.runs.append((owner, start, time.monotonic()))
            return 1

        return Job(name, interval, run)


def assert_no_overlap(runs: list[tuple[Any, float, float]]) -> None:
    ordered = sorted(runs, key=lambda r: r[1])
    for before, after in itertools.pairwise(ordered):
        assert after[1] >= before[2], f"runs overlap: {before} and {after}"


async def test_jobs_run_every_interval_and_failures_are_retried(
        caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the database went away")
        return 7

    scheduler = quick([Job("flaky", 0.1, flaky, counts="things done")],
                      MemoryLeases(SystemClock()), "me")
    with caplog.at_level(logging.INFO, logger="services.runtime.scheduler"):
        async with running(scheduler):
            await eventually(lambda: calls >= 3, "three runs")
    failed = [r for r in caplog.records if r.getMessage().startswith("job failed")]
    assert len(failed) == 1 and failed[0].job == "flaky"  # type: ignore[attr-defined]
    assert failed[0].exc_info is not None
    done = [r for r in caplog.records if r.getMessage() == "job flaky: 7 things done"]
    assert done and done[0].count == 7  # type: ignore[attr-defined]


async def test_one_runner_at_a_time_among_schedulers_even_for_long_jobs() -> None:
    """Three schedulers, one lease store; the job outlasts its interval (the
    runner renews its lease): runs never overlap."""
    leases = MemoryLeases(SystemClock())
    recorder = Recorder(seconds=0.25)
    schedulers = [quick([recorder.job_for(f"w{n}", 0.1)], leases, f"w{n}") for n in range(3)]
    async with running(*schedulers):
        await eventually(lambda: len(recorder.runs) >= 6, "six runs", within=15)
    assert_no_overlap(recorder.runs)


async def test_a_dead_runners_job_is_taken_over_when_its_lease_expires() -> None:
    leases = MemoryLeases(SystemClock())
    recorder = Recorder()
    job = recorder.job_for("survivor", 0.1)
    # A runner took the lease and died without renewing it.
    assert await leases.acquire(job.lease, "dead", timedelta(seconds=0.6))
    started = time.monotonic()
    async with running(quick([job], leases, "survivor")):
        await eventually(lambda: bool(recorder.runs), "the take-over")
    assert recorder.runs[0][1] - started >= 0.5


async def test_shutdown_cancels_a_running_job_and_frees_its_lease() -> None:
    leases = MemoryLeases(SystemClock())
    entered, cancelled = asyncio.Event(), asyncio.Event()

    async def endless() -> int:
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0

    job = Job("endless", 3600, endless)
    async with running(quick([job], leases, "first")) as [task]:
        await asyncio.wait_for(entered.wait(), 5)
        assert not await leases.acquire(job.lease, "second", timedelta(minutes=1))
    assert task.done() and cancelled.is_set()
    # Another worker takes the interrupted job over at once.
    assert await leases.acquire(job.lease, "second", timedelta(minutes=1))


async def test_shutdown_stops_the_scheduler_wherever_it_is() -> None:
    """Cancelled at any point of a run (taking the lease, running, stopping the
    lease keeper, sleeping), the scheduler ends: a cancellation is never lost."""
    leases = MemoryLeases(SystemClock())

    async def instant() -> int:
        await asyncio.sleep(0)
        return 1

    spread = random.Random(3)
    for n in range(300):
        scheduler = Scheduler([Job("instant", 0.001, instant)], leases, owner=f"w{n}",
                              max_start_delay=0)
        task = asyncio.create_task(scheduler.run())
        for _ in range(spread.randrange(1, 40)):
            await asyncio.sleep(0)
        task.cancel()
        done, _pending = await asyncio.wait([task], timeout=2)
        assert done, f"the scheduler did not stop (attempt {n})"
        await leases.release("job:instant", f"w{n}")


async def test_a_job_lease_store_that_fails_skips_the_run(
        caplog: pytest.LogCaptureFixture) -> None:
    class DownLeases(MemoryLeases):
        async def acquire(self, name: str, owner: str, ttl: timedelta) -> bool:
            raise ConnectionError("redis is away")

    recorder = Recorder()
    scheduler = quick([recorder.job_for("me", 0.05)], DownLeases(SystemClock()), "me")
    assert await scheduler.run_once(scheduler.jobs[0]) is None
    assert recorder.runs == []
    assert "could not take a job's lease" in caplog.text


# --- across processes --------------------------------------------------------


def _scheduler_process(kind: str, url: str, log_path: str, interval: float,
                       job_seconds: float) -> None:
    """A worker: a scheduler with one job that appends `start pid` and `end pid`
    lines to `log_path`; runs until killed or terminated."""

    async def main() -> None:
        from adapters.redis.leases import RedisLeases
        from adapters.sql.engine import create_engine
        from adapters.sql.leases import SqlLeases

        leases: Any
        if kind == "redis":
            leases = RedisLeases(url, key_prefix=f"waqup-test:{os.path.basename(log_path)}:")
        else:
            leases = SqlLeases(create_engine(url), SystemClock())

        async def job() -> int:
            _append(log_path, f"start {os.getpid()} {time.time()}")
            await asyncio.sleep(job_seconds)
            _append(log_path, f"end {os.getpid()} {time.time()}")
            return 1

        scheduler = Scheduler([Job("shared", interval, job)], leases, max_start_delay=0.1)
        await scheduler.run()

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    asyncio.run(main())


def _append(path: str, line: str) -> None:
    with open(path, "a") as out:
        out.write(line + "\n")


def read_runs(log_path: Path) -> tuple[list[tuple[int, float, float]], list[tuple[int, float]]]:
    """(finished runs (pid, start, end), unfinished runs (pid, start))."""
    open_runs: dict[int, float] = {}
    done = []
    if not log_path.exists():
        return [], []
    for line in log_path.read_text().splitlines():
        what, pid, at = line.split()
        if what == "start":
            open_runs[int(pid)] = float(at)
        else:
            done.append((int(pid), open_runs.pop(int(pid)), float(at)))
    return done, list(open_runs.items())


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                                  pytest.param("redis", marks=pytest.mark.redis)])
async def test_worker_processes_run_a_job_one_at_a_time_and_survive_a_killed_runner(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/waqup.db"
        migrate(url)
    else:
        url = request.getfixturevalue("pg_url" if kind == "postgres" else "redis_url")
        if kind == "postgres":
            from adapters.sql.engine import create_engine
            from tests.contract.conftest import truncate_all

            engine = create_engine(url)
            await truncate_all(engine)
            await engine.dispose()
    log_path = tmp_path / f"runs-{uuid.uuid4().hex[:8]}.log"
    spawn = multiprocessing.get_context("spawn")
    # The job (0.5 s) outlasts its interval (0.4 s): its runner must renew.
    workers = [spawn.Process(target=_scheduler_process,
                             args=(kind, url, str(log_path), 0.4, 0.5)) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        await eventually(lambda: len(read_runs(log_path)[0]) >= 4, "four runs", within=60)
        # Kill the worker that is running the job now, half-way through.
        await eventually(lambda: bool(read_runs(log_path)[1]), "a run in progress", within=20)
        [(victim, _started)] = read_runs(log_path)[1]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.time()
        survivors = {w.pid for w in workers} - {victim}

        def taken_over() -> bool:
            return any(pid in survivors and start > killed_at
                       for pid, start, _end in read_runs(log_path)[0])

        await eventually(taken_over, "another worker taking the job over", within=30)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            worker.join(10)
    done, unfinished = read_runs(log_path)
    assert len({pid for pid, _s, _e in done}) >= 1
    # Runs never overlap, the killed one included (until its lease expired).
    killed = [(pid, start, killed_at) for pid, start in unfinished if pid == victim]
    assert_no_overlap(done + killed)


# --- in the built application ------------------------------------------------


async def test_the_application_sweeps_expired_holds_and_keeps_others(tmp_path: Path) -> None:
    clock = FakeClock()
    store = MemoryStore()
    settings = Settings(database_url="memory://", data_dir=tmp_path,
                        hold_ttl_seconds=1800, hold_sweep_interval_seconds=0.1)
    container = build(settings, clock=clock, store=store, keyring=KeyRing.generate())
    assert container.scheduler is not None
    assert {job.name for job in container.scheduler.jobs} == {
        "credits.expire-holds", "retention.idempotency-keys", "retention.processed-events",
        "retention.outbox", "retention.audit-logs", "retention.ai-history",
        "library.resume-stale", "catalog.refresh-popularity"}
    credits = container.service("credits")
    user = uuid7()
    await credits.grant("grant-1", user, 5, TransactionType.GRANT, "test")
    abandoned = await credits.reserve("reserve-1", user, 3, "ritual")
    await container.start()
    try:
        clock.advance(timedelta(minutes=20))
        recent = await credits.reserve("reserve-2", user, 1, "meditation")
        await asyncio.sleep(0.5)  # sweeps ran: nothing is old enough yet
        assert (await credits.get_account(user)).held == 4
        clock.advance(timedelta(minutes=11))

        async def released() -> bool:
            return (await credits.get_account(user)).held == 1

        await eventually(released, "the abandoned hold's release")
        assert store.tables.credit_holds[abandoned.id].state is HoldState.RELEASED
        assert store.tables.credit_holds[recent.id].state is HoldState.ACTIVE
    finally:
        await container.close()
    assert all(task.done() for task in container._tasks)


async def test_the_application_runs_the_retention_jobs_on_its_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/waqup.db"
    migrate(url)
    clock = FakeClock()
    settings = Settings(database_url=url, data_dir=tmp_path, retention_interval_seconds=0.2,
                        audit_log_retention_days=30, hold_sweep_interval_seconds=0,
                        creation_sweep_interval_seconds=0,
                        search_popularity_refresh_seconds=0)
    container = build(settings, clock=clock, keyring=KeyRing.generate())
    assert container.scheduler is not None
    assert "credits.expire-holds" not in {job.name for job in container.scheduler.jobs}
    identity_uow = container.uow("identity")
    old = AuditEntry(id=uuid7(), action=AuditAction.LOGIN, created_at=clock.now(),
                     user_id=uuid7())
    async with identity_uow() as uow:
        await uow.audit.record(old)
        await uow.commit()
    clock.advance(timedelta(days=31))
    recent = AuditEntry(id=uuid7(), action=AuditAction.LOGIN, created_at=clock.now(),
                        user_id=old.user_id)
    async with identity_uow() as uow:
        await uow.audit.record(recent)
        await uow.commit()
    await container.start()
    try:
        async def only_recent_left() -> bool:
            async with identity_uow(read_only=True) as uow:
                return [e.id for e in await uow.audit.list_for_user(old.user_id)] == [recent.id]

        await eventually(only_recent_left, "the audit log's retention")
        from sqlalchemy import select

        from adapters.sql.schema import leases

        async def every_job_leased() -> bool:  # the leases live in the database
            async with container.engine.connect() as conn:
                held = set((await conn.execute(select(leases.c.name))).scalars())
            return held == {"job:retention.audit-logs", "job:retention.outbox",
                            "job:retention.idempotency-keys", "job:retention.processed-events",
                            "job:retention.ai-history", "job:retention.sessions"}

        await eventually(every_job_leased, "a lease row per job")
    finally:
        await container.close()


def test_turned_off_jobs_are_not_scheduled(tmp_path: Path) -> None:
    settings = Settings(database_url="memory://", data_dir=tmp_path,
                        retention_interval_seconds=0, hold_sweep_interval_seconds=0,
                        creation_sweep_interval_seconds=0,
                        search_popularity_refresh_seconds=0)
    assert build(settings, keyring=KeyRing.generate()).scheduler is None


def test_a_redis_lock_needs_redis() -> None:
    with pytest.raises(ValueError, match="WAQUP_REDIS_URL"):
        Settings(scheduler_lock="redis")
    Settings(scheduler_lock="redis", redis_url="redis://127.0.0.1:6379/0")


async def test_the_application_can_keep_its_job_leases_in_redis(tmp_path: Path,
                                                               redis_url: str) -> None:
    settings = Settings(database_url="memory://", data_dir=tmp_path, redis_url=redis_url,
                        scheduler_lock="redis", hold_sweep_interval_seconds=0.1)
    container = build(settings, keyring=KeyRing.generate())
    await container.start()
    try:
        import redis.asyncio as redis

        client = redis.from_url(redis_url)
        try:
            async def leased() -> bool:
                return await client.get("lock:job:credits.expire-holds") is not None

            await eventually(leased, "the hold sweep's lease in Redis")
            owner = (await client.get("lock:job:credits.expire-holds")).decode()
            assert owner == container.scheduler.owner  # type: ignore[union-attr]
        finally:
            await client.aclose()
    finally:
        await container.close()
