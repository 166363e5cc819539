"""ports.common.Retention on SQL: old rows deleted a bounded batch at a time.

Each call is one short transaction: `DELETE ... WHERE key IN (SELECT key ...
ORDER BY age LIMIT n)`, the inner SELECT served by an index on the age column.
On PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED, so a batch never
waits for a transaction that holds one of them (nor makes it wait long); on
SQLite a batch holds the write lock for its own short transaction only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.schema import audit_logs, idempotency_keys, outbox, processed_events


class SqlRetention:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def delete_idempotency_keys(self, created_before: datetime, limit: int) -> int:
        t = idempotency_keys
        return await self._delete(t, [t.c.key], t.c.created_at < created_before,
                                  t.c.created_at, limit)

    async def delete_processed_events(self, processed_before: datetime, limit: int) -> int:
        t = processed_events
        return await self._delete(t, [t.c.consumer, t.c.event_id],
                                  t.c.processed_at < processed_before, t.c.processed_at, limit)

    async def delete_published_outbox(self, published_before: datetime, limit: int) -> int:
        t = outbox
        return await self._delete(t, [t.c.event_id],
                                  t.c.published_at.is_not(None)
                                  & (t.c.published_at < published_before),
                                  t.c.published_at, limit)

    async def delete_audit_logs(self, created_before: datetime, limit: int) -> int:
        t = audit_logs
        return await self._delete(t, [t.c.id], t.c.created_at < created_before,
                                  t.c.created_at, limit)

    async def _delete(self, table: Table, keys: list[Any], old: ColumnElement[bool],
                      age: Any, limit: int) -> int:
        if limit <= 0:
            raise ValueError("limit must be positive")
        batch = select(*keys).where(old).order_by(age).limit(limit)
        if self._engine.dialect.name == "postgresql":
            batch = batch.with_for_update(skip_locked=True)
        doomed = keys[0].in_(batch) if len(keys) == 1 else tuple_(*keys).in_(batch)
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(table).where(doomed))
        return int(result.rowcount)
