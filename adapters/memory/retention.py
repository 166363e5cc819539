"""ports.common.Retention in memory, held to the SQL adapter's contract."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from adapters.memory.store import MemoryStore, utc


class MemoryRetention:
    """Each call takes the store's lock briefly and publishes new tables (a
    reader's snapshot is never changed under it)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def delete_idempotency_keys(self, created_before: datetime, limit: int) -> int:
        cutoff, n = utc(created_before), _positive(limit)
        async with self._store.lock:
            tables = self._store.tables
            doomed = {key for at, key in sorted(
                (at, key) for key, at in tables.idempotency_created_at.items()
                if at < cutoff)[:n]}
            self._store.tables = replace(
                tables,
                idempotency_keys={k: v for k, v in tables.idempotency_keys.items()
                                  if k not in doomed},
                idempotency_created_at={k: v for k, v in tables.idempotency_created_at.items()
                                        if k not in doomed})
            return len(doomed)

    async def delete_processed_events(self, processed_before: datetime, limit: int) -> int:
        cutoff, n = utc(processed_before), _positive(limit)
        async with self._store.lock:
            tables = self._store.tables
            doomed = {key for at, key in sorted(
                (at, key) for key, at in tables.processed_events.items() if at < cutoff)[:n]}
            self._store.tables = replace(tables, processed_events={
                k: v for k, v in tables.processed_events.items() if k not in doomed})
            return len(doomed)

    async def delete_published_outbox(self, published_before: datetime, limit: int) -> int:
        cutoff, n = utc(published_before), _positive(limit)
        async with self._store.lock:
            tables = self._store.tables
            doomed = {row.event_id for row in sorted(
                (r for r in tables.outbox.values()
                 if r.published_at is not None and r.published_at < cutoff),
                key=lambda r: (r.published_at, r.event_id))[:n]}
            self._store.tables = replace(tables, outbox={
                k: v for k, v in tables.outbox.items() if k not in doomed})
            return len(doomed)

    async def delete_audit_logs(self, created_before: datetime, limit: int) -> int:
        cutoff, n = utc(created_before), _positive(limit)
        async with self._store.lock:
            tables = self._store.tables
            doomed = {e.id for e in sorted(
                (e for e in tables.audit_logs if e.created_at < cutoff),
                key=lambda e: (e.created_at, e.id))[:n]}
            self._store.tables = replace(tables, audit_logs=[
                e for e in tables.audit_logs if e.id not in doomed])
            return len(doomed)


def _positive(limit: int) -> int:
    if limit <= 0:
        raise ValueError("limit must be positive")
    return limit
