"""The archive of conversations in SQL (`conversations`)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.schema import conversations
from adapters.sql.uow import upsert_insert


class SqlConversationArchive:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def save(self, conversation_id: uuid.UUID, user_id: uuid.UUID, document: bytes,
                   state: str, resulting_content_id: uuid.UUID | None) -> None:
        now = datetime.now(UTC)
        data = json.loads(document)
        async with self._engine.begin() as conn:
            insert = upsert_insert(conn, conversations).values(
                id=conversation_id, user_id=user_id, state=state, document=data,
                resulting_content_id=resulting_content_id, created_at=now, updated_at=now)
            await conn.execute(insert.on_conflict_do_update(
                index_elements=[conversations.c.id],
                set_={"state": state, "document": data,
                      "resulting_content_id": resulting_content_id, "updated_at": now}))

    async def load(self, conversation_id: uuid.UUID) -> bytes | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(conversations.c.document)
                                      .where(conversations.c.id == conversation_id))).first()
        return json.dumps(row.document).encode() if row else None
