"""ports.conversation.SessionStore in one process (embedded mode and tests).

Time to live is measured on the given clock, so tests can move time instead of
waiting. Sessions live in this process only: a restart loses them, as losing
Redis would (conversations are not data of record).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from ports.common import Clock


def check_save(version: int, ttl_seconds: int) -> None:
    """Versions start at 1; a time to live is at least a second."""
    if version < 1:
        raise ValueError("version must be at least 1")
    if ttl_seconds < 1:
        raise ValueError("ttl_seconds must be at least 1")


class MemorySessionStore:
    """Implements ports.conversation.SessionStore in a dict. Each call runs
    without awaiting, so a save's compare-and-set is atomic in its event loop."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        #: id -> (version, document, expires at)
        self._sessions: dict[uuid.UUID, tuple[int, bytes, datetime]] = {}

    def _current(self, session_id: uuid.UUID) -> tuple[int, bytes] | None:
        entry = self._sessions.get(session_id)
        if entry is None:
            return None
        version, document, expires_at = entry
        if self._clock.now() >= expires_at:
            del self._sessions[session_id]
            return None
        return version, document

    async def load(self, session_id: uuid.UUID) -> tuple[int, bytes] | None:
        return self._current(session_id)

    async def save(self, session_id: uuid.UUID, version: int, document: bytes,
                   ttl_seconds: int) -> bool:
        check_save(version, ttl_seconds)
        current = self._current(session_id)
        if version != (current[0] + 1 if current is not None else 1):
            return False
        self._sessions[session_id] = (version, bytes(document),
                                      self._clock.now() + timedelta(seconds=ttl_seconds))
        return True

    async def delete(self, session_id: uuid.UUID) -> None:
        self._sessions.pop(session_id, None)

    async def ping(self) -> None:
        """Always answers: nothing to reach."""

    async def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        """Sessions held, expired ones not yet noticed included."""
        return len(self._sessions)
