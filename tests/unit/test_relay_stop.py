"""The outbox relay stops when told, even at the instant it is woken."""

from __future__ import annotations

import asyncio

from adapters.memory.event_bus import InProcessEventBus
from adapters.memory.outbox import MemoryOutboxStore
from adapters.memory.store import MemoryStore
from adapters.system.clock import SystemClock
from services.runtime.relay import OutboxRelay


async def test_stop_while_notified() -> None:
    # asyncio.wait_for on 3.11 returned the event's result and dropped the
    # cancellation when both came in one loop iteration: stop() never returned.
    for _ in range(20):
        relay = OutboxRelay(MemoryOutboxStore(MemoryStore()), InProcessEventBus(),
                            SystemClock(), poll_seconds=3600)
        relay.start()
        await asyncio.sleep(0.01)  # the first pass is done, the relay waits

        async def notify_and_stop(relay: OutboxRelay = relay) -> None:
            relay.notify()
            await relay.stop()  # cancels the relay in the same loop iteration

        # asyncio.wait, not wait_for: a hung stop must show, not be cancelled.
        running = asyncio.ensure_future(notify_and_stop())
        finished, _ = await asyncio.wait({running}, timeout=2)
        if not finished:
            running.cancel()
        assert finished, "it never stopped"
