"""Credits use cases, on the in-memory fakes (no I/O)."""

from __future__ import annotations

import uuid

import pytest

from adapters.memory.credits import memory_credits_uow
from adapters.memory.store import MemoryStore
from core.credits.model import (
    CreditAccount,
    HoldState,
    InsufficientCredits,
    ReservationNotActive,
    TransactionType,
)
from core.credits.service import CreditsService, RequestIdReused
from core.shared.errors import InvalidArgument, NotFound
from tests.unit.fakes import FakeClock


@pytest.fixture
def credits() -> CreditsService:
    return CreditsService(memory_credits_uow(MemoryStore()), FakeClock())


def rid() -> str:
    return str(uuid.uuid4())


def test_account_rules() -> None:
    account = CreditAccount(uuid.uuid4(), balance=3)
    account.hold(2)
    assert (account.balance, account.held, account.available) == (3, 2, 1)
    with pytest.raises(InsufficientCredits):
        account.hold(2)
    account.settle(2)
    assert (account.balance, account.held) == (1, 0)
    with pytest.raises(InvalidArgument):
        account.hold(0)
    with pytest.raises(InvalidArgument):
        account.add(-1)


async def test_unknown_account_reads_as_zero(credits: CreditsService) -> None:
    account = await credits.get_account(uuid.uuid4())
    assert (account.balance, account.held, account.available) == (0, 0, 0)


async def test_signup_bonus_is_granted_once_per_event(credits: CreditsService) -> None:
    user, event = uuid.uuid4(), uuid.uuid4()
    assert await credits.grant_signup_bonus(event, user) is True
    assert await credits.grant_signup_bonus(event, user) is False
    assert (await credits.get_account(user)).balance == 1
    entries, _ = await credits.list_transactions(user, 0)
    assert [(e.type, e.amount, e.balance_after) for e in entries] == [
        (TransactionType.GRANT, 1, 1)]


async def test_reserve_commit_and_release(credits: CreditsService) -> None:
    user = uuid.uuid4()
    await credits.grant(rid(), user, 5, TransactionType.PURCHASE, "bundle")
    hold = await credits.reserve(rid(), user, 4, "ritual")
    with pytest.raises(InsufficientCredits):
        await credits.reserve(rid(), user, 2, "another")
    entry = await credits.commit(rid(), user, hold.id)
    assert (entry.type, entry.amount, entry.balance_after, entry.hold_id) == (
        TransactionType.CONSUMPTION, -4, 1, hold.id)
    with pytest.raises(ReservationNotActive):
        await credits.commit(rid(), user, hold.id)
    with pytest.raises(ReservationNotActive):
        await credits.release(rid(), user, hold.id)

    other = await credits.reserve(rid(), user, 1, "meditation")
    released = await credits.release(rid(), user, other.id)
    assert released.state is HoldState.RELEASED
    assert (await credits.release(rid(), user, other.id)).state is HoldState.RELEASED
    account = await credits.get_account(user)
    assert (account.balance, account.held) == (1, 0)

    with pytest.raises(NotFound):
        await credits.commit(rid(), uuid.uuid4(), other.id)  # someone else's reservation


async def test_idempotency_by_request_id(credits: CreditsService) -> None:
    user, key = uuid.uuid4(), rid()
    first = await credits.grant(key, user, 3, TransactionType.GRANT, "promo")
    assert await credits.grant(key, user, 3, TransactionType.GRANT, "promo") == first
    with pytest.raises(RequestIdReused):
        await credits.grant(key, user, 4, TransactionType.GRANT, "promo")
    assert (await credits.get_account(user)).balance == 3

    hold_key = rid()
    hold = await credits.reserve(hold_key, user, 2, "x")
    assert (await credits.reserve(hold_key, user, 2, "x")).id == hold.id
    assert (await credits.get_account(user)).held == 2


async def test_a_failed_attempt_does_not_burn_the_request_id(credits: CreditsService) -> None:
    user, key = uuid.uuid4(), rid()
    with pytest.raises(InsufficientCredits):
        await credits.reserve(key, user, 1, "x")
    await credits.grant(rid(), user, 1, TransactionType.PURCHASE, "bundle")
    hold = await credits.reserve(key, user, 1, "x")
    assert hold.amount == 1


async def test_pagination(credits: CreditsService) -> None:
    user = uuid.uuid4()
    for amount in range(1, 6):
        await credits.grant(rid(), user, amount, TransactionType.GRANT, "g")
    page, after = await credits.list_transactions(user, 2)
    assert [e.amount for e in page] == [5, 4] and after == page[-1].id
    page, after = await credits.list_transactions(user, 2, after)
    assert [e.amount for e in page] == [3, 2] and after
    page, after = await credits.list_transactions(user, 2, after)
    assert [e.amount for e in page] == [1] and after is None
    with pytest.raises(InvalidArgument):
        await credits.list_transactions(user, -1)
