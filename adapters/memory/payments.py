"""Payments and rewards in memory, held to the same contracts as the SQL ones."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import datetime

from adapters.memory.credits import MemoryProcessedEvents
from adapters.memory.outbox import MemoryOutbox
from adapters.memory.store import MemoryStore, MemoryUnitOfWork, Tables, stored
from core.payments.model import CheckoutSession, Purchase, Subscription
from core.rewards.model import MemberPlay, RewardTransaction, RewardType
from core.shared.errors import AlreadyExists
from ports.common import EventCodec, TraceContext, no_trace_context


class MemoryCheckoutSessions:
    def __init__(self, tables: Tables) -> None:
        self._rows: dict[uuid.UUID, CheckoutSession] = tables.checkout_sessions

    async def add(self, session: CheckoutSession) -> None:
        if session.request_id and await self.get_by_request(session.user_id,
                                                            session.request_id):
            raise AlreadyExists("a checkout session of this request exists")
        self._rows[session.id] = stored(session)

    async def get(self, checkout_id: uuid.UUID) -> CheckoutSession | None:
        found = self._rows.get(checkout_id)
        return copy.copy(found) if found else None

    get_for_update = get

    async def get_by_request(self, user_id: uuid.UUID, request_id: str,
                             ) -> CheckoutSession | None:
        for row in self._rows.values():
            if row.user_id == user_id and row.request_id == request_id:
                return copy.copy(row)
        return None

    async def save(self, session: CheckoutSession) -> None:
        self._rows[session.id] = stored(session)


class MemoryPurchases:
    def __init__(self, tables: Tables) -> None:
        self._rows: dict[uuid.UUID, Purchase] = tables.purchases

    async def add(self, purchase: Purchase) -> None:
        if any(p.checkout_id == purchase.checkout_id for p in self._rows.values()):
            raise AlreadyExists("this checkout session has a purchase")
        self._rows[purchase.id] = stored(purchase)

    async def get_by_checkout(self, checkout_id: uuid.UUID) -> Purchase | None:
        for row in self._rows.values():
            if row.checkout_id == checkout_id:
                return copy.copy(row)
        return None

    async def get_by_payment_intent(self, payment_intent: str) -> Purchase | None:
        for row in self._rows.values():
            if payment_intent and row.payment_intent == payment_intent:
                return copy.copy(row)
        return None

    async def save(self, purchase: Purchase) -> None:
        self._rows[purchase.id] = stored(purchase)

    async def list_for_user(self, user_id: uuid.UUID, *, before: uuid.UUID | None,
                            limit: int) -> list[Purchase]:
        rows = sorted((p for p in self._rows.values() if p.user_id == user_id
                       and (before is None or p.id < before)), key=lambda p: p.id, reverse=True)
        return [copy.copy(p) for p in rows[:limit]]


class MemorySubscriptions:
    def __init__(self, tables: Tables) -> None:
        self._rows: dict[uuid.UUID, Subscription] = tables.subscriptions

    async def add(self, subscription: Subscription) -> None:
        if await self.get_by_provider(subscription.provider_id):
            raise AlreadyExists("this subscription is known")
        self._rows[subscription.id] = stored(subscription)

    async def get_by_provider(self, provider_id: str) -> Subscription | None:
        for row in self._rows.values():
            if row.provider_id == provider_id:
                return copy.copy(row)
        return None

    async def latest_for_user(self, user_id: uuid.UUID,
                              pack_id: uuid.UUID | None = None) -> Subscription | None:
        mine = [r for r in self._rows.values() if r.user_id == user_id and r.pack_id == pack_id]
        return copy.copy(max(mine, key=lambda r: r.id)) if mine else None

    async def save(self, subscription: Subscription) -> None:
        self._rows[subscription.id] = stored(subscription)


class MemoryStripeEvents:
    def __init__(self, tables: Tables) -> None:
        self._rows = tables.stripe_events

    async def add(self, event_id: str, event_type: str, at: datetime) -> bool:
        if event_id in self._rows:
            return False
        self._rows[event_id] = (at, event_type)
        return True


class MemoryPaymentsUnitOfWork(MemoryUnitOfWork):
    checkouts: MemoryCheckoutSessions
    purchases: MemoryPurchases
    subscriptions: MemorySubscriptions
    stripe_events: MemoryStripeEvents
    outbox: MemoryOutbox
    processed_events: MemoryProcessedEvents

    def __init__(self, store: MemoryStore, codec: EventCodec, *, read_only: bool = False,
                 trace_context: TraceContext = no_trace_context) -> None:
        super().__init__(store, read_only=read_only)
        self._codec = codec
        self._trace_context = trace_context

    def _open(self, tables: Tables) -> None:
        self.checkouts = MemoryCheckoutSessions(tables)
        self.purchases = MemoryPurchases(tables)
        self.subscriptions = MemorySubscriptions(tables)
        self.stripe_events = MemoryStripeEvents(tables)
        self.outbox = MemoryOutbox(tables, self._codec, self._trace_context)
        self.processed_events = MemoryProcessedEvents(tables)


def memory_payments_uow(store: MemoryStore, codec: EventCodec,
                        trace_context: TraceContext = no_trace_context,
                        ) -> Callable[..., MemoryPaymentsUnitOfWork]:
    return lambda read_only=False: MemoryPaymentsUnitOfWork(
        store, codec, read_only=read_only, trace_context=trace_context)


class MemoryRewardAccounts:
    def __init__(self, tables: Tables) -> None:
        self._ledger: dict[uuid.UUID, RewardTransaction] = tables.reward_transactions

    async def balance_for_update(self, creator_id: uuid.UUID, currency: str) -> int:
        return (await self.balances(creator_id)).get(currency, 0)

    async def set_balance(self, creator_id: uuid.UUID, currency: str, balance: int) -> None:
        if balance < 0:
            raise ValueError("a reward balance is never negative")

    async def balances(self, creator_id: uuid.UUID) -> dict[str, int]:
        latest: dict[str, RewardTransaction] = {}
        for row in sorted(self._ledger.values(), key=lambda r: r.id):
            if row.creator_id == creator_id:
                latest[row.currency] = row
        return {currency: row.balance_after for currency, row in latest.items()}


class MemoryRewardLedger:
    def __init__(self, tables: Tables) -> None:
        self._rows: dict[uuid.UUID, RewardTransaction] = tables.reward_transactions

    async def add(self, transaction: RewardTransaction) -> None:
        if await self.find(transaction.purchase_id, transaction.type):
            raise AlreadyExists("this purchase has such a transaction")
        if transaction.balance_after < 0:
            raise ValueError("a reward balance is never negative")
        self._rows[transaction.id] = stored(transaction)

    async def find(self, purchase_id: uuid.UUID, type_: RewardType) -> RewardTransaction | None:
        for row in self._rows.values():
            if row.purchase_id == purchase_id and row.type is type_:
                return row
        return None

    async def list(self, creator_id: uuid.UUID, *, before: uuid.UUID | None,
                   limit: int) -> list[RewardTransaction]:
        rows = sorted((r for r in self._rows.values() if r.creator_id == creator_id
                       and (before is None or r.id < before)), key=lambda r: r.id, reverse=True)
        return rows[:limit]


class MemoryMemberPlays:
    def __init__(self, tables: Tables) -> None:
        self._rows: dict[uuid.UUID, MemberPlay] = tables.member_plays

    async def add(self, play: MemberPlay) -> bool:
        if play.id in self._rows:
            return False
        self._rows[play.id] = stored(play)
        return True

    async def counts(self, user_id: uuid.UUID, since: datetime, until: datetime,
                     ) -> dict[uuid.UUID, int]:
        counts: dict[uuid.UUID, int] = {}
        for play in self._rows.values():
            if play.user_id == user_id and since <= play.played_at < until:
                counts[play.creator_id] = counts.get(play.creator_id, 0) + 1
        return counts


class MemoryRewardsUnitOfWork(MemoryUnitOfWork):
    accounts: MemoryRewardAccounts
    ledger: MemoryRewardLedger
    plays: MemoryMemberPlays
    processed_events: MemoryProcessedEvents

    def _open(self, tables: Tables) -> None:
        self.accounts = MemoryRewardAccounts(tables)
        self.ledger = MemoryRewardLedger(tables)
        self.plays = MemoryMemberPlays(tables)
        self.processed_events = MemoryProcessedEvents(tables)


def memory_rewards_uow(store: MemoryStore) -> Callable[..., MemoryRewardsUnitOfWork]:
    return lambda read_only=False: MemoryRewardsUnitOfWork(store, read_only=read_only)
