"""ports.payments.PaymentProvider without Stripe: the embedded simulator.

Embedded mode and the tests buy things without a Stripe account. A checkout
"page" is served by the payments service itself (at the URL made here), and
what the person does there is sent back as genuine, signed Stripe webhook
events (adapters/stripe/events.py builders, adapters/stripe/delivery.py), so
the webhook endpoint and everything after it run exactly as with Stripe.

Like Stripe with our idempotency key, asking twice for the same checkout
gives the same session (the same id, page and expiry) for as long as the
session lasts.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from adapters.system.clock import SystemClock
from core.payments.facts import CheckoutRequest, ProviderCheckout
from ports.common import Clock

#: How long a checkout page stays open (Stripe's default).
SESSION_LIFETIME = timedelta(hours=24)


def simulated_session_id(checkout_id: uuid.UUID) -> str:
    """The simulator's session id of a checkout (deterministic: idempotent)."""
    return f"cs_sim_{checkout_id.hex}"


class SimulatedPayments:
    """A PaymentProvider whose checkout pages are the service's own."""

    def __init__(self, base_url: str,
                 on_cancel: Callable[[str], Awaitable[None]] | None = None, *,
                 clock: Clock | None = None) -> None:
        """`base_url` is where the service is reached (the page's URL starts
        with it); `on_cancel(subscription)` runs when a subscription's
        renewal is cancelled (to send the customer.subscription.updated
        event Stripe would)."""
        self._base_url = base_url.rstrip("/")
        self._on_cancel = on_cancel
        self._clock = clock or SystemClock()
        self._sessions: dict[uuid.UUID, ProviderCheckout] = {}

    async def create_checkout(self, request: CheckoutRequest) -> ProviderCheckout:
        now = self._clock.now()
        # Forget the sessions that have expired: the map stays as small as
        # the checkouts still open.
        for checkout_id in [c for c, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[checkout_id]
        session = self._sessions.get(request.checkout_id)
        if session is None:
            session = ProviderCheckout(
                provider_id=simulated_session_id(request.checkout_id),
                url=f"{self._base_url}/v1/checkoutSessions/{request.checkout_id}/simulator",
                expires_at=now + SESSION_LIFETIME)
            self._sessions[request.checkout_id] = session
        return session

    async def cancel_subscription(self, subscription: str) -> None:
        if self._on_cancel is not None:
            await self._on_cancel(subscription)

    async def close(self) -> None:
        """Nothing to release."""
