"""The library's items in SQL (`content_items`), with the outbox and the
record of handled events in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sql.credits import SqlProcessedEvents
from adapters.sql.outbox import SqlOutbox
from adapters.sql.schema import content_items
from adapters.sql.uow import SqlUnitOfWork
from core.library.model import (
    ContentItem,
    ItemState,
    brief_from_dict,
    brief_to_dict,
    script_from_dict,
    script_to_dict,
)
from core.shared.creation import ContentType, Depth
from core.shared.errors import AlreadyExists
from ports.common import EventCodec, TraceContext, no_trace_context


def _values(item: ContentItem) -> dict[str, Any]:
    return {"id": item.id, "user_id": item.user_id, "content_type": item.content_type.value,
            "state": item.state.value, "failure_reason": item.failure_reason,
            "failure_message": item.failure_message, "title": item.title, "text": item.text,
            "structure": item.structure,
            "script": script_to_dict(item.script) if item.script else None,
            "depth": item.depth.value if item.depth else "", "tags": list(item.tags),
            "brief": brief_to_dict(item.brief), "voice": item.voice, "model": item.model,
            "request_id": item.request_id, "conversation_id": item.conversation_id,
            "hold_id": item.hold_id, "cost": item.cost, "version": item.version,
            "audio_key": item.audio_key, "audio_mime_type": item.audio_mime_type,
            "audio_duration_ms": item.audio_duration_ms, "audio_bytes": item.audio_bytes,
            "play_count": item.play_count, "last_played_at": item.last_played_at,
            "created_at": item.created_at, "updated_at": item.updated_at}


def _item(row: Any) -> ContentItem:
    return ContentItem(
        id=row.id, user_id=row.user_id, content_type=ContentType(row.content_type),
        state=ItemState(row.state), request_id=row.request_id, cost=row.cost,
        brief=brief_from_dict(row.brief), created_at=row.created_at, updated_at=row.updated_at,
        conversation_id=row.conversation_id, hold_id=row.hold_id, title=row.title,
        text=row.text, structure=row.structure,
        script=script_from_dict(row.script) if row.script else None,
        depth=Depth(row.depth) if row.depth else None, voice=row.voice, model=row.model,
        version=row.version, tags=list(row.tags or []), failure_reason=row.failure_reason,
        failure_message=row.failure_message, audio_key=row.audio_key,
        audio_mime_type=row.audio_mime_type, audio_duration_ms=row.audio_duration_ms,
        audio_bytes=row.audio_bytes, play_count=row.play_count,
        last_played_at=row.last_played_at)


class SqlContentItems:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, item: ContentItem) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(content_items.insert().values(**_values(item)))
        except IntegrityError:
            raise AlreadyExists("an item of this request exists",
                                reason="ALREADY_EXISTS") from None

    async def _one(self, *where: Any, lock: bool = False) -> ContentItem | None:
        query = select(content_items).where(*where)
        if lock and self._conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return _item(row) if row else None

    async def get(self, content_id: uuid.UUID) -> ContentItem | None:
        return await self._one(content_items.c.id == content_id)

    async def get_for_update(self, content_id: uuid.UUID) -> ContentItem | None:
        return await self._one(content_items.c.id == content_id, lock=True)

    async def get_by_request(self, request_id: str) -> ContentItem | None:
        return await self._one(content_items.c.request_id == request_id)

    async def save(self, item: ContentItem) -> None:
        values = _values(item)
        del values["id"]
        await self._conn.execute(update(content_items)
                                 .where(content_items.c.id == item.id).values(**values))

    async def delete(self, content_id: uuid.UUID) -> None:
        await self._conn.execute(delete(content_items).where(content_items.c.id == content_id))

    async def list_for_user(self, user_id: uuid.UUID, *, content_type: ContentType | None,
                            before: uuid.UUID | None, limit: int) -> list[ContentItem]:
        t = content_items
        query = select(t).where(t.c.user_id == user_id).order_by(t.c.id.desc()).limit(limit)
        if content_type is not None:
            query = query.where(t.c.content_type == content_type.value)
        if before is not None:
            query = query.where(t.c.id < before)
        return [_item(row) for row in await self._conn.execute(query)]

    async def count_created_since(self, user_id: uuid.UUID, since: datetime) -> int:
        t = content_items
        return int(await self._conn.scalar(
            select(func.count()).select_from(t)
            .where(t.c.user_id == user_id, t.c.created_at >= since)) or 0)

    async def list_stale(self, states: tuple[ItemState, ...], updated_before: datetime,
                         limit: int) -> list[ContentItem]:
        t = content_items
        query = (select(t).where(t.c.state.in_([s.value for s in states]),
                                 t.c.updated_at < updated_before)
                 .order_by(t.c.updated_at).limit(limit))
        return [_item(row) for row in await self._conn.execute(query)]


class SqlLibraryUnitOfWork(SqlUnitOfWork):
    items: SqlContentItems
    outbox: SqlOutbox
    processed: SqlProcessedEvents

    def __init__(self, engine: AsyncEngine, codec: EventCodec, *, read_only: bool = False,
                 trace_context: TraceContext = no_trace_context) -> None:
        super().__init__(engine, read_only=read_only)
        self._codec = codec
        self._trace_context = trace_context

    def _open(self, conn: AsyncConnection) -> None:
        self.items = SqlContentItems(conn)
        self.outbox = SqlOutbox(conn, self._codec, self._trace_context)
        self.processed = SqlProcessedEvents(conn)


def sql_library_uow(engine: AsyncEngine, codec: EventCodec,
                    trace_context: TraceContext = no_trace_context,
                    ) -> Callable[..., SqlLibraryUnitOfWork]:
    return lambda read_only=False: SqlLibraryUnitOfWork(
        engine, codec, read_only=read_only, trace_context=trace_context)
