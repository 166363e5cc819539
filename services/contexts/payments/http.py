"""The payments' plain HTTP routes, through the edge without a token.

`POST /v1/webhooks/stripe`: Stripe's webhook. The raw body is verified
against `Stripe-Signature` (401 when it does not verify), stored once per
event id and queued through the outbox; the answer is 202 as soon as that
transaction commits (a repeated delivery also gets 202: Stripe stops).

`/v1/checkoutSessions/{id}/simulator` (embedded mode only): the payment page
of the local simulator. GET shows what is bought; a form POST with
`outcome=succeeded` or `declined` settles it, and `refunded` or `disputed`
(after a success) plays what a Stripe dashboard refund or a chargeback
would; for a membership, `renewed` (after a success) plays the next
period's payment, and `lapsed` a renewal that failed for good (the
subscription ends). Each outcome is sent as real,
signed Stripe events to the webhook route, through the edge, exactly as
Stripe would send them.
"""

from __future__ import annotations

import html
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from core.payments.facts import CheckoutMode, InvalidSignature, SubscriptionStatus
from core.payments.model import CheckoutState, period_of
from core.shared.errors import DomainError
from services.api.http import status_response

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/v1/webhooks/stripe"
_SIMULATOR = re.compile(r"/v1/checkoutSessions/([0-9a-f-]{36})/simulator")
_OUTCOMES = ("succeeded", "declined", "refunded", "disputed", "renewed", "lapsed")
#: Largest form body the simulator reads.
_MAX_FORM = 1024


def webhook_handler(payments: Any) -> Any:
    async def receive(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return status_response(405, 12, "METHOD_NOT_ALLOWED", "webhooks are POSTed")
        payload = await request.read()
        try:
            new = await payments.receive_webhook(payload,
                                                 request.headers.get("Stripe-Signature", ""))
        except InvalidSignature:
            return status_response(401, 16, "INVALID_SIGNATURE",
                                   "the Stripe-Signature header does not verify")
        except DomainError as error:
            return status_response(400, 3, error.reason, error.message)
        return web.json_response({"received": True, "duplicate": not new}, status=202)

    return receive


def _page(status: int, title: str, body: str) -> web.Response:
    document = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width,initial-scale=1">'
                f'<meta name="robots" content="noindex"><title>{html.escape(title)}</title>'
                f"</head><body>{body}</body></html>")
    return web.Response(status=status, text=document, content_type="text/html",
                        charset="utf-8", headers={
                            "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                            "Content-Security-Policy": "default-src 'none'; form-action 'self'"})


def simulator_handler(payments: Any, sender: Any, events: Any) -> Any:
    """`events` is adapters.stripe.events (the builders); `sender` a
    WebhookSender onto the webhook route."""

    async def deliver(event: dict[str, Any]) -> None:
        status = await sender.send(event)
        if status != 202:
            log.warning("the webhook refused a simulated event",
                        extra={"status": status, "type": event["type"]})

    async def subscription_outcome(session: Any, outcome: str) -> str:
        """Send what Stripe sends for a membership's checkout; a refusal, or ""."""
        subscription = f"sub_sim_{session.id.hex}"
        now = datetime.now(UTC)
        interval = session.interval or "month"
        end = now + period_of(interval)
        common = dict(subscription=subscription, amount_minor=session.amount_minor,
                      currency=session.currency)
        if outcome == "succeeded":
            if session.state is not CheckoutState.OPEN:
                return "This payment is settled already."
            await deliver(events.checkout_session_completed(
                checkout_id=session.id, mode=CheckoutMode.SUBSCRIPTION,
                amount_minor=session.amount_minor, currency=session.currency,
                subscription=subscription, session_id=session.provider_id))
            await deliver(events.subscription_event(
                "created", status=SubscriptionStatus.ACTIVE, current_period_start=now,
                current_period_end=end, interval=interval, checkout_id=session.id,
                **common))
            await deliver(events.invoice_paid(period_start=now, period_end=end,
                                              billing_reason="subscription_create", **common))
        elif outcome == "declined":
            if session.state is not CheckoutState.OPEN:
                return "This payment is settled already."
            await deliver(events.checkout_session_expired(
                checkout_id=session.id, mode=CheckoutMode.SUBSCRIPTION,
                amount_minor=session.amount_minor, currency=session.currency))
        elif outcome == "renewed":
            if session.state is not CheckoutState.COMPLETED:
                return "Nothing was paid yet."
            current = await payments.subscription_by_provider(subscription)
            start = current.current_period_end if current else now
            await deliver(events.invoice_paid(period_start=start,
                                              period_end=start + period_of(interval),
                                              billing_reason="subscription_cycle", **common))
        elif outcome == "lapsed":
            if session.state is not CheckoutState.COMPLETED:
                return "Nothing was paid yet."
            await deliver(events.invoice_payment_failed(period_start=now, period_end=end,
                                                        attempt_count=4, **common))
            await deliver(events.subscription_event(
                "deleted", status=SubscriptionStatus.CANCELED, current_period_start=now,
                current_period_end=now, interval=interval, checkout_id=session.id,
                **common))
        else:
            return "A membership is not refunded here."
        return ""

    async def serve(request: web.Request) -> web.StreamResponse:
        match = _SIMULATOR.fullmatch(request.path)
        session = None
        if match:
            session = await payments.checkout_for_simulator(uuid.UUID(match.group(1)))
        if session is None:
            return _page(404, "waQup", "<h1>No such payment.</h1>")
        price = f"{session.amount_minor / 100:.2f} {html.escape(session.currency)}"
        if request.method in ("GET", "HEAD"):
            buttons = "".join(
                f'<button name="outcome" value="{o}">{o.capitalize()}</button>' for o in _OUTCOMES)
            return _page(200, "waQup checkout (simulator)",
                         f"<h1>{html.escape(session.product_name)}</h1>"
                         f'<p id="price">{price}</p><p id="state">{session.state.value}</p>'
                         f'<form method="post">{buttons}</form>')
        if request.method != "POST":
            return _page(405, "waQup", "<h1>Method not allowed.</h1>")
        if (request.content_length or 0) > _MAX_FORM:
            return _page(413, "waQup", "<h1>Too large.</h1>")
        form = await request.post()
        outcome = form.get("outcome")
        if outcome not in _OUTCOMES:
            return _page(400, "waQup", "<h1>Choose an outcome.</h1>")
        intent = f"pi_sim_{session.id.hex}"
        mode = CheckoutMode(session.mode)
        if mode is CheckoutMode.SUBSCRIPTION:
            refusal = await subscription_outcome(session, outcome)
            if refusal:
                return _page(409, "waQup", f"<h1>{html.escape(refusal)}</h1>")
        elif outcome in ("renewed", "lapsed"):
            return _page(409, "waQup", "<h1>Only a membership renews or lapses.</h1>")
        elif outcome == "succeeded":
            if session.state is not CheckoutState.OPEN:
                return _page(409, "waQup", "<h1>This payment is settled already.</h1>")
            # Stripe sends both, in no promised order.
            await deliver(events.payment_intent_succeeded(
                payment_intent=intent, amount_minor=session.amount_minor,
                currency=session.currency, checkout_id=session.id))
            await deliver(events.checkout_session_completed(
                checkout_id=session.id, mode=mode, amount_minor=session.amount_minor,
                currency=session.currency, payment_intent=intent,
                session_id=session.provider_id))
        elif outcome == "declined":
            if session.state is not CheckoutState.OPEN:
                return _page(409, "waQup", "<h1>This payment is settled already.</h1>")
            await deliver(events.payment_intent_payment_failed(
                payment_intent=intent, amount_minor=session.amount_minor,
                currency=session.currency, checkout_id=session.id))
        else:
            if session.state is not CheckoutState.COMPLETED:
                return _page(409, "waQup", "<h1>Nothing was paid yet.</h1>")
            if outcome == "refunded":
                await deliver(events.charge_refunded(
                    payment_intent=intent, amount_minor=session.amount_minor,
                    amount_refunded=session.amount_minor, currency=session.currency))
            else:
                await deliver(events.charge_dispute_created(
                    payment_intent=intent, amount_minor=session.amount_minor,
                    currency=session.currency))
        return _page(200, "waQup checkout (simulator)",
                     f'<h1 id="outcome">{outcome.capitalize()}</h1>'
                     f"<p>{html.escape(session.product_name)} · {price}</p>")

    return serve


def cancel_notifier(payments: Any, sender: Any, events: Any) -> Any:
    """The simulator's side of a cancelled renewal: what Stripe sends when a
    subscription is set to end at its period's end."""

    async def cancelled(subscription_id: str) -> None:
        subscription = await payments.subscription_by_provider(subscription_id)
        if subscription is None:
            return
        end = subscription.current_period_end
        await sender.send(events.subscription_event(
            "updated", subscription=subscription_id, status=SubscriptionStatus.ACTIVE,
            current_period_start=end - period_of(subscription.interval), current_period_end=end,
            amount_minor=subscription.amount_minor, currency=subscription.currency,
            interval=subscription.interval,
            checkout_id=subscription.checkout_id, cancel_at_period_end=True,
            previous_attributes={"cancel_at_period_end": False}))

    return cancelled
