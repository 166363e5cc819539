"""ports.content.AiHistory in memory, held to the SQL adapter's contract."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from core.content.model import AiCall


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: pass a timezone-aware UTC time")
    return at.astimezone(UTC)


class MemoryAiHistory:
    """Rows in a list; every method runs without awaiting, so each is atomic on
    the event loop."""

    def __init__(self) -> None:
        self._calls: list[AiCall] = []

    async def add(self, call: AiCall) -> None:
        if any(c.id == call.id for c in self._calls):
            raise ValueError(f"an AI call with id {call.id} is already recorded")
        self._calls.append(replace(call, created_at=_utc(call.created_at)))

    async def list_for(self, user_id: uuid.UUID, limit: int) -> list[AiCall]:
        """The user's calls, newest first (ties: the larger id first)."""
        if limit <= 0:
            raise ValueError("limit must be positive")
        mine = [c for c in self._calls if c.user_id == user_id]
        mine.sort(key=lambda c: (c.created_at, c.id.bytes), reverse=True)
        return mine[:limit]

    async def delete_before(self, created_before: datetime, limit: int) -> int:
        """Delete at most `limit` calls made before `created_before`, oldest first."""
        if limit <= 0:
            raise ValueError("limit must be positive")
        cutoff = _utc(created_before)
        doomed = {c.id for c in sorted((c for c in self._calls if c.created_at < cutoff),
                                       key=lambda c: (c.created_at, c.id.bytes))[:limit]}
        self._calls = [c for c in self._calls if c.id not in doomed]
        return len(doomed)
