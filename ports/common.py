"""Ports shared by every context: time, cache, outbox and events, leases and
retention."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
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

    async def add(self, event: DomainEvent) -> None:
        """Write the event with the change. An event id already in the outbox is
        ignored: an event whose id is derived from its fact (a render's outcome)
        is announced once however often the fact is recorded."""
        ...


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


class Leases(Protocol):
    """Named leases with an expiry: at any time at most one owner holds a name,
    until it releases it or stops renewing it and the lease expires. Shared by
    every process (and machine) that uses the same backend, so that one of
    them runs a scheduled job. Owners are opaque strings, unique per process."""

    async def acquire(self, name: str, owner: str, ttl: timedelta) -> bool:
        """Take `name` for `owner` until `ttl` from now, or renew it for `ttl`
        from now if `owner` holds it already. False while another owner's lease
        has not expired. Atomic: of several contenders at once, one wins."""
        ...

    async def release(self, name: str, owner: str) -> None:
        """Give `name` up at once if `owner` holds it; a no-op otherwise."""
        ...

    async def close(self) -> None: ...


class Retention(Protocol):
    """Deletes rows kept for a limited time. Each call deletes at most `limit`
    of the matching rows, oldest first, in one short transaction (no long
    locks), and returns how many it deleted; callers repeat while a call
    deletes `limit`."""

    async def delete_idempotency_keys(self, created_before: datetime, limit: int) -> int:
        """Idempotency keys claimed before `created_before`."""
        ...

    async def delete_processed_events(self, processed_before: datetime, limit: int) -> int:
        """Records of events handled before `processed_before`."""
        ...

    async def delete_published_outbox(self, published_before: datetime, limit: int) -> int:
        """Outbox messages published before `published_before`; never one that
        is not published yet, however old."""
        ...

    async def delete_audit_logs(self, created_before: datetime, limit: int) -> int:
        """Audit log entries written before `created_before`."""
        ...
