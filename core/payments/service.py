"""Payments' use cases: checkout, the provider's webhooks, purchases.

The webhook path is split in two so that the provider is answered fast and
nothing is lost: `receive_webhook` verifies the signature, records the event
id (a repeated delivery stops there) and queues the raw event through the
outbox in one transaction; `handle_event` then turns it into a fact and
applies it, once per event, retried by the bus when it fails (a refund that
arrives before its payment waits for it)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core.payments.facts import (
    ChargeRefunded,
    CheckoutCompleted,
    CheckoutExpired,
    CheckoutMode,
    CheckoutRequest,
    DisputeOpened,
    Fact,
    InvoiceFailed,
    InvoicePaid,
    PaymentFailed,
    PaymentSucceeded,
    SubscriptionChanged,
    SubscriptionStatus,
)
from core.payments.model import (
    AlreadySubscribed,
    CheckoutSession,
    CheckoutState,
    CreditBundle,
    MembershipChanged,
    MembershipPaid,
    NotYetKnown,
    Purchase,
    PurchaseCompleted,
    PurchaseRefunded,
    PurchaseState,
    StripeEventReceived,
    Subscription,
    SubscriptionPlan,
    SubscriptionState,
    period_of,
)
from core.payments.signature import verify
from core.shared.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from core.shared.ids import uuid7

if TYPE_CHECKING:
    from ports.common import Clock
    from ports.payments import (
        Catalog,
        PaymentProvider,
        PaymentsUnitOfWork,
        PaymentsUnitOfWorkFactory,
    )

log = logging.getLogger(__name__)

EVENTS_CONSUMER = "payments.stripe-events"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
#: A refund or dispute of a payment we never recorded is retried this long
#: (its payment's events may come late), then dropped.
UNKNOWN_PAYMENT_PATIENCE = timedelta(hours=1)
#: How long a checkout page accepts a payment.
CHECKOUT_TTL = timedelta(hours=24)


class PaymentsService:
    def __init__(self, uow: PaymentsUnitOfWorkFactory, clock: Clock, provider: PaymentProvider,
                 catalog: Catalog, bundles: list[CreditBundle], *, webhook_secret: str,
                 plans: list[SubscriptionPlan] | None = None,
                 success_url: str, cancel_url: str,
                 translate: Callable[[bytes], Fact | None],
                 tolerance_seconds: int = 300) -> None:
        self._uow = uow
        self._clock = clock
        self._provider = provider
        self._catalog = catalog
        self._bundles = {b.id: b for b in bundles}
        self._bundle_order = list(bundles)
        self._plans = {p.id: p for p in plans or ()}
        self._plan_order = list(plans or ())
        self._secret = webhook_secret
        self._success_url = success_url
        self._cancel_url = cancel_url
        self._translate = translate
        self._tolerance = tolerance_seconds

    # --- checkout -----------------------------------------------------------------

    def bundles(self) -> list[CreditBundle]:
        return list(self._bundle_order)

    def plans(self) -> list[SubscriptionPlan]:
        return list(self._plan_order)

    def plan(self, plan_id: str | None) -> SubscriptionPlan:
        found = self._plans.get(plan_id or "")
        if found is None:
            raise NotFound("no such subscription plan")
        return found

    async def create_checkout(self, user_id: uuid.UUID, request_id: str, *,
                              pack_id: uuid.UUID | None = None,
                              bundle_id: str | None = None,
                              plan_id: str | None = None) -> CheckoutSession:
        """A checkout session for a pack, a credit bundle or a membership
        plan, with the provider's page to pay on. Idempotent by `request_id`."""
        if [pack_id, bundle_id, plan_id].count(None) != 2:
            raise InvalidArgument("name exactly one of pack, credit_bundle and "
                                  "subscription_plan", reason="INVALID_CHECKOUT")
        if request_id:
            async with self._uow(read_only=True) as uow:
                earlier = await uow.checkouts.get_by_request(user_id, request_id)
            if earlier is not None and earlier.provider_id:
                return earlier
        else:
            earlier = None
        session = earlier or await self._new_session(user_id, request_id, pack_id, bundle_id,
                                                     plan_id)
        return await self._open_at_provider(session)

    async def _new_session(self, user_id: uuid.UUID, request_id: str,
                           pack_id: uuid.UUID | None, bundle_id: str | None,
                           plan_id: str | None) -> CheckoutSession:
        now = self._clock.now()
        mode = CheckoutMode.PAYMENT
        if plan_id is not None:
            plan = self._plans.get(plan_id)
            if plan is None:
                raise NotFound("no such subscription plan")
            current = await self._subscription(user_id)
            if current is not None and current.state is not SubscriptionState.ENDED:
                raise AlreadySubscribed("you are subscribed already")
            mode = CheckoutMode.SUBSCRIPTION
            what = dict(pack_id=None, creator_id=None, bundle_id=None, plan_id=plan.id,
                        credits=0, product_name=plan.display_name,
                        amount_minor=plan.amount_minor, currency=plan.currency,
                        interval=plan.interval)
        elif pack_id is not None:
            sale = await self._catalog.pack_for_sale(user_id, pack_id)
            if sale.interval is not None:  # a subscription to the pack
                mode = CheckoutMode.SUBSCRIPTION
            what = dict(pack_id=sale.pack_id, creator_id=sale.creator_id, bundle_id=None,
                        credits=0, product_name=sale.title, amount_minor=sale.amount_minor,
                        currency=sale.currency, interval=sale.interval)
        else:
            bundle = self._bundles.get(bundle_id or "")
            if bundle is None:
                raise NotFound("no such credit bundle")
            what = dict(pack_id=None, creator_id=None, bundle_id=bundle.id,
                        credits=bundle.credits, product_name=bundle.display_name,
                        amount_minor=bundle.amount_minor, currency=bundle.currency)
        session = CheckoutSession(
            id=uuid7(), user_id=user_id, mode=mode.value,
            state=CheckoutState.OPEN, provider_id="", url="", request_id=request_id,
            created_at=now, expires_at=now + CHECKOUT_TTL, **what)  # type: ignore[arg-type]
        async with self._uow() as uow:
            try:
                await uow.checkouts.add(session)
            except AlreadyExists:
                earlier = await uow.checkouts.get_by_request(user_id, request_id)
                if earlier is None:
                    raise
                return earlier
            await uow.commit()
        return session

    async def _open_at_provider(self, session: CheckoutSession) -> CheckoutSession:
        """Ask the provider for the page (idempotent at the provider by the
        session's id, so a retry after a crash gets the same page)."""
        if session.provider_id:
            return session
        opened = await self._provider.create_checkout(CheckoutRequest(
            checkout_id=session.id, user_id=session.user_id, mode=CheckoutMode(session.mode),
            product_name=session.product_name, amount_minor=session.amount_minor,
            currency=session.currency, interval=session.interval,
            success_url=self._success_url, cancel_url=self._cancel_url,
            metadata={"user": str(session.user_id),
                      **({"pack": str(session.pack_id)} if session.pack_id else {}),
                      **({"credit_bundle": session.bundle_id} if session.bundle_id else {}),
                      **({"plan": session.plan_id} if session.plan_id else {})}))
        async with self._uow() as uow:
            current = await uow.checkouts.get_for_update(session.id)
            if current is None:
                raise NotFound("no such checkout session")
            if not current.provider_id:
                current.provider_id, current.url = opened.provider_id, opened.url
                current.expires_at = min(current.expires_at, opened.expires_at)
                await uow.checkouts.save(current)
                await uow.commit()
            return current

    async def get_checkout(self, user_id: uuid.UUID, checkout_id: uuid.UUID) -> CheckoutSession:
        async with self._uow(read_only=True) as uow:
            session = await uow.checkouts.get(checkout_id)
        if session is None or session.user_id != user_id:
            raise NotFound("no such checkout session")
        return session

    async def checkout_for_simulator(self, checkout_id: uuid.UUID) -> CheckoutSession | None:
        """The session behind a simulator page (no caller: the page's URL is
        the secret, as a provider's checkout URL is)."""
        async with self._uow(read_only=True) as uow:
            return await uow.checkouts.get(checkout_id)

    async def list_purchases(self, user_id: uuid.UUID, page_size: int,
                             before: uuid.UUID | None) -> tuple[list[Purchase], uuid.UUID | None]:
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        async with self._uow(read_only=True) as uow:
            rows = await uow.purchases.list_for_user(user_id, before=before, limit=size + 1)
        page = rows[:size]
        return page, (page[-1].id if len(rows) > size else None)

    # --- the membership -----------------------------------------------------------

    async def _subscription(self, user_id: uuid.UUID,
                            pack_id: uuid.UUID | None = None) -> Subscription | None:
        async with self._uow(read_only=True) as uow:
            return await uow.subscriptions.latest_for_user(user_id, pack_id)

    async def get_subscription(self, user_id: uuid.UUID,
                               pack_id: uuid.UUID | None = None) -> Subscription:
        """The person's membership, or with `pack_id` their subscription to
        that pack."""
        found = await self._subscription(user_id, pack_id)
        if found is None:
            raise NotFound("you have no such subscription")
        return found

    async def subscription_by_provider(self, provider_id: str) -> Subscription | None:
        async with self._uow(read_only=True) as uow:
            return await uow.subscriptions.get_by_provider(provider_id)

    async def cancel_subscription(self, user_id: uuid.UUID,
                                  pack_id: uuid.UUID | None = None) -> Subscription:
        """Stop renewing: the membership (or the pack's subscription) plays
        until its period ends. The provider confirms with
        customer.subscription.updated, then .deleted when the period ends."""
        current = await self.get_subscription(user_id, pack_id)
        if current.state is SubscriptionState.ENDED:
            raise FailedPrecondition("the subscription has ended", reason="SUBSCRIPTION_ENDED")
        if not current.cancel_at_period_end:
            await self._provider.cancel_subscription(current.provider_id)
            async with self._uow() as uow:
                found = await uow.subscriptions.get_by_provider(current.provider_id)
                if found is not None:
                    found.cancel_at_period_end, found.updated_at = True, self._clock.now()
                    await uow.subscriptions.save(found)
                    await uow.commit()
                    current = found
        return current

    # --- webhooks -----------------------------------------------------------------

    async def receive_webhook(self, payload: bytes, signature: str) -> bool:
        """Verify and queue one webhook delivery. Raises InvalidSignature
        (answer 401) or MalformedEvent (400); returns False for a delivery
        of an event already received (answer 2xx: the provider stops)."""
        verify(payload, signature, self._secret, int(self._clock.now().timestamp()),
               self._tolerance)
        event_id, event_type = self._identity(payload)
        try:
            understood = self._translate(payload) is not None
        except ValueError as exc:
            # Signed by the provider, so theirs, but not one of ours (a
            # session made by another integration of the same account):
            # acknowledged, or the provider would retry it for days and
            # may disable the endpoint.
            log.warning("signed provider event not understood: ignored", extra={
                "stripe_event": event_id, "type": event_type, "why": str(exc)[:200]})
            understood = False
        now = self._clock.now()
        async with self._uow() as uow:
            if not await uow.stripe_events.add(event_id, event_type, now):
                return False
            if understood:
                await uow.outbox.add(StripeEventReceived(
                    occurred_at=now, stripe_event_id=event_id, payload=payload))
            await uow.commit()
        return True

    @staticmethod
    def _identity(payload: bytes) -> tuple[str, str]:
        """The event's id and type; MALFORMED_EVENT when the body is not a
        JSON object with both (not an event at all)."""
        try:
            event = json.loads(payload)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not all(
                isinstance(event.get(k), str) and 0 < len(event[k]) <= 255
                for k in ("id", "type")):
            raise InvalidArgument("the body is not a Stripe event", reason="MALFORMED_EVENT")
        return event["id"], event["type"][:100]

    async def handle_event(self, event_id: uuid.UUID, payload: bytes) -> None:
        """Apply one queued provider event, exactly once (processed_events in
        the same transaction as its effect)."""
        fact = self._translate(payload)
        if fact is None:
            return
        async with self._uow() as uow:
            if not await uow.processed_events.add(EVENTS_CONSUMER, event_id, self._clock.now()):
                return
            await self._apply(uow, fact)
            await uow.commit()

    async def _apply(self, uow: PaymentsUnitOfWork, fact: Fact) -> None:
        match fact:
            case CheckoutCompleted(checkout_id=checkout_id, subscription=subscription) \
                    if subscription:
                await self._subscribed(uow, checkout_id, subscription)
            case CheckoutCompleted(checkout_id=checkout_id, payment_intent=intent,
                                   amount_minor=amount, currency=currency):
                await self._complete(uow, checkout_id, intent, amount, currency)
            case SubscriptionChanged():
                await self._subscription_changed(uow, fact)
            case InvoicePaid(subscription=subscription, period_end=period_end):
                await self._renewed(uow, subscription, period_end, fact)
            case InvoiceFailed(subscription=subscription):
                await self._renewal_failed(uow, subscription)
            case PaymentSucceeded(checkout_id=checkout_id, payment_intent=intent,
                                  amount_minor=amount, currency=currency) if checkout_id:
                await self._complete(uow, checkout_id, intent, amount, currency)
            case CheckoutExpired(checkout_id=checkout_id):
                await self._expire(uow, checkout_id)
            case PaymentFailed(checkout_id=checkout_id) if checkout_id:
                await self._expire(uow, checkout_id)
            case ChargeRefunded(payment_intent=intent, full=True):
                await self._take_back(uow, intent, PurchaseState.REFUNDED, "refund",
                                      fact.occurred_at)
            case ChargeRefunded(payment_intent=intent, amount_refunded=refunded):
                log.info("partial refund: access kept", extra={
                    "payment_intent": intent, "amount_refunded": refunded})
            case DisputeOpened(payment_intent=intent):
                await self._take_back(uow, intent, PurchaseState.DISPUTED, "dispute",
                                      fact.occurred_at)
            case _:
                log.info("provider event not acted on", extra={"kind": type(fact).__name__})

    async def _complete(self, uow: PaymentsUnitOfWork, checkout_id: uuid.UUID, intent: str,
                        amount: int, currency: str) -> None:
        session = await uow.checkouts.get_for_update(checkout_id)
        if session is None:
            # Not one of ours (another system's session on the same account).
            log.warning("payment for an unknown checkout session",
                        extra={"checkout_session": str(checkout_id)})
            return
        existing = await uow.purchases.get_by_checkout(checkout_id)
        if existing is not None:
            if intent and not existing.payment_intent:
                existing.payment_intent = intent
                await uow.purchases.save(existing)
            return
        if (amount, currency) != (session.amount_minor, session.currency):
            log.warning("paid amount differs from the session's", extra={
                "checkout_session": str(checkout_id), "paid": amount,
                "expected": session.amount_minor})
        now = self._clock.now()
        purchase = Purchase(
            id=uuid7(), user_id=session.user_id, checkout_id=session.id,
            pack_id=session.pack_id, creator_id=session.creator_id, bundle_id=session.bundle_id,
            credits=session.credits, amount_minor=amount, currency=currency,
            payment_intent=intent, state=PurchaseState.COMPLETED, created_at=now)
        await uow.purchases.add(purchase)
        session.state, session.purchase_id = CheckoutState.COMPLETED, purchase.id
        await uow.checkouts.save(session)
        await uow.outbox.add(PurchaseCompleted(
            occurred_at=now, purchase_id=purchase.id, user_id=purchase.user_id,
            pack_id=purchase.pack_id, creator_id=purchase.creator_id,
            bundle_id=purchase.bundle_id, credits=purchase.credits,
            amount_minor=purchase.amount_minor, currency=purchase.currency))

    async def _expire(self, uow: PaymentsUnitOfWork, checkout_id: uuid.UUID) -> None:
        session = await uow.checkouts.get_for_update(checkout_id)
        if session is not None and session.state is CheckoutState.OPEN:
            session.state = CheckoutState.EXPIRED
            await uow.checkouts.save(session)

    async def _take_back(self, uow: PaymentsUnitOfWork, intent: str, state: PurchaseState,
                         cause: str, occurred_at: datetime) -> None:
        purchase = await uow.purchases.get_by_payment_intent(intent)
        if purchase is None:
            if self._clock.now() - occurred_at > UNKNOWN_PAYMENT_PATIENCE:
                # Not a purchase of ours (a subscription's invoice, or another
                # integration's payment): stop retrying.
                log.warning("refund or dispute of an unknown payment: ignored",
                            extra={"payment_intent": intent})
                return
            raise NotYetKnown(f"no purchase of payment {intent} yet")
        if purchase.state is not PurchaseState.COMPLETED:
            return
        now = self._clock.now()
        purchase.state, purchase.refunded_at = state, now
        await uow.purchases.save(purchase)
        await uow.outbox.add(PurchaseRefunded(
            occurred_at=now, purchase_id=purchase.id, user_id=purchase.user_id,
            pack_id=purchase.pack_id, creator_id=purchase.creator_id,
            bundle_id=purchase.bundle_id, credits=purchase.credits, cause=cause))

    # --- the membership, from the provider's events -------------------------------

    async def _membership(self, uow: PaymentsUnitOfWork, subscription: Subscription) -> None:
        await uow.subscriptions.save(subscription)
        await uow.outbox.add(MembershipChanged(
            occurred_at=self._clock.now(), user_id=subscription.user_id,
            subscription=subscription.provider_id, active_until=subscription.active_until(),
            pack_id=subscription.pack_id))

    async def _known(self, uow: PaymentsUnitOfWork, provider_id: str,
                     checkout_id: uuid.UUID | None) -> Subscription:
        """The membership of the provider's subscription, made from its
        checkout session the first time either side mentions it."""
        found = await uow.subscriptions.get_by_provider(provider_id)
        if found is not None:
            return found
        session = await uow.checkouts.get_for_update(checkout_id) if checkout_id else None
        if session is None or session.interval is None:
            raise NotYetKnown(f"subscription {provider_id} is not known yet")
        now = self._clock.now()
        created = Subscription(
            id=uuid7(), user_id=session.user_id, plan_id=session.plan_id or "",
            provider_id=provider_id, checkout_id=session.id, state=SubscriptionState.ACTIVE,
            current_period_end=now + period_of(session.interval),
            cancel_at_period_end=False, created_at=now, updated_at=now,
            pack_id=session.pack_id, creator_id=session.creator_id, interval=session.interval,
            amount_minor=session.amount_minor, currency=session.currency)
        await uow.subscriptions.add(created)
        if session.state is CheckoutState.OPEN:
            session.state = CheckoutState.COMPLETED
            await uow.checkouts.save(session)
        return created

    async def _subscribed(self, uow: PaymentsUnitOfWork, checkout_id: uuid.UUID,
                          provider_id: str) -> None:
        subscription = await self._known(uow, provider_id, checkout_id)
        await self._membership(uow, subscription)

    async def _subscription_changed(self, uow: PaymentsUnitOfWork,
                                    fact: SubscriptionChanged) -> None:
        subscription = await self._known(uow, fact.subscription, fact.checkout_id)
        ended = fact.deleted or fact.status in (
            SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED,
            SubscriptionStatus.UNPAID)
        subscription.state = (SubscriptionState.ENDED if ended else
                              SubscriptionState.PAST_DUE
                              if fact.status is SubscriptionStatus.PAST_DUE
                              else SubscriptionState.ACTIVE)
        if fact.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING,
                           SubscriptionStatus.PAST_DUE) or ended:
            subscription.current_period_end = fact.current_period_end
        subscription.cancel_at_period_end = fact.cancel_at_period_end
        subscription.updated_at = self._clock.now()
        await self._membership(uow, subscription)

    async def _renewed(self, uow: PaymentsUnitOfWork, provider_id: str,
                       period_end: datetime, paid: InvoicePaid) -> None:
        subscription = await uow.subscriptions.get_by_provider(provider_id)
        if subscription is None:
            raise NotYetKnown(f"subscription {provider_id} is not known yet")
        if paid.amount_minor > 0:
            await uow.outbox.add(MembershipPaid(
                occurred_at=paid.occurred_at, user_id=subscription.user_id,
                subscription=provider_id, payment=paid.event_id,
                amount_minor=paid.amount_minor, currency=paid.currency,
                creator_id=subscription.creator_id))
        if subscription.state is SubscriptionState.ENDED:
            return
        subscription.state = SubscriptionState.ACTIVE
        subscription.current_period_end = max(subscription.current_period_end, period_end)
        subscription.updated_at = self._clock.now()
        await self._membership(uow, subscription)

    async def _renewal_failed(self, uow: PaymentsUnitOfWork, provider_id: str) -> None:
        subscription = await uow.subscriptions.get_by_provider(provider_id)
        if subscription is None or subscription.state is SubscriptionState.ENDED:
            return
        subscription.state, subscription.updated_at = (SubscriptionState.PAST_DUE,
                                                       self._clock.now())
        await uow.subscriptions.save(subscription)
