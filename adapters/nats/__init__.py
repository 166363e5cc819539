"""NATS JetStream adapters (nats-py): the event bus."""

from adapters.nats.event_bus import NatsEventBus, NatsEventBusError, durable_name, stream_for

__all__ = ["NatsEventBus", "NatsEventBusError", "durable_name", "stream_for"]
