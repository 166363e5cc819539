"""ports.common.Leases in one process (memory:// and tests)."""

from __future__ import annotations

from datetime import datetime, timedelta

from ports.common import Clock


class MemoryLeases:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._held: dict[str, tuple[str, datetime]] = {}

    async def acquire(self, name: str, owner: str, ttl: timedelta) -> bool:
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        now = self._clock.now()
        holder = self._held.get(name)
        if holder is not None and holder[0] != owner and holder[1] > now:
            return False
        self._held[name] = (owner, now + ttl)
        return True

    async def release(self, name: str, owner: str) -> None:
        holder = self._held.get(name)
        if holder is not None and holder[0] == owner:
            del self._held[name]

    async def close(self) -> None:
        pass
