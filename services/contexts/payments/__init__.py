"""The payments context: checkout, the provider's webhooks, purchases."""

import uuid

from core.payments.model import (
    MembershipChanged,
    MembershipPaid,
    PurchaseCompleted,
    PurchaseRefunded,
    StripeEventReceived,
)
from services.contexts.declaration import (
    BuiltContext,
    Consumes,
    ContextDeclaration,
    HttpRoute,
    Publishes,
)
from services.contexts.payments import events, wiring
from services.gen.waqup.payments.v1 import events_pb2, payments_pb2


async def _stripe_event(built: BuiltContext, event_id: uuid.UUID,
                        message: events_pb2.StripeEventReceived) -> None:
    await built.service.handle_event(event_id, message.payload)


DECLARATION = ContextDeclaration(
    name="payments",
    proto=payments_pb2.DESCRIPTOR,
    public=("CheckoutService", "SubscriptionService"),
    token_less=("CheckoutService/ListCreditBundles", "CheckoutService/ListSubscriptionPlans"),
    publishes=(Publishes(StripeEventReceived, events_pb2.StripeEventReceived,
                         events.encode_received, events.decode_received),
               Publishes(PurchaseCompleted, events_pb2.PurchaseCompleted,
                         events.encode_completed, events.decode_completed),
               Publishes(PurchaseRefunded, events_pb2.PurchaseRefunded,
                         events.encode_refunded, events.decode_refunded),
               Publishes(MembershipChanged, events_pb2.MembershipChanged,
                         events.encode_membership, events.decode_membership),
               Publishes(MembershipPaid, events_pb2.MembershipPaid,
                         events.encode_membership_paid, events.decode_membership_paid)),
    consumes=(Consumes("waqup.payments.stripe_event.received.v1",
                       events_pb2.StripeEventReceived, "payments", _stripe_event),),
    http_routes=(HttpRoute("stripe_webhook", r"/v1/webhooks/stripe", token=False,
                           methods=("POST",), timeout_seconds=10.0),
                 HttpRoute("checkout_simulator",
                           r"/v1/checkoutSessions/[0-9a-f-]+/simulator", token=False,
                           methods=("GET", "HEAD", "POST"), forms=True, timeout_seconds=30.0)),
    build=wiring.build,
)
