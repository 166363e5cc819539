"""The conversation context: the guided conversation that gathers what a
person wants, its confirmation, and following the creation."""

from services.contexts.conversation import wiring
from services.contexts.declaration import ContextDeclaration, HttpRoute
from services.gen.waqup.conversation.v1 import conversation_pb2

DECLARATION = ContextDeclaration(
    name="conversation",
    proto=conversation_pb2.DESCRIPTOR,
    public=("ConversationService",),
    http_routes=(HttpRoute("stream", r"/v1/conversations/[^/]+:stream",
                           websocket=True),),
    build=wiring.build,
)
