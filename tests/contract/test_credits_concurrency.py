"""The real CreditsService under concurrency: no overdraft, one effect per request id."""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime

import pytest

from core.credits.model import InsufficientCredits, TransactionType
from core.credits.service import CreditsService
from core.shared.ids import uuid7
from tests.contract.conftest import Backend


class UtcClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def test_concurrent_reservations_never_overdraw(backend: Backend) -> None:
    service = CreditsService(backend.credits_uow, UtcClock())
    user = uuid7()
    await service.grant("grant-1", user, 10, TransactionType.GRANT, "test")

    results = await asyncio.gather(
        *(service.reserve(f"reserve-{n}", user, 1, "meditation") for n in range(50)),
        return_exceptions=True)

    unexpected = [r for r in results if isinstance(r, BaseException)
                  and not isinstance(r, InsufficientCredits)]
    assert unexpected == []
    holds = [r for r in results if not isinstance(r, BaseException)]
    assert len(holds) == 10
    assert sum(isinstance(r, InsufficientCredits) for r in results) == 40
    assert len({h.id for h in holds}) == 10
    account = await service.get_account(user)
    assert (account.balance, account.held) == (10, 10)
    async with backend.credits_uow() as uow:
        assert await uow.holds.sum_active(user) == 10
    entries, _ = await service.list_transactions(user, 0)
    assert entries[0].balance_after == account.balance


async def test_concurrent_retries_of_one_request_have_one_effect(backend: Backend) -> None:
    service = CreditsService(backend.credits_uow, UtcClock())
    user = uuid7()
    await service.grant("grant-1", user, 10, TransactionType.GRANT, "test")
    await asyncio.gather(*(service.grant("grant-2", user, 5, TransactionType.PURCHASE, "buy")
                           for _ in range(10)))

    holds = await asyncio.gather(
        *(service.reserve("same-request", user, 3, "ritual") for _ in range(20)))

    assert len({h.id for h in holds}) == 1
    account = await service.get_account(user)
    assert (account.balance, account.held) == (15, 3)
    async with backend.credits_uow() as uow:
        assert await uow.holds.sum_active(user) == 3
    entries, _ = await service.list_transactions(user, 0)
    assert [e.amount for e in entries] == [5, 10]
    assert entries[0].balance_after == account.balance == 15


@pytest.mark.parametrize("step", ["commit", "release"])
async def test_concurrent_settlement_of_one_hold(backend: Backend, step: str) -> None:
    service = CreditsService(backend.credits_uow, UtcClock())
    user = uuid7()
    await service.grant("grant-1", user, 4, TransactionType.GRANT, "test")
    hold = await service.reserve("reserve-1", user, 3, "ritual")
    settle = service.commit if step == "commit" else service.release
    results = await asyncio.gather(
        *(settle(f"{step}-{n}", user, hold.id) for n in range(10)), return_exceptions=True)
    account = await service.get_account(user)
    if step == "commit":
        assert sum(not isinstance(r, BaseException) for r in results) == 1
        assert (account.balance, account.held) == (1, 0)
        entries, _ = await service.list_transactions(user, 0)
        assert entries[0].balance_after == 1 and entries[0].hold_id == hold.id
    else:  # releasing a released hold answers the released hold again
        assert all(not isinstance(r, BaseException) for r in results)
        assert (account.balance, account.held) == (4, 0)


def _reserve_in_another_process(url: str, user: str, prefix: str, count: int) -> int:
    """Runs in a child process: `count` concurrent reservations; how many succeeded."""
    import uuid

    from adapters.sql.credits import sql_credits_uow
    from adapters.sql.engine import create_engine

    async def run() -> int:
        engine = create_engine(url)
        service = CreditsService(sql_credits_uow(engine), UtcClock())
        try:
            results = await asyncio.gather(
                *(service.reserve(f"{prefix}-{n}", uuid.UUID(user), 1, "ritual")
                  for n in range(count)), return_exceptions=True)
        finally:
            await engine.dispose()
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, InsufficientCredits):
                raise r
        return sum(not isinstance(r, BaseException) for r in results)

    return asyncio.run(run())


async def test_sqlite_writers_in_several_processes_serialise(sqlite_url: str) -> None:
    from adapters.sql.credits import sql_credits_uow
    from adapters.sql.engine import create_engine

    engine = create_engine(sqlite_url)
    service = CreditsService(sql_credits_uow(engine), UtcClock())
    user = uuid7()
    await service.grant("grant-1", user, 20, TransactionType.GRANT, "test")
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        succeeded = await asyncio.gather(*(
            loop.run_in_executor(pool, _reserve_in_another_process, sqlite_url, str(user),
                                 f"p{p}", 10) for p in range(4)))
    try:
        assert sum(succeeded) == 20
        account = await service.get_account(user)
        assert (account.balance, account.held) == (20, 20)
    finally:
        await engine.dispose()


async def test_sqlite_unit_of_work_takes_the_write_lock_when_it_begins(sqlite_url: str) -> None:
    """BEGIN IMMEDIATE: even a unit of work that has only read holds the write lock, so
    read-then-write transactions queue up instead of failing with SQLITE_BUSY."""
    import sqlite3

    from adapters.sql.credits import sql_credits_uow
    from adapters.sql.engine import create_engine

    engine = create_engine(sqlite_url)
    path = sqlite_url.split(":///", 1)[1]
    try:
        async with sql_credits_uow(engine)() as uow:
            await uow.accounts.get(uuid7())
            other = sqlite3.connect(path, timeout=0, isolation_level=None)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            other.close()
    finally:
        await engine.dispose()
