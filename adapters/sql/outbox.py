"""The transactional outbox on SQL: written inside a unit of work, read by the relay."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sql.schema import outbox
from adapters.sql.uow import upsert_insert
from core.shared.events import DomainEvent
from ports.common import EventCodec, OutboxMessage, TraceContext, no_trace_context

MAX_ERROR_LENGTH = 1000


class SqlOutbox:
    """Write side: the event lands in the same transaction as the change it describes."""

    def __init__(self, conn: AsyncConnection, codec: EventCodec,
                 trace_context: TraceContext = no_trace_context) -> None:
        self._conn = conn
        self._codec = codec
        self._trace_context = trace_context

    async def add(self, event: DomainEvent) -> None:
        topic, payload = self._codec.encode(event)
        await self._conn.execute(upsert_insert(self._conn, outbox).values(
            event_id=event.event_id, topic=topic, payload=payload,
            created_at=event.occurred_at, attempts=0, next_attempt_at=event.occurred_at,
            traceparent=self._trace_context() or None)
            .on_conflict_do_nothing(index_elements=[outbox.c.event_id]))


class SqlOutboxStore:
    """Read side, for the relay. Each call is its own short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def fetch_pending(self, limit: int, now: datetime) -> list[OutboxMessage]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(outbox)
                .where(outbox.c.published_at.is_(None), outbox.c.next_attempt_at <= now)
                .order_by(outbox.c.created_at, outbox.c.event_id)
                .limit(limit))
            return [OutboxMessage(event_id=r.event_id, topic=r.topic, payload=bytes(r.payload),
                                  created_at=r.created_at, attempts=r.attempts,
                                  traceparent=r.traceparent or "") for r in rows]

    async def oldest_unpublished(self) -> datetime | None:
        async with self._engine.connect() as conn:
            return await conn.scalar(select(func.min(outbox.c.created_at))
                                     .where(outbox.c.published_at.is_(None)))

    async def mark_published(self, event_ids: list[uuid.UUID], at: datetime) -> None:
        if not event_ids:
            return
        async with self._engine.begin() as conn:
            await conn.execute(update(outbox)
                               .where(outbox.c.event_id.in_(event_ids),
                                      outbox.c.published_at.is_(None))
                               .values(published_at=at))

    async def mark_failed(self, event_id: uuid.UUID, error: str, retry_at: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(outbox)
                               .where(outbox.c.event_id == event_id)
                               .values(attempts=outbox.c.attempts + 1,
                                       last_error=error[:MAX_ERROR_LENGTH],
                                       next_attempt_at=retry_at))
