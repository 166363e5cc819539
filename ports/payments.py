"""Ports of the payments context."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from core.payments.facts import CheckoutRequest, ProviderCheckout
from core.payments.model import CheckoutSession, Purchase, SaleItem, Subscription
from ports.common import Outbox, ProcessedEvents, UnitOfWork


class PaymentProvider(Protocol):
    """Where people pay: Stripe, or the embedded simulator. Every adapter
    passes tests/contract/test_payment_provider.py."""

    async def create_checkout(self, request: CheckoutRequest) -> ProviderCheckout:
        """A hosted checkout page for `request`. Idempotent by
        `request.checkout_id`: asking twice gives the same session."""
        ...

    async def cancel_subscription(self, subscription: str) -> None:
        """Stop renewing `subscription` at the end of the period already
        paid (the provider then sends customer.subscription.updated, and
        customer.subscription.deleted when the period ends)."""
        ...

    async def close(self) -> None: ...


class CheckoutSessions(Protocol):
    async def add(self, session: CheckoutSession) -> None:
        """Insert; AlreadyExists when the person has one with the same
        non-empty `request_id` (a concurrent retry)."""
        ...

    async def get(self, checkout_id: uuid.UUID) -> CheckoutSession | None: ...

    async def get_for_update(self, checkout_id: uuid.UUID) -> CheckoutSession | None:
        """Locked until the unit of work ends."""
        ...

    async def get_by_request(self, user_id: uuid.UUID, request_id: str,
                             ) -> CheckoutSession | None: ...

    async def save(self, session: CheckoutSession) -> None: ...


class Purchases(Protocol):
    async def add(self, purchase: Purchase) -> None:
        """Insert; AlreadyExists when the checkout session has one."""
        ...

    async def get_by_checkout(self, checkout_id: uuid.UUID) -> Purchase | None: ...

    async def get_by_payment_intent(self, payment_intent: str) -> Purchase | None:
        """Locked until the unit of work ends."""
        ...

    async def save(self, purchase: Purchase) -> None: ...

    async def list_for_user(self, user_id: uuid.UUID, *, before: uuid.UUID | None,
                            limit: int) -> list[Purchase]:
        """Newest first, strictly older than `before` when given."""
        ...


class Subscriptions(Protocol):
    async def add(self, subscription: Subscription) -> None:
        """Insert; AlreadyExists when the provider's subscription is known."""
        ...

    async def get_by_provider(self, provider_id: str) -> Subscription | None:
        """Locked until the unit of work ends."""
        ...

    async def latest_for_user(self, user_id: uuid.UUID,
                              pack_id: uuid.UUID | None = None) -> Subscription | None:
        """The person's newest membership (any state); with `pack_id`, their
        newest subscription to that pack."""
        ...

    async def save(self, subscription: Subscription) -> None: ...


class StripeEvents(Protocol):
    async def add(self, event_id: str, event_type: str, at: datetime) -> bool:
        """Record a webhook event; False when it was received before (of
        several concurrent deliveries, exactly one gets True)."""
        ...


class PaymentsUnitOfWork(UnitOfWork, Protocol):
    checkouts: CheckoutSessions
    purchases: Purchases
    subscriptions: Subscriptions
    stripe_events: StripeEvents
    outbox: Outbox
    processed_events: ProcessedEvents


class PaymentsUnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> PaymentsUnitOfWork: ...


class Catalog(Protocol):
    """The catalog context, as payments sees it."""

    async def pack_for_sale(self, user_id: uuid.UUID, pack_id: uuid.UUID) -> SaleItem:
        """The pack's price and creator. NotFound when it is not published;
        PackNotForSale when free, a subscription, or the buyer's own;
        AlreadyExists (ALREADY_OWNED) when the buyer may play it already."""
        ...
