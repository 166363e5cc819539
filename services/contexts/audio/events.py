"""Wire format of audio's events and jobs (proto/waqup/audio/v1/events.proto)."""

from __future__ import annotations

import uuid
from datetime import UTC

from core.audio.model import (
    AudioFailed,
    AudioPreviewReady,
    AudioRendered,
    RenderJob,
)
from core.shared.creation import Script, Segment
from services.api.audio import encode_cue, encode_measurement, encode_silence
from services.api.convert import timestamp
from services.api.creation import resource_id
from services.gen.waqup.audio.v1 import events_pb2


def encode_rendered(event: AudioRendered) -> events_pb2.AudioRendered:
    return events_pb2.AudioRendered(
        event_id=str(event.event_id), content=f"contents/{event.content_id}",
        user=f"users/{event.user_id}", version=event.version, object_key=event.object_key,
        mime_type=event.mime_type, duration_ms=event.duration_ms, size_bytes=event.size,
        voice=event.voice, render_time=timestamp(event.occurred_at),
        renditions=[events_pb2.Rendition(format=r.format, object_key=r.object_key,
                                         mime_type=r.mime_type, size_bytes=r.size,
                                         measurement=encode_measurement(r.measurement))
                    for r in event.renditions],
        silences=[encode_silence(s) for s in event.silences], waveform=event.waveform,
        captions=[encode_cue(c) for c in event.captions], background=event.background)


def encode_preview(event: AudioPreviewReady) -> events_pb2.AudioPreviewReady:
    return events_pb2.AudioPreviewReady(
        event_id=str(event.event_id), content=f"contents/{event.content_id}",
        user=f"users/{event.user_id}", version=event.version, object_key=event.object_key,
        duration_ms=event.duration_ms, ready_time=timestamp(event.occurred_at))


def decode_preview(message: events_pb2.AudioPreviewReady,
                   event_id: uuid.UUID) -> AudioPreviewReady:
    return AudioPreviewReady(
        event_id=event_id, occurred_at=message.ready_time.ToDatetime(tzinfo=UTC),
        content_id=resource_id(message.content, "contents"),
        user_id=resource_id(message.user, "users"), version=message.version,
        object_key=message.object_key, duration_ms=message.duration_ms)


def encode_failed(event: AudioFailed) -> events_pb2.AudioFailed:
    return events_pb2.AudioFailed(
        event_id=str(event.event_id), content=f"contents/{event.content_id}",
        user=f"users/{event.user_id}", version=event.version, reason=event.reason,
        fail_time=timestamp(event.occurred_at))


def decode_failed(message: events_pb2.AudioFailed, event_id: uuid.UUID) -> AudioFailed:
    return AudioFailed(event_id=event_id, occurred_at=message.fail_time.ToDatetime(tzinfo=UTC),
                       content_id=resource_id(message.content, "contents"),
                       user_id=resource_id(message.user, "users"), version=message.version,
                       reason=message.reason)


def decode_job(payload: bytes) -> RenderJob:
    message = events_pb2.RenderJob.FromString(payload)
    return RenderJob(
        content_id=resource_id(message.content, "contents"),
        user_id=resource_id(message.user, "users"), version=message.version,
        script=Script(tuple(Segment(s.text, s.pause_after_seconds) for s in message.segments),
                      target_seconds=message.target_seconds),
        voice=message.voice, rate=message.rate or 1.0, background=message.background or "none")
