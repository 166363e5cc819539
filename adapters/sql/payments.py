"""Payments and rewards in SQL, with the outbox and the record of handled
events in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sql.credits import SqlProcessedEvents
from adapters.sql.outbox import SqlOutbox
from adapters.sql.schema import (
    checkout_sessions,
    member_plays,
    purchases,
    reward_accounts,
    reward_transactions,
    stripe_events,
    subscriptions,
)
from adapters.sql.uow import SqlUnitOfWork, upsert_insert
from core.payments.model import (
    CheckoutSession,
    CheckoutState,
    Purchase,
    PurchaseState,
    Subscription,
    SubscriptionState,
)
from core.rewards.model import MemberPlay, RewardTransaction, RewardType
from core.shared.errors import AlreadyExists
from ports.common import EventCodec, TraceContext, no_trace_context

_CHECKOUT_FIELDS = ("user_id", "pack_id", "creator_id", "bundle_id", "credits", "product_name",
                    "amount_minor", "currency", "mode", "provider_id", "url", "purchase_id",
                    "created_at", "expires_at", "plan_id", "interval")
_SUBSCRIPTION_FIELDS = ("user_id", "plan_id", "provider_id", "checkout_id",
                        "current_period_end", "cancel_at_period_end", "created_at",
                        "updated_at", "pack_id", "creator_id", "interval", "amount_minor",
                        "currency")
_PURCHASE_FIELDS = ("user_id", "checkout_id", "pack_id", "creator_id", "bundle_id", "credits",
                    "amount_minor", "currency", "created_at", "refunded_at")


def _checkout(row: Any) -> CheckoutSession:
    return CheckoutSession(id=row.id, state=CheckoutState(row.state),
                           request_id=row.request_id or "",
                           **{f: getattr(row, f) for f in _CHECKOUT_FIELDS})


def _checkout_values(session: CheckoutSession) -> dict[str, Any]:
    return {"state": session.state.value, "request_id": session.request_id or None,
            **{f: getattr(session, f) for f in _CHECKOUT_FIELDS}}


def _purchase(row: Any) -> Purchase:
    return Purchase(id=row.id, state=PurchaseState(row.state),
                    payment_intent=row.payment_intent or "",
                    **{f: getattr(row, f) for f in _PURCHASE_FIELDS})


def _purchase_values(purchase: Purchase) -> dict[str, Any]:
    return {"state": purchase.state.value, "payment_intent": purchase.payment_intent or None,
            **{f: getattr(purchase, f) for f in _PURCHASE_FIELDS}}


async def _insert(conn: AsyncConnection, statement: Any, message: str) -> None:
    try:
        async with conn.begin_nested():
            await conn.execute(statement)
    except IntegrityError:
        raise AlreadyExists(message) from None


class SqlCheckoutSessions:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, session: CheckoutSession) -> None:
        await _insert(self._conn, checkout_sessions.insert().values(
            id=session.id, **_checkout_values(session)),
            "a checkout session of this request exists")

    async def _one(self, query: Any) -> CheckoutSession | None:
        row = (await self._conn.execute(query)).first()
        return _checkout(row) if row else None

    async def get(self, checkout_id: uuid.UUID) -> CheckoutSession | None:
        return await self._one(select(checkout_sessions)
                               .where(checkout_sessions.c.id == checkout_id))

    async def get_for_update(self, checkout_id: uuid.UUID) -> CheckoutSession | None:
        return await self._one(select(checkout_sessions)
                               .where(checkout_sessions.c.id == checkout_id).with_for_update())

    async def get_by_request(self, user_id: uuid.UUID, request_id: str,
                             ) -> CheckoutSession | None:
        return await self._one(select(checkout_sessions).where(
            checkout_sessions.c.user_id == user_id,
            checkout_sessions.c.request_id == request_id))

    async def save(self, session: CheckoutSession) -> None:
        await self._conn.execute(update(checkout_sessions)
                                 .where(checkout_sessions.c.id == session.id)
                                 .values(**_checkout_values(session)))


class SqlPurchases:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, purchase: Purchase) -> None:
        await _insert(self._conn, purchases.insert().values(
            id=purchase.id, **_purchase_values(purchase)),
            "this checkout session has a purchase")

    async def _one(self, query: Any) -> Purchase | None:
        row = (await self._conn.execute(query)).first()
        return _purchase(row) if row else None

    async def get_by_checkout(self, checkout_id: uuid.UUID) -> Purchase | None:
        return await self._one(select(purchases).where(purchases.c.checkout_id == checkout_id))

    async def get_by_payment_intent(self, payment_intent: str) -> Purchase | None:
        if not payment_intent:
            return None
        return await self._one(select(purchases)
                               .where(purchases.c.payment_intent == payment_intent)
                               .with_for_update())

    async def save(self, purchase: Purchase) -> None:
        await self._conn.execute(update(purchases).where(purchases.c.id == purchase.id)
                                 .values(**_purchase_values(purchase)))

    async def list_for_user(self, user_id: uuid.UUID, *, before: uuid.UUID | None,
                            limit: int) -> list[Purchase]:
        query = select(purchases).where(purchases.c.user_id == user_id)
        if before is not None:
            query = query.where(purchases.c.id < before)
        query = query.order_by(purchases.c.id.desc()).limit(limit)
        return [_purchase(r) for r in await self._conn.execute(query)]


class SqlSubscriptions:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    @staticmethod
    def _row(row: Any) -> Subscription:
        return Subscription(id=row.id, state=SubscriptionState(row.state),
                            **{f: getattr(row, f) for f in _SUBSCRIPTION_FIELDS})

    async def add(self, subscription: Subscription) -> None:
        await _insert(self._conn, subscriptions.insert().values(
            id=subscription.id, state=subscription.state.value,
            **{f: getattr(subscription, f) for f in _SUBSCRIPTION_FIELDS}),
            "this subscription is known")

    async def get_by_provider(self, provider_id: str) -> Subscription | None:
        row = (await self._conn.execute(
            select(subscriptions).where(subscriptions.c.provider_id == provider_id)
            .with_for_update())).first()
        return self._row(row) if row else None

    async def latest_for_user(self, user_id: uuid.UUID,
                              pack_id: uuid.UUID | None = None) -> Subscription | None:
        pack = (subscriptions.c.pack_id.is_(None) if pack_id is None
                else subscriptions.c.pack_id == pack_id)
        row = (await self._conn.execute(
            select(subscriptions).where(subscriptions.c.user_id == user_id, pack)
            .order_by(subscriptions.c.id.desc()).limit(1))).first()
        return self._row(row) if row else None

    async def save(self, subscription: Subscription) -> None:
        await self._conn.execute(
            update(subscriptions).where(subscriptions.c.id == subscription.id).values(
                state=subscription.state.value,
                **{f: getattr(subscription, f) for f in _SUBSCRIPTION_FIELDS}))


class SqlStripeEvents:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, event_id: str, event_type: str, at: datetime) -> bool:
        # RETURNING, not rowcount: an INSERT ... ON CONFLICT DO NOTHING's
        # rowcount is not reliable across drivers.
        inserted = (await self._conn.execute(
            upsert_insert(self._conn, stripe_events)
            .values(id=event_id, type=event_type, received_at=at)
            .on_conflict_do_nothing(index_elements=[stripe_events.c.id])
            .returning(stripe_events.c.id))).first()
        return inserted is not None


class SqlPaymentsUnitOfWork(SqlUnitOfWork):
    checkouts: SqlCheckoutSessions
    purchases: SqlPurchases
    subscriptions: SqlSubscriptions
    stripe_events: SqlStripeEvents
    outbox: SqlOutbox
    processed_events: SqlProcessedEvents

    def __init__(self, engine: AsyncEngine, codec: EventCodec, *, read_only: bool = False,
                 trace_context: TraceContext = no_trace_context) -> None:
        super().__init__(engine, read_only=read_only)
        self._codec = codec
        self._trace_context = trace_context

    def _open(self, conn: AsyncConnection) -> None:
        self.checkouts = SqlCheckoutSessions(conn)
        self.purchases = SqlPurchases(conn)
        self.subscriptions = SqlSubscriptions(conn)
        self.stripe_events = SqlStripeEvents(conn)
        self.outbox = SqlOutbox(conn, self._codec, self._trace_context)
        self.processed_events = SqlProcessedEvents(conn)


def sql_payments_uow(engine: AsyncEngine, codec: EventCodec,
                     trace_context: TraceContext = no_trace_context,
                     ) -> Callable[..., SqlPaymentsUnitOfWork]:
    return lambda read_only=False: SqlPaymentsUnitOfWork(
        engine, codec, read_only=read_only, trace_context=trace_context)


def _reward(row: Any) -> RewardTransaction:
    return RewardTransaction(id=row.id, creator_id=row.creator_id, type=RewardType(row.type),
                             tokens=row.tokens, balance_after=row.balance_after,
                             currency=row.currency, purchase_id=row.purchase_id,
                             sale_amount=row.sale_amount, created_at=row.created_at,
                             source=row.source, plays=row.plays, total_plays=row.total_plays,
                             share_percent=row.share_percent)


class SqlRewardAccounts:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def balance_for_update(self, creator_id: uuid.UUID, currency: str) -> int:
        await self._conn.execute(
            upsert_insert(self._conn, reward_accounts)
            .values(creator_id=creator_id, currency=currency, balance=0)
            .on_conflict_do_nothing(index_elements=[reward_accounts.c.creator_id,
                                                    reward_accounts.c.currency]))
        # FOR UPDATE is dropped on SQLite, where BEGIN IMMEDIATE already serialises.
        return int((await self._conn.execute(
            select(reward_accounts.c.balance).where(
                reward_accounts.c.creator_id == creator_id,
                reward_accounts.c.currency == currency).with_for_update())).scalar_one())

    async def set_balance(self, creator_id: uuid.UUID, currency: str, balance: int) -> None:
        await self._conn.execute(update(reward_accounts).where(
            reward_accounts.c.creator_id == creator_id,
            reward_accounts.c.currency == currency).values(balance=balance))

    async def balances(self, creator_id: uuid.UUID) -> dict[str, int]:
        query = select(reward_accounts).where(reward_accounts.c.creator_id == creator_id)
        return {r.currency: r.balance for r in await self._conn.execute(query)}


class SqlRewardLedger:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, transaction: RewardTransaction) -> None:
        await _insert(self._conn, reward_transactions.insert().values(
            id=transaction.id, creator_id=transaction.creator_id, type=transaction.type.value,
            tokens=transaction.tokens, balance_after=transaction.balance_after,
            currency=transaction.currency, purchase_id=transaction.purchase_id,
            sale_amount=transaction.sale_amount, created_at=transaction.created_at,
            source=transaction.source, plays=transaction.plays,
            total_plays=transaction.total_plays, share_percent=transaction.share_percent),
            "this purchase has such a transaction")

    async def find(self, purchase_id: uuid.UUID, type_: RewardType) -> RewardTransaction | None:
        row = (await self._conn.execute(select(reward_transactions).where(
            reward_transactions.c.purchase_id == purchase_id,
            reward_transactions.c.type == type_.value))).first()
        return _reward(row) if row else None

    async def list(self, creator_id: uuid.UUID, *, before: uuid.UUID | None,
                   limit: int) -> list[RewardTransaction]:
        query = select(reward_transactions).where(reward_transactions.c.creator_id == creator_id)
        if before is not None:
            query = query.where(reward_transactions.c.id < before)
        query = query.order_by(reward_transactions.c.id.desc()).limit(limit)
        return [_reward(r) for r in await self._conn.execute(query)]


class SqlMemberPlays:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, play: MemberPlay) -> bool:
        inserted = (await self._conn.execute(
            upsert_insert(self._conn, member_plays)
            .values(id=play.id, user_id=play.user_id, creator_id=play.creator_id,
                    played_at=play.played_at)
            .on_conflict_do_nothing(index_elements=[member_plays.c.id])
            .returning(member_plays.c.id))).first()
        return inserted is not None

    async def counts(self, user_id: uuid.UUID, since: datetime, until: datetime,
                     ) -> dict[uuid.UUID, int]:
        query = (select(member_plays.c.creator_id, func.count())
                 .where(member_plays.c.user_id == user_id, member_plays.c.played_at >= since,
                        member_plays.c.played_at < until)
                 .group_by(member_plays.c.creator_id))
        return {row[0]: int(row[1]) for row in await self._conn.execute(query)}


class SqlRewardsUnitOfWork(SqlUnitOfWork):
    accounts: SqlRewardAccounts
    ledger: SqlRewardLedger
    plays: SqlMemberPlays
    processed_events: SqlProcessedEvents

    def _open(self, conn: AsyncConnection) -> None:
        self.accounts = SqlRewardAccounts(conn)
        self.ledger = SqlRewardLedger(conn)
        self.plays = SqlMemberPlays(conn)
        self.processed_events = SqlProcessedEvents(conn)


def sql_rewards_uow(engine: AsyncEngine) -> Callable[..., SqlRewardsUnitOfWork]:
    return lambda read_only=False: SqlRewardsUnitOfWork(engine, read_only=read_only)
