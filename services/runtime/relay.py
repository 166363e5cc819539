"""The outbox relay: moves committed events from the outbox to the event bus.

A message leaves the outbox only after the bus accepted it, so a crash or
restart loses nothing; it may deliver a message twice, which consumers absorb
(processed_events). Failed deliveries are retried with exponential backoff.

Each event is published with the trace context it was written with (on: as
a PRODUCER span of that trace, services/runtime/tracing.py). `published` and
`failures` count publications for the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from ports.common import Clock, EventBus, OutboxStore
from services.runtime import tracing

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, store: OutboxStore, bus: EventBus, clock: Clock, *,
                 poll_seconds: float = 1.0, batch: int = 100,
                 max_backoff: timedelta = timedelta(minutes=5)) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._poll = poll_seconds
        self._batch = batch
        self._max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Events handed to the bus, and failed attempts, since start.
        self.published = 0
        self.failures = 0

    @property
    def store(self) -> OutboxStore:
        return self._store

    def notify(self) -> None:
        """Something was committed to the outbox: relay it now, not at the next poll."""
        self._wake.set()

    async def drain(self) -> int:
        """Relay every message that is due; returns how many were published."""
        published = 0
        while True:
            messages = await self._store.fetch_pending(self._batch, self._clock.now())
            if not messages:
                return published
            done = []
            for message in messages:
                try:
                    with tracing.publishing(message) as outgoing:
                        await self._bus.publish(outgoing)
                except Exception as error:
                    self.failures += 1
                    delay = min(timedelta(seconds=2 ** min(message.attempts, 16)),
                                self._max_backoff)
                    log.warning("event delivery failed; retrying later", extra={
                        "event_id": str(message.event_id), "topic": message.topic,
                        "attempts": message.attempts + 1, "error": repr(error)})
                    await self._store.mark_failed(message.event_id, repr(error),
                                                  self._clock.now() + delay)
                else:
                    done.append(message.event_id)
            if done:
                await self._store.mark_published(done, self._clock.now())
                published += len(done)
                self.published += len(done)
            if len(messages) < self._batch:
                return published

    async def _run(self) -> None:
        while True:
            try:
                await self.drain()
            except Exception:
                log.exception("outbox relay pass failed")
            with contextlib.suppress(TimeoutError):
                # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancellation
                # that arrives as the event is set, and close() then waits forever.
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()
            self._wake.clear()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
