"""Payments: checkout sessions, purchases and what the provider told us."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from core.shared.errors import AlreadyExists, FailedPrecondition
from core.shared.events import DomainEvent


class CheckoutState(enum.Enum):
    OPEN = "open"
    COMPLETED = "completed"
    EXPIRED = "expired"


class PurchaseState(enum.Enum):
    COMPLETED = "completed"
    REFUNDED = "refunded"
    DISPUTED = "disputed"


@dataclass(frozen=True)
class CreditBundle:
    id: str
    display_name: str
    credits: int
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class SubscriptionPlan:
    """A membership plan: every members-only pack plays while it is paid."""

    id: str
    display_name: str
    amount_minor: int
    currency: str
    #: `month` or `year`.
    interval: str

    @property
    def period(self) -> timedelta:
        return period_of(self.interval)


def period_of(interval: str) -> timedelta:
    """A first period's length (`month`, `year`), until the provider says
    when it ends."""
    return timedelta(days=365 if interval == "year" else 31)


class SubscriptionState(enum.Enum):
    ACTIVE = "active"
    PAST_DUE = "past_due"
    ENDED = "ended"


@dataclass
class Subscription:
    """A person's membership, as the provider's subscription `provider_id`."""

    id: uuid.UUID
    user_id: uuid.UUID
    #: The membership's plan ("" for a pack's own subscription).
    plan_id: str
    provider_id: str
    checkout_id: uuid.UUID | None
    state: SubscriptionState
    current_period_end: datetime
    cancel_at_period_end: bool
    created_at: datetime
    updated_at: datetime
    #: A subscription to one pack (not the membership), and its creator.
    pack_id: uuid.UUID | None = None
    creator_id: uuid.UUID | None = None
    #: `month` or `year`, and what each period costs.
    interval: str = "month"
    amount_minor: int = 0
    currency: str = ""

    def active_until(self) -> datetime | None:
        """Until when members-only packs play; None once it ended."""
        return None if self.state is SubscriptionState.ENDED else self.current_period_end


@dataclass(frozen=True)
class SaleItem:
    """A pack as payments sells it (asked of the catalog at checkout)."""

    pack_id: uuid.UUID
    creator_id: uuid.UUID
    title: str
    amount_minor: int
    currency: str
    #: `month`/`year` for a subscription to the pack; None: sold once.
    interval: str | None = None


@dataclass
class CheckoutSession:
    id: uuid.UUID
    user_id: uuid.UUID
    #: What is bought: a pack (with its creator) or a bundle (with its credits).
    pack_id: uuid.UUID | None
    creator_id: uuid.UUID | None
    bundle_id: str | None
    credits: int
    product_name: str
    amount_minor: int
    currency: str
    mode: str
    state: CheckoutState
    #: The provider's session id and page ("" until the provider answered).
    provider_id: str
    url: str
    request_id: str
    created_at: datetime
    expires_at: datetime
    purchase_id: uuid.UUID | None = None
    #: A membership plan (mode `subscription`).
    plan_id: str | None = None
    #: How often a subscription renews (`month`, `year`); None: paid once.
    interval: str | None = None


@dataclass
class Purchase:
    id: uuid.UUID
    user_id: uuid.UUID
    checkout_id: uuid.UUID
    pack_id: uuid.UUID | None
    creator_id: uuid.UUID | None
    bundle_id: str | None
    credits: int
    amount_minor: int
    currency: str
    payment_intent: str
    state: PurchaseState
    created_at: datetime
    refunded_at: datetime | None = None


class AlreadySubscribed(AlreadyExists):
    reason = "ALREADY_SUBSCRIBED"


class PackNotForSale(FailedPrecondition):
    reason = "PACK_NOT_FOR_SALE"


class NotYetKnown(Exception):
    """A provider event about something not recorded yet (a refund before
    its payment): handled again later, when the bus redelivers it."""


@dataclass(frozen=True, kw_only=True)
class StripeEventReceived(DomainEvent):
    """A verified, new webhook event, queued for processing (payments'
    own topic: the webhook answers as soon as this is stored)."""

    topic: ClassVar[str] = "waqup.payments.stripe_event.received.v1"
    stripe_event_id: str
    payload: bytes


@dataclass(frozen=True, kw_only=True)
class PurchaseCompleted(DomainEvent):
    topic: ClassVar[str] = "waqup.payments.purchase.completed.v1"
    purchase_id: uuid.UUID
    user_id: uuid.UUID
    pack_id: uuid.UUID | None
    creator_id: uuid.UUID | None
    bundle_id: str | None
    credits: int
    amount_minor: int
    currency: str


@dataclass(frozen=True, kw_only=True)
class PurchaseRefunded(DomainEvent):
    topic: ClassVar[str] = "waqup.payments.purchase.refunded.v1"
    purchase_id: uuid.UUID
    user_id: uuid.UUID
    pack_id: uuid.UUID | None
    creator_id: uuid.UUID | None
    bundle_id: str | None
    credits: int
    #: `refund` or `dispute`.
    cause: str


@dataclass(frozen=True, kw_only=True)
class MembershipChanged(DomainEvent):
    """A membership began, renewed or ended: members-only packs play for the
    person until `active_until` (None: no longer)."""

    topic: ClassVar[str] = "waqup.payments.membership.changed.v1"
    user_id: uuid.UUID
    subscription: str
    active_until: datetime | None
    #: A subscription to this pack only (None: the membership).
    pack_id: uuid.UUID | None = None


@dataclass(frozen=True, kw_only=True)
class MembershipPaid(DomainEvent):
    """A membership fee was paid: rewards share it among creators by plays."""

    topic: ClassVar[str] = "waqup.payments.membership.paid.v1"
    user_id: uuid.UUID
    subscription: str
    #: The provider's event of the payment: one share-out each.
    payment: str
    amount_minor: int
    currency: str
    #: A pack subscription's creator (the fee accrues to them); None: the membership.
    creator_id: uuid.UUID | None = None
