"""Stripe events in, facts out: the anti-corruption layer of payments.

`translate` reads the raw body of a webhook (already signature-checked) and
returns the core.payments.facts.Fact it means, or None for an event type the
payments core does not act on. Anything that is not a well-formed event of a
type we read raises MalformedEvent, and only that: the webhook endpoint can
answer 400 without guarding against the rest of Python's exceptions.

Stripe's object shapes move with API versions; both shapes are read where
they differ in what we use:

- a subscription's `current_period_end` moved from the subscription to its
  items (`items.data[0].current_period_end`) in 2025-03-31.basil;
- an invoice's `subscription` moved to `parent.subscription_details
  .subscription`, and its `payment_intent` to `payments.data[].payment`, in
  the same version.

The builders below make the same events, in the shape of API_VERSION, for
the embedded simulator: what it sends goes through exactly the code that
reads Stripe's own.

Money is integer minor units throughout; currencies leave here upper case.
"""

from __future__ import annotations

import json
import secrets
import string
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from core.payments.facts import (
    ChargeRefunded,
    CheckoutCompleted,
    CheckoutExpired,
    CheckoutMode,
    DisputeOpened,
    Fact,
    InvoiceFailed,
    InvoicePaid,
    PaymentFailed,
    PaymentSucceeded,
    SubscriptionChanged,
    SubscriptionStatus,
)

#: The API version the builders' events are shaped like (Stripe stamps each
#: event with the version of the endpoint it is sent to).
API_VERSION = "2025-05-28.basil"
#: Where our checkout session's id travels in every object's metadata.
CHECKOUT_KEY = "checkout_session"


class MalformedEvent(ValueError):
    """A webhook body that is not a well-formed Stripe event of a type we read."""


# --- reading ------------------------------------------------------------------------------------

class _Object:
    """A JSON object of the event, with typed getters whose errors name the
    field's path (the message goes back to whoever sent the body)."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self._data = data
        self.path = path

    def _bad(self, key: str, what: str) -> MalformedEvent:
        return MalformedEvent(f"{self.path}.{key}: {what}")

    def opt_text(self, key: str) -> str:
        """A string, or "" when absent or null (Stripe's unset references)."""
        value = self._data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self._bad(key, "not a string")
        return value

    def text(self, key: str) -> str:
        value = self.opt_text(key)
        if not value:
            raise self._bad(key, "missing")
        return value

    def opt_integer(self, key: str) -> int | None:
        value = self._data.get(key)
        if value is None:
            return None
        # bool is an int to Python, never to JSON.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._bad(key, "not an integer")
        return value

    def amount(self, key: str) -> int:
        value = self.opt_integer(key)
        if value is None:
            raise self._bad(key, "missing")
        if value < 0:
            raise self._bad(key, "negative")
        return value

    def flag(self, key: str) -> bool:
        value = self._data.get(key)
        if not isinstance(value, bool):
            raise self._bad(key, "not a boolean")
        return value

    def when(self, key: str) -> datetime:
        """A Unix time (seconds) as an aware UTC datetime."""
        value = self.amount(key)
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise self._bad(key, "not a time") from None

    def currency(self) -> str:
        value = self.text("currency")
        if not (len(value) == 3 and value.isascii() and value.isalpha()):
            raise self._bad("currency", "not a currency code")
        return value.upper()

    def opt_child(self, key: str) -> _Object | None:
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._bad(key, "not an object")
        return _Object(value, f"{self.path}.{key}")

    def child(self, key: str) -> _Object:
        value = self.opt_child(key)
        if value is None:
            raise self._bad(key, "missing")
        return value

    def entries(self, key: str) -> list[_Object]:
        """The objects of the list object at `key` (`{"object": "list",
        "data": [...]}`); [] when the list is absent."""
        listing = self.opt_child(key)
        if listing is None:
            return []
        data = listing._data.get("data")
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise listing._bad("data", "not a list of objects")
        return [_Object(item, f"{listing.path}.data[{i}]") for i, item in enumerate(data)]

    def checkout_in_metadata(self) -> uuid.UUID | None:
        """Our checkout id from `metadata.checkout_session`; None when absent."""
        metadata = self.opt_child("metadata")
        if metadata is None:
            return None
        value = metadata.opt_text(CHECKOUT_KEY)
        return _checkout_uuid(value, f"{metadata.path}.{CHECKOUT_KEY}") if value else None


def _checkout_uuid(value: str, path: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise MalformedEvent(f"{path}: not a checkout id") from None


@dataclass(frozen=True)
class _Head:
    type: str
    event_id: str
    occurred_at: datetime


def _checkout_id(session: _Object) -> uuid.UUID:
    reference = session.opt_text("client_reference_id")
    if reference:
        return _checkout_uuid(reference, f"{session.path}.client_reference_id")
    from_metadata = session.checkout_in_metadata()
    if from_metadata is None:
        raise MalformedEvent(f"{session.path}: no checkout id")
    return from_metadata


def _checkout_completed(head: _Head, session: _Object) -> Fact | None:
    # A delayed payment method (SEPA debit, bank transfer...) completes the
    # session unpaid; async_payment_succeeded or _failed says how it ends.
    if session.opt_text("payment_status") == "unpaid":
        return None
    return CheckoutCompleted(
        event_id=head.event_id, occurred_at=head.occurred_at,
        checkout_id=_checkout_id(session),
        payment_intent=session.opt_text("payment_intent"),
        subscription=session.opt_text("subscription"),
        amount_minor=session.amount("amount_total"), currency=session.currency(),
        customer=session.opt_text("customer"))


def _checkout_expired(head: _Head, session: _Object) -> Fact:
    return CheckoutExpired(event_id=head.event_id, occurred_at=head.occurred_at,
                           checkout_id=_checkout_id(session))


def _payment_succeeded(head: _Head, intent: _Object) -> Fact:
    return PaymentSucceeded(
        event_id=head.event_id, occurred_at=head.occurred_at,
        payment_intent=intent.text("id"), checkout_id=intent.checkout_in_metadata(),
        amount_minor=intent.amount("amount"), currency=intent.currency())


def _payment_failed(head: _Head, intent: _Object) -> Fact:
    error = intent.opt_child("last_payment_error")
    return PaymentFailed(
        event_id=head.event_id, occurred_at=head.occurred_at,
        payment_intent=intent.text("id"), checkout_id=intent.checkout_in_metadata(),
        code=error.opt_text("code") if error is not None else "")


def _charge_refunded(head: _Head, charge: _Object) -> Fact:
    return ChargeRefunded(
        event_id=head.event_id, occurred_at=head.occurred_at,
        payment_intent=charge.text("payment_intent"),
        amount_refunded=charge.amount("amount_refunded"), full=charge.flag("refunded"))


def _dispute_opened(head: _Head, dispute: _Object) -> Fact:
    return DisputeOpened(
        event_id=head.event_id, occurred_at=head.occurred_at,
        payment_intent=dispute.text("payment_intent"), amount_minor=dispute.amount("amount"))


def _subscription_changed(head: _Head, subscription: _Object) -> Fact:
    status = subscription.text("status")
    try:
        known = SubscriptionStatus(status)
    except ValueError:
        raise MalformedEvent(f"{subscription.path}.status: unknown status") from None
    if subscription.opt_integer("current_period_end") is not None:  # before 2025-03-31
        period_end = subscription.when("current_period_end")
    else:
        items = subscription.entries("items")
        if not items:
            raise MalformedEvent(f"{subscription.path}: no current_period_end")
        period_end = items[0].when("current_period_end")
    return SubscriptionChanged(
        event_id=head.event_id, occurred_at=head.occurred_at,
        subscription=subscription.text("id"), checkout_id=subscription.checkout_in_metadata(),
        status=known, current_period_end=period_end,
        cancel_at_period_end=subscription.flag("cancel_at_period_end"),
        deleted=head.type == "customer.subscription.deleted")


def _invoice_subscription(invoice: _Object) -> str:
    direct = invoice.opt_text("subscription")  # before 2025-03-31
    if direct:
        return direct
    parent = invoice.opt_child("parent")
    details = parent.opt_child("subscription_details") if parent is not None else None
    if details is None:
        raise MalformedEvent(f"{invoice.path}: not a subscription's invoice")
    return details.text("subscription")


def _invoice_payment_intent(invoice: _Object) -> str:
    direct = invoice.opt_text("payment_intent")  # before 2025-03-31
    if direct:
        return direct
    for payment in invoice.entries("payments"):
        intent = payment.child("payment").opt_text("payment_intent")
        if intent:
            return intent
    return ""


def _invoice_paid(head: _Head, invoice: _Object) -> Fact:
    # The line's period is the one paid for; the invoice's own period_end is
    # the end of the *previous* period on a renewal.
    lines = invoice.entries("lines")
    period_end = (lines[0].child("period").when("end") if lines
                  else invoice.when("period_end"))
    return InvoicePaid(
        event_id=head.event_id, occurred_at=head.occurred_at,
        subscription=_invoice_subscription(invoice),
        amount_minor=invoice.amount("amount_paid"), currency=invoice.currency(),
        period_end=period_end, payment_intent=_invoice_payment_intent(invoice))


def _invoice_failed(head: _Head, invoice: _Object) -> Fact:
    return InvoiceFailed(
        event_id=head.event_id, occurred_at=head.occurred_at,
        subscription=_invoice_subscription(invoice),
        attempt_count=invoice.amount("attempt_count"))


#: Each event type we read: the kind of its `data.object`, and its reader.
_READERS: dict[str, tuple[str, Callable[[_Head, _Object], Fact | None]]] = {
    "checkout.session.completed": ("checkout.session", _checkout_completed),
    "checkout.session.async_payment_succeeded": ("checkout.session", _checkout_completed),
    "checkout.session.expired": ("checkout.session", _checkout_expired),
    "checkout.session.async_payment_failed": ("checkout.session", _checkout_expired),
    "payment_intent.succeeded": ("payment_intent", _payment_succeeded),
    "payment_intent.payment_failed": ("payment_intent", _payment_failed),
    "charge.refunded": ("charge", _charge_refunded),
    "charge.dispute.created": ("dispute", _dispute_opened),
    "customer.subscription.created": ("subscription", _subscription_changed),
    "customer.subscription.updated": ("subscription", _subscription_changed),
    "customer.subscription.deleted": ("subscription", _subscription_changed),
    "invoice.paid": ("invoice", _invoice_paid),
    "invoice.payment_succeeded": ("invoice", _invoice_paid),
    "invoice.payment_failed": ("invoice", _invoice_failed),
}


def translate(payload: bytes) -> Fact | None:
    """The fact a Stripe event's raw JSON body states; None for a type the
    payments core does not act on; MalformedEvent for anything malformed."""
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting
        raise MalformedEvent("not JSON") from None
    if not isinstance(document, dict):
        raise MalformedEvent("not a JSON object")
    event = _Object(document, "event")
    if event.opt_text("object") != "event":
        raise MalformedEvent("event.object: not an event")
    head = _Head(type=event.text("type"), event_id=event.text("id"),
                 occurred_at=event.when("created"))
    known = _READERS.get(head.type)
    if known is None:
        return None
    kind, reader = known
    obj = event.child("data").child("object")
    if obj.opt_text("object") != kind:
        raise MalformedEvent(f"{obj.path}.object: not a {kind}")
    return reader(head, obj)


# --- building (the embedded simulator) ----------------------------------------------------------

_ID_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """A fresh Stripe-looking id: `prefix_` and 24 base-62 characters."""
    return f"{prefix}_{''.join(secrets.choice(_ID_ALPHABET) for _ in range(24))}"


def _unix(at: datetime | None) -> int:
    return int((at or datetime.now(UTC)).timestamp())


def _event(kind: str, obj: dict[str, Any], *, event_id: str | None, created: int,
           previous_attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": event_id or new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def _metadata(checkout_id: uuid.UUID | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    metadata = dict(extra or {})
    if checkout_id is not None:
        metadata[CHECKOUT_KEY] = str(checkout_id)
    return metadata


def _list(url: str, data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": False, "total_count": len(data),
            "url": url}


def _session(*, checkout_id: uuid.UUID, session_id: str | None, mode: CheckoutMode,
             amount_minor: int, currency: str, status: str, payment_status: str,
             payment_intent: str, subscription: str, customer: str,
             metadata: Mapping[str, str] | None, created: int) -> dict[str, Any]:
    return {
        "id": session_id or new_id("cs_test"),
        "object": "checkout.session",
        "amount_subtotal": amount_minor,
        "amount_total": amount_minor,
        "client_reference_id": str(checkout_id),
        "created": created,
        "currency": currency.lower(),
        "customer": customer or None,
        "expires_at": created + 24 * 3600,
        "livemode": False,
        "metadata": _metadata(checkout_id, metadata),
        "mode": mode.value,
        "payment_intent": payment_intent or None,
        "payment_method_types": ["card"],
        "payment_status": payment_status,
        "status": status,
        "subscription": subscription or None,
        "url": None,
    }


def checkout_session_completed(
        *, checkout_id: uuid.UUID, mode: CheckoutMode, amount_minor: int, currency: str,
        payment_intent: str = "", subscription: str = "", customer: str = "",
        session_id: str | None = None, metadata: Mapping[str, str] | None = None,
        event_id: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    """The person paid on the checkout page (`payment_intent` in payment
    mode, `subscription` in subscription mode)."""
    created = _unix(at)
    return _event("checkout.session.completed", _session(
        checkout_id=checkout_id, session_id=session_id, mode=mode, amount_minor=amount_minor,
        currency=currency, status="complete", payment_status="paid",
        payment_intent=payment_intent, subscription=subscription, customer=customer,
        metadata=metadata, created=created), event_id=event_id, created=created)


def checkout_session_expired(
        *, checkout_id: uuid.UUID, mode: CheckoutMode, amount_minor: int, currency: str,
        session_id: str | None = None, metadata: Mapping[str, str] | None = None,
        event_id: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    """The checkout page closed without a payment."""
    created = _unix(at)
    return _event("checkout.session.expired", _session(
        checkout_id=checkout_id, session_id=session_id, mode=mode, amount_minor=amount_minor,
        currency=currency, status="expired", payment_status="unpaid", payment_intent="",
        subscription="", customer="", metadata=metadata, created=created),
        event_id=event_id, created=created)


def _payment_intent(*, payment_intent: str, amount_minor: int, currency: str,
                    checkout_id: uuid.UUID | None, metadata: Mapping[str, str] | None,
                    customer: str, status: str, charge: str | None,
                    last_payment_error: dict[str, Any] | None, created: int) -> dict[str, Any]:
    return {
        "id": payment_intent,
        "object": "payment_intent",
        "amount": amount_minor,
        "amount_received": amount_minor if status == "succeeded" else 0,
        "capture_method": "automatic_async",
        "created": created,
        "currency": currency.lower(),
        "customer": customer or None,
        "last_payment_error": last_payment_error,
        "latest_charge": charge,
        "livemode": False,
        "metadata": _metadata(checkout_id, metadata),
        "payment_method_types": ["card"],
        "status": status,
    }


def payment_intent_succeeded(
        *, payment_intent: str, amount_minor: int, currency: str,
        checkout_id: uuid.UUID | None = None, charge: str | None = None, customer: str = "",
        metadata: Mapping[str, str] | None = None, event_id: str | None = None,
        at: datetime | None = None) -> dict[str, Any]:
    created = _unix(at)
    return _event("payment_intent.succeeded", _payment_intent(
        payment_intent=payment_intent, amount_minor=amount_minor, currency=currency,
        checkout_id=checkout_id, metadata=metadata, customer=customer, status="succeeded",
        charge=charge or new_id("ch"), last_payment_error=None, created=created),
        event_id=event_id, created=created)


def payment_intent_payment_failed(
        *, payment_intent: str, amount_minor: int, currency: str,
        checkout_id: uuid.UUID | None = None, code: str = "card_declined",
        decline_code: str = "generic_decline", customer: str = "",
        metadata: Mapping[str, str] | None = None, event_id: str | None = None,
        at: datetime | None = None) -> dict[str, Any]:
    """A payment attempt was declined (`code` as Stripe's error codes)."""
    created = _unix(at)
    error = {"code": code, "decline_code": decline_code,
             "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
             "message": "Your card was declined.", "type": "card_error"}
    return _event("payment_intent.payment_failed", _payment_intent(
        payment_intent=payment_intent, amount_minor=amount_minor, currency=currency,
        checkout_id=checkout_id, metadata=metadata, customer=customer,
        status="requires_payment_method", charge=new_id("ch"), last_payment_error=error,
        created=created), event_id=event_id, created=created)


def charge_refunded(
        *, payment_intent: str, amount_minor: int, amount_refunded: int, currency: str,
        charge: str | None = None, customer: str = "", event_id: str | None = None,
        at: datetime | None = None) -> dict[str, Any]:
    """`amount_refunded` of a charge of `amount_minor` is refunded so far
    (all of it: a full refund)."""
    created = _unix(at)
    return _event("charge.refunded", {
        "id": charge or new_id("ch"),
        "object": "charge",
        "amount": amount_minor,
        "amount_captured": amount_minor,
        "amount_refunded": amount_refunded,
        "captured": True,
        "created": created,
        "currency": currency.lower(),
        "customer": customer or None,
        "livemode": False,
        "metadata": {},
        "paid": True,
        "payment_intent": payment_intent,
        "refunded": amount_refunded >= amount_minor,
        "status": "succeeded",
    }, event_id=event_id, created=created)


def charge_dispute_created(
        *, payment_intent: str, amount_minor: int, currency: str, charge: str | None = None,
        dispute_id: str | None = None, reason: str = "fraudulent",
        event_id: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    """The cardholder's bank disputes a charge (a chargeback)."""
    created = _unix(at)
    return _event("charge.dispute.created", {
        "id": dispute_id or new_id("dp"),
        "object": "dispute",
        "amount": amount_minor,
        "charge": charge or new_id("ch"),
        "created": created,
        "currency": currency.lower(),
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": payment_intent,
        "reason": reason,
        "status": "needs_response",
    }, event_id=event_id, created=created)


def subscription_event(
        kind: Literal["created", "updated", "deleted"], *, subscription: str,
        status: SubscriptionStatus, current_period_start: datetime,
        current_period_end: datetime, amount_minor: int, currency: str, interval: str,
        checkout_id: uuid.UUID | None = None, cancel_at_period_end: bool = False,
        customer: str = "", metadata: Mapping[str, str] | None = None,
        previous_attributes: dict[str, Any] | None = None, event_id: str | None = None,
        at: datetime | None = None) -> dict[str, Any]:
    """customer.subscription.<kind>. `previous_attributes` (what an update
    changed, with its old values) only goes with "updated"."""
    created = _unix(at)
    start, end = _unix(current_period_start), _unix(current_period_end)
    item = {
        "id": new_id("si"),
        "object": "subscription_item",
        "created": start,
        "current_period_end": end,
        "current_period_start": start,
        "metadata": {},
        "price": {
            "id": new_id("price"),
            "object": "price",
            "active": True,
            "currency": currency.lower(),
            "product": new_id("prod"),
            "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"},
            "type": "recurring",
            "unit_amount": amount_minor,
        },
        "quantity": 1,
        "subscription": subscription,
    }
    ending = cancel_at_period_end or kind == "deleted"
    return _event(f"customer.subscription.{kind}", {
        "id": subscription,
        "object": "subscription",
        "billing_cycle_anchor": start,
        "cancel_at": end if cancel_at_period_end else None,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": created if ending else None,
        "collection_method": "charge_automatically",
        "created": start,
        "currency": currency.lower(),
        "customer": customer or new_id("cus"),
        "ended_at": created if kind == "deleted" else None,
        "items": _list(f"/v1/subscription_items?subscription={subscription}", [item]),
        "livemode": False,
        "metadata": _metadata(checkout_id, metadata),
        "start_date": start,
        "status": status.value,
    }, event_id=event_id, created=created,
        previous_attributes=(previous_attributes or {}) if kind == "updated" else None)


def _invoice(*, subscription: str, amount_minor: int, currency: str,
             period_start: datetime, period_end: datetime, paid: bool, attempt_count: int,
             payment_intent: str, customer: str, invoice_id: str | None,
             billing_reason: str, created: int) -> dict[str, Any]:
    invoice = invoice_id or new_id("in")
    start, end = _unix(period_start), _unix(period_end)
    line = {
        "id": new_id("il"),
        "object": "line_item",
        "amount": amount_minor,
        "currency": currency.lower(),
        "invoice": invoice,
        "livemode": False,
        "metadata": {},
        "parent": {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None, "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": subscription, "subscription_item": new_id("si")},
            "type": "subscription_item_details",
        },
        "period": {"end": end, "start": start},
        "quantity": 1,
    }
    payments = [] if not payment_intent else [{
        "id": new_id("inpay"),
        "object": "invoice_payment",
        "amount_paid": amount_minor if paid else None,
        "amount_requested": amount_minor,
        "currency": currency.lower(),
        "invoice": invoice,
        "is_default": True,
        "livemode": False,
        "payment": {"payment_intent": payment_intent, "type": "payment_intent"},
        "status": "paid" if paid else "open",
    }]
    return {
        "id": invoice,
        "object": "invoice",
        "amount_due": amount_minor,
        "amount_paid": amount_minor if paid else 0,
        "amount_remaining": 0 if paid else amount_minor,
        "attempt_count": attempt_count,
        "attempted": True,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency.lower(),
        "customer": customer or new_id("cus"),
        "lines": _list(f"/v1/invoices/{invoice}/lines", [line]),
        "livemode": False,
        "metadata": {},
        "parent": {
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription},
            "type": "subscription_details",
        },
        "payments": _list(f"/v1/invoice_payments?invoice={invoice}", payments),
        # Stripe's quirk, kept: on an invoice these are the period *before*
        # the line's (both the creation time on a subscription's first invoice).
        "period_end": start,
        "period_start": start,
        "status": "paid" if paid else "open",
        "total": amount_minor,
    }


def invoice_paid(
        *, subscription: str, amount_minor: int, currency: str, period_start: datetime,
        period_end: datetime, payment_intent: str = "", customer: str = "",
        invoice_id: str | None = None, billing_reason: str = "subscription_cycle",
        event_id: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    """A subscription's invoice for [period_start, period_end) is paid."""
    created = _unix(at)
    return _event("invoice.paid", _invoice(
        subscription=subscription, amount_minor=amount_minor, currency=currency,
        period_start=period_start, period_end=period_end, paid=True, attempt_count=1,
        payment_intent=payment_intent, customer=customer, invoice_id=invoice_id,
        billing_reason=billing_reason, created=created), event_id=event_id, created=created)


def invoice_payment_failed(
        *, subscription: str, amount_minor: int, currency: str, period_start: datetime,
        period_end: datetime, attempt_count: int = 1, payment_intent: str = "",
        customer: str = "", invoice_id: str | None = None,
        billing_reason: str = "subscription_cycle", event_id: str | None = None,
        at: datetime | None = None) -> dict[str, Any]:
    """Collecting a subscription's invoice failed (attempt `attempt_count`)."""
    created = _unix(at)
    return _event("invoice.payment_failed", _invoice(
        subscription=subscription, amount_minor=amount_minor, currency=currency,
        period_start=period_start, period_end=period_end, paid=False,
        attempt_count=attempt_count, payment_intent=payment_intent, customer=customer,
        invoice_id=invoice_id, billing_reason=billing_reason, created=created),
        event_id=event_id, created=created)
