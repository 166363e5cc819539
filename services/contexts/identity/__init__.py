"""The identity context: accounts, credentials, sessions, preferences, signing keys."""

from core.identity.model import UserRegistered
from services.contexts.declaration import ContextDeclaration, Publishes
from services.contexts.identity import events, wiring
from services.gen.waqup.identity.v1 import events_pb2, identity_pb2

DECLARATION = ContextDeclaration(
    name="identity",
    proto=identity_pb2.DESCRIPTOR,
    public=("AuthService", "UserService"),
    token_less=("AuthService/Register", "AuthService/Login", "AuthService/Refresh",
                "AuthService/Logout", "AuthService/GetJwks"),
    credentials=("AuthService/Register", "AuthService/Login"),
    publishes=(Publishes(UserRegistered, events_pb2.UserRegistered,
                         events.encode_user_registered, events.decode_user_registered),),
    issues_tokens=True,
    build=wiring.build,
)
