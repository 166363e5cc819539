"""The content context: writing the text of each creation (models, prompt
templates, validation, AI history)."""

from services.contexts.content import wiring
from services.contexts.declaration import ContextDeclaration
from services.gen.waqup.content.v1 import content_pb2

DECLARATION = ContextDeclaration(
    name="content",
    proto=content_pb2.DESCRIPTOR,
    public=(),
    internal=("ContentGenerationService",),
    build=wiring.build,
)
