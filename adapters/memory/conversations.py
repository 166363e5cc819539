"""The archive of conversations in memory (ports.conversation.ConversationArchive)."""

from __future__ import annotations

import uuid

from adapters.memory.store import MemoryStore


class MemoryConversationArchive:
    """Writes go straight to the store's table under its lock (one statement,
    like the SQL upsert)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def save(self, conversation_id: uuid.UUID, user_id: uuid.UUID, document: bytes,
                   state: str, resulting_content_id: uuid.UUID | None) -> None:
        async with self._store.lock:
            self._store.tables.conversations[conversation_id] = (
                user_id, state, bytes(document), resulting_content_id)

    async def load(self, conversation_id: uuid.UUID) -> bytes | None:
        row = self._store.tables.conversations.get(conversation_id)
        return row[2] if row else None
