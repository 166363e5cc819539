"""Wire format of the library's events (proto/waqup/library/v1/events.proto)."""

from __future__ import annotations

import uuid
from datetime import UTC, date

from core.library.model import ContentFailed, ContentReady, PracticeCompleted
from services.api.convert import timestamp
from services.api.creation import CONTENT_TYPE_FROM_PB, CONTENT_TYPE_TO_PB, resource_id
from services.gen.waqup.library.v1 import events_pb2


def encode_ready(event: ContentReady) -> events_pb2.ContentReady:
    return events_pb2.ContentReady(
        event_id=str(event.event_id), content=f"contents/{event.content_id}",
        user=f"users/{event.user_id}", content_type=CONTENT_TYPE_TO_PB[event.content_type],
        ready_time=timestamp(event.occurred_at))


def decode_ready(message: events_pb2.ContentReady, event_id: uuid.UUID) -> ContentReady:
    return ContentReady(event_id=event_id, occurred_at=message.ready_time.ToDatetime(tzinfo=UTC),
                        content_id=resource_id(message.content, "contents"),
                        user_id=resource_id(message.user, "users"),
                        content_type=CONTENT_TYPE_FROM_PB[message.content_type])


def encode_failed(event: ContentFailed) -> events_pb2.ContentFailed:
    return events_pb2.ContentFailed(
        event_id=str(event.event_id), content=f"contents/{event.content_id}",
        user=f"users/{event.user_id}", reason=event.reason,
        fail_time=timestamp(event.occurred_at))


def decode_failed(message: events_pb2.ContentFailed, event_id: uuid.UUID) -> ContentFailed:
    return ContentFailed(event_id=event_id, occurred_at=message.fail_time.ToDatetime(tzinfo=UTC),
                         content_id=resource_id(message.content, "contents"),
                         user_id=resource_id(message.user, "users"), reason=message.reason)


def encode_practice(event: PracticeCompleted) -> events_pb2.PracticeCompleted:
    message = events_pb2.PracticeCompleted(
        event_id=str(event.event_id), practice=f"practices/{event.practice_id}",
        content=f"contents/{event.content_id}", user=f"users/{event.user_id}",
        content_type=CONTENT_TYPE_TO_PB[event.content_type],
        local_date=event.local_date.isoformat(), complete_time=timestamp(event.occurred_at),
        local_hour=event.local_hour, title=event.title, tags=event.tags,
        mood_before=event.mood_before, mood_after=event.mood_after)
    message.listened_duration.FromMilliseconds(round(event.listened_seconds * 1000))
    return message


def decode_practice(message: events_pb2.PracticeCompleted,
                    event_id: uuid.UUID) -> PracticeCompleted:
    return PracticeCompleted(
        event_id=event_id, occurred_at=message.complete_time.ToDatetime(tzinfo=UTC),
        practice_id=resource_id(message.practice, "practices"),
        content_id=resource_id(message.content, "contents"),
        user_id=resource_id(message.user, "users"),
        content_type=CONTENT_TYPE_FROM_PB[message.content_type],
        listened_seconds=message.listened_duration.ToMilliseconds() / 1000,
        local_date=date.fromisoformat(message.local_date), local_hour=message.local_hour,
        title=message.title, tags=tuple(message.tags), mood_before=message.mood_before,
        mood_after=message.mood_after)
