"""The sweep of expired holds, on the in-memory fakes: one hold that cannot be
released does not keep the others held; a failing store fails the sweep
(three failures in a row)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from adapters.memory.credits import memory_credits_uow
from adapters.memory.store import MemoryStore
from core.credits.model import CreditAccount, Hold, HoldState, TransactionType
from core.credits.service import CreditsService
from core.shared.ids import uuid7
from tests.unit.fakes import FakeClock

TTL = timedelta(minutes=30)


async def test_a_hold_that_cannot_be_released_is_logged_and_skipped(
        caplog: pytest.LogCaptureFixture) -> None:
    store, clock = MemoryStore(), FakeClock()
    service = CreditsService(memory_credits_uow(store), clock)
    good = [uuid7(), uuid7()]
    for user in good:
        await service.grant(f"grant-{user}", user, 3, TransactionType.GRANT, "test")
        await service.reserve(f"reserve-{user}", user, 2, "ritual")
    # A hold its account does not count as held: releasing it would break
    # the account's rules.
    broken_user = uuid7()
    broken = Hold(id=uuid7(), user_id=broken_user, amount=5, reason="ritual",
                  created_at=clock.now())
    store.tables.credit_accounts[broken_user] = CreditAccount(broken_user, 1, 0)
    store.tables.credit_holds[broken.id] = broken
    clock.advance(TTL + timedelta(seconds=1))

    with caplog.at_level(logging.ERROR, logger="core.credits.service"):
        assert await service.expire_holds(TTL, batch=2) == 2
    assert [r.hold_id for r in caplog.records] == [str(broken.id)]  # type: ignore[attr-defined]
    for user in good:
        assert (await service.get_account(user)).held == 0
    assert store.tables.credit_holds[broken.id].state is HoldState.ACTIVE


class FailingStore(Exception):
    pass


async def test_a_failing_store_fails_the_sweep() -> None:
    store, clock = MemoryStore(), FakeClock()
    service = CreditsService(memory_credits_uow(store), clock)
    users = [uuid7() for _ in range(5)]
    for user in users:
        await service.grant(f"grant-{user}", user, 3, TransactionType.GRANT, "test")
        await service.reserve(f"reserve-{user}", user, 2, "ritual")
    clock.advance(TTL + timedelta(seconds=1))
    factory = memory_credits_uow(store)

    def failing(read_only: bool = False):  # type: ignore[no-untyped-def]
        if not read_only:
            raise FailingStore("database down")
        return factory(read_only=True)

    # Not one log line per hold of the batch: the sweep stops after three.
    with pytest.raises(FailingStore):
        await CreditsService(failing, clock).expire_holds(TTL)
    for user in users:
        assert (await service.get_account(user)).held == 2
