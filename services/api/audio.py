"""Wire conversions of rendered audio (common/v1 messages, audio's
AudioRendered event) shared by the contexts that publish and consume them."""

from __future__ import annotations

import uuid
from datetime import UTC

from core.audio.model import AudioRendered, CaptionCue, Measurement, Rendition, Silence
from services.api.convert import duration
from services.api.creation import resource_id
from services.gen.waqup.audio.v1 import events_pb2
from services.gen.waqup.common.v1 import creation_pb2 as common


def encode_measurement(m: Measurement) -> common.AudioMeasurement:
    return common.AudioMeasurement(duration=duration(m.duration_ms),
                                   integrated_loudness_lufs=m.integrated_lufs,
                                   sample_peak_dbfs=m.sample_peak_dbfs,
                                   true_peak_dbtp=m.true_peak_dbtp)


def decode_measurement(m: common.AudioMeasurement) -> Measurement:
    return Measurement(m.duration.ToMilliseconds(), m.integrated_loudness_lufs,
                       m.sample_peak_dbfs, m.true_peak_dbtp)


def encode_silence(s: Silence) -> common.Silence:
    return common.Silence(start_offset=duration(s.start_ms), end_offset=duration(s.end_ms))


def encode_cue(c: CaptionCue) -> common.CaptionCue:
    return common.CaptionCue(start_offset=duration(c.start_ms), end_offset=duration(c.end_ms),
                             text=c.text)


def decode_rendered(message: events_pb2.AudioRendered, event_id: uuid.UUID) -> AudioRendered:
    return AudioRendered(
        event_id=event_id, occurred_at=message.render_time.ToDatetime(tzinfo=UTC),
        content_id=resource_id(message.content, "contents"),
        user_id=resource_id(message.user, "users"), version=message.version,
        object_key=message.object_key, mime_type=message.mime_type,
        duration_ms=message.duration_ms, size=message.size_bytes, voice=message.voice,
        background=message.background or "none",
        renditions=tuple(Rendition(r.format, r.object_key, r.mime_type, r.size_bytes,
                                   decode_measurement(r.measurement))
                         for r in message.renditions),
        silences=tuple(Silence(s.start_offset.ToMilliseconds(), s.end_offset.ToMilliseconds())
                       for s in message.silences),
        waveform=tuple(message.waveform),
        captions=tuple(CaptionCue(c.start_offset.ToMilliseconds(),
                                  c.end_offset.ToMilliseconds(), c.text)
                       for c in message.captions))
