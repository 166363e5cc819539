"""The library context: a person's items, their creation, and playback."""

import uuid

from core.library.model import ContentFailed, ContentReady
from services.api.creation import resource_id
from services.contexts.declaration import (
    BuiltContext,
    Consumes,
    ContextDeclaration,
    HttpRoute,
    Publishes,
)
from services.contexts.library import events, wiring
from services.gen.waqup.audio.v1 import events_pb2 as audio_events
from services.gen.waqup.library.v1 import events_pb2, library_pb2


async def _audio_rendered(built: BuiltContext, event_id: uuid.UUID,
                          message: audio_events.AudioRendered) -> None:
    await built.service.audio_rendered(event_id, resource_id(message.content, "contents"),
                                       message.version, message.object_key, message.mime_type,
                                       message.duration_ms, message.size_bytes)


async def _audio_failed(built: BuiltContext, event_id: uuid.UUID,
                        message: audio_events.AudioFailed) -> None:
    await built.service.audio_failed(resource_id(message.content, "contents"), message.version,
                                     message.reason)


DECLARATION = ContextDeclaration(
    name="library",
    proto=library_pb2.DESCRIPTOR,
    public=("LibraryService",),
    internal=("CreationService",),
    publishes=(Publishes(ContentReady, events_pb2.ContentReady, events.encode_ready,
                         events.decode_ready),
               Publishes(ContentFailed, events_pb2.ContentFailed, events.encode_failed,
                         events.decode_failed)),
    consumes=(Consumes("waqup.audio.audio.rendered.v1", audio_events.AudioRendered, "library",
                       _audio_rendered),
              Consumes("waqup.audio.audio.failed.v1", audio_events.AudioFailed, "library",
                       _audio_failed)),
    http_routes=(HttpRoute("media", r"/v1/media/[A-Za-z0-9._/-]+", token=False),),
    build=wiring.build,
)
