"""Stripe events into facts (adapters/stripe/events.py): every builder's
event reads back as the fact it means, events written the way Stripe really
sends them (old and new API versions) read as expected, and malformed
bodies raise MalformedEvent and nothing else."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.stripe import events
from adapters.stripe.events import MalformedEvent, translate
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

CHECKOUT = uuid.UUID("0190a000-0000-7000-8000-00000000c0de")
AT = datetime(2025, 6, 1, 12, 30, 5, tzinfo=UTC)
PERIOD_START = datetime(2025, 6, 1, 12, 30, 0, tzinfo=UTC)
PERIOD_END = datetime(2025, 7, 1, 12, 30, 0, tzinfo=UTC)


def body(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def read(event: dict[str, Any]) -> Fact | None:
    return translate(body(event))


# --- every builder reads back as its fact -------------------------------------------------------

def test_checkout_session_completed_payment_mode() -> None:
    event = events.checkout_session_completed(
        checkout_id=CHECKOUT, mode=CheckoutMode.PAYMENT, amount_minor=499, currency="EUR",
        payment_intent="pi_1", customer="cus_1", metadata={"pack": "p1"},
        event_id="evt_1", at=AT)

    assert read(event) == CheckoutCompleted(
        event_id="evt_1", occurred_at=AT, checkout_id=CHECKOUT, payment_intent="pi_1",
        subscription="", amount_minor=499, currency="EUR", customer="cus_1")
    session = event["data"]["object"]
    assert session["currency"] == "eur"
    assert session["metadata"] == {"pack": "p1", "checkout_session": str(CHECKOUT)}


def test_checkout_session_completed_subscription_mode() -> None:
    event = events.checkout_session_completed(
        checkout_id=CHECKOUT, mode=CheckoutMode.SUBSCRIPTION, amount_minor=999,
        currency="usd", subscription="sub_1", session_id="cs_sim_x", event_id="evt_2", at=AT)

    assert read(event) == CheckoutCompleted(
        event_id="evt_2", occurred_at=AT, checkout_id=CHECKOUT, payment_intent="",
        subscription="sub_1", amount_minor=999, currency="USD", customer="")
    assert event["data"]["object"]["id"] == "cs_sim_x"


def test_checkout_session_expired() -> None:
    event = events.checkout_session_expired(
        checkout_id=CHECKOUT, mode=CheckoutMode.PAYMENT, amount_minor=499, currency="EUR",
        event_id="evt_3", at=AT)

    assert read(event) == CheckoutExpired(event_id="evt_3", occurred_at=AT,
                                          checkout_id=CHECKOUT)


def test_payment_intent_succeeded() -> None:
    event = events.payment_intent_succeeded(
        payment_intent="pi_1", amount_minor=499, currency="EUR", checkout_id=CHECKOUT,
        event_id="evt_4", at=AT)

    assert read(event) == PaymentSucceeded(
        event_id="evt_4", occurred_at=AT, payment_intent="pi_1", checkout_id=CHECKOUT,
        amount_minor=499, currency="EUR")


def test_payment_intent_succeeded_without_our_metadata() -> None:
    event = events.payment_intent_succeeded(payment_intent="pi_1", amount_minor=1,
                                            currency="EUR", at=AT)

    fact = read(event)
    assert isinstance(fact, PaymentSucceeded)
    assert fact.checkout_id is None


def test_payment_intent_payment_failed() -> None:
    event = events.payment_intent_payment_failed(
        payment_intent="pi_1", amount_minor=499, currency="EUR", checkout_id=CHECKOUT,
        code="expired_card", event_id="evt_5", at=AT)

    assert read(event) == PaymentFailed(
        event_id="evt_5", occurred_at=AT, payment_intent="pi_1", checkout_id=CHECKOUT,
        code="expired_card")


@pytest.mark.parametrize(("refunded", "full"), [(499, True), (200, False)])
def test_charge_refunded(refunded: int, full: bool) -> None:
    event = events.charge_refunded(payment_intent="pi_1", amount_minor=499,
                                   amount_refunded=refunded, currency="EUR",
                                   event_id="evt_6", at=AT)

    assert read(event) == ChargeRefunded(event_id="evt_6", occurred_at=AT,
                                         payment_intent="pi_1", amount_refunded=refunded,
                                         full=full)


def test_charge_dispute_created() -> None:
    event = events.charge_dispute_created(payment_intent="pi_1", amount_minor=499,
                                          currency="EUR", event_id="evt_7", at=AT)

    assert read(event) == DisputeOpened(event_id="evt_7", occurred_at=AT,
                                        payment_intent="pi_1", amount_minor=499)
    assert event["data"]["object"]["id"].startswith("dp_")


@pytest.mark.parametrize(("kind", "status", "cancel_at_period_end"), [
    ("created", SubscriptionStatus.ACTIVE, False),
    ("updated", SubscriptionStatus.ACTIVE, True),
    ("updated", SubscriptionStatus.PAST_DUE, False),
    ("deleted", SubscriptionStatus.CANCELED, False),
])
def test_subscription_event(kind: Any, status: SubscriptionStatus,
                            cancel_at_period_end: bool) -> None:
    event = events.subscription_event(
        kind, subscription="sub_1", status=status, current_period_start=PERIOD_START,
        current_period_end=PERIOD_END, amount_minor=999, currency="EUR", interval="month",
        checkout_id=CHECKOUT, cancel_at_period_end=cancel_at_period_end,
        previous_attributes={"cancel_at_period_end": False} if kind == "updated" else None,
        event_id="evt_8", at=AT)

    assert read(event) == SubscriptionChanged(
        event_id="evt_8", occurred_at=AT, subscription="sub_1", checkout_id=CHECKOUT,
        status=status, current_period_end=PERIOD_END,
        cancel_at_period_end=cancel_at_period_end, deleted=kind == "deleted")
    assert event["type"] == f"customer.subscription.{kind}"
    assert ("previous_attributes" in event["data"]) == (kind == "updated")
    # The builders speak API_VERSION: the period lives on the item only.
    assert "current_period_end" not in event["data"]["object"]


def test_invoice_paid() -> None:
    event = events.invoice_paid(
        subscription="sub_1", amount_minor=999, currency="EUR", period_start=PERIOD_START,
        period_end=PERIOD_END, payment_intent="pi_9", event_id="evt_9", at=AT)

    assert read(event) == InvoicePaid(
        event_id="evt_9", occurred_at=AT, subscription="sub_1", amount_minor=999,
        currency="EUR", period_end=PERIOD_END, payment_intent="pi_9")
    invoice = event["data"]["object"]
    assert "subscription" not in invoice and "payment_intent" not in invoice


def test_invoice_paid_without_a_payment_intent() -> None:
    event = events.invoice_paid(subscription="sub_1", amount_minor=0, currency="EUR",
                                period_start=PERIOD_START, period_end=PERIOD_END, at=AT)

    fact = read(event)
    assert isinstance(fact, InvoicePaid)
    assert fact.payment_intent == ""


def test_invoice_payment_failed() -> None:
    event = events.invoice_payment_failed(
        subscription="sub_1", amount_minor=999, currency="EUR", period_start=PERIOD_START,
        period_end=PERIOD_END, attempt_count=3, event_id="evt_10", at=AT)

    assert read(event) == InvoiceFailed(event_id="evt_10", occurred_at=AT,
                                        subscription="sub_1", attempt_count=3)


def test_builders_make_stripe_shaped_envelopes() -> None:
    event = events.charge_dispute_created(payment_intent="pi_1", amount_minor=1,
                                          currency="EUR")

    assert event["object"] == "event"
    assert re.fullmatch(r"evt_[A-Za-z0-9]{24}", event["id"])
    assert event["api_version"] == events.API_VERSION
    assert event["livemode"] is False
    assert isinstance(event["pending_webhooks"], int)
    assert event["request"] == {"id": None, "idempotency_key": None}
    assert abs(event["created"] - datetime.now(UTC).timestamp()) < 5
    assert events.new_id("evt") != events.new_id("evt")


# --- events as Stripe sends them ----------------------------------------------------------------

# checkout.session.completed, payment mode, API 2024-06-20 (trimmed of the
# fields we do not read, nothing else changed).
STRIPE_CHECKOUT_COMPLETED = b"""{
  "id": "evt_MFLZDe1f8rESQedUStPKR0Cs",
  "object": "event",
  "api_version": "2024-06-20",
  "created": 1720800512,
  "data": {
    "object": {
      "id": "cs_test_Bd0Kh8oOOL8dKLzdocJ2isAjIhKtJ0RlgLKOmxgJTeKdNnFRIBXuDL7Dxt",
      "object": "checkout.session",
      "after_expiration": null,
      "allow_promotion_codes": null,
      "amount_subtotal": 1499,
      "amount_total": 1499,
      "automatic_tax": {"enabled": false, "liability": null, "status": null},
      "billing_address_collection": null,
      "cancel_url": "https://app.waqup.test/checkout/cancel",
      "client_reference_id": "0190a000-0000-7000-8000-00000000c0de",
      "client_secret": null,
      "consent": null,
      "created": 1720800420,
      "currency": "eur",
      "custom_fields": [],
      "customer": null,
      "customer_creation": "if_required",
      "customer_details": {
        "address": {"city": null, "country": "FR", "line1": null, "line2": null,
                    "postal_code": null, "state": null},
        "email": "anna@example.com",
        "name": "Anna Test",
        "phone": null,
        "tax_exempt": "none",
        "tax_ids": []
      },
      "customer_email": null,
      "expires_at": 1720886820,
      "invoice": null,
      "livemode": false,
      "locale": null,
      "metadata": {"checkout_session": "0190a000-0000-7000-8000-00000000c0de",
                   "pack": "0190a000-0000-7000-8000-0000000000bb"},
      "mode": "payment",
      "payment_intent": "pi_w9xfogoEmvnEN5N1aE6PwZPf",
      "payment_link": null,
      "payment_method_collection": "if_required",
      "payment_method_types": ["card"],
      "payment_status": "paid",
      "status": "complete",
      "submit_type": null,
      "subscription": null,
      "success_url": "https://app.waqup.test/checkout/done",
      "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
      "ui_mode": "hosted",
      "url": null
    }
  },
  "livemode": false,
  "pending_webhooks": 2,
  "request": {"id": null, "idempotency_key": null},
  "type": "checkout.session.completed"
}"""


def test_a_real_checkout_session_completed() -> None:
    assert translate(STRIPE_CHECKOUT_COMPLETED) == CheckoutCompleted(
        event_id="evt_MFLZDe1f8rESQedUStPKR0Cs",
        occurred_at=datetime.fromtimestamp(1720800512, UTC), checkout_id=CHECKOUT,
        payment_intent="pi_w9xfogoEmvnEN5N1aE6PwZPf", subscription="", amount_minor=1499,
        currency="EUR", customer="")


def _edited(raw: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    event = json.loads(raw)
    edit(event["data"]["object"])
    return json.dumps(event).encode()


def test_the_checkout_id_may_come_from_metadata_alone() -> None:
    def no_reference(session: dict[str, Any]) -> None:
        session["client_reference_id"] = None

    fact = translate(_edited(STRIPE_CHECKOUT_COMPLETED, no_reference))
    assert isinstance(fact, CheckoutCompleted)
    assert fact.checkout_id == CHECKOUT


def test_a_session_completed_unpaid_waits_for_the_async_payment() -> None:
    def unpaid(session: dict[str, Any]) -> None:
        session["payment_status"] = "unpaid"

    assert translate(_edited(STRIPE_CHECKOUT_COMPLETED, unpaid)) is None


def test_async_payment_succeeded_completes_and_failed_expires() -> None:
    event = json.loads(STRIPE_CHECKOUT_COMPLETED)
    event["type"] = "checkout.session.async_payment_succeeded"
    assert isinstance(read(event), CheckoutCompleted)
    event["type"] = "checkout.session.async_payment_failed"
    event["data"]["object"]["payment_status"] = "unpaid"
    assert read(event) == CheckoutExpired(
        event_id="evt_MFLZDe1f8rESQedUStPKR0Cs",
        occurred_at=datetime.fromtimestamp(1720800512, UTC), checkout_id=CHECKOUT)


# customer.subscription.updated after a cancellation at period end, API
# 2025-03-31.basil and later: current_period_* only on the items.
STRIPE_SUBSCRIPTION_UPDATED_BASIL = b"""{
  "id": "evt_ljoQoaF1LlqsajAIxNKu8iS2",
  "object": "event",
  "api_version": "2025-04-30.basil",
  "created": 1748532000,
  "data": {
    "object": {
      "id": "sub_fZqfM2oeq3hDavJA76rNicHT",
      "object": "subscription",
      "application": null,
      "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null},
      "billing_cycle_anchor": 1748424115,
      "billing_cycle_anchor_config": null,
      "cancel_at": 1751016115,
      "cancel_at_period_end": true,
      "canceled_at": 1748531999,
      "cancellation_details": {"comment": null, "feedback": null,
                               "reason": "cancellation_requested"},
      "collection_method": "charge_automatically",
      "created": 1748424115,
      "currency": "eur",
      "customer": "cus_c9QeWJKY40uvSw",
      "days_until_due": null,
      "default_payment_method": "pm_8fUkkibjL5DZPjN0MEQ7wjJJ",
      "discounts": [],
      "ended_at": null,
      "items": {
        "object": "list",
        "data": [
          {
            "id": "si_DoV8gz4FkQ1okT",
            "object": "subscription_item",
            "created": 1748424115,
            "current_period_end": 1751016115,
            "current_period_start": 1748424115,
            "discounts": [],
            "metadata": {},
            "price": {
              "id": "price_IjHGb3CXlMaXZjljENUhJduR",
              "object": "price",
              "active": false,
              "billing_scheme": "per_unit",
              "currency": "eur",
              "product": "prod_HHJEYXg4Jdpmrc",
              "recurring": {"interval": "month", "interval_count": 1,
                            "meter": null, "usage_type": "licensed"},
              "type": "recurring",
              "unit_amount": 999
            },
            "quantity": 1,
            "subscription": "sub_fZqfM2oeq3hDavJA76rNicHT"
          }
        ],
        "has_more": false,
        "total_count": 1,
        "url": "/v1/subscription_items?subscription=sub_fZqfM2oeq3hDavJA76rNicHT"
      },
      "latest_invoice": "in_qHx6kwXoIIXGvOoNZYW2mZp0",
      "livemode": false,
      "metadata": {"checkout_session": "0190a000-0000-7000-8000-00000000c0de"},
      "start_date": 1748424115,
      "status": "active",
      "trial_end": null
    },
    "previous_attributes": {
      "cancel_at": null,
      "cancel_at_period_end": false,
      "canceled_at": null,
      "cancellation_details": {"reason": null}
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {"id": "req_MGmSrCGIZEG8pS",
              "idempotency_key": "5d7f8a54-1c61-4b9e-9b53-0cf1e2b0f7aa"},
  "type": "customer.subscription.updated"
}"""


def test_a_real_subscription_update_in_the_new_shape() -> None:
    assert translate(STRIPE_SUBSCRIPTION_UPDATED_BASIL) == SubscriptionChanged(
        event_id="evt_ljoQoaF1LlqsajAIxNKu8iS2",
        occurred_at=datetime.fromtimestamp(1748532000, UTC),
        subscription="sub_fZqfM2oeq3hDavJA76rNicHT", checkout_id=CHECKOUT,
        status=SubscriptionStatus.ACTIVE,
        current_period_end=datetime.fromtimestamp(1751016115, UTC),
        cancel_at_period_end=True, deleted=False)


# customer.subscription.deleted, API 2024-06-20: current_period_end on the
# subscription itself (and not on its items).
STRIPE_SUBSCRIPTION_DELETED_OLD = b"""{
  "id": "evt_Ty4Qwb8DwkNhFdnXsiVpzz63",
  "object": "event",
  "api_version": "2024-06-20",
  "created": 1737729717,
  "data": {
    "object": {
      "id": "sub_9eh6Yo4gfqrc5XlrWi0B26R0",
      "object": "subscription",
      "cancel_at": null,
      "cancel_at_period_end": false,
      "canceled_at": 1737729710,
      "collection_method": "charge_automatically",
      "created": 1737646858,
      "currency": "usd",
      "current_period_end": 1745422858,
      "current_period_start": 1737646858,
      "customer": "cus_CsMehGAkWvj7FA",
      "ended_at": 1737729710,
      "items": {
        "object": "list",
        "data": [
          {
            "id": "si_h5Xj8TPQxjq4i9",
            "object": "subscription_item",
            "created": 1737646859,
            "metadata": {},
            "price": {"id": "price_ibaZUPgHV7iB3m03nbqnsGpW", "object": "price",
                      "currency": "usd", "unit_amount": 5991,
                      "recurring": {"interval": "month", "interval_count": 3}},
            "quantity": 1,
            "subscription": "sub_9eh6Yo4gfqrc5XlrWi0B26R0"
          }
        ],
        "has_more": false,
        "total_count": 1,
        "url": "/v1/subscription_items?subscription=sub_9eh6Yo4gfqrc5XlrWi0B26R0"
      },
      "livemode": false,
      "metadata": {},
      "plan": {"id": "price_ibaZUPgHV7iB3m03nbqnsGpW", "object": "plan", "amount": 5991,
               "currency": "usd", "interval": "month", "interval_count": 3},
      "quantity": 1,
      "start_date": 1737646858,
      "status": "canceled"
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {"id": "req_H4487q7J58m1Ci",
              "idempotency_key": "0f8b1c5e-7a3b-4f55-9a0e-21d1e6a1d2c3"},
  "type": "customer.subscription.deleted"
}"""


def test_a_real_subscription_deletion_in_the_old_shape() -> None:
    assert translate(STRIPE_SUBSCRIPTION_DELETED_OLD) == SubscriptionChanged(
        event_id="evt_Ty4Qwb8DwkNhFdnXsiVpzz63",
        occurred_at=datetime.fromtimestamp(1737729717, UTC),
        subscription="sub_9eh6Yo4gfqrc5XlrWi0B26R0", checkout_id=None,
        status=SubscriptionStatus.CANCELED,
        current_period_end=datetime.fromtimestamp(1745422858, UTC),
        cancel_at_period_end=False, deleted=True)


# invoice.paid on a renewal, API 2024-06-20: `subscription` and
# `payment_intent` at the top; the invoice's own period is the previous one.
STRIPE_INVOICE_PAID_OLD = b"""{
  "id": "evt_G8NPRVdD53X83RZJzzzzgEOz",
  "object": "event",
  "api_version": "2024-06-20",
  "created": 1757955595,
  "data": {
    "object": {
      "id": "in_zVZomHFwUbbYrEqmSM9wCZ7U",
      "object": "invoice",
      "account_country": "FR",
      "amount_due": 999,
      "amount_paid": 999,
      "amount_remaining": 0,
      "attempt_count": 1,
      "attempted": true,
      "billing_reason": "subscription_cycle",
      "charge": "ch_u8jzPde0IgxLd6GncfBAepfJ",
      "collection_method": "charge_automatically",
      "created": 1757951992,
      "currency": "eur",
      "customer": "cus_pYlSXpfKtHF4vU",
      "lines": {
        "object": "list",
        "data": [
          {
            "id": "il_yjOq9wMxEhh2FDEEtfjgVvVq",
            "object": "line_item",
            "amount": 999,
            "currency": "eur",
            "description": "1 \\u00d7 waQup Premium (at \\u20ac9.99 / month)",
            "period": {"end": 1760543992, "start": 1757951992},
            "plan": {"id": "price_ibaZUPgHV7iB3m03nbqnsGpW", "object": "plan",
                     "amount": 999, "interval": "month"},
            "proration": false,
            "quantity": 1,
            "subscription": "sub_BGzvAmwufUxbvJDCTbyvHNsG",
            "subscription_item": "si_AhzCueQpBenQtY",
            "type": "subscription"
          }
        ],
        "has_more": false,
        "total_count": 1,
        "url": "/v1/invoices/in_zVZomHFwUbbYrEqmSM9wCZ7U/lines"
      },
      "livemode": false,
      "metadata": {},
      "paid": true,
      "payment_intent": "pi_1Qh6yYTWmE4lBYOvfZ8UzDzV",
      "period_end": 1757951992,
      "period_start": 1755273592,
      "status": "paid",
      "subscription": "sub_BGzvAmwufUxbvJDCTbyvHNsG",
      "subscription_details": {"metadata": {}},
      "total": 999
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {"id": null, "idempotency_key": null},
  "type": "invoice.paid"
}"""


def test_a_real_renewal_invoice_in_the_old_shape() -> None:
    assert translate(STRIPE_INVOICE_PAID_OLD) == InvoicePaid(
        event_id="evt_G8NPRVdD53X83RZJzzzzgEOz",
        occurred_at=datetime.fromtimestamp(1757955595, UTC),
        subscription="sub_BGzvAmwufUxbvJDCTbyvHNsG", amount_minor=999, currency="EUR",
        period_end=datetime.fromtimestamp(1760543992, UTC),
        payment_intent="pi_1Qh6yYTWmE4lBYOvfZ8UzDzV")


def test_an_invoice_without_lines_falls_back_to_its_period_end() -> None:
    def no_lines(invoice: dict[str, Any]) -> None:
        del invoice["lines"]

    fact = translate(_edited(STRIPE_INVOICE_PAID_OLD, no_lines))
    assert isinstance(fact, InvoicePaid)
    assert fact.period_end == datetime.fromtimestamp(1757951992, UTC)


# invoice.payment_succeeded on a first invoice, API 2025-04-30.basil: the
# subscription under `parent`, no payment_intent (payments not expanded).
STRIPE_INVOICE_SUCCEEDED_BASIL = b"""{
  "id": "evt_FfkCzJr4i0B3JrTAwR4y9ojf",
  "object": "event",
  "api_version": "2025-04-30.basil",
  "created": 1748424118,
  "data": {
    "object": {
      "id": "in_E1SkHbn88HxjSI6bWHtP3fS2",
      "object": "invoice",
      "account_country": "DE",
      "amount_due": 45000,
      "amount_overpaid": 0,
      "amount_paid": 45000,
      "amount_remaining": 0,
      "attempt_count": 1,
      "attempted": true,
      "billing_reason": "subscription_create",
      "collection_method": "charge_automatically",
      "created": 1748424115,
      "currency": "ron",
      "customer": "cus_c9QeWJKY40uvSw",
      "effective_at": 1748424115,
      "lines": {
        "object": "list",
        "data": [
          {
            "id": "il_dmenCkhvMdgaKjIg8xNbe3nN",
            "object": "line_item",
            "amount": 45000,
            "currency": "ron",
            "description": "1 \\u00d7 waQup Premium (at RON 450.00 / year)",
            "invoice": "in_E1SkHbn88HxjSI6bWHtP3fS2",
            "livemode": false,
            "metadata": {"checkout_session": "0190a000-0000-7000-8000-00000000c0de"},
            "parent": {
              "invoice_item_details": null,
              "subscription_item_details": {
                "invoice_item": null,
                "proration": false,
                "proration_details": {"credited_items": null},
                "subscription": "sub_8qzjI6GKFSufrdZSlB5er8bO",
                "subscription_item": "si_DoV8gz4FkQ1okT"
              },
              "type": "subscription_item_details"
            },
            "period": {"end": 1779960115, "start": 1748424115},
            "pricing": {"price_details": {"price": "price_LuqIA1id6Vw5DQL05HA064Gi",
                                          "product": "prod_HHJEYXg4Jdpmrc"},
                        "type": "price_details", "unit_amount_decimal": "45000"},
            "quantity": 1
          }
        ],
        "has_more": false,
        "total_count": 1,
        "url": "/v1/invoices/in_E1SkHbn88HxjSI6bWHtP3fS2/lines"
      },
      "livemode": false,
      "metadata": {},
      "parent": {
        "quote_details": null,
        "subscription_details": {
          "metadata": {"checkout_session": "0190a000-0000-7000-8000-00000000c0de"},
          "subscription": "sub_8qzjI6GKFSufrdZSlB5er8bO"
        },
        "type": "subscription_details"
      },
      "period_end": 1748424115,
      "period_start": 1748424115,
      "status": "paid",
      "status_transitions": {"finalized_at": 1748424115, "marked_uncollectible_at": null,
                             "paid_at": 1748424117, "voided_at": null},
      "total": 45000
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {"id": "req_XgGCJbW56eCuNG", "idempotency_key": "stripe-node-retry-0b0a1ed7"},
  "type": "invoice.payment_succeeded"
}"""


def test_a_real_first_invoice_in_the_new_shape() -> None:
    assert translate(STRIPE_INVOICE_SUCCEEDED_BASIL) == InvoicePaid(
        event_id="evt_FfkCzJr4i0B3JrTAwR4y9ojf",
        occurred_at=datetime.fromtimestamp(1748424118, UTC),
        subscription="sub_8qzjI6GKFSufrdZSlB5er8bO", amount_minor=45000, currency="RON",
        period_end=datetime.fromtimestamp(1779960115, UTC), payment_intent="")


def test_an_invoice_payment_failure_in_the_new_shape() -> None:
    event = json.loads(STRIPE_INVOICE_SUCCEEDED_BASIL)
    event["type"] = "invoice.payment_failed"
    event["data"]["object"].update(amount_paid=0, attempt_count=2, status="open")

    assert read(event) == InvoiceFailed(
        event_id="evt_FfkCzJr4i0B3JrTAwR4y9ojf",
        occurred_at=datetime.fromtimestamp(1748424118, UTC),
        subscription="sub_8qzjI6GKFSufrdZSlB5er8bO", attempt_count=2)


@pytest.mark.parametrize("kind", ["customer.created", "invoice.created", "charge.succeeded",
                                  "payment_intent.created", "checkout.session.unknown_future"])
def test_other_event_types_are_none(kind: str) -> None:
    event = json.loads(STRIPE_CHECKOUT_COMPLETED)
    event["type"] = kind

    assert read(event) is None


# --- malformed bodies ---------------------------------------------------------------------------

def _payment() -> dict[str, Any]:
    return events.payment_intent_succeeded(payment_intent="pi_1", amount_minor=499,
                                           currency="EUR", checkout_id=CHECKOUT, at=AT)


def _session() -> dict[str, Any]:
    return events.checkout_session_completed(
        checkout_id=CHECKOUT, mode=CheckoutMode.PAYMENT, amount_minor=499, currency="EUR",
        payment_intent="pi_1", at=AT)


def _set(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`event` with the value at dotted `path` replaced (or removed, for ...)."""
    *parents, last = path.split(".")
    target: Any = event
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return event


RAW_MALFORMED = {
    "empty": b"",
    "not json": b"{not json",
    "bad utf-8": b'{"id": "\xff"}',
    "a list": b"[]",
    "a string": b'"event"',
    "a number": b"42",
    "null": b"null",
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "an integer of 5000 digits": b'{"created": ' + b"9" * 5000 + b"}",
}


@pytest.mark.parametrize("raw", RAW_MALFORMED.values(), ids=RAW_MALFORMED.keys())
def test_bodies_that_are_not_json_objects(raw: bytes) -> None:
    with pytest.raises(MalformedEvent):
        translate(raw)


EDITS: dict[str, tuple[Callable[[], dict[str, Any]], str, Any]] = {
    "not an event": (_payment, "object", "payment_intent"),
    "object missing": (_payment, "object", ...),
    "id missing": (_payment, "id", ...),
    "id a number": (_payment, "id", 12),
    "type missing": (_payment, "type", ...),
    "type null": (_payment, "type", None),
    "created missing": (_payment, "created", ...),
    "created a string": (_payment, "created", "1748424118"),
    "created a float": (_payment, "created", 1748424118.5),
    "created a boolean": (_payment, "created", True),
    "created negative": (_payment, "created", -1),
    "created beyond any calendar": (_payment, "created", 10**20),
    "data missing": (_payment, "data", ...),
    "data a list": (_payment, "data", []),
    "data.object missing": (_payment, "data.object", ...),
    "data.object a string": (_payment, "data.object", "pi_1"),
    "data.object of another kind": (_payment, "data.object.object", "charge"),
    "amount a string": (_payment, "data.object.amount", "499"),
    "amount a float": (_payment, "data.object.amount", 4.99),
    "amount a boolean": (_payment, "data.object.amount", True),
    "amount negative": (_payment, "data.object.amount", -499),
    "amount missing": (_payment, "data.object.amount", ...),
    "currency missing": (_payment, "data.object.currency", ...),
    "currency not a code": (_payment, "data.object.currency", "euro"),
    "currency not ascii": (_payment, "data.object.currency", "€ur"),
    "payment intent id missing": (_payment, "data.object.id", ...),
    "metadata a list": (_payment, "data.object.metadata", []),
    "metadata checkout not a uuid": (_payment, "data.object.metadata.checkout_session", "x"),
    "metadata checkout a number": (_payment, "data.object.metadata.checkout_session", 7),
    "client_reference_id not a uuid": (_session, "data.object.client_reference_id", "42"),
    "client_reference_id a number": (_session, "data.object.client_reference_id", 42),
    "amount_total null": (_session, "data.object.amount_total", None),
    "payment_intent expanded": (_session, "data.object.payment_intent", {"id": "pi_1"}),
}


@pytest.mark.parametrize(("make", "path", "value"), EDITS.values(), ids=EDITS.keys())
def test_malformed_fields(make: Callable[[], dict[str, Any]], path: str, value: Any) -> None:
    event = _set(make(), path, value)

    with pytest.raises(MalformedEvent):
        read(event)


def test_a_checkout_session_without_our_checkout_id() -> None:
    event = _set(_session(), "data.object.client_reference_id", None)
    _set(event, "data.object.metadata", {})

    with pytest.raises(MalformedEvent, match="no checkout id"):
        read(event)


def _subscription() -> dict[str, Any]:
    return events.subscription_event(
        "updated", subscription="sub_1", status=SubscriptionStatus.ACTIVE,
        current_period_start=PERIOD_START, current_period_end=PERIOD_END, amount_minor=999,
        currency="EUR", interval="month", at=AT)


def _invoice() -> dict[str, Any]:
    return events.invoice_paid(subscription="sub_1", amount_minor=999, currency="EUR",
                               period_start=PERIOD_START, period_end=PERIOD_END, at=AT)


MORE_EDITS: dict[str, tuple[Callable[[], dict[str, Any]], str, Any]] = {
    "unknown subscription status": (_subscription, "data.object.status", "frozen"),
    "subscription without a period end": (_subscription, "data.object.items.data", []),
    "subscription items not a list": (_subscription, "data.object.items.data", {}),
    "subscription item a string": (_subscription, "data.object.items.data", ["si_1"]),
    "cancel_at_period_end a string": (_subscription, "data.object.cancel_at_period_end",
                                      "false"),
    "invoice of no subscription": (_invoice, "data.object.parent", None),
    "invoice line period missing": (_invoice, "data.object.lines.data.0.period", ...),
    "invoice amount_paid missing": (_invoice, "data.object.amount_paid", ...),
    "invoice subscription a number": (_invoice,
                                      "data.object.parent.subscription_details.subscription",
                                      5),
}


@pytest.mark.parametrize(("make", "path", "value"), MORE_EDITS.values(), ids=MORE_EDITS.keys())
def test_malformed_subscriptions_and_invoices(make: Callable[[], dict[str, Any]], path: str,
                                              value: Any) -> None:
    event = _set(make(), path, value)

    with pytest.raises(MalformedEvent):
        read(event)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value inside `value` (containers included)."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))


BUILT = [
    _session(), _payment(), _subscription(), _invoice(),
    events.charge_refunded(payment_intent="pi_1", amount_minor=5, amount_refunded=5,
                           currency="EUR", at=AT),
    events.charge_dispute_created(payment_intent="pi_1", amount_minor=5, currency="EUR",
                                  at=AT),
    events.payment_intent_payment_failed(payment_intent="pi_1", amount_minor=5,
                                         currency="EUR", at=AT),
    events.invoice_payment_failed(subscription="sub_1", amount_minor=5, currency="EUR",
                                  period_start=PERIOD_START, period_end=PERIOD_END, at=AT),
    json.loads(STRIPE_INVOICE_PAID_OLD), json.loads(STRIPE_SUBSCRIPTION_DELETED_OLD),
]

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=6)


@settings(max_examples=400, deadline=None)
@given(which=st.integers(0, len(BUILT) - 1), pick=st.integers(min_value=0),
       value=JSON_VALUES)
def test_any_one_field_replaced_is_a_fact_none_or_malformed(which: int, pick: int,
                                                            value: Any) -> None:
    event = json.loads(json.dumps(BUILT[which]))
    paths = list(_leaves(event))
    path = paths[pick % len(paths)]
    if path:
        parent = event
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
    else:
        event = value
    try:
        fact = translate(json.dumps(event).encode())
    except MalformedEvent:
        return
    assert fact is None or isinstance(fact, Fact)


def test_times_are_aware_utc() -> None:
    fact = read(_payment())

    assert fact is not None
    assert fact.occurred_at.tzinfo is UTC
    assert fact.occurred_at == AT
