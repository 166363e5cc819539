"""ports.payments.PaymentProvider on Stripe, through the official SDK.

A checkout is a hosted Checkout Session priced inline (`price_data`), so no
Product or Price has to exist in the Stripe account beforehand. Our checkout
id travels as `client_reference_id` and as `metadata.checkout_session` on the
session and on the payment intent or subscription it creates: every later
webhook event (adapters/stripe/events.py) finds its checkout from whichever
object it carries.

Idempotency is Stripe's own: the key `waqup-checkout-<checkout_id>` makes
Stripe replay the first session for 24 hours instead of creating another,
including for the SDK's own retries of a request whose answer was lost.

The SDK's HTTP client is its aiohttp one, chosen explicitly: the SDK would
otherwise pick httpx when that happens to be installed (it is in the test
tools), and behave differently in tests and in production.

Failures become domain errors: a request Stripe refuses (invalid request,
idempotency mismatch, card error) -> FailedPrecondition
`PAYMENT_PROVIDER_REFUSED`; everything else (connection, 5xx, rate limit,
authentication, a response cut short) -> Unavailable
`PAYMENT_PROVIDER_UNAVAILABLE`. Messages carry the HTTP status, Stripe's
error code and request id only: never the key, the request or Stripe's body.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NoReturn

import aiohttp
import stripe

from core.payments.facts import CheckoutMode, CheckoutRequest, ProviderCheckout
from core.shared.errors import FailedPrecondition, Unavailable

#: The ErrorInfo reasons of the two failure categories.
UNAVAILABLE = "PAYMENT_PROVIDER_UNAVAILABLE"
REFUSED = "PAYMENT_PROVIDER_REFUSED"

#: SDK errors that mean Stripe understood the request and will not do it.
_REFUSALS = (stripe.InvalidRequestError, stripe.IdempotencyError, stripe.CardError)


def checkout_params(request: CheckoutRequest) -> dict[str, Any]:
    """The Checkout Session create parameters for `request`."""
    metadata = {**request.metadata, "checkout_session": str(request.checkout_id)}
    price: dict[str, Any] = {
        "currency": request.currency.lower(),
        "unit_amount": request.amount_minor,
        "product_data": {"name": request.product_name},
    }
    params: dict[str, Any] = {
        "mode": request.mode.value,
        "line_items": [{"price_data": price, "quantity": 1}],
        "success_url": request.success_url,
        "cancel_url": request.cancel_url,
        "client_reference_id": str(request.checkout_id),
        "metadata": metadata,
    }
    if request.mode is CheckoutMode.SUBSCRIPTION:
        if request.interval is not None:
            price["recurring"] = {"interval": request.interval}
        params["subscription_data"] = {"metadata": metadata}
    else:
        params["payment_intent_data"] = {"metadata": metadata}
    return params


def _fail(action: str, error: Exception) -> NoReturn:
    """Raise the domain error for an SDK or transport failure of `action`."""
    if isinstance(error, stripe.StripeError):
        detail = ", ".join(part for part in (
            f"HTTP {error.http_status}" if error.http_status else "",
            error.code or "",
            f"request {error.request_id}" if error.request_id else "") if part)
        what = f"{type(error).__name__}" + (f" ({detail})" if detail else "")
    else:
        what = type(error).__name__
    if isinstance(error, _REFUSALS):
        raise FailedPrecondition(f"the payment provider refused to {action}: {what}",
                                 reason=REFUSED) from None
    raise Unavailable(f"the payment provider could not {action}: {what}",
                      reason=UNAVAILABLE) from None


class StripeProvider:
    """Checkout sessions and subscription cancellation on Stripe's API."""

    def __init__(self, api_key: str, *, api_base: str | None = None,
                 max_network_retries: int = 2, timeout: float = 30.0) -> None:
        """`api_base` points the SDK elsewhere than api.stripe.com (a fake, in
        tests); `max_network_retries` are the SDK's retries of connection
        errors, 409 and 5xx (safe: every POST carries an idempotency key)."""
        self._http = stripe.AIOHTTPClient(timeout=timeout)
        self._client = stripe.StripeClient(
            api_key, http_client=self._http, max_network_retries=max_network_retries,
            base_addresses={"api": api_base} if api_base else None)

    def __repr__(self) -> str:  # never the key
        return "StripeProvider()"

    async def create_checkout(self, request: CheckoutRequest) -> ProviderCheckout:
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                checkout_params(request),  # type: ignore[arg-type]
                {"idempotency_key": f"waqup-checkout-{request.checkout_id}"})
        except (stripe.StripeError, aiohttp.ClientError, TimeoutError) as error:
            _fail("create a checkout session", error)
        if not session.url:
            raise Unavailable("the payment provider gave a checkout session without a page",
                              reason=UNAVAILABLE)
        return ProviderCheckout(provider_id=session.id, url=session.url,
                                expires_at=datetime.fromtimestamp(session.expires_at, UTC))

    async def cancel_subscription(self, subscription: str) -> None:
        # No idempotency key of ours: cancel, resume, cancel again within a
        # day must reach Stripe, not replay the first answer. Setting the
        # flag twice is harmless.
        try:
            await self._client.v1.subscriptions.update_async(
                subscription, {"cancel_at_period_end": True})
        except (stripe.StripeError, aiohttp.ClientError, TimeoutError) as error:
            _fail("cancel the subscription", error)

    async def close(self) -> None:
        await self._http.close_async()
