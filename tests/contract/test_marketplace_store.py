"""The marketplace's stores, for every adapter (memory, SQLite, PostgreSQL):
creators and packs with their items, entitlements and the search state
(catalog); checkout sessions, purchases and received webhook events
(payments); reward accounts and their ledger (rewards). Concurrency is
real: several units of work at once on one store."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.memory.catalog import memory_catalog_uow
from adapters.memory.payments import memory_payments_uow, memory_rewards_uow
from adapters.sql.catalog import sql_catalog_uow
from adapters.sql.payments import sql_payments_uow, sql_rewards_uow
from core.catalog.model import (
    Creator,
    Entitlement,
    EntitlementSource,
    Pack,
    PackItem,
    PackState,
    Price,
    PriceType,
)
from core.payments.model import CheckoutSession, CheckoutState, Purchase, PurchaseState
from core.rewards.model import RewardTransaction, RewardType
from core.shared.creation import ContentType
from core.shared.errors import AlreadyExists
from core.shared.ids import uuid7
from tests.contract.codec import JsonEventCodec
from tests.contract.conftest import Backend

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def catalog_uow(backend: Backend) -> Any:
    if backend.store is not None:
        return memory_catalog_uow(backend.store, JsonEventCodec())
    return sql_catalog_uow(backend.engine, JsonEventCodec())


def payments_uow(backend: Backend) -> Any:
    if backend.store is not None:
        return memory_payments_uow(backend.store, JsonEventCodec())
    return sql_payments_uow(backend.engine, JsonEventCodec())


def rewards_uow(backend: Backend) -> Any:
    if backend.store is not None:
        return memory_rewards_uow(backend.store)
    return sql_rewards_uow(backend.engine)


def pack(creator: uuid.UUID, *, request_id: str = "", state: PackState = PackState.DRAFT,
         items: int = 0, price: Price | None = None) -> Pack:
    return Pack(id=uuid7(), creator_id=creator, title="Deep sleep", description="Nights",
                price=price or Price(PriceType.ONE_TIME, 499, "EUR"), tags=("sleep",),
                state=state, created_at=T0, updated_at=T0, request_id=request_id,
                published_at=T0 if state is not PackState.DRAFT else None,
                items=[PackItem(uuid7(), i, f"Item {i}", ContentType.GUIDED_MEDITATION, 60_000)
                       for i in range(items)])


async def test_creators_are_one_per_person_and_count_published_packs(backend: Backend) -> None:
    uow = catalog_uow(backend)
    me = uuid7()
    creator = Creator(me, "Maya", "Bio", ("https://a.example",), T0, T0)
    async with uow() as w:
        await w.creators.add(creator)
        await w.packs.add(pack(me, state=PackState.PUBLISHED))
        await w.packs.add(pack(me, state=PackState.PUBLISHED))
        await w.packs.add(pack(me))
        await w.commit()
    async with uow() as w:
        with pytest.raises(AlreadyExists):
            await w.creators.add(creator)
        found = await w.creators.get(me)
        assert found == creator
        found.display_name = "Maya Sol"
        await w.creators.save(found)
        await w.commit()
    async with uow(read_only=True) as w:
        assert (await w.creators.get(me)).display_name == "Maya Sol"
        assert await w.creators.published_counts([me, uuid7()]) == {me: 2}
        assert await w.creators.get(uuid7()) is None


async def test_packs_keep_their_items_price_and_state(backend: Backend) -> None:
    uow = catalog_uow(backend)
    me = uuid7()
    made = pack(me, items=2, price=Price(PriceType.ONE_TIME, 999, "USD"))
    async with uow() as w:
        await w.packs.add(made)
        await w.commit()
    async with uow() as w:
        found = await w.packs.get_for_update(made.id)
        assert found == made
        found.items.append(PackItem(uuid7(), 2, "Third", ContentType.RITUAL, 1000))
        found.items.pop(0)
        found.state, found.published_at = PackState.PUBLISHED, T0 + timedelta(days=1)
        await w.packs.save(found)
        await w.packs.add_popularity([made.id], 3)
        await w.commit()
    async with uow(read_only=True) as w:
        again = await w.packs.get(made.id)
        assert [i.title for i in again.items] == ["Item 1", "Third"]
        assert again.state is PackState.PUBLISHED and again.popularity == 3
        assert [p.id for p in await w.packs.containing(again.items[1].content_id)] == [made.id]
        assert await w.packs.containing(made.items[0].content_id) == []
        assert [p.id for p in await w.packs.get_many([made.id, uuid7(), made.id])] == [made.id]
        assert await w.packs.get_many([]) == []


async def test_a_create_request_makes_one_pack(backend: Backend) -> None:
    uow = catalog_uow(backend)
    me, other = uuid7(), uuid7()
    async with uow() as w:
        await w.packs.add(pack(me, request_id="r1"))
        await w.packs.add(pack(other, request_id="r1"))  # another creator's key
        await w.packs.add(pack(me))  # no key: never collides
        await w.packs.add(pack(me))
        await w.commit()
    async with uow() as w:
        with pytest.raises(AlreadyExists):
            await w.packs.add(pack(me, request_id="r1"))
        assert (await w.packs.get_by_request(me, "r1")).creator_id == me
        assert len(await w.packs.list_by_creator(me)) == 3


async def test_entitlements_extend_revoke_and_stay_revoked(backend: Backend) -> None:
    uow = catalog_uow(backend)
    me, pack_id = uuid7(), uuid7()
    month = Entitlement(me, pack_id, EntitlementSource.SUBSCRIPTION, "sub_1", T0,
                        expires_at=T0 + timedelta(days=30))
    async with uow() as w:
        assert await w.entitlements.grant(month) is True
        assert await w.entitlements.grant(month) is False  # the same: nothing changes
        longer = Entitlement(me, pack_id, EntitlementSource.SUBSCRIPTION, "sub_1", T0,
                             expires_at=T0 + timedelta(days=60))
        assert await w.entitlements.grant(longer) is True
        shorter = Entitlement(me, pack_id, EntitlementSource.SUBSCRIPTION, "sub_1", T0,
                              expires_at=T0 + timedelta(days=10))
        assert await w.entitlements.grant(shorter) is False
        await w.entitlements.grant(Entitlement(me, pack_id, EntitlementSource.PURCHASE,
                                               "purchase-1", T0))
        await w.commit()
    async with uow() as w:
        [found] = [e for e in await w.entitlements.for_user(me, [pack_id])
                   if e.reference == "sub_1"]
        assert found.expires_at == T0 + timedelta(days=60)
        revoked = await w.entitlements.revoke("purchase-1", T0 + timedelta(days=1))
        assert [e.reference for e in revoked] == ["purchase-1"]
        assert await w.entitlements.revoke("purchase-1", T0 + timedelta(days=2)) == []
        # A revoked one is not given back by a late grant of the same reference.
        assert await w.entitlements.grant(Entitlement(
            me, pack_id, EntitlementSource.PURCHASE, "purchase-1", T0)) is False
        await w.commit()
    async with uow(read_only=True) as w:
        states = {e.reference: e.active(T0 + timedelta(days=3))
                  for e in await w.entitlements.for_user(me, [pack_id])}
        assert states == {"sub_1": True, "purchase-1": False}
        assert len(await w.entitlements.with_reference("purchase-1")) == 1
        assert await w.entitlements.for_user(me, []) == []
        assert [e.reference for e in await w.entitlements.list_for_user(me)] != []


async def test_the_search_generation_moves(backend: Backend) -> None:
    uow = catalog_uow(backend)
    async with uow(read_only=True) as w:
        assert await w.search_state.generation() == 0
    for _ in range(2):
        async with uow() as w:
            await w.search_state.bump()
            await w.commit()
    async with uow(read_only=True) as w:
        assert await w.search_state.generation() == 2


def checkout(user: uuid.UUID, request_id: str = "") -> CheckoutSession:
    return CheckoutSession(id=uuid7(), user_id=user, pack_id=uuid7(), creator_id=uuid7(),
                           bundle_id=None, credits=0, product_name="Deep sleep",
                           amount_minor=499, currency="EUR", mode="payment",
                           state=CheckoutState.OPEN, provider_id="", url="",
                           request_id=request_id, created_at=T0,
                           expires_at=T0 + timedelta(days=1))


def purchase(session: CheckoutSession, intent: str) -> Purchase:
    return Purchase(id=uuid7(), user_id=session.user_id, checkout_id=session.id,
                    pack_id=session.pack_id, creator_id=session.creator_id, bundle_id=None,
                    credits=0, amount_minor=499, currency="EUR", payment_intent=intent,
                    state=PurchaseState.COMPLETED, created_at=T0)


async def test_checkouts_and_purchases(backend: Backend) -> None:
    uow = payments_uow(backend)
    me = uuid7()
    session = checkout(me, "r1")
    async with uow() as w:
        await w.checkouts.add(session)
        await w.checkouts.add(checkout(me))
        await w.commit()
    async with uow() as w:
        with pytest.raises(AlreadyExists):
            await w.checkouts.add(checkout(me, "r1"))
        found = await w.checkouts.get_for_update(session.id)
        assert found == session
        found.provider_id, found.url = "cs_1", "https://pay.example/cs_1"
        found.state = CheckoutState.COMPLETED
        bought = purchase(found, "pi_1")
        found.purchase_id = bought.id
        await w.checkouts.save(found)
        await w.purchases.add(bought)
        with pytest.raises(AlreadyExists):
            await w.purchases.add(purchase(found, "pi_2"))  # one per session
        await w.commit()
    async with uow() as w:
        assert (await w.checkouts.get_by_request(me, "r1")).url == "https://pay.example/cs_1"
        paid = await w.purchases.get_by_payment_intent("pi_1")
        assert paid == bought
        assert await w.purchases.get_by_payment_intent("") is None
        paid.state, paid.refunded_at = PurchaseState.REFUNDED, T0 + timedelta(hours=1)
        await w.purchases.save(paid)
        await w.commit()
    async with uow(read_only=True) as w:
        [listed] = await w.purchases.list_for_user(me, before=None, limit=10)
        assert listed.state is PurchaseState.REFUNDED
        assert await w.purchases.list_for_user(me, before=listed.id, limit=10) == []
        assert (await w.purchases.get_by_checkout(session.id)).id == bought.id


async def test_a_webhook_event_is_received_once_under_concurrency(backend: Backend) -> None:
    uow = payments_uow(backend)

    async def receive() -> bool:
        async with uow() as w:
            new = await w.stripe_events.add("evt_1", "checkout.session.completed", T0)
            await w.commit()
            return new

    results = await asyncio.gather(*(receive() for _ in range(10)))
    assert sorted(results) == [False] * 9 + [True]


def reward(creator: uuid.UUID, purchase_id: uuid.UUID, type_: RewardType, tokens: int,
           after: int) -> RewardTransaction:
    return RewardTransaction(uuid7(), creator, type_, tokens, after, "EUR", purchase_id, 499, T0)


async def test_reward_ledger_and_balances(backend: Backend) -> None:
    uow = rewards_uow(backend)
    me, sale = uuid7(), uuid7()
    async with uow() as w:
        assert await w.accounts.balance_for_update(me, "EUR") == 0
        await w.ledger.add(reward(me, sale, RewardType.ACCRUAL, 349, 349))
        await w.accounts.set_balance(me, "EUR", 349)
        await w.commit()
    async with uow() as w:
        with pytest.raises(AlreadyExists):
            await w.ledger.add(reward(me, sale, RewardType.ACCRUAL, 349, 698))
        assert await w.accounts.balance_for_update(me, "EUR") == 349
        await w.ledger.add(reward(me, sale, RewardType.REVERSAL, -349, 0))
        await w.accounts.set_balance(me, "EUR", 0)
        await w.commit()
    async with uow(read_only=True) as w:
        assert await w.accounts.balances(me) == {"EUR": 0}
        history = await w.ledger.list(me, before=None, limit=10)
        assert [t.type for t in history] == [RewardType.REVERSAL, RewardType.ACCRUAL]
        assert (await w.ledger.find(sale, RewardType.ACCRUAL)).tokens == 349
        assert await w.ledger.find(uuid7(), RewardType.ACCRUAL) is None


async def test_subscriptions_by_provider_and_latest(backend: Backend) -> None:
    from core.payments.model import Subscription, SubscriptionState

    uow = payments_uow(backend)
    me = uuid7()

    def subscription(provider: str) -> Subscription:
        return Subscription(id=uuid7(), user_id=me, plan_id="monthly", provider_id=provider,
                            checkout_id=uuid7(), state=SubscriptionState.ACTIVE,
                            current_period_end=T0 + timedelta(days=30),
                            cancel_at_period_end=False, created_at=T0, updated_at=T0)

    first, second = subscription("sub_1"), subscription("sub_2")
    async with uow() as w:
        await w.subscriptions.add(first)
        await w.subscriptions.add(second)
        with pytest.raises(AlreadyExists):
            await w.subscriptions.add(subscription("sub_1"))
        await w.commit()
    async with uow() as w:
        found = await w.subscriptions.get_by_provider("sub_1")
        assert found == first
        found.state, found.cancel_at_period_end = SubscriptionState.ENDED, True
        await w.subscriptions.save(found)
        await w.commit()
    async with uow(read_only=True) as w:
        assert (await w.subscriptions.latest_for_user(me)).provider_id == "sub_2"
        assert (await w.subscriptions.get_by_provider("sub_1")).state is SubscriptionState.ENDED
        assert await w.subscriptions.latest_for_user(uuid7()) is None
        assert await w.subscriptions.get_by_provider("sub_x") is None
