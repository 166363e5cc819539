"""Ports of the conversation context."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from core.shared.creation import Brief


class SessionStore(Protocol):
    """Live conversations by id, each a versioned document with a time to live.

    `save` is a compare-and-set: it writes only when the stored version is
    `version - 1` (or there is none and `version == 1`) and answers whether it
    did, so that two turns of one conversation at once never lose each other.
    Each save restarts the time to live."""

    async def load(self, session_id: uuid.UUID) -> tuple[int, bytes] | None:
        """(version, document), or None when absent or expired."""
        ...

    async def save(self, session_id: uuid.UUID, version: int, document: bytes,
                   ttl_seconds: int) -> bool: ...

    async def delete(self, session_id: uuid.UUID) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class CreationStatus:
    """Where a creation started by a conversation stands."""

    content_id: uuid.UUID
    #: "generating_text", "rendering_audio", "ready" or "failed".
    state: str
    failure_reason: str = ""
    title: str = ""


class Creations(Protocol):
    """Starts and follows creations (the library context)."""

    async def start(self, user_id: uuid.UUID, request_id: str, brief: Brief,
                    conversation_id: uuid.UUID) -> CreationStatus:
        """Reserve the credits and start creating. Idempotent by `request_id`.
        Raises FailedPrecondition(INSUFFICIENT_CREDITS) before anything is made,
        ResourceExhausted when the person creates too fast."""
        ...

    async def status(self, user_id: uuid.UUID, content_id: uuid.UUID) -> CreationStatus: ...

    async def history(self, user_id: uuid.UUID, limit: int) -> list[str]:
        """Titles of the person's latest creations, newest first."""
        ...


@dataclass(frozen=True)
class KnownPreferences:
    voice: str = ""
    #: Values of core.shared.creation.Pace / Tone, "" when not set.
    pace: str = ""
    tone: str = ""
    display_name: str = ""


class Preferences(Protocol):
    """What the person has told waQup once for all (identity)."""

    async def get(self, user_id: uuid.UUID) -> KnownPreferences: ...


class ConversationArchive(Protocol):
    """Finished conversations, kept for personalisation (`conversations`)."""

    async def save(self, conversation_id: uuid.UUID, user_id: uuid.UUID, document: bytes,
                   state: str, resulting_content_id: uuid.UUID | None) -> None:
        """Insert or replace."""
        ...

    async def load(self, conversation_id: uuid.UUID) -> bytes | None: ...
