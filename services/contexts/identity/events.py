"""Wire format of identity's events (proto/waqup/identity/v1/events.proto)."""

from __future__ import annotations

import uuid
from datetime import UTC

from core.identity.model import UserRegistered
from services.api.convert import timestamp, user_segment
from services.gen.waqup.identity.v1 import events_pb2


def encode_user_registered(event: UserRegistered) -> events_pb2.UserRegistered:
    return events_pb2.UserRegistered(event_id=str(event.event_id), user=f"users/{event.user_id}",
                                     register_time=timestamp(event.occurred_at))


def decode_user_registered(message: events_pb2.UserRegistered,
                           event_id: uuid.UUID) -> UserRegistered:
    return UserRegistered(event_id=event_id, user_id=uuid.UUID(user_segment(message.user)),
                          occurred_at=message.register_time.ToDatetime(tzinfo=UTC))
