"""In-process event bus: the relay hands each message straight to its consumers."""

from __future__ import annotations

from collections import Counter, defaultdict

from ports.common import ConsumerStatus, EventHandler, OutboxMessage


class InProcessEventBus:
    """Implements ports.common.EventBus. publish() returns after every consumer of
    the topic handled the message; if one fails, publish raises and the relay
    delivers the message again later, so consumers must be idempotent.

    It holds no queue: a message waits in the outbox until it is published, and
    then is handled at once. So a consumer's pending messages are the ones its
    handler is running now; what waits longer is the outbox lag.
    """

    def __init__(self) -> None:
        self._consumers: dict[str, dict[str, EventHandler]] = defaultdict(dict)
        self._running: Counter[tuple[str, str]] = Counter()

    def subscribe(self, topic: str, consumer: str, handler: EventHandler) -> None:
        if consumer in self._consumers[topic]:
            raise ValueError(f"{consumer!r} already consumes {topic!r}")
        self._consumers[topic][consumer] = handler

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to release."""

    async def publish(self, message: OutboxMessage) -> None:
        for consumer, handler in list(self._consumers.get(message.topic, {}).items()):
            key = (message.topic, consumer)
            self._running[key] += 1
            try:
                await handler(message)
            finally:
                self._running[key] -= 1

    async def consumer_status(self) -> list[ConsumerStatus]:
        return [ConsumerStatus(topic, consumer, self._running[(topic, consumer)])
                for topic, consumers in self._consumers.items() for consumer in consumers]
