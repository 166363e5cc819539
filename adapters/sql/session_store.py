"""Live conversations in the database (ports.conversation.SessionStore): the
embedded mode's twin of the Redis store when several worker processes serve
conversations on one SQLite file (or PostgreSQL without Redis). A row carries
its version and its expiry; the compare-and-set is one statement."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.schema import sessions
from adapters.sql.uow import upsert_insert
from ports.common import Clock


class SqlSessionStore:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def load(self, session_id: uuid.UUID) -> tuple[int, bytes] | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                select(sessions.c.version, sessions.c.document)
                .where(sessions.c.id == session_id,
                       sessions.c.expires_at > self._clock.now()))).first()
        return (row.version, bytes(row.document)) if row else None

    async def save(self, session_id: uuid.UUID, version: int, document: bytes,
                   ttl_seconds: int) -> bool:
        if version < 1 or ttl_seconds <= 0:
            raise ValueError("version and ttl_seconds must be positive")
        now = self._clock.now()
        expires = now + timedelta(seconds=ttl_seconds)
        async with self._engine.begin() as conn:
            if version == 1:  # new, or replacing an expired one
                insert = upsert_insert(conn, sessions).values(
                    id=session_id, version=1, document=document, expires_at=expires)
                written = (await conn.execute(insert.on_conflict_do_update(
                    index_elements=[sessions.c.id],
                    set_={"version": 1, "document": document, "expires_at": expires},
                    where=sessions.c.expires_at <= now).returning(sessions.c.id))).first()
                return written is not None
            result = await conn.execute(
                update(sessions).where(sessions.c.id == session_id,
                                       sessions.c.version == version - 1,
                                       sessions.c.expires_at > now)
                .values(version=version, document=document, expires_at=expires))
            return result.rowcount == 1

    async def delete(self, session_id: uuid.UUID) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.id == session_id))

    async def delete_expired(self, limit: int) -> int:
        """Remove up to `limit` expired rows (the retention job); how many went."""
        async with self._engine.begin() as conn:
            ids = select(sessions.c.id).where(
                sessions.c.expires_at <= self._clock.now()).limit(limit)
            result = await conn.execute(delete(sessions).where(sessions.c.id.in_(ids)))
            return result.rowcount or 0

    async def ping(self) -> None:
        pass

    async def close(self) -> None:
        pass
