"""Payments with Stripe: checkout sessions and subscriptions through the
official SDK, the webhook events' translation into facts, and the embedded
simulator that stands in for Stripe (its provider and its webhook sender)."""

from adapters.stripe.checkout import StripeProvider
from adapters.stripe.delivery import WebhookSender
from adapters.stripe.events import MalformedEvent, translate
from adapters.stripe.simulator import SimulatedPayments

__all__ = ["MalformedEvent", "SimulatedPayments", "StripeProvider", "WebhookSender", "translate"]
