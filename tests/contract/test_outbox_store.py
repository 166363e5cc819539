"""The outbox relay's read side, for every adapter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.identity.model import UserRegistered
from core.shared.ids import uuid7
from tests.contract.conftest import Backend, current_trace

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def write_events(backend: Backend, count: int) -> list[UserRegistered]:
    events = [UserRegistered(user_id=uuid7(), occurred_at=T0 + timedelta(seconds=n))
              for n in range(count)]
    async with backend.identity_uow() as uow:
        for event in reversed(events):
            await uow.outbox.add(event)
        await uow.commit()
    return events


async def test_fetch_pending_oldest_first_due_only_limited(backend: Backend) -> None:
    events = await write_events(backend, 5)
    store = backend.outbox_store
    assert await store.fetch_pending(10, T0 - timedelta(seconds=1)) == []
    due = await store.fetch_pending(10, T0 + timedelta(seconds=2))
    assert [m.event_id for m in due] == [e.event_id for e in events[:3]]
    limited = await store.fetch_pending(2, T0 + timedelta(hours=1))
    assert [m.event_id for m in limited] == [e.event_id for e in events[:2]]


async def test_mark_published_removes_from_pending(backend: Backend) -> None:
    events = await write_events(backend, 3)
    store = backend.outbox_store
    later = T0 + timedelta(hours=1)
    await store.mark_published([events[0].event_id, events[2].event_id], later)
    await store.mark_published([], later)
    pending = await store.fetch_pending(10, later)
    assert [m.event_id for m in pending] == [events[1].event_id]


async def test_mark_failed_delays_and_counts_attempts(backend: Backend) -> None:
    events = await write_events(backend, 2)
    store = backend.outbox_store
    failed = events[0].event_id
    await store.mark_failed(failed, "nats down " * 1000, T0 + timedelta(minutes=1))
    pending = await store.fetch_pending(10, T0 + timedelta(seconds=30))
    assert [m.event_id for m in pending] == [events[1].event_id]
    await store.mark_failed(failed, "still down", T0 + timedelta(minutes=2))
    pending = await store.fetch_pending(10, T0 + timedelta(minutes=2))
    assert [(m.event_id, m.attempts) for m in pending] == [(failed, 2), (events[1].event_id, 0)]


async def test_oldest_unpublished_is_the_outbox_lag(backend: Backend) -> None:
    store = backend.outbox_store
    assert await store.oldest_unpublished() is None
    events = await write_events(backend, 3)
    assert await store.oldest_unpublished() == events[0].occurred_at
    later = T0 + timedelta(hours=1)
    # Held back after a failure, it still counts: it is not published.
    await store.mark_failed(events[0].event_id, "down", later)
    assert await store.oldest_unpublished() == events[0].occurred_at
    await store.mark_published([events[0].event_id], later)
    assert await store.oldest_unpublished() == events[1].occurred_at
    await store.mark_published([events[1].event_id, events[2].event_id], later)
    assert await store.oldest_unpublished() is None


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_an_event_keeps_the_trace_context_of_the_transaction_that_wrote_it(
        backend: Backend) -> None:
    token = current_trace.set(TRACEPARENT)
    try:
        [traced] = await write_events(backend, 1)
    finally:
        current_trace.reset(token)
    untraced = UserRegistered(user_id=uuid7(), occurred_at=T0 + timedelta(seconds=1))
    async with backend.identity_uow() as uow:
        await uow.outbox.add(untraced)
        await uow.commit()

    pending = await backend.outbox_store.fetch_pending(10, T0 + timedelta(hours=1))
    assert [(m.event_id, m.traceparent) for m in pending] == [
        (traced.event_id, TRACEPARENT), (untraced.event_id, "")]
