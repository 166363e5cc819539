"""Holds expire: the sweep releases active holds older than the hold TTL exactly
as ReleaseReservation would, on every adapter, and never against a commit of
the same hold (real concurrency on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.credits.model import Hold, HoldState, ReservationNotActive, TransactionType
from core.credits.service import CreditsService
from core.shared.ids import uuid7
from tests.contract.conftest import Backend
from tests.unit.fakes import FakeClock

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=30)


def make_hold(user: uuid.UUID, created_at: datetime, amount: int = 2,
              state: HoldState = HoldState.ACTIVE, resolved_at: datetime | None = None) -> Hold:
    return Hold(id=uuid7(), user_id=user, amount=amount, reason="ritual",
                created_at=created_at, state=state, resolved_at=resolved_at)


def service_at(backend: Backend, start: datetime = T0) -> tuple[CreditsService, FakeClock]:
    clock = FakeClock(start)
    return CreditsService(backend.credits_uow, clock), clock


async def test_list_active_created_before(backend: Backend) -> None:
    users = [uuid7(), uuid7()]
    old = [make_hold(users[n % 2], created_at=T0 - timedelta(minutes=40 + n))
           for n in range(5)]
    young = make_hold(users[0], created_at=T0 - timedelta(minutes=10))
    exactly = make_hold(users[1], created_at=T0)
    committed = make_hold(users[0], created_at=T0 - timedelta(hours=2),
                          state=HoldState.COMMITTED, resolved_at=T0)
    released = make_hold(users[1], created_at=T0 - timedelta(hours=2),
                         state=HoldState.RELEASED, resolved_at=T0)
    async with backend.credits_uow() as uow:
        for hold in [*old, young, exactly, committed, released]:
            await uow.holds.add(hold)
        await uow.commit()

    by_id = sorted(old, key=lambda h: h.id)
    async with backend.credits_uow(read_only=True) as uow:
        found = await uow.holds.list_active_created_before(T0 - timedelta(minutes=20),
                                                           after=None, limit=10)
        assert found == by_id  # whole holds, every user, id order
        first = await uow.holds.list_active_created_before(T0 - timedelta(minutes=20),
                                                           after=None, limit=2)
        assert first == by_id[:2]
        rest = await uow.holds.list_active_created_before(T0 - timedelta(minutes=20),
                                                          after=first[-1].id, limit=10)
        assert rest == by_id[2:]
        # Strictly before the cutoff: the hold created at T0 is not "older".
        everything = await uow.holds.list_active_created_before(T0, after=None, limit=10)
        assert {h.id for h in everything} == {h.id for h in [*old, young]}


async def test_an_expired_hold_is_released_like_release_reservation(backend: Backend) -> None:
    service, clock = service_at(backend)
    user = uuid7()
    await service.grant("grant-1", user, 5, TransactionType.GRANT, "test")
    abandoned = await service.reserve("reserve-1", user, 3, "ritual")
    clock.advance(timedelta(minutes=20))
    recent = await service.reserve("reserve-2", user, 1, "meditation")
    assert (await service.get_account(user)).available == 1

    clock.advance(timedelta(minutes=11))  # abandoned: 31 min old; recent: 11 min
    assert await service.expire_holds(TTL) == 1

    account = await service.get_account(user)
    assert (account.balance, account.held, account.available) == (5, 1, 4)
    async with backend.credits_uow(read_only=True) as uow:
        expired = await uow.holds.get(abandoned.id)
        assert expired is not None
        assert (expired.state, expired.resolved_at) == (HoldState.RELEASED, clock.now())
        assert (await uow.holds.get(recent.id)).state is HoldState.ACTIVE  # type: ignore[union-attr]
        assert await uow.holds.sum_active(user) == 1
    entries, _ = await service.list_transactions(user, 0)
    assert [e.type for e in entries] == [TransactionType.GRANT]  # a release costs nothing

    # The caller comes back: its release answers the released hold, its commit
    # is refused; nothing is released twice.
    again = await service.release("release-1", user, abandoned.id)
    assert again.state is HoldState.RELEASED
    with pytest.raises(ReservationNotActive):
        await service.commit("commit-1", user, abandoned.id)
    assert await service.expire_holds(TTL) == 0
    assert (await service.get_account(user)).available == 4

    clock.advance(timedelta(minutes=20))
    assert await service.expire_holds(TTL) == 1
    account = await service.get_account(user)
    assert (account.balance, account.held) == (5, 0)


async def test_the_sweep_goes_through_every_batch(backend: Backend) -> None:
    service, clock = service_at(backend)
    users = [uuid7() for _ in range(3)]
    for user in users:
        await service.grant(f"grant-{user}", user, 10, TransactionType.GRANT, "test")
        for n in range(3):
            await service.reserve(f"reserve-{user}-{n}", user, 2, "ritual")
    clock.advance(TTL + timedelta(seconds=1))
    assert await service.expire_holds(TTL, batch=2) == 9
    for user in users:
        account = await service.get_account(user)
        assert (account.balance, account.held) == (10, 0)


async def test_the_sweep_waits_for_a_commit_in_progress(backend: Backend) -> None:
    """A commit holds the account's lock: the sweep waits, reads the hold again
    and finds it spent, so the credits are neither released nor spent twice."""
    service, clock = service_at(backend)
    user = uuid7()
    await service.grant("grant-1", user, 4, TransactionType.GRANT, "test")
    hold = await service.reserve("reserve-1", user, 3, "ritual")
    clock.advance(TTL + timedelta(seconds=1))

    committing = backend.credits_uow()
    async with committing as uow:
        account = await uow.accounts.get_for_update(user)  # the commit's lock
        sweep = asyncio.create_task(service.expire_holds(TTL))
        await asyncio.sleep(0.3)
        assert not sweep.done(), "the sweep did not wait for the account's lock"
        spent = await uow.holds.get(hold.id)
        assert spent is not None
        account.settle(spent.amount)
        spent.state, spent.resolved_at = HoldState.COMMITTED, clock.now()
        await uow.holds.save(spent)
        await uow.accounts.save(account)
        await uow.commit()
    assert await asyncio.wait_for(sweep, 30) == 0

    account = await service.get_account(user)
    assert (account.balance, account.held) == (1, 0)
    async with backend.credits_uow(read_only=True) as uow:
        assert (await uow.holds.get(hold.id)).state is HoldState.COMMITTED  # type: ignore[union-attr]


async def test_commits_racing_sweeps_settle_each_hold_once(backend: Backend) -> None:
    """Every expired hold is committed by its caller while three sweeps run at
    once: each hold ends committed or released, never both, and the account
    adds up."""
    service, clock = service_at(backend)
    users = [uuid7() for _ in range(4)]
    holds = []
    for user in users:
        await service.grant(f"grant-{user}", user, 100, TransactionType.GRANT, "test")
        for n in range(10):
            holds.append(await service.reserve(f"reserve-{user}-{n}", user, n + 1, "ritual"))
    clock.advance(TTL + timedelta(seconds=1))

    async def commit(hold_id: uuid.UUID, user: uuid.UUID, delay: float) -> bool:
        await asyncio.sleep(delay)  # spread over the sweeps' run
        try:
            await service.commit(f"commit-{hold_id}", user, hold_id)
        except ReservationNotActive:
            return False
        return True

    spread = random.Random(7)
    results = await asyncio.gather(
        *(commit(h.id, h.user_id, spread.uniform(0, 0.5)) for h in holds),
        *(service.expire_holds(TTL, batch=7) for _ in range(3)))
    committed = {h.id for h, ok in zip(holds, results[:len(holds)], strict=True) if ok}
    released_by_sweeps = sum(results[len(holds):])

    async with backend.credits_uow(read_only=True) as uow:
        states = {h.id: (await uow.holds.get(h.id)).state for h in holds}  # type: ignore[union-attr]
    assert {i for i, s in states.items() if s is HoldState.COMMITTED} == committed
    assert {i for i, s in states.items() if s is HoldState.RELEASED} == (
        {h.id for h in holds} - committed)
    assert released_by_sweeps == len(holds) - len(committed)  # none released twice
    for user in users:
        spent = sum(h.amount for h in holds if h.user_id == user and h.id in committed)
        account = await service.get_account(user)
        assert (account.balance, account.held) == (100 - spent, 0)
        entries, _ = await service.list_transactions(user, 0)
        consumed = [e for e in entries if e.type is TransactionType.CONSUMPTION]
        assert sorted(e.hold_id for e in consumed) == sorted(  # type: ignore[type-var]
            h.id for h in holds if h.user_id == user and h.id in committed)
        assert entries[0].balance_after == account.balance
