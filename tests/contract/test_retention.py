"""The Retention contract, for every adapter (memory, SQLite, PostgreSQL): old
rows go, a bounded batch per call, oldest first; younger rows stay; an outbox
message not yet published stays however old it is."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from adapters.memory.retention import MemoryRetention
from adapters.sql.retention import SqlRetention
from adapters.sql.schema import outbox
from core.identity.model import AuditAction, AuditEntry, UserRegistered
from core.shared.ids import uuid7
from ports.common import Retention
from tests.contract.conftest import Backend

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def retention_of(backend: Backend) -> Retention:
    if backend.store is not None:
        return MemoryRetention(backend.store)
    assert backend.engine is not None
    return SqlRetention(backend.engine)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


async def claim_keys(backend: Backend, ages: dict[str, float]) -> None:
    async with backend.credits_uow() as uow:
        for key, at in ages.items():
            assert await uow.idempotency.claim(key, "fp", minutes(at)) is None
            await uow.idempotency.complete(key, {"kind": "test"})
        await uow.commit()


async def known_keys(backend: Backend, keys: list[str]) -> set[str]:
    """The keys still claimed (a claim of a forgotten key succeeds; rolled back)."""
    known = set()
    async with backend.credits_uow() as uow:
        for key in keys:
            if await uow.idempotency.claim(key, "fp", T0) is not None:
                known.add(key)
    return known


async def test_idempotency_keys_oldest_first_in_bounded_batches(backend: Backend) -> None:
    retention = retention_of(backend)
    ages = {"credits:reserve:a": 0, "credits:reserve:b": 1, "credits:commit:c": 2,
            "credits:grant:d": 3, "credits:grant:young": 10}
    await claim_keys(backend, ages)

    assert await retention.delete_idempotency_keys(minutes(5), 2) == 2
    assert await known_keys(backend, list(ages)) == {
        "credits:commit:c", "credits:grant:d", "credits:grant:young"}
    assert await retention.delete_idempotency_keys(minutes(5), 2) == 2
    assert await retention.delete_idempotency_keys(minutes(5), 2) == 0
    # Strictly older: a key claimed at the cutoff stays.
    assert await retention.delete_idempotency_keys(minutes(10), 100) == 0
    assert await known_keys(backend, list(ages)) == {"credits:grant:young"}


async def test_processed_events_are_forgotten_when_old(backend: Backend) -> None:
    retention = retention_of(backend)
    old = [(f"consumer-{n % 2}", uuid7()) for n in range(5)]
    young = ("consumer-0", uuid7())
    async with backend.credits_uow() as uow:
        for n, (consumer, event_id) in enumerate(old):
            assert await uow.processed_events.add(consumer, event_id, minutes(n))
        assert await uow.processed_events.add(*young, minutes(60))
        await uow.commit()

    assert await retention.delete_processed_events(minutes(30), 3) == 3
    assert await retention.delete_processed_events(minutes(30), 3) == 2
    assert await retention.delete_processed_events(minutes(30), 3) == 0
    async with backend.credits_uow() as uow:
        assert not await uow.processed_events.add(*young, minutes(61))  # still remembered
        for consumer, event_id in old:  # forgotten: would be handled again
            assert await uow.processed_events.add(consumer, event_id, minutes(61))


async def outbox_ids(backend: Backend) -> set[uuid.UUID]:
    if backend.store is not None:
        return set(backend.store.tables.outbox)
    assert backend.engine is not None
    async with backend.engine.connect() as conn:
        return set((await conn.execute(select(outbox.c.event_id))).scalars())


async def test_only_published_outbox_messages_are_deleted(backend: Backend) -> None:
    retention = retention_of(backend)
    events = [UserRegistered(user_id=uuid7(), occurred_at=minutes(n)) for n in range(6)]
    async with backend.identity_uow() as uow:
        for event in events:
            await uow.outbox.add(event)
        await uow.commit()
    store = backend.outbox_store
    await store.mark_published([events[0].event_id, events[1].event_id], minutes(10))
    await store.mark_published([events[2].event_id], minutes(20))
    await store.mark_published([events[3].event_id], minutes(40))  # published recently
    await store.mark_failed(events[4].event_id, "down", minutes(50))  # failing, old
    # events[5]: never published

    assert await retention.delete_published_outbox(minutes(30), 2) == 2
    assert await outbox_ids(backend) == {e.event_id for e in events[2:]}
    assert await retention.delete_published_outbox(minutes(30), 2) == 1
    assert await retention.delete_published_outbox(minutes(30), 2) == 0
    # However old, an unpublished message stays: it has not reached the bus.
    assert await retention.delete_published_outbox(minutes(10_000), 100) == 1
    assert await outbox_ids(backend) == {events[4].event_id, events[5].event_id}
    pending = await store.fetch_pending(10, minutes(10_000))
    assert [m.event_id for m in pending] == [events[4].event_id, events[5].event_id]


async def test_audit_logs_older_than_the_cutoff_go(backend: Backend) -> None:
    retention = retention_of(backend)
    user = uuid7()
    entries = [AuditEntry(id=uuid7(), action=AuditAction.LOGIN, created_at=minutes(n),
                          user_id=user, request_id=f"r{n}") for n in range(4)]
    async with backend.identity_uow() as uow:
        for entry in entries:
            await uow.audit.record(entry)
        await uow.commit()

    assert await retention.delete_audit_logs(minutes(2), 10) == 2
    assert await retention.delete_audit_logs(minutes(2), 10) == 0
    async with backend.identity_uow(read_only=True) as uow:
        assert [e.id for e in await uow.audit.list_for_user(user)] == [
            e.id for e in entries[2:]]


async def test_limit_must_be_positive(backend: Backend) -> None:
    with pytest.raises(ValueError):
        await retention_of(backend).delete_audit_logs(T0, 0)


async def test_postgres_batches_skip_rows_another_transaction_holds(backend: Backend) -> None:
    """No long locks: a batch does not wait for a transaction that holds one of
    its rows; it deletes the others and leaves that one for the next run."""
    if backend.name != "postgres":
        pytest.skip("row locks: PostgreSQL (SQLite locks the whole database per batch)")
    assert backend.engine is not None
    await claim_keys(backend, {"k1": 0, "k2": 1, "k3": 2})
    retention = retention_of(backend)
    async with backend.engine.connect() as holder:
        await holder.execute(text("SELECT key FROM idempotency_keys WHERE key = 'k1' FOR UPDATE"))
        deleted = await asyncio.wait_for(retention.delete_idempotency_keys(minutes(5), 10), 5)
        assert deleted == 2
        await holder.rollback()
    assert await retention.delete_idempotency_keys(minutes(5), 10) == 1
