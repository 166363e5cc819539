"""The credits unit of work's contract, for every adapter."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from adapters.memory.credits import ConstraintViolation
from core.credits.model import CreditAccount, Hold, HoldState, LedgerEntry, TransactionType
from core.shared.ids import uuid7
from tests.contract.conftest import Backend

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def test_get_for_update_creates_the_account(backend: Backend) -> None:
    user = uuid7()
    async with backend.credits_uow() as uow:
        assert await uow.accounts.get(user) is None
        assert await uow.accounts.get_for_update(user) == CreditAccount(user, 0, 0)
        await uow.commit()
    async with backend.credits_uow() as uow:
        assert await uow.accounts.get(user) == CreditAccount(user, 0, 0)
        assert await uow.accounts.get_for_update(user) == CreditAccount(user, 0, 0)


async def test_account_save_and_rollback(backend: Backend) -> None:
    user = uuid7()
    async with backend.credits_uow() as uow:
        account = await uow.accounts.get_for_update(user)
        account.balance, account.held = 7, 3
        await uow.accounts.save(account)
        account.balance = 1_000  # not saved: the store keeps its own copy
        await uow.commit()
    async with backend.credits_uow() as uow:
        await uow.accounts.save(CreditAccount(user, 99, 0))  # no commit
    async with backend.credits_uow() as uow:
        assert await uow.accounts.get(user) == CreditAccount(user, 7, 3)


@pytest.mark.parametrize(("balance", "held"), [(-1, 0), (5, -1), (5, 6)])
async def test_account_invariants_are_enforced(backend: Backend, balance: int,
                                               held: int) -> None:
    user = uuid7()
    async with backend.credits_uow() as uow:
        await uow.accounts.get_for_update(user)
        with pytest.raises(IntegrityError if backend.is_sql else ConstraintViolation):
            await uow.accounts.save(CreditAccount(user, balance, held))


def make_hold(user, amount: int = 2, **kw: object) -> Hold:  # type: ignore[no-untyped-def]
    return Hold(id=uuid7(), user_id=user, amount=amount, reason="meditation",
                created_at=NOW, **kw)  # type: ignore[arg-type]


async def test_holds(backend: Backend) -> None:
    user, other = uuid7(), uuid7()
    first, second, foreign = make_hold(user, 2), make_hold(user, 3), make_hold(other, 5)
    async with backend.credits_uow() as uow:
        assert await uow.holds.sum_active(user) == 0
        for hold in (first, second, foreign):
            await uow.holds.add(hold)
        await uow.commit()
    async with backend.credits_uow() as uow:
        assert await uow.holds.get(first.id) == first
        assert await uow.holds.get(uuid7()) is None
        assert await uow.holds.sum_active(user) == 5
        first.state, first.resolved_at = HoldState.COMMITTED, NOW + timedelta(seconds=3)
        await uow.holds.save(first)
        await uow.commit()
    async with backend.credits_uow() as uow:
        assert await uow.holds.get(first.id) == first
        assert await uow.holds.sum_active(user) == 3
        assert await uow.holds.sum_active(other) == 5


async def test_hold_amount_must_be_positive(backend: Backend) -> None:
    async with backend.credits_uow() as uow:
        with pytest.raises(IntegrityError if backend.is_sql else ConstraintViolation):
            await uow.holds.add(make_hold(uuid7(), 0))


def entry(user, n: int, **kw: object) -> LedgerEntry:  # type: ignore[no-untyped-def]
    return LedgerEntry(id=uuid7(), user_id=user, type=TransactionType.GRANT, amount=1,
                       balance_after=n, reason=f"entry {n}",
                       created_at=NOW + timedelta(seconds=n), request_id=f"req-{n}", **kw)


async def test_ledger_lists_newest_first_with_keyset_pages(backend: Backend) -> None:
    user, other = uuid7(), uuid7()
    entries = [entry(user, n) for n in range(1, 6)]
    hold = make_hold(user, 1)
    async with backend.credits_uow() as uow:
        await uow.holds.add(hold)
        for e in entries:
            await uow.ledger.append(e)
        await uow.ledger.append(entry(other, 1))
        spent = LedgerEntry(id=uuid7(), user_id=user, type=TransactionType.CONSUMPTION,
                            amount=-1, balance_after=4, reason="meditation", created_at=NOW,
                            hold_id=hold.id, request_id="req-spend")
        await uow.ledger.append(spent)
        await uow.commit()
    newest_first = [spent, *reversed(entries)]
    async with backend.credits_uow() as uow:
        assert await uow.ledger.list(user, before=None, limit=100) == newest_first
        page1 = await uow.ledger.list(user, before=None, limit=4)
        page2 = await uow.ledger.list(user, before=page1[-1].id, limit=4)
        assert page1 == newest_first[:4] and page2 == newest_first[4:]
        assert await uow.ledger.list(user, before=newest_first[-1].id, limit=4) == []
        assert await uow.ledger.list(uuid7(), before=None, limit=4) == []


async def test_ledger_balance_after_may_not_be_negative(backend: Backend) -> None:
    async with backend.credits_uow() as uow:
        with pytest.raises(IntegrityError if backend.is_sql else ConstraintViolation):
            await uow.ledger.append(entry(uuid7(), -1))


async def test_idempotency_claim_complete_and_claim_again(backend: Backend) -> None:
    async with backend.credits_uow() as uow:
        assert await uow.idempotency.claim("k1", "fp", NOW) is None
        await uow.idempotency.complete("k1", {"id": "x", "amount": 3, "none": None})
        await uow.commit()
    async with backend.credits_uow() as uow:
        record = await uow.idempotency.claim("k1", "other-fp", NOW)
        assert record is not None
        assert (record.key, record.fingerprint) == ("k1", "fp")
        assert record.result == {"id": "x", "amount": 3, "none": None}


async def test_idempotency_claim_is_rolled_back_with_its_unit_of_work(backend: Backend) -> None:
    async with backend.credits_uow() as uow:
        assert await uow.idempotency.claim("k2", "fp", NOW) is None
    async with backend.credits_uow() as uow:
        assert await uow.idempotency.claim("k2", "fp", NOW) is None
        await uow.commit()
    async with backend.credits_uow() as uow:
        record = await uow.idempotency.claim("k2", "fp", NOW)
    assert record is not None and record.result is None


async def test_concurrent_claim_waits_for_the_first(backend: Backend) -> None:
    """The second claim of a key blocks until the first unit of work ends, then sees
    its committed record (PostgreSQL: row lock; SQLite: BEGIN IMMEDIATE; memory: lock)."""

    async def second_claim():  # type: ignore[no-untyped-def]
        async with backend.credits_uow() as uow:
            return await uow.idempotency.claim("k3", "fp", NOW)

    async with backend.credits_uow() as first:
        assert await first.idempotency.claim("k3", "fp", NOW) is None
        waiting = asyncio.create_task(second_claim())
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await first.idempotency.complete("k3", {"done": True})
        await first.commit()
    record = await asyncio.wait_for(waiting, 10)
    assert record is not None and record.result == {"done": True}


async def test_processed_events(backend: Backend) -> None:
    event = uuid7()
    async with backend.credits_uow() as uow:
        assert await uow.processed_events.add("bonus", event, NOW) is True
        assert await uow.processed_events.add("bonus", event, NOW) is False
        assert await uow.processed_events.add("other", event, NOW) is True
        await uow.commit()
    async with backend.credits_uow() as uow:
        assert await uow.processed_events.add("bonus", event, NOW) is False


async def test_read_only_unit_of_work_reads_committed_state_beside_a_writer(
        backend: Backend) -> None:
    user = uuid7()
    async with backend.credits_uow() as uow:
        account = await uow.accounts.get_for_update(user)
        account.balance = 5
        await uow.accounts.save(account)
        await uow.commit()
    # A writer holds its transaction open; a reader neither waits for it nor
    # sees its uncommitted change.
    async with backend.credits_uow() as writer:
        account = await writer.accounts.get_for_update(user)
        account.balance = 9
        await writer.accounts.save(account)
        async with asyncio.timeout(5):
            async with backend.credits_uow(read_only=True) as reader:
                assert await reader.accounts.get(user) == CreditAccount(user, 5, 0)
                with pytest.raises(RuntimeError, match="read-only"):
                    await reader.commit()
        await writer.commit()
    async with backend.credits_uow(read_only=True) as reader:
        assert await reader.accounts.get(user) == CreditAccount(user, 9, 0)


async def test_reads_survive_connections_the_server_dropped(backend: Backend) -> None:
    """PostgreSQL reads pool their connections without a ping before each use:
    a connection the server closed is replaced and the read retried once."""
    if backend.name != "postgres":
        pytest.skip("only PostgreSQL drops connections")
    assert backend.engine is not None
    user = uuid7()
    async with backend.credits_uow() as uow:
        account = await uow.accounts.get_for_update(user)
        account.balance = 3
        await uow.accounts.save(account)
        await uow.commit()
    for _ in range(3):  # fill the pool
        async with backend.credits_uow(read_only=True) as reader:
            assert await reader.accounts.get(user) == CreditAccount(user, 3, 0)
    async with backend.engine.connect() as conn:
        killed = (await conn.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))).scalar()
    assert killed >= 1
    for _ in range(3):
        async with backend.credits_uow(read_only=True) as reader:
            assert await reader.accounts.get(user) == CreditAccount(user, 3, 0)
    # Many readers at once share the bounded pool.
    async def read() -> CreditAccount | None:
        async with backend.credits_uow(read_only=True) as reader:
            return await reader.accounts.get(user)

    assert await asyncio.gather(*(read() for _ in range(50))) == [CreditAccount(user, 3, 0)] * 50

    # Connections dropped while reads are under way on them: each read gets
    # its row (from a new connection), none sees the protocol's own errors.
    # The connections that exist before the reads start are the ones
    # dropped (a reconnect racing a second drop is a failure worth seeing).
    async def terminate(pids: list[int]) -> None:
        async with backend.engine.connect() as conn:  # type: ignore[union-attr]
            await conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[])) AS pid"),
                {"pids": pids})

    for _ in range(5):
        async with backend.engine.connect() as conn:
            pids = list((await conn.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"))).scalars())
        results = await asyncio.gather(*(read() for _ in range(30)), terminate(pids))
        assert results[:30] == [CreditAccount(user, 3, 0)] * 30
