"""Audio's record of renders in SQL (`audio_renders`), with the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sql.outbox import SqlOutbox
from adapters.sql.schema import audio_renders
from adapters.sql.uow import SqlUnitOfWork, upsert_insert
from core.audio.model import Render
from ports.common import EventCodec, TraceContext, no_trace_context


class SqlRenders:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, content_id: uuid.UUID, version: int) -> Render | None:
        t = audio_renders
        row = (await self._conn.execute(
            select(t).where(t.c.content_id == content_id, t.c.version == version))).first()
        if row is None:
            return None
        return Render(content_id=row.content_id, version=row.version, user_id=row.user_id,
                      object_key=row.object_key, mime_type=row.mime_type,
                      duration_ms=row.duration_ms, size=row.bytes, render_ms=row.render_ms,
                      created_at=row.created_at)

    async def add(self, render: Render) -> bool:
        t = audio_renders
        inserted = (await self._conn.execute(
            upsert_insert(self._conn, t).values(
                content_id=render.content_id, version=render.version, user_id=render.user_id,
                object_key=render.object_key, mime_type=render.mime_type,
                duration_ms=render.duration_ms, bytes=render.size, render_ms=render.render_ms,
                created_at=render.created_at)
            .on_conflict_do_nothing(index_elements=[t.c.content_id, t.c.version])
            .returning(t.c.content_id))).first()
        return inserted is not None


class SqlAudioUnitOfWork(SqlUnitOfWork):
    renders: SqlRenders
    outbox: SqlOutbox

    def __init__(self, engine: AsyncEngine, codec: EventCodec, *, read_only: bool = False,
                 trace_context: TraceContext = no_trace_context) -> None:
        super().__init__(engine, read_only=read_only)
        self._codec = codec
        self._trace_context = trace_context

    def _open(self, conn: AsyncConnection) -> None:
        self.renders = SqlRenders(conn)
        self.outbox = SqlOutbox(conn, self._codec, self._trace_context)


def sql_audio_uow(engine: AsyncEngine, codec: EventCodec,
                  trace_context: TraceContext = no_trace_context,
                  ) -> Callable[..., SqlAudioUnitOfWork]:
    return lambda read_only=False: SqlAudioUnitOfWork(
        engine, codec, read_only=read_only, trace_context=trace_context)
