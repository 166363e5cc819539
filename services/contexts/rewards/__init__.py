"""The rewards context: what creators earn from their packs' sales."""

import uuid
from datetime import UTC

from core.rewards.model import membership_key
from services.api.convert import minor_units
from services.api.creation import resource_id
from services.contexts.declaration import BuiltContext, Consumes, ContextDeclaration
from services.contexts.rewards import wiring
from services.gen.waqup.catalog.v1 import events_pb2 as catalog_events
from services.gen.waqup.payments.v1 import events_pb2 as payments_events
from services.gen.waqup.rewards.v1 import rewards_pb2


async def _purchase_completed(built: BuiltContext, event_id: uuid.UUID,
                              message: payments_events.PurchaseCompleted) -> None:
    # Idempotent by purchase (a redelivered event finds its accrual).
    if message.creator:
        amount, currency = minor_units(message.amount, "amount")
        if amount > 0:
            await built.service.accrue(resource_id(message.purchase, "purchases"),
                                       resource_id(message.creator, "creators"), amount,
                                       currency)


async def _purchase_refunded(built: BuiltContext, event_id: uuid.UUID,
                             message: payments_events.PurchaseRefunded) -> None:
    if message.creator:
        await built.service.reverse(resource_id(message.purchase, "purchases"))


async def _play_attributed(built: BuiltContext, event_id: uuid.UUID,
                           message: catalog_events.PlayAttributed) -> None:
    await built.service.record_play(event_id, resource_id(message.user, "users"),
                                    resource_id(message.creator, "creators"),
                                    message.play_time.ToDatetime(tzinfo=UTC))


async def _membership_paid(built: BuiltContext, event_id: uuid.UUID,
                           message: payments_events.MembershipPaid) -> None:
    amount, currency = minor_units(message.amount, "amount")
    if message.creator:  # a pack's own subscription: the fee is that creator's sale
        await built.service.accrue(membership_key(message.payment, uuid.UUID(int=0)),
                                   resource_id(message.creator, "creators"), amount, currency,
                                   source=message.payment)
        return
    await built.service.share_membership(message.payment, resource_id(message.user, "users"),
                                         amount, currency,
                                         message.pay_time.ToDatetime(tzinfo=UTC))


DECLARATION = ContextDeclaration(
    name="rewards",
    proto=rewards_pb2.DESCRIPTOR,
    public=("RewardAccountService",),
    internal=("RewardLedgerService",),
    consumes=(Consumes("waqup.payments.purchase.completed.v1", payments_events.PurchaseCompleted,
                       "rewards", _purchase_completed),
              Consumes("waqup.payments.purchase.refunded.v1", payments_events.PurchaseRefunded,
                       "rewards", _purchase_refunded),
              Consumes("waqup.catalog.play.attributed.v1", catalog_events.PlayAttributed,
                       "rewards", _play_attributed),
              Consumes("waqup.payments.membership.paid.v1", payments_events.MembershipPaid,
                       "rewards", _membership_paid)),
    build=wiring.build,
)
