"""The library context: a person's items, their creation, and playback."""

import uuid

from core.library.model import (
    AudioDetails,
    ContentFailed,
    ContentReady,
    PracticeCompleted,
    StoredRendition,
)
from services.api.audio import decode_rendered
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
    rendered = decode_rendered(message, event_id)
    renditions = [StoredRendition(r.format, r.object_key, r.mime_type, r.size)
                  for r in rendered.renditions] or [
        StoredRendition("mp3", message.object_key, message.mime_type, message.size_bytes)]
    details = AudioDetails(content_id=rendered.content_id, version=rendered.version,
                           measurements={r.format: r.measurement for r in rendered.renditions},
                           silences=rendered.silences, waveform=rendered.waveform,
                           captions=rendered.captions, voice=rendered.voice,
                           background=rendered.background)
    await built.service.audio_rendered(event_id, rendered.content_id, rendered.version,
                                       renditions, rendered.duration_ms, details)


async def _preview_ready(built: BuiltContext, event_id: uuid.UUID,
                         message: audio_events.AudioPreviewReady) -> None:
    await built.service.preview_ready(resource_id(message.content, "contents"),
                                      message.version, message.object_key, message.duration_ms)


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
                         events.decode_failed),
               Publishes(PracticeCompleted, events_pb2.PracticeCompleted,
                         events.encode_practice, events.decode_practice)),
    consumes=(Consumes("waqup.audio.audio.rendered.v1", audio_events.AudioRendered, "library",
                       _audio_rendered),
              Consumes("waqup.audio.audio.preview_ready.v1", audio_events.AudioPreviewReady,
                       "library", _preview_ready),
              Consumes("waqup.audio.audio.failed.v1", audio_events.AudioFailed, "library",
                       _audio_failed)),
    http_routes=(HttpRoute("media", r"/v1/media/[A-Za-z0-9._/-]+", token=False),
                 HttpRoute("share", r"/share/[A-Za-z0-9_-]+(/captions\.vtt)?", token=False)),
    build=wiring.build,
)
