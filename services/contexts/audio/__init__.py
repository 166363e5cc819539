"""The audio context: voices, and rendering scripts to stored audio (jobs)."""

from core.audio.model import AudioFailed, AudioPreviewReady, AudioRendered
from services.api.audio import decode_rendered
from services.contexts.audio import events, wiring
from services.contexts.declaration import ContextDeclaration, Publishes
from services.gen.waqup.audio.v1 import audio_pb2, events_pb2

DECLARATION = ContextDeclaration(
    name="audio",
    proto=audio_pb2.DESCRIPTOR,
    public=("VoiceService",),
    publishes=(Publishes(AudioRendered, events_pb2.AudioRendered, events.encode_rendered,
                         decode_rendered),
               Publishes(AudioPreviewReady, events_pb2.AudioPreviewReady,
                         events.encode_preview, events.decode_preview),
               Publishes(AudioFailed, events_pb2.AudioFailed, events.encode_failed,
                         events.decode_failed)),
    build=wiring.build,
)
