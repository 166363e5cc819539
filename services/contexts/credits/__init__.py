"""The credits context: balances, the ledger and holds."""

import uuid

from services.api.convert import user_segment
from services.contexts.credits import wiring
from services.contexts.declaration import BuiltContext, Consumes, ContextDeclaration
from services.gen.waqup.credits.v1 import credits_pb2
from services.gen.waqup.identity.v1 import events_pb2 as identity_events


async def _grant_signup_bonus(built: BuiltContext, event_id: uuid.UUID,
                              message: identity_events.UserRegistered) -> None:
    await built.service.grant_signup_bonus(event_id, uuid.UUID(user_segment(message.user)))


DECLARATION = ContextDeclaration(
    name="credits",
    proto=credits_pb2.DESCRIPTOR,
    public=("CreditAccountService",),
    internal=("CreditLedgerService",),
    consumes=(Consumes("waqup.identity.user.registered.v1", identity_events.UserRegistered,
                       "credits", _grant_signup_bonus),),
    build=wiring.build,
)
