"""The outbox in memory: write side inside a unit of work, read side for the relay."""

from __future__ import annotations

import uuid
from datetime import datetime

from adapters.memory.store import MemoryStore, OutboxRow, Tables, utc
from core.shared.events import DomainEvent
from ports.common import EventCodec, OutboxMessage, TraceContext, no_trace_context

MAX_ERROR_LENGTH = 1000


class MemoryOutbox:
    def __init__(self, tables: Tables, codec: EventCodec,
                 trace_context: TraceContext = no_trace_context) -> None:
        self._rows = tables.outbox
        self._codec = codec
        self._trace_context = trace_context

    async def add(self, event: DomainEvent) -> None:
        if event.event_id in self._rows:
            return
        topic, payload = self._codec.encode(event)
        self._rows[event.event_id] = OutboxRow(
            event_id=event.event_id, topic=topic, payload=payload,
            created_at=utc(event.occurred_at), next_attempt_at=utc(event.occurred_at),
            traceparent=self._trace_context())


class MemoryOutboxStore:
    """Read side, for the relay; each call takes the store's lock briefly."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def fetch_pending(self, limit: int, now: datetime) -> list[OutboxMessage]:
        async with self._store.lock:
            due = sorted((r for r in self._store.tables.outbox.values()
                          if r.published_at is None and r.next_attempt_at <= now),
                         key=lambda r: (r.created_at, r.event_id))
            return [OutboxMessage(event_id=r.event_id, topic=r.topic, payload=r.payload,
                                  created_at=r.created_at, attempts=r.attempts,
                                  traceparent=r.traceparent)
                    for r in due[:limit]]

    async def oldest_unpublished(self) -> datetime | None:
        async with self._store.lock:
            return min((r.created_at for r in self._store.tables.outbox.values()
                        if r.published_at is None), default=None)

    async def mark_published(self, event_ids: list[uuid.UUID], at: datetime) -> None:
        async with self._store.lock:
            for event_id in event_ids:
                row = self._store.tables.outbox.get(event_id)
                if row is not None and row.published_at is None:
                    row.published_at = utc(at)

    async def mark_failed(self, event_id: uuid.UUID, error: str, retry_at: datetime) -> None:
        async with self._store.lock:
            row = self._store.tables.outbox.get(event_id)
            if row is not None:
                row.attempts += 1
                row.last_error = error[:MAX_ERROR_LENGTH]
                row.next_attempt_at = utc(retry_at)
