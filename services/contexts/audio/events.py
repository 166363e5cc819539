"""Wire format of audio's events and jobs (proto/waqup/audio/v1/events.proto)."""

from __future__ import annotations

import uuid
from datetime import UTC

from core.audio.model import AudioFailed, AudioRendered, RenderJob
from core.shared.creation import Script, Segment
from services.api.convert import timestamp
from services.api.creation import resource_id
from services.gen.waqup.audio.v1 import events_pb2


def encode_rendered(event: AudioRendered) -> events_pb2.AudioRendered:
    return events_pb2.AudioRendered(
        event_id=str(event.event_id), content=f"contents/{event.content_id}",
        user=f"users/{event.user_id}", version=event.version, object_key=event.object_key,
        mime_type=event.mime_type, duration_ms=event.duration_ms, size_bytes=event.size,
        voice=event.voice, render_time=timestamp(event.occurred_at))


def decode_rendered(message: events_pb2.AudioRendered, event_id: uuid.UUID) -> AudioRendered:
    return AudioRendered(
        event_id=event_id, occurred_at=message.render_time.ToDatetime(tzinfo=UTC),
        content_id=resource_id(message.content, "contents"),
        user_id=resource_id(message.user, "users"), version=message.version,
        object_key=message.object_key, mime_type=message.mime_type,
        duration_ms=message.duration_ms, size=message.size_bytes, voice=message.voice)


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
        voice=message.voice, rate=message.rate or 1.0)
