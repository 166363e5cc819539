"""The marketplace's cores on the memory store: the catalog (creators, packs,
publishing, access), payments (checkout, webhooks, facts applied once, in any
order) and rewards (accrual, reversal never below zero)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from adapters.memory.cache import MemoryCache
from adapters.memory.catalog import memory_catalog_uow
from adapters.memory.payments import memory_payments_uow, memory_rewards_uow
from adapters.memory.search import MemorySearchIndex
from adapters.memory.store import MemoryStore
from adapters.stripe import events as stripe_events
from core.catalog.model import (
    ROLE_ADMIN,
    Access,
    CreatorExists,
    EntitlementSource,
    NotACreator,
    Price,
    PriceType,
)
from core.catalog.search import SearchQuery
from core.catalog.service import CatalogService, GrantNotYetKnown, PackChanges
from core.payments.facts import CheckoutMode, InvalidSignature
from core.payments.model import CreditBundle, NotYetKnown, PurchaseState, SaleItem
from core.payments.service import PaymentsService
from core.payments.signature import sign
from core.rewards.service import AccrualNotYetKnown, RewardsService
from core.shared.creation import ContentType
from core.shared.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from core.shared.ids import uuid7
from ports.catalog import LibraryItem
from tests.unit.fakes import FakeClock, JsonCodec

EUR = Price(PriceType.ONE_TIME, 499, "EUR")
SECRET = "whsec_test"


class FakeLibrary:
    def __init__(self) -> None:
        self.items: dict[uuid.UUID, LibraryItem] = {}

    def add(self, owner: uuid.UUID, ready: bool = True) -> uuid.UUID:
        content = uuid7()
        self.items[content] = LibraryItem(content, owner, "Evening calm",
                                          ContentType.GUIDED_MEDITATION, ready, 300_000)
        return content

    async def owned_item(self, user_id: uuid.UUID, content_id: uuid.UUID,
                         ) -> LibraryItem | None:
        item = self.items.get(content_id)
        return item if item is not None and item.owner_id == user_id else None


class CountingIndex(MemorySearchIndex):
    def __init__(self) -> None:
        super().__init__()
        self.searches = 0

    async def search(self, query: SearchQuery) -> Any:
        self.searches += 1
        return await super().search(query)


@pytest.fixture
def catalog() -> tuple[CatalogService, FakeLibrary, CountingIndex, FakeClock]:
    clock, library, index = FakeClock(), FakeLibrary(), CountingIndex()
    service = CatalogService(memory_catalog_uow(MemoryStore(), JsonCodec()), clock, index,
                             MemoryCache(), library)
    return service, library, index, clock


async def published(service: CatalogService, library: FakeLibrary,
                    price: Price = EUR) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """(creator, pack, item) of a published pack with one item."""
    creator = uuid7()
    await service.create_creator(creator, "Maya", "", ())
    pack = await service.create_pack(creator, "", "Deep sleep", "Nights of rest", price,
                                     ("Sleep",))
    content = library.add(creator)
    await service.add_item(creator, pack.id, content)
    await service.publish(creator, pack.id)
    await service.index_pack(uuid7(), pack.id)
    return creator, pack.id, content


async def test_a_pack_needs_a_creator_and_publishes_only_when_complete(catalog: Any) -> None:
    service, library, _, _ = catalog
    me = uuid7()
    with pytest.raises(NotACreator):
        await service.create_pack(me, "", "T", "D", EUR, ())
    await service.create_creator(me, "  Maya   Sol ", "bio", ())
    with pytest.raises(CreatorExists):
        await service.create_creator(me, "Maya", "", ())
    first = await service.create_pack(me, "r1", "", "", EUR, ("Sleep", "sleep ", "Calm"))
    assert first.tags == ("sleep", "calm")
    assert (await service.create_pack(me, "r1", "x", "y", EUR, ())).id == first.id
    with pytest.raises(FailedPrecondition) as missing:
        await service.publish(me, first.id)
    assert missing.value.metadata == {"field": "title"}
    await service.update_pack(me, first.id, PackChanges(title="Deep sleep", description="Rest"))
    with pytest.raises(FailedPrecondition, match="items"):
        await service.publish(me, first.id)
    with pytest.raises(FailedPrecondition) as not_ready:
        await service.add_item(me, first.id, library.add(me, ready=False))
    assert not_ready.value.reason == "CONTENT_NOT_READY"
    with pytest.raises(NotFound):  # another person's item
        await service.add_item(me, first.id, library.add(uuid7()))
    content = library.add(me)
    await service.add_item(me, first.id, content)
    with pytest.raises(AlreadyExists):
        await service.add_item(me, first.id, content)
    view = await service.publish(me, first.id)
    assert view.pack.listed and view.owned
    with pytest.raises(FailedPrecondition):  # published packs keep their items
        await service.remove_item(me, first.id, content)


async def test_prices_are_checked(catalog: Any) -> None:
    service, _, _, _ = catalog
    me = uuid7()
    await service.create_creator(me, "Maya", "", ())
    for bad in (Price(PriceType.ONE_TIME, 10, "EUR"), Price(PriceType.ONE_TIME, 499, "XXX"),
                Price(PriceType.SUBSCRIPTION, 499, "EUR"), Price(PriceType.FREE, 100, "EUR")):
        with pytest.raises(InvalidArgument):
            await service.create_pack(me, "", "T", "D", bad, ())


async def test_drafts_are_the_creators_and_only_creators_or_admins_archive(catalog: Any) -> None:
    service, library, _, _ = catalog
    creator, pack, _ = await published(service, library)
    stranger = uuid7()
    draft = await service.create_pack(creator, "", "Draft", "D", EUR, ())
    with pytest.raises(NotFound):
        await service.get_pack(stranger, draft.id)
    with pytest.raises(PermissionDenied):
        await service.update_pack(stranger, pack, PackChanges(title="Mine now"))
    with pytest.raises(PermissionDenied):
        await service.archive(stranger, frozenset({"user"}), pack)
    archived = await service.archive(stranger, frozenset({ROLE_ADMIN}), pack)
    assert not archived.pack.listed
    with pytest.raises(FailedPrecondition):
        await service.update_pack(creator, pack, PackChanges(title="Again"))


async def test_access_follows_entitlements(catalog: Any) -> None:
    service, library, _, clock = catalog
    creator, pack, content = await published(service, library)
    buyer, stranger = uuid7(), uuid7()
    assert (await service.check_access(stranger, library.add(creator))).access is \
        Access.NOT_LISTED
    assert (await service.check_access(stranger, content)).access is Access.NOT_OWNED
    assert (await service.check_access(creator, content)).access is Access.OWNER
    with pytest.raises(GrantNotYetKnown):  # a refund handled before its purchase
        await service.revoke_access("purchase-1", event_id=uuid7())
    await service.grant_access(buyer, pack, EntitlementSource.PURCHASE, "purchase-1",
                               event_id=uuid7())
    assert (await service.check_access(buyer, content)).allowed
    # Archived: no longer sold, still the buyer's.
    await service.archive(creator, frozenset(), pack)
    assert (await service.check_access(buyer, content)).allowed
    assert (await service.check_access(stranger, content)).access is Access.NOT_LISTED
    assert await service.revoke_access("purchase-1", event_id=uuid7()) == 1
    assert not (await service.check_access(buyer, content)).allowed
    # A subscription's entitlement ends with its period.
    _, monthly, item = await published(service, library)
    await service.grant_access(buyer, monthly, EntitlementSource.SUBSCRIPTION, "sub_1",
                               expires_at=clock.now() + timedelta(days=30))
    assert (await service.check_access(buyer, item)).allowed
    clock.advance(timedelta(days=31))
    assert (await service.check_access(buyer, item)).access is Access.NOT_OWNED


async def test_free_packs_play_for_anyone(catalog: Any) -> None:
    service, library, _, _ = catalog
    _, _, content = await published(service, library, Price(PriceType.FREE))
    assert (await service.check_access(uuid7(), content)).access is Access.FREE


async def test_search_is_cached_until_the_index_changes(catalog: Any) -> None:
    service, library, index, _ = catalog
    _, pack, _ = await published(service, library)
    query = SearchQuery(text="sleap")
    first, _ = await service.search(None, query)
    again, _ = await service.search(None, query)
    assert [v.pack.id for v in first] == [v.pack.id for v in again] == [pack]
    assert index.searches == 1
    await published(service, library)  # re-indexing moves the generation
    fresh, _ = await service.search(None, query)
    assert len(fresh) == 2 and index.searches == 2


class FakeProvider:
    def __init__(self) -> None:
        self.requests: list[Any] = []

    async def create_checkout(self, request: Any) -> Any:
        from core.payments.facts import ProviderCheckout

        self.requests.append(request)
        return ProviderCheckout(f"cs_{request.checkout_id.hex}", "https://pay.example",
                                FakeClock().now() + timedelta(hours=1))


class FakeCatalog:
    def __init__(self) -> None:
        self.creator = uuid7()

    async def pack_for_sale(self, user_id: uuid.UUID, pack_id: uuid.UUID) -> SaleItem:
        return SaleItem(pack_id, self.creator, "Deep sleep", 499, "EUR")


@pytest.fixture
def payments() -> tuple[PaymentsService, FakeProvider, Any, FakeClock]:
    clock, provider, store = FakeClock(), FakeProvider(), MemoryStore()
    uow = memory_payments_uow(store, JsonCodec())
    service = PaymentsService(
        uow, clock, provider, FakeCatalog(),
        [CreditBundle("small", "10 credits", 10, 499, "EUR")], webhook_secret=SECRET,
        success_url="https://a/ok", cancel_url="https://a/no",
        translate=stripe_events.translate)
    return service, provider, uow, clock


def delivery(event: dict[str, Any], clock: FakeClock) -> tuple[bytes, str]:
    body = json.dumps(event).encode()
    return body, sign(body, SECRET, int(clock.now().timestamp()))


async def outbox_events(uow: Any) -> list[Any]:
    async with uow(read_only=True) as w:
        return list(w.tables.outbox.values())


async def test_a_checkout_is_idempotent_and_names_one_thing(payments: Any) -> None:
    service, provider, _, _ = payments
    me = uuid7()
    first = await service.create_checkout(me, "r1", pack_id=uuid7())
    assert (await service.create_checkout(me, "r1", pack_id=uuid7())).id == first.id
    assert len(provider.requests) == 1
    assert provider.requests[0].metadata["user"] == str(me)
    with pytest.raises(InvalidArgument):
        await service.create_checkout(me, "r2", pack_id=uuid7(), bundle_id="small")
    with pytest.raises(NotFound):
        await service.create_checkout(me, "r3", bundle_id="huge")


async def test_webhooks_verify_dedupe_and_apply_once_in_any_order(payments: Any) -> None:
    service, _, uow, clock = payments
    me = uuid7()
    session = await service.create_checkout(me, "", pack_id=uuid7())
    completed = stripe_events.checkout_session_completed(
        checkout_id=session.id, mode=CheckoutMode.PAYMENT, amount_minor=499, currency="EUR",
        payment_intent="pi_1")
    succeeded = stripe_events.payment_intent_succeeded(
        payment_intent="pi_1", amount_minor=499, currency="EUR", checkout_id=session.id)
    refund = stripe_events.charge_refunded(payment_intent="pi_1", amount_minor=499,
                                           amount_refunded=499, currency="EUR")
    body, header = delivery(completed, clock)
    with pytest.raises(InvalidSignature):
        await service.receive_webhook(body, sign(body, "whsec_other", 0))
    assert await service.receive_webhook(body, header) is True
    assert await service.receive_webhook(body, header) is False
    # The refund first: not known yet, retried later.
    with pytest.raises(NotYetKnown):
        await service.handle_event(uuid7(), json.dumps(refund).encode())
    for event in (succeeded, completed, completed):
        await service.handle_event(uuid7(), json.dumps(event).encode())
    purchases, _ = await service.list_purchases(me, 10, None)
    assert [(p.payment_intent, p.state) for p in purchases] == [
        ("pi_1", PurchaseState.COMPLETED)]
    refund_id = uuid7()
    await service.handle_event(refund_id, json.dumps(refund).encode())
    await service.handle_event(refund_id, json.dumps(refund).encode())  # redelivered
    purchases, _ = await service.list_purchases(me, 10, None)
    assert purchases[0].state is PurchaseState.REFUNDED
    topics = [row.topic for row in await outbox_events(uow)]
    assert topics.count("waqup.payments.purchase.completed.v1") == 1
    assert topics.count("waqup.payments.purchase.refunded.v1") == 1


async def test_a_partial_refund_keeps_the_purchase(payments: Any) -> None:
    service, _, _, _ = payments
    me = uuid7()
    session = await service.create_checkout(me, "", pack_id=uuid7())
    await service.handle_event(uuid7(), json.dumps(stripe_events.checkout_session_completed(
        checkout_id=session.id, mode=CheckoutMode.PAYMENT, amount_minor=499, currency="EUR",
        payment_intent="pi_2")).encode())
    await service.handle_event(uuid7(), json.dumps(stripe_events.charge_refunded(
        payment_intent="pi_2", amount_minor=499, amount_refunded=100,
        currency="EUR")).encode())
    purchases, _ = await service.list_purchases(me, 10, None)
    assert purchases[0].state is PurchaseState.COMPLETED


async def test_rewards_accrue_once_and_never_go_below_zero() -> None:
    service = RewardsService(memory_rewards_uow(MemoryStore()), FakeClock(), 70)
    creator, sale = uuid7(), uuid7()
    with pytest.raises(AccrualNotYetKnown):
        await service.reverse(sale)
    first = await service.accrue(sale, creator, 499, "eur")
    assert (first.tokens, first.balance_after, first.currency) == (349, 349, "EUR")
    assert (await service.accrue(sale, creator, 499, "EUR")).id == first.id
    await service.accrue(uuid7(), creator, 999, "USD")
    assert await service.balances(creator) == {"EUR": 349, "USD": 699}
    reversal = await service.reverse(sale)
    assert (reversal.tokens, reversal.balance_after) == (-349, 0)
    assert (await service.reverse(sale)).id == reversal.id
    with pytest.raises(InvalidArgument):
        await service.accrue(uuid7(), creator, 0, "EUR")


async def test_a_membership_follows_the_providers_events_in_any_order(payments: Any) -> None:
    from core.payments.facts import SubscriptionStatus
    from core.payments.model import SubscriptionPlan, SubscriptionState

    service, _, uow, clock = payments
    service._plans = {"monthly": SubscriptionPlan("monthly", "Monthly", 999, "EUR", "month")}
    me = uuid7()
    session = await service.create_checkout(me, "", plan_id="monthly")
    assert session.mode == "subscription"
    now = clock.now().replace(microsecond=0)  # Stripe counts whole seconds
    end = now + timedelta(days=30)
    common = {"subscription": "sub_1", "amount_minor": 999, "currency": "EUR"}
    # An invoice of an unknown subscription waits (retried by the bus).
    with pytest.raises(NotYetKnown):
        await service.handle_event(uuid7(), json.dumps(stripe_events.invoice_paid(
            period_start=now, period_end=end, **common)).encode())
    # The subscription's own event may come first: its metadata names the checkout.
    await service.handle_event(uuid7(), json.dumps(stripe_events.subscription_event(
        "created", status=SubscriptionStatus.ACTIVE, current_period_start=now,
        current_period_end=end, interval="month", checkout_id=session.id,
        **common)).encode())
    await service.handle_event(uuid7(), json.dumps(stripe_events.checkout_session_completed(
        checkout_id=session.id, mode=CheckoutMode.SUBSCRIPTION, amount_minor=999,
        currency="EUR", subscription="sub_1")).encode())
    current = await service.get_subscription(me)
    assert (current.state, current.current_period_end) == (SubscriptionState.ACTIVE, end)
    with pytest.raises(AlreadyExists):
        await service.create_checkout(me, "", plan_id="monthly")
    await service.handle_event(uuid7(), json.dumps(stripe_events.subscription_event(
        "deleted", status=SubscriptionStatus.CANCELED, current_period_start=now,
        current_period_end=end, interval="month", checkout_id=session.id,
        **common)).encode())
    assert (await service.get_subscription(me)).state is SubscriptionState.ENDED
    changes = [row for row in await outbox_events(uow)
               if row.topic == "waqup.payments.membership.changed.v1"]
    assert len(changes) == 3  # began (twice told), ended
    with pytest.raises(FailedPrecondition):
        await service.cancel_subscription(me)


async def test_a_membership_plays_members_only_packs(catalog: Any) -> None:
    service, library, _, clock = catalog
    _, _, content = await published(service, library, Price(PriceType.SUBSCRIPTION))
    member = uuid7()
    assert (await service.check_access(member, content)).access is Access.NOT_OWNED
    await service.set_membership(uuid7(), member, "sub_1", clock.now() + timedelta(days=30))
    assert (await service.check_access(member, content)).allowed
    assert [v.pack.price.type for v in await service.owned_packs(member)] == [
        PriceType.SUBSCRIPTION]
    await service.set_membership(uuid7(), member, "sub_1", None)
    assert not (await service.check_access(member, content)).allowed


async def test_recommendations_follow_a_scripted_history_not_just_popularity(
        catalog: Any) -> None:
    from core.catalog.recommend import Completion

    service, library, _, clock = catalog

    async def pack_of(title: str, tags: tuple[str, ...], popularity: int) -> uuid.UUID:
        creator = uuid7()
        await service.create_creator(creator, f"Creator of {title}", "", ())
        made = await service.create_pack(creator, "", title, f"{title}, for you",
                                         Price(PriceType.FREE), tags)
        await service.add_item(creator, made.id, library.add(creator))
        await service.publish(creator, made.id)
        async with service._uow() as uow:
            await uow.packs.add_popularity([made.id], popularity)
            await uow.commit()
        return made.id

    sleep = await pack_of("Deep sleep for restless nights", ("sleep", "evening"), 3)
    energy = await pack_of("Morning energy boost", ("morning", "energy"), 500)
    focus = await pack_of("Focus at work", ("focus", "work"), 200)
    me = uuid7()
    # Cold start: popularity.
    cold = await service.recommendations(me, 3)
    assert cold[0][0].pack.id == energy
    assert cold[0][1].reason == "popular with listeners"
    # Evening and night practice of sleep items, mood rising after them.
    for days, hour in ((9, 22), (6, 23), (3, 21), (1, 22)):
        await service.record_play(uuid7(), Completion(
            user_id=me, content_type="guided_meditation",
            completed_at=clock.now() - timedelta(days=days), local_hour=hour, pack_id=None,
            tags=("sleep",), title="Letting the day go", mood_before=2, mood_after=4),
            library.add(me))
    ranked = await service.recommendations(me, 3)
    assert ranked[0][0].pack.id == sleep, [(v.pack.title, r.reason) for v, r in ranked]
    assert {v.pack.id for v, _ in ranked} == {sleep, energy, focus}
    assert "sleep" in ranked[0][1].reason or "evening" in ranked[0][1].reason
    # A pack the person bought is never recommended.
    await service.grant_access(me, sleep, EntitlementSource.PURCHASE, "p-1")
    assert sleep not in [v.pack.id for v, _ in await service.recommendations(me, 3)]


async def test_popularity_reaches_the_index_by_the_refresh_job_not_per_play(
        catalog: Any) -> None:
    from core.catalog.recommend import Completion
    from core.catalog.search import SearchOrder

    service, library, _, clock = catalog
    _, quiet, _ = await published(service, library)
    _, played, content = await published(service, library)
    async with service._uow(read_only=True) as uow:
        generation = await uow.search_state.generation()
    for _ in range(3):
        await service.record_play(uuid7(), Completion(
            user_id=uuid7(), content_type="guided_meditation", completed_at=clock.now(),
            local_hour=8, pack_id=None, tags=(), title="", mood_before=None,
            mood_after=None), content)
    async with service._uow(read_only=True) as uow:
        assert await uow.search_state.generation() == generation  # the cache stays
    assert await service.refresh_popularity() == 1
    assert await service.refresh_popularity() == 0
    views, _ = await service.search(None, SearchQuery(order=SearchOrder.POPULARITY))
    assert [v.pack.id for v in views] == [played, quiet]


async def test_a_cached_page_holds_its_packs_and_creators_whole(catalog: Any) -> None:
    from core.catalog.records import (
        creator_from_record,
        creator_record,
        pack_from_record,
        pack_record,
    )

    service, library, _, _ = catalog
    creator, pack_id, _ = await published(service, library)
    view = await service.get_pack(None, pack_id)
    assert pack_from_record(json.loads(json.dumps(pack_record(view.pack)))) == view.pack
    assert creator_from_record(json.loads(json.dumps(creator_record(view.creator)))) == \
        view.creator
    first, _ = await service.search(creator, SearchQuery(text="sleep"))
    again, _ = await service.search(creator, SearchQuery(text="sleep"))
    assert again == first and again[0].owned  # the caller's own pack, from the cache


async def test_a_pack_subscription_plays_that_pack_only(catalog: Any) -> None:
    from core.catalog.model import Interval

    service, library, _, clock = catalog
    _, monthly, item = await published(service, library, Price(
        PriceType.SUBSCRIPTION, 299, "EUR", Interval.MONTHLY))
    _, _, other_item = await published(service, library,
                                       Price(PriceType.SUBSCRIPTION))
    subscriber = uuid7()
    assert (await service.check_access(subscriber, item)).access is Access.NOT_OWNED
    await service.set_membership(uuid7(), subscriber, "sub_9",
                                 clock.now() + timedelta(days=31), pack_id=monthly)
    assert (await service.check_access(subscriber, item)).allowed
    assert not (await service.check_access(subscriber, other_item)).allowed
    clock.advance(timedelta(days=32))  # the period ran out without a renewal
    assert not (await service.check_access(subscriber, item)).allowed
