"""Wires payments for one process: its store, the payment provider (Stripe,
or the embedded simulator and its page), the catalog peer, the webhook route
and the servicer."""

from __future__ import annotations

import base64
from typing import Any

from adapters.stripe import events as stripe_events
from core.payments.model import CreditBundle, SubscriptionPlan
from core.payments.service import PaymentsService
from services.api.pagination import load_or_create_key
from services.contexts.declaration import BuiltContext
from services.contexts.payments import peers
from services.contexts.payments.http import (
    cancel_notifier,
    simulator_handler,
    webhook_handler,
)
from services.contexts.payments.servicers import CheckoutServicer, SubscriptionServicer
from services.runtime.infrastructure import Infrastructure
from services.runtime.settings import Settings

WEBHOOK_SECRET_FILE = "stripe-webhook.secret"


def webhook_secret(settings: Settings) -> str:
    """WAQUP_STRIPE_WEBHOOK_SECRET, else a secret kept in the data directory
    (created once; the simulator signs with it)."""
    if settings.stripe_webhook_secret:
        return settings.stripe_webhook_secret
    key = load_or_create_key(settings.data_dir / WEBHOOK_SECRET_FILE)
    return "whsec_" + base64.b64encode(key).decode()


def credit_bundles(spec: str) -> list[CreditBundle]:
    """WAQUP_CREDIT_BUNDLES: `id:credits:price_minor:CURRENCY`, comma-separated."""
    bundles = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        try:
            bundle_id, credits, price, currency = entry.split(":")
            bundles.append(CreditBundle(id=bundle_id, display_name=f"{int(credits)} credits",
                                        credits=int(credits), amount_minor=int(price),
                                        currency=currency.upper()))
        except ValueError:
            raise ValueError(f"WAQUP_CREDIT_BUNDLES: {entry!r} is not "
                             "id:credits:price_minor:CURRENCY") from None
    return bundles


def subscription_plans(spec: str) -> list[SubscriptionPlan]:
    """WAQUP_SUBSCRIPTION_PLANS: `id:price_minor:CURRENCY:month|year`, comma-separated."""
    plans = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        try:
            plan_id, price, currency, interval = entry.split(":")
            if interval not in ("month", "year"):
                raise ValueError(interval)
            plans.append(SubscriptionPlan(
                id=plan_id, display_name=f"waQup membership ({interval}ly)",
                amount_minor=int(price), currency=currency.upper(), interval=interval))
        except ValueError:
            raise ValueError(f"WAQUP_SUBSCRIPTION_PLANS: {entry!r} is not "
                             "id:price_minor:CURRENCY:month|year") from None
    return plans



def build(infra: Infrastructure) -> BuiltContext:
    if infra.store is not None:
        from adapters.memory.payments import memory_payments_uow

        uow = memory_payments_uow(infra.store, infra.codec, infra.trace_context)
    else:
        from adapters.sql.payments import sql_payments_uow

        uow = sql_payments_uow(infra.engine, infra.codec, infra.trace_context)
    settings = infra.settings
    secret = webhook_secret(settings)
    provider: Any = infra.overrides.get("payment_provider")
    simulated = provider is None and not settings.stripe_api_key
    if provider is None and settings.stripe_api_key:
        from adapters.stripe.checkout import StripeProvider

        provider = StripeProvider(settings.stripe_api_key, api_base=settings.stripe_api_base)
    elif provider is None:
        from adapters.stripe.delivery import WebhookSender
        from adapters.stripe.simulator import SimulatedPayments

        sender = WebhookSender(f"{settings.edge_url}/v1/webhooks/stripe", secret)
        infra.closers.append(sender.close)

        async def on_cancel(subscription: str) -> None:
            await cancel_notifier(service, sender, stripe_events)(subscription)

        provider = SimulatedPayments(settings.edge_url, on_cancel, clock=infra.clock)
    infra.closers.append(provider.close)
    local_catalog = infra.local("catalog")
    catalog: Any = (peers.LocalCatalog(local_catalog) if local_catalog
                    else peers.RemoteCatalog(infra.peer("payments", "catalog")))
    service = PaymentsService(
        infra.notifying(uow), infra.clock, provider, catalog,
        credit_bundles(settings.credit_bundles), webhook_secret=secret,
        plans=subscription_plans(settings.subscription_plans),
        success_url=settings.checkout_success_url or f"{settings.edge_url}/healthz",
        cancel_url=settings.checkout_cancel_url or f"{settings.edge_url}/healthz",
        translate=stripe_events.translate,
        tolerance_seconds=settings.stripe_webhook_tolerance_seconds)
    http = {"stripe_webhook": webhook_handler(service)}
    if simulated:
        http["checkout_simulator"] = simulator_handler(service, sender, stripe_events)
    return BuiltContext(service=service, uow=uow, http=http, servicers={
        "CheckoutService": CheckoutServicer(service, infra.page_tokens),
        "SubscriptionService": SubscriptionServicer(service)})
