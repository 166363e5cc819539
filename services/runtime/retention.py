"""Retention jobs: rows kept for a limited time are deleted periodically, in
bounded batches (ports.common.Retention), each job logging what it removed.

- `idempotency_keys` older than WAQUP_IDEMPOTENCY_RETENTION_HOURS (24 h: a
  retry with the same request_id after that is a new request);
- `processed_events` older than WAQUP_PROCESSED_EVENTS_RETENTION_DAYS (14 d:
  longer than any redelivery, including a replay of the NATS streams, which
  keep messages 7 days);
- published `outbox` rows older than WAQUP_OUTBOX_RETENTION_DAYS (7 d); never
  an unpublished one;
- `audit_logs` older than WAQUP_AUDIT_LOG_RETENTION_DAYS (365 d), scheduled by
  the context that owns them (identity).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from ports.common import Clock, Retention
from services.runtime.scheduler import Job
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

#: Pause between two batches of one job, so other writers get the database.
BATCH_PAUSE_SECONDS = 0.05

Delete = Callable[[datetime, int], Awaitable[int]]


async def delete_older(table: str, delete: Delete, clock: Clock, keep: timedelta, batch: int,
                       *, pause: float = BATCH_PAUSE_SECONDS) -> int:
    """Delete the rows of `table` older than `keep`, `batch` at a time, until
    a batch comes back short; returns how many went, and logs it."""
    cutoff = clock.now() - keep
    total = 0
    while True:
        deleted = await delete(cutoff, batch)
        total += deleted
        if deleted < batch:
            break
        await asyncio.sleep(pause)
    log.info("retention: %d rows deleted from %s", total, table, extra={
        "table": table, "deleted": total, "older_than": cutoff.isoformat()})
    return total


def retention_job(name: str, table: str, delete: Delete, clock: Clock, keep: timedelta,
                  settings: Settings) -> Job:
    return Job(name=name, interval=settings.retention_interval_seconds, counts="rows deleted",
               run=lambda: delete_older(table, delete, clock, keep, settings.retention_batch_size))


def shared_retention_jobs(retention: Retention, clock: Clock, settings: Settings) -> list[Job]:
    """The jobs of the tables every context shares (none when turned off)."""
    if not settings.retention_interval_seconds:
        return []
    return [
        retention_job("retention.idempotency-keys", "idempotency_keys",
                      retention.delete_idempotency_keys, clock,
                      timedelta(hours=settings.idempotency_retention_hours), settings),
        retention_job("retention.processed-events", "processed_events",
                      retention.delete_processed_events, clock,
                      timedelta(days=settings.processed_events_retention_days), settings),
        retention_job("retention.outbox", "outbox", retention.delete_published_outbox, clock,
                      timedelta(days=settings.outbox_retention_days), settings),
    ]


def audit_log_retention_job(retention: Retention, clock: Clock,
                            settings: Settings) -> list[Job]:
    """Identity's audit log (none when retention jobs are turned off)."""
    if not settings.retention_interval_seconds:
        return []
    return [retention_job("retention.audit-logs", "audit_logs", retention.delete_audit_logs,
                          clock, timedelta(days=settings.audit_log_retention_days), settings)]


def retention_for(infra_store: object, engine: object) -> Retention:
    """The Retention adapter of the process's store: memory or SQL."""
    if infra_store is not None:
        from adapters.memory.retention import MemoryRetention

        return MemoryRetention(infra_store)  # type: ignore[arg-type]
    from adapters.sql.retention import SqlRetention

    return SqlRetention(engine)  # type: ignore[arg-type]
