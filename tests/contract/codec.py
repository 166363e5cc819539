"""A JSON EventCodec for tests (services use protobuf)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from core.identity.model import UserRegistered
from core.shared.events import DomainEvent


class JsonEventCodec:
    def encode(self, event: DomainEvent) -> tuple[str, bytes]:
        if not isinstance(event, UserRegistered):
            raise TypeError(f"no encoding for {type(event).__name__}")
        body = {"user_id": str(event.user_id), "occurred_at": event.occurred_at.isoformat()}
        return event.topic, json.dumps(body).encode()

    def decode(self, topic: str, payload: bytes, event_id: uuid.UUID) -> DomainEvent:
        if topic != UserRegistered.topic:
            raise ValueError(f"unknown topic {topic}")
        body = json.loads(payload)
        return UserRegistered(event_id=event_id, user_id=uuid.UUID(body["user_id"]),
                              occurred_at=datetime.fromisoformat(body["occurred_at"]))
