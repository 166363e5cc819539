"""Protobuf wire format of domain events (proto/waqup/<context>/v1/events.proto)."""

from __future__ import annotations

import uuid
from datetime import UTC

from core.identity.model import UserRegistered
from core.shared.events import DomainEvent
from services.convert import timestamp, user_segment
from services.gen.waqup.identity.v1 import events_pb2 as identity_events


class ProtobufEventCodec:
    """Implements ports.common.EventCodec."""

    def encode(self, event: DomainEvent) -> tuple[str, bytes]:
        if isinstance(event, UserRegistered):
            message = identity_events.UserRegistered(
                event_id=str(event.event_id), user=f"users/{event.user_id}",
                register_time=timestamp(event.occurred_at))
            return event.topic, message.SerializeToString()
        raise TypeError(f"no wire format for {type(event).__name__}")

    def decode(self, topic: str, payload: bytes, event_id: uuid.UUID) -> DomainEvent:
        if topic == UserRegistered.topic:
            message = identity_events.UserRegistered.FromString(payload)
            return UserRegistered(
                event_id=event_id, user_id=uuid.UUID(user_segment(message.user)),
                occurred_at=message.register_time.ToDatetime(tzinfo=UTC))
        raise ValueError(f"unknown event topic {topic!r}")
