"""The protobuf wire format of every declared event (ports.common.EventCodec)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from core.shared.events import DomainEvent
from services.contexts.declaration import ContextDeclaration, Publishes


class ProtobufEventCodec:
    """Encodes the events the given contexts publish (all declared ones by default)."""

    def __init__(self, contexts: Iterable[ContextDeclaration] | None = None) -> None:
        if contexts is None:
            from services.contexts import CONTEXTS

            contexts = CONTEXTS
        bindings = [event for context in contexts for event in context.publishes]
        self._by_type: dict[type[DomainEvent], Publishes] = {b.event: b for b in bindings}
        self._by_topic: dict[str, Publishes] = {b.topic: b for b in bindings}

    def encode(self, event: DomainEvent) -> tuple[str, bytes]:
        binding = self._by_type.get(type(event))
        if binding is None:
            raise TypeError(f"no wire format for {type(event).__name__}")
        return binding.topic, binding.encode(event).SerializeToString()

    def decode(self, topic: str, payload: bytes, event_id: uuid.UUID) -> DomainEvent:
        binding = self._by_topic.get(topic)
        if binding is None:
            raise ValueError(f"unknown event topic {topic!r}")
        return binding.decode(binding.message.FromString(payload), event_id)
