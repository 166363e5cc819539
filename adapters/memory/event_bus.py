"""In-process event bus: the relay hands each message straight to its consumers."""

from __future__ import annotations

from collections import defaultdict

from ports.common import EventHandler, OutboxMessage


class InProcessEventBus:
    """Implements ports.common.EventBus. publish() returns after every consumer of
    the topic handled the message; if one fails, publish raises and the relay
    delivers the message again later, so consumers must be idempotent."""

    def __init__(self) -> None:
        self._consumers: dict[str, dict[str, EventHandler]] = defaultdict(dict)

    def subscribe(self, topic: str, consumer: str, handler: EventHandler) -> None:
        if consumer in self._consumers[topic]:
            raise ValueError(f"{consumer!r} already consumes {topic!r}")
        self._consumers[topic][consumer] = handler

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to release."""

    async def publish(self, message: OutboxMessage) -> None:
        for handler in list(self._consumers.get(message.topic, {}).values()):
            await handler(message)
