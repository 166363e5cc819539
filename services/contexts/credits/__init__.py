"""The credits context: balances, the ledger and holds."""

import uuid

from core.credits.model import TransactionType
from services.api.convert import user_segment
from services.contexts.credits import wiring
from services.contexts.declaration import BuiltContext, Consumes, ContextDeclaration
from services.gen.waqup.credits.v1 import credits_pb2
from services.gen.waqup.identity.v1 import events_pb2 as identity_events
from services.gen.waqup.payments.v1 import events_pb2 as payments_events


async def _grant_signup_bonus(built: BuiltContext, event_id: uuid.UUID,
                              message: identity_events.UserRegistered) -> None:
    await built.service.grant_signup_bonus(event_id, uuid.UUID(user_segment(message.user)))


async def _bundle_bought(built: BuiltContext, event_id: uuid.UUID,
                        message: payments_events.PurchaseCompleted) -> None:
    # Idempotent by the purchase (one per Stripe checkout session).
    if message.credits > 0:
        purchase = message.purchase.removeprefix("purchases/")
        await built.service.grant(f"purchase:{purchase}", uuid.UUID(user_segment(message.user)),
                                  message.credits, TransactionType.PURCHASE,
                                  f"credit bundle {message.credit_bundle}")


async def _bundle_refunded(built: BuiltContext, event_id: uuid.UUID,
                           message: payments_events.PurchaseRefunded) -> None:
    if message.credits > 0:
        purchase = message.purchase.removeprefix("purchases/")
        await built.service.reverse_purchase(
            f"refund:{purchase}", uuid.UUID(user_segment(message.user)), message.credits,
            f"{message.cause} of {message.purchase}")


DECLARATION = ContextDeclaration(
    name="credits",
    proto=credits_pb2.DESCRIPTOR,
    public=("CreditAccountService",),
    internal=("CreditLedgerService",),
    consumes=(Consumes("waqup.identity.user.registered.v1", identity_events.UserRegistered,
                       "credits", _grant_signup_bonus),
              Consumes("waqup.payments.purchase.completed.v1", payments_events.PurchaseCompleted,
                       "credits", _bundle_bought),
              Consumes("waqup.payments.purchase.refunded.v1", payments_events.PurchaseRefunded,
                       "credits", _bundle_refunded)),
    build=wiring.build,
)
