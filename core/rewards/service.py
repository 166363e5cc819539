"""Rewards' use cases: accrue a creator's share of a sale, reverse it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from core.rewards.model import (
    MEMBERSHIP_LOOKBACK,
    MemberPlay,
    RewardTransaction,
    RewardType,
    creator_share,
    membership_key,
    membership_shares,
)
from core.shared.errors import InvalidArgument
from core.shared.ids import uuid7

if TYPE_CHECKING:
    from ports.common import Clock
    from ports.rewards import RewardsUnitOfWorkFactory

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


class AccrualNotYetKnown(Exception):
    """A reversal handled before its accrual: retried by the bus."""


class RewardsService:
    def __init__(self, uow: RewardsUnitOfWorkFactory, clock: Clock, share_percent: int) -> None:
        if not 0 <= share_percent <= 100:
            raise ValueError("share_percent must be 0-100")
        self._uow = uow
        self._clock = clock
        self._share = share_percent

    async def accrue(self, purchase_id: uuid.UUID, creator_id: uuid.UUID, sale_amount: int,
                     currency: str, source: str = "") -> RewardTransaction:
        """The creator's share of a paid purchase, once per purchase (a second
        call returns the first transaction). `source`: the provider's payment
        when the sale is a pack subscription's fee (no purchase of ours)."""
        if sale_amount <= 0:
            raise InvalidArgument("a sale amount is positive", metadata={"field": "sale_amount"})
        currency = currency.upper()
        async with self._uow() as uow:
            balance = await uow.accounts.balance_for_update(creator_id, currency)
            earlier = await uow.ledger.find(purchase_id, RewardType.ACCRUAL)
            if earlier is not None:
                return earlier
            tokens = creator_share(sale_amount, self._share)
            entry = RewardTransaction(
                id=uuid7(), creator_id=creator_id, type=RewardType.ACCRUAL, tokens=tokens,
                balance_after=balance + tokens, currency=currency, purchase_id=purchase_id,
                sale_amount=sale_amount, created_at=self._clock.now(),
                share_percent=self._share, source=source)
            await uow.ledger.add(entry)
            await uow.accounts.set_balance(creator_id, currency, entry.balance_after)
            await uow.commit()
        return entry

    async def reverse(self, purchase_id: uuid.UUID) -> RewardTransaction | None:
        """Take back a refunded or disputed purchase's accrual, at most down
        to a zero balance; once per purchase. None for a purchase that
        accrued nothing (a credit bundle)."""
        async with self._uow(read_only=True) as uow:
            accrual = await uow.ledger.find(purchase_id, RewardType.ACCRUAL)
        if accrual is None:
            raise AccrualNotYetKnown(f"no accrual of purchase {purchase_id} yet")
        async with self._uow() as uow:
            balance = await uow.accounts.balance_for_update(accrual.creator_id, accrual.currency)
            earlier = await uow.ledger.find(purchase_id, RewardType.REVERSAL)
            if earlier is not None:
                return earlier
            tokens = min(accrual.tokens, balance)
            entry = RewardTransaction(
                id=uuid7(), creator_id=accrual.creator_id, type=RewardType.REVERSAL,
                tokens=-tokens, balance_after=balance - tokens, currency=accrual.currency,
                purchase_id=purchase_id, sale_amount=accrual.sale_amount,
                created_at=self._clock.now())
            await uow.ledger.add(entry)
            await uow.accounts.set_balance(accrual.creator_id, accrual.currency,
                                           entry.balance_after)
            await uow.commit()
        return entry

    async def record_play(self, play_id: uuid.UUID, user_id: uuid.UUID,
                          creator_id: uuid.UUID, played_at: datetime) -> bool:
        """A member's play of a creator's members-only item (once per id)."""
        async with self._uow() as uow:
            added = await uow.plays.add(MemberPlay(play_id, user_id, creator_id, played_at))
            await uow.commit()
        return added

    async def share_membership(self, payment: str, user_id: uuid.UUID, amount: int,
                               currency: str, paid_at: datetime) -> list[RewardTransaction]:
        """Share one membership fee among the creators the member played in
        the lookback before it, by plays; once per payment (a repeat finds
        each creator's share written)."""
        currency = currency.upper()
        async with self._uow() as uow:
            plays = await uow.plays.counts(user_id, paid_at - MEMBERSHIP_LOOKBACK, paid_at)
            shares = membership_shares(amount, self._share, plays)
            total = sum(plays.values())
            entries = []
            # One creator after another, in id order: two share-outs at once
            # lock their accounts in the same order.
            for creator_id, tokens in shares.items():
                key = membership_key(payment, creator_id)
                balance = await uow.accounts.balance_for_update(creator_id, currency)
                earlier = await uow.ledger.find(key, RewardType.MEMBERSHIP)
                if earlier is not None:
                    entries.append(earlier)
                    continue
                entry = RewardTransaction(
                    id=uuid7(), creator_id=creator_id, type=RewardType.MEMBERSHIP,
                    tokens=tokens, balance_after=balance + tokens, currency=currency,
                    purchase_id=key, sale_amount=amount, created_at=self._clock.now(),
                    source=payment, plays=plays[creator_id], total_plays=total,
                    share_percent=self._share)
                await uow.ledger.add(entry)
                await uow.accounts.set_balance(creator_id, currency, entry.balance_after)
                entries.append(entry)
            await uow.commit()
        return entries

    async def balances(self, creator_id: uuid.UUID) -> dict[str, int]:
        async with self._uow(read_only=True) as uow:
            return await uow.accounts.balances(creator_id)

    async def transactions(self, creator_id: uuid.UUID, page_size: int,
                           before: uuid.UUID | None,
                           ) -> tuple[list[RewardTransaction], uuid.UUID | None]:
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        async with self._uow(read_only=True) as uow:
            rows = await uow.ledger.list(creator_id, before=before, limit=size + 1)
        page = rows[:size]
        return page, (page[-1].id if len(rows) > size else None)
