"""What the payment provider tells us happened, in our own words.

Stripe's webhook events are translated into these facts at the edge of the
system (adapters/stripe/events.py); the payments core only ever sees facts.
Every fact carries the provider's event id (`event_id`, for deduplication)
and when the provider says it happened (`occurred_at`, for ordering)."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime


class CheckoutMode(enum.Enum):
    #: One payment: a pack or a credit bundle.
    PAYMENT = "payment"
    #: A recurring payment: a subscription.
    SUBSCRIPTION = "subscription"


@dataclass(frozen=True)
class CheckoutRequest:
    """What we ask the provider to sell, in one hosted checkout page."""

    #: Our checkout session's id: the provider's `client_reference_id` and
    #: `metadata.checkout_session`, so that every later event finds it.
    checkout_id: uuid.UUID
    user_id: uuid.UUID
    mode: CheckoutMode
    #: What the person sees on the payment page.
    product_name: str
    #: Price in integer minor units (cents) of `currency`.
    amount_minor: int
    #: ISO 4217, upper case (`EUR`).
    currency: str
    #: `month` or `year` for a subscription; None otherwise.
    interval: str | None
    success_url: str
    cancel_url: str
    #: Extra string metadata carried on the session, its payment intent or
    #: subscription (the provider returns it in every event).
    metadata: dict[str, str]


@dataclass(frozen=True)
class ProviderCheckout:
    """The provider's side of a checkout session."""

    #: The provider's id (`cs_...`).
    provider_id: str
    #: The page the person pays on.
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class Fact:
    #: The provider's event id (`evt_...`).
    event_id: str
    occurred_at: datetime


@dataclass(frozen=True)
class CheckoutCompleted(Fact):
    """The person paid (mode payment) or started a subscription."""

    checkout_id: uuid.UUID
    #: `pi_...` for a payment; "" for a subscription.
    payment_intent: str
    #: `sub_...` for a subscription; "" otherwise.
    subscription: str
    amount_minor: int
    currency: str
    customer: str = ""


@dataclass(frozen=True)
class CheckoutExpired(Fact):
    """The session ended without a payment (declined or abandoned)."""

    checkout_id: uuid.UUID


@dataclass(frozen=True)
class PaymentSucceeded(Fact):
    """A payment intent succeeded (may come before or after CheckoutCompleted)."""

    payment_intent: str
    #: From the payment intent's metadata; None when it carries none.
    checkout_id: uuid.UUID | None
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class PaymentFailed(Fact):
    payment_intent: str
    checkout_id: uuid.UUID | None
    #: The provider's failure code (`card_declined`).
    code: str


@dataclass(frozen=True)
class ChargeRefunded(Fact):
    payment_intent: str
    #: Refunded so far, in minor units (a partial refund is less than paid).
    amount_refunded: int
    #: Whether the whole charge is refunded.
    full: bool


@dataclass(frozen=True)
class DisputeOpened(Fact):
    payment_intent: str
    amount_minor: int


class SubscriptionStatus(enum.Enum):
    ACTIVE = "active"
    TRIALING = "trialing"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    UNPAID = "unpaid"
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    PAUSED = "paused"


@dataclass(frozen=True)
class SubscriptionChanged(Fact):
    """customer.subscription.created / updated / deleted."""

    subscription: str
    #: From the subscription's metadata; None when it carries none.
    checkout_id: uuid.UUID | None
    status: SubscriptionStatus
    current_period_end: datetime
    cancel_at_period_end: bool
    #: True for customer.subscription.deleted (the subscription has ended).
    deleted: bool = False


@dataclass(frozen=True)
class InvoicePaid(Fact):
    subscription: str
    amount_minor: int
    currency: str
    #: The end of the period this invoice pays for.
    period_end: datetime
    #: The invoice's own payment intent ("" when it has none).
    payment_intent: str = ""


@dataclass(frozen=True)
class InvoiceFailed(Fact):
    subscription: str
    attempt_count: int


class InvalidSignature(Exception):
    """A webhook whose signature does not verify (or is too old)."""
