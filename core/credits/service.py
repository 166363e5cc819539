"""Credits' use cases."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from core.credits.model import (
    SIGNUP_BONUS,
    CreditAccount,
    Hold,
    HoldState,
    LedgerEntry,
    ReservationNotActive,
    TransactionType,
)
from core.shared.errors import InvalidArgument, NotFound
from core.shared.ids import uuid7

if TYPE_CHECKING:
    from ports.common import Clock
    from ports.credits import CreditsUnitOfWork, CreditsUnitOfWorkFactory

T = TypeVar("T", Hold, LedgerEntry)

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
SIGNUP_BONUS_CONSUMER = "credits.signup-bonus"
#: The sweep of expired holds skips a hold it cannot release (logged); this
#: many failures in a row stop it (the store is failing, not one hold).
MAX_EXPIRY_FAILURES_IN_A_ROW = 3


class RequestIdReused(InvalidArgument):
    reason = "REQUEST_ID_REUSED"


class CreditsService:
    def __init__(self, uow: CreditsUnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    # --- reads ------------------------------------------------------------------

    async def get_account(self, user_id: uuid.UUID) -> CreditAccount:
        async with self._uow(read_only=True) as uow:
            return await uow.accounts.get(user_id) or CreditAccount(user_id=user_id)

    async def list_transactions(self, user_id: uuid.UUID, page_size: int,
                                before: uuid.UUID | None = None,
                                ) -> tuple[list[LedgerEntry], uuid.UUID | None]:
        """A page of the ledger, newest first, strictly older than `before`; and
        where the next page starts (None on the last page)."""
        if page_size < 0:
            raise InvalidArgument("page_size must not be negative", reason="INVALID_PAGE_SIZE",
                                  metadata={"field": "page_size"})
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        async with self._uow(read_only=True) as uow:
            rows = await uow.ledger.list(user_id, before=before, limit=size + 1)
        page = rows[:size]
        return page, (page[-1].id if len(rows) > size else None)

    # --- writes (each idempotent by request_id) ---------------------------------

    async def reserve(self, request_id: str, user_id: uuid.UUID, amount: int,
                      reason: str) -> Hold:
        async def work(uow: CreditsUnitOfWork) -> Hold:
            account = await uow.accounts.get_for_update(user_id)
            account.hold(amount)
            hold = Hold(id=uuid7(), user_id=user_id, amount=amount, reason=reason,
                        created_at=self._clock.now())
            await uow.holds.add(hold)
            await uow.accounts.save(account)
            return hold

        return await self._idempotent("reserve", request_id,
                                      (str(user_id), amount, reason), work, Hold.from_record)

    async def commit(self, request_id: str, user_id: uuid.UUID, hold_id: uuid.UUID) -> LedgerEntry:
        async def work(uow: CreditsUnitOfWork) -> LedgerEntry:
            account = await uow.accounts.get_for_update(user_id)
            hold = await self._active_hold(uow, user_id, hold_id)
            account.settle(hold.amount)
            now = self._clock.now()
            hold.state, hold.resolved_at = HoldState.COMMITTED, now
            entry = LedgerEntry(id=uuid7(), user_id=user_id, type=TransactionType.CONSUMPTION,
                                amount=-hold.amount, balance_after=account.balance,
                                reason=hold.reason, created_at=now, hold_id=hold.id,
                                request_id=request_id)
            await uow.holds.save(hold)
            await uow.accounts.save(account)
            await uow.ledger.append(entry)
            return entry

        return await self._idempotent("commit", request_id, (str(user_id), str(hold_id)),
                                      work, LedgerEntry.from_record)

    async def release(self, request_id: str, user_id: uuid.UUID, hold_id: uuid.UUID) -> Hold:
        async def work(uow: CreditsUnitOfWork) -> Hold:
            account = await uow.accounts.get_for_update(user_id)
            hold = await self._owned_hold(uow, user_id, hold_id)
            if hold.state is HoldState.RELEASED:
                return hold
            if hold.state is not HoldState.ACTIVE:
                raise ReservationNotActive(f"the reservation is {hold.state.value}")
            await self._release_hold(uow, account, hold)
            return hold

        return await self._idempotent("release", request_id, (str(user_id), str(hold_id)),
                                      work, Hold.from_record)

    async def expire_holds(self, max_age: timedelta, *, batch: int = 100) -> int:
        """Release every active hold created more than `max_age` ago, so that a
        caller that died between ReserveCredits and its Commit or Release does
        not keep the credits held forever. Each hold is released exactly as
        ReleaseReservation releases it, in its own transaction under its
        account's lock, after checking again that it is still active: a
        concurrent commit either wins (the hold is spent) or finds the hold
        released (RESERVATION_NOT_ACTIVE). Safe to run twice or in several
        processes at once. Returns how many holds it released."""
        cutoff = self._clock.now() - max_age
        released = failures = 0
        after: uuid.UUID | None = None
        while True:
            async with self._uow(read_only=True) as uow:
                candidates = await uow.holds.list_active_created_before(
                    cutoff, after=after, limit=batch)
            for hold in candidates:
                try:
                    released += await self._expire_hold(hold.user_id, hold.id, cutoff)
                    failures = 0
                except Exception:
                    # One hold that cannot be released must not keep the others
                    # held: log it and go on (it is tried again next time).
                    # Several failures in a row are the store's, not a hold's.
                    failures += 1
                    if failures >= MAX_EXPIRY_FAILURES_IN_A_ROW:
                        raise
                    log.exception("could not release an expired hold", extra={
                        "hold_id": str(hold.id), "user_id": str(hold.user_id)})
            if len(candidates) < batch:
                return released
            after = candidates[-1].id

    async def _expire_hold(self, user_id: uuid.UUID, hold_id: uuid.UUID,
                           cutoff: datetime) -> bool:
        async with self._uow() as uow:
            account = await uow.accounts.get_for_update(user_id)
            hold = await uow.holds.get(hold_id)  # read again under the account's lock
            if hold is None or hold.state is not HoldState.ACTIVE or hold.created_at >= cutoff:
                return False
            await self._release_hold(uow, account, hold)
            await uow.commit()
            return True

    async def _release_hold(self, uow: CreditsUnitOfWork, account: CreditAccount,
                            hold: Hold) -> None:
        """Give an active hold's credits back to `available` (ReleaseReservation
        and the sweep of expired holds)."""
        account.release(hold.amount)
        hold.state, hold.resolved_at = HoldState.RELEASED, self._clock.now()
        await uow.holds.save(hold)
        await uow.accounts.save(account)

    async def grant(self, request_id: str, user_id: uuid.UUID, amount: int,
                    type_: TransactionType, reason: str) -> LedgerEntry:
        if type_ not in (TransactionType.GRANT, TransactionType.PURCHASE):
            raise InvalidArgument("type must be grant or purchase", reason="INVALID_TYPE")
        return await self._credit("grant", request_id, user_id, amount, type_, reason)

    async def refund(self, request_id: str, user_id: uuid.UUID, amount: int,
                     reason: str) -> LedgerEntry:
        return await self._credit("refund", request_id, user_id, amount,
                                  TransactionType.REFUND, reason)

    async def reverse_purchase(self, request_id: str, user_id: uuid.UUID, amount: int,
                               reason: str) -> LedgerEntry:
        """Take back credits whose payment was refunded: `amount` or what is
        available of it (credits already spent or held are not clawed back;
        the balance never goes negative). Idempotent by `request_id`."""
        async def work(uow: CreditsUnitOfWork) -> LedgerEntry:
            account = await uow.accounts.get_for_update(user_id)
            taken = account.take_back(amount)
            entry = LedgerEntry(id=uuid7(), user_id=user_id, type=TransactionType.REVERSAL,
                                amount=-taken, balance_after=account.balance, reason=reason,
                                created_at=self._clock.now(), request_id=request_id)
            await uow.accounts.save(account)
            await uow.ledger.append(entry)
            return entry

        return await self._idempotent("reverse", request_id, (str(user_id), amount, reason),
                                      work, LedgerEntry.from_record)

    async def grant_signup_bonus(self, event_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Handle user.registered: one free credit, exactly once per event.
        Returns False when the event had already been handled."""
        async with self._uow() as uow:
            now = self._clock.now()
            if not await uow.processed_events.add(SIGNUP_BONUS_CONSUMER, event_id, now):
                return False
            account = await uow.accounts.get_for_update(user_id)
            account.add(SIGNUP_BONUS)
            await uow.accounts.save(account)
            await uow.ledger.append(LedgerEntry(
                id=uuid7(), user_id=user_id, type=TransactionType.GRANT, amount=SIGNUP_BONUS,
                balance_after=account.balance, reason="signup-bonus", created_at=now,
                request_id=str(event_id)))
            await uow.commit()
            return True

    # --- helpers ----------------------------------------------------------------

    async def _credit(self, method: str, request_id: str, user_id: uuid.UUID, amount: int,
                      type_: TransactionType, reason: str) -> LedgerEntry:
        async def work(uow: CreditsUnitOfWork) -> LedgerEntry:
            account = await uow.accounts.get_for_update(user_id)
            account.add(amount)
            entry = LedgerEntry(id=uuid7(), user_id=user_id, type=type_, amount=amount,
                                balance_after=account.balance, reason=reason,
                                created_at=self._clock.now(), request_id=request_id)
            await uow.accounts.save(account)
            await uow.ledger.append(entry)
            return entry

        return await self._idempotent(method, request_id,
                                      (str(user_id), amount, type_.value, reason),
                                      work, LedgerEntry.from_record)

    @staticmethod
    async def _owned_hold(uow: CreditsUnitOfWork, user_id: uuid.UUID,
                          hold_id: uuid.UUID) -> Hold:
        hold = await uow.holds.get(hold_id)
        if hold is None or hold.user_id != user_id:
            raise NotFound("no such reservation", reason="RESERVATION_NOT_FOUND")
        return hold

    @classmethod
    async def _active_hold(cls, uow: CreditsUnitOfWork, user_id: uuid.UUID,
                           hold_id: uuid.UUID) -> Hold:
        hold = await cls._owned_hold(uow, user_id, hold_id)
        if hold.state is not HoldState.ACTIVE:
            raise ReservationNotActive(f"the reservation is {hold.state.value}")
        return hold

    async def _idempotent(self, method: str, request_id: str, params: tuple[object, ...],
                          work: Callable[[CreditsUnitOfWork], Awaitable[T]],
                          decode: Callable[[dict[str, object]], T]) -> T:
        key = f"credits:{method}:{request_id}"
        fingerprint = hashlib.sha256(json.dumps(params).encode()).hexdigest()
        async with self._uow() as uow:
            prior = await uow.idempotency.claim(key, fingerprint, self._clock.now())
            if prior is not None:
                if prior.fingerprint != fingerprint or prior.result is None:
                    raise RequestIdReused(
                        "request_id was already used with different parameters",
                        metadata={"request_id": request_id})
                return decode(prior.result)
            result = await work(uow)
            await uow.idempotency.complete(key, result.to_record())
            await uow.commit()
            return result
