"""Ports shared by every context: time, cache, outbox and events."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from core.shared.events import DomainEvent


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, UTC, timezone-aware."""
        ...


class Cache(Protocol):
    """A best-effort cache. Losing it loses nothing of record."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class OutboxMessage:
    """An event as stored in the outbox and carried by the bus."""

    event_id: uuid.UUID
    topic: str
    payload: bytes
    created_at: datetime
    #: Earlier deliveries of this message that did not end in an ack (a bus)
    #: or failed publications (the outbox): more than 0 means a redelivery.
    attempts: int = 0
    #: The W3C `traceparent` of the transaction that wrote the event ("" if
    #: none): kept by the outbox and carried by the bus, so that whoever
    #: handles the event continues that trace.
    traceparent: str = ""


#: The W3C `traceparent` of the operation running now ("" outside of one).
#: The outbox adapters call it when an event is written.
TraceContext = Callable[[], str]


def no_trace_context() -> str:
    return ""


class EventCodec(Protocol):
    """Turns domain events into wire messages and back (protobuf, in services)."""

    def encode(self, event: DomainEvent) -> tuple[str, bytes]: ...

    def decode(self, topic: str, payload: bytes, event_id: uuid.UUID) -> DomainEvent: ...


class Outbox(Protocol):
    """Write side of the outbox, inside a unit of work."""

    async def add(self, event: DomainEvent) -> None: ...


class OutboxStore(Protocol):
    """Read side of the outbox, for the relay."""

    async def fetch_pending(self, limit: int, now: datetime) -> list[OutboxMessage]:
        """Unpublished messages due now, oldest first."""
        ...

    async def mark_published(self, event_ids: list[uuid.UUID], at: datetime) -> None: ...

    async def mark_failed(self, event_id: uuid.UUID, error: str, retry_at: datetime) -> None:
        """Count a failed delivery and hold the message back until `retry_at`."""
        ...

    async def oldest_unpublished(self) -> datetime | None:
        """When the oldest message not yet published was written (due or held
        back after a failure); None when every message is published. `now`
        minus this is the outbox lag."""
        ...


EventHandler = Callable[[OutboxMessage], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerStatus:
    """Where one durable consumer stands, as far as its bus can tell."""

    topic: str
    consumer: str
    #: Messages published to the bus that this consumer has not finished
    #: handling yet (not delivered, or delivered and not acked).
    pending: int


class EventBus(Protocol):
    """Carries outbox messages to durable, named consumers, at least once.

    Lifecycle: subscribe() every consumer, then start() (connects, creates
    streams and durable consumers, begins delivery), publish() any number of
    times, close(). A handler that raises gets the message again later; handlers
    must be idempotent (processed_events), since any message may arrive twice.
    """

    def subscribe(self, topic: str, consumer: str, handler: EventHandler) -> None:
        """Deliver every message on `topic` to `handler`, as durable consumer
        `consumer` (one delivery per consumer name, whatever the process count)."""
        ...

    async def start(self) -> None: ...

    async def publish(self, message: OutboxMessage) -> None:
        """Returns once the message is safely handed over (in-process: handled;
        a broker: stored). Raises if it could not be; the caller retries."""
        ...

    async def close(self) -> None: ...

    async def consumer_status(self) -> list[ConsumerStatus]:
        """One entry per subscription, for metrics. Raises if the bus cannot
        tell right now (a broker out of reach)."""
        ...


class UnitOfWork(Protocol):
    """One atomic transaction. Leaving the block without commit() rolls back.

    A read-only unit of work (its factory's `read_only=True`) takes no lock and
    refuses commit(). Each of its statements sees what was committed when the
    statement started; two statements are not one snapshot.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None: ...

    async def commit(self) -> None: ...


class ProcessedEvents(Protocol):
    async def add(self, consumer: str, event_id: uuid.UUID, at: datetime) -> bool:
        """Record that `consumer` handled `event_id`; False if it already had."""
        ...
