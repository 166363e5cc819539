"""The identity context: accounts, credentials, sessions, preferences, signing keys."""

import uuid

from core.identity.model import UserRegistered
from services.api.creation import resource_id
from services.contexts.declaration import BuiltContext, Consumes, ContextDeclaration, Publishes
from services.contexts.identity import events, wiring
from services.gen.waqup.catalog.v1 import events_pb2 as catalog_events
from services.gen.waqup.identity.v1 import events_pb2, identity_pb2

#: The role a creator's token carries (catalog's CreatorCreated gives it).
ROLE_CREATOR = "creator"


async def _creator_created(built: BuiltContext, event_id: uuid.UUID,
                           message: catalog_events.CreatorCreated) -> None:
    await built.service.grant_role(resource_id(message.user, "users"), ROLE_CREATOR)


DECLARATION = ContextDeclaration(
    name="identity",
    proto=identity_pb2.DESCRIPTOR,
    public=("AuthService", "UserService"),
    token_less=("AuthService/Register", "AuthService/Login", "AuthService/Refresh",
                "AuthService/Logout", "AuthService/GetJwks"),
    credentials=("AuthService/Register", "AuthService/Login"),
    publishes=(Publishes(UserRegistered, events_pb2.UserRegistered,
                         events.encode_user_registered, events.decode_user_registered),),
    consumes=(Consumes("waqup.catalog.creator.created.v1", catalog_events.CreatorCreated,
                       "identity", _creator_created),),
    issues_tokens=True,
    build=wiring.build,
)
