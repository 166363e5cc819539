"""The library's items in SQL (`content_items`), with the outbox and the
record of handled events in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sql.credits import SqlProcessedEvents
from adapters.sql.outbox import SqlOutbox
from adapters.sql.schema import (
    content_audio,
    content_items,
    content_tags,
    folders,
    listening_preferences,
    practices,
    shares,
)
from adapters.sql.uow import SqlUnitOfWork
from core.library.model import (
    AudioDetails,
    ContentItem,
    Folder,
    ItemState,
    ListeningPreferences,
    Mood,
    Practice,
    PracticeState,
    Share,
    StoredRendition,
    brief_from_dict,
    brief_to_dict,
    script_from_dict,
    script_to_dict,
)
from core.shared.audio import CaptionCue, Measurement, Silence
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
            "created_at": item.created_at, "updated_at": item.updated_at,
            "folder_id": item.folder_id, "background": item.background,
            "audio_version": item.audio_version,
            "renditions": {f: [r.key, r.mime_type, r.size] for f, r in item.renditions.items()},
            "preview_key": item.preview_key, "preview_ms": item.preview_ms,
            "render_failure_reason": item.render_failure_reason,
            "render_request_id": item.render_request_id,
            "render_started_at": item.render_started_at}


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
        last_played_at=row.last_played_at, folder_id=row.folder_id, background=row.background,
        audio_version=row.audio_version,
        renditions={f: StoredRendition(f, r[0], r[1], int(r[2]))
                    for f, r in (row.renditions or {}).items()},
        preview_key=row.preview_key, preview_ms=row.preview_ms,
        render_failure_reason=row.render_failure_reason,
        render_request_id=row.render_request_id, render_started_at=row.render_started_at)


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
        await self._write_tags(item)

    async def _write_tags(self, item: ContentItem) -> None:
        await self._conn.execute(delete(content_tags)
                                 .where(content_tags.c.content_id == item.id))
        if item.tags:
            await self._conn.execute(content_tags.insert(), [
                {"content_id": item.id, "tag": tag, "user_id": item.user_id}
                for tag in dict.fromkeys(item.tags)])

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
        await self._write_tags(item)

    async def delete(self, content_id: uuid.UUID) -> None:
        """The item and what hangs on it (its tags, audio details, shares);
        its practices stay, for the person's history."""
        for table in (content_tags, content_audio, shares):
            await self._conn.execute(delete(table).where(table.c.content_id == content_id))
        await self._conn.execute(delete(content_items).where(content_items.c.id == content_id))

    async def list_for_user(self, user_id: uuid.UUID, *, content_type: ContentType | None,
                            before: uuid.UUID | None, limit: int, tag: str | None = None,
                            folder_id: uuid.UUID | None = None) -> list[ContentItem]:
        t = content_items
        query = select(t).where(t.c.user_id == user_id).order_by(t.c.id.desc()).limit(limit)
        if content_type is not None:
            query = query.where(t.c.content_type == content_type.value)
        if before is not None:
            query = query.where(t.c.id < before)
        if folder_id is not None:
            query = query.where(t.c.folder_id == folder_id)
        if tag is not None:
            query = query.where(t.c.id.in_(
                select(content_tags.c.content_id).where(content_tags.c.user_id == user_id,
                                                        content_tags.c.tag == tag)))
        return [_item(row) for row in await self._conn.execute(query)]

    async def tag_counts(self, user_id: uuid.UUID) -> dict[str, int]:
        t = content_tags
        rows = await self._conn.execute(select(t.c.tag, func.count())
                                        .where(t.c.user_id == user_id).group_by(t.c.tag))
        return {row[0]: int(row[1]) for row in rows}

    async def with_tag(self, user_id: uuid.UUID, tag: str) -> list[ContentItem]:
        t = content_items
        query = select(t).where(t.c.id.in_(
            select(content_tags.c.content_id).where(content_tags.c.user_id == user_id,
                                                    content_tags.c.tag == tag)))
        if self._conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return [_item(row) for row in await self._conn.execute(query)]

    async def folder_counts(self, user_id: uuid.UUID) -> dict[uuid.UUID, int]:
        t = content_items
        rows = await self._conn.execute(
            select(t.c.folder_id, func.count())
            .where(t.c.user_id == user_id, t.c.folder_id.is_not(None)).group_by(t.c.folder_id))
        return {row[0]: int(row[1]) for row in rows}

    async def clear_folder(self, folder_id: uuid.UUID) -> None:
        await self._conn.execute(update(content_items)
                                 .where(content_items.c.folder_id == folder_id)
                                 .values(folder_id=None))

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


def _cue(c: CaptionCue) -> list[Any]:
    return [c.start_ms, c.end_ms, c.text]


class SqlAudioDetails:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def put(self, details: AudioDetails) -> None:
        values = {"version": details.version,
                  "measurements": {f: [m.duration_ms, m.integrated_lufs, m.sample_peak_dbfs,
                                       m.true_peak_dbtp]
                                   for f, m in details.measurements.items()},
                  "silences": [[s.start_ms, s.end_ms] for s in details.silences],
                  "waveform": list(details.waveform),
                  "captions": [_cue(c) for c in details.captions],
                  "voice": details.voice, "background": details.background}
        t = content_audio
        done = await self._conn.execute(update(t).where(t.c.content_id == details.content_id)
                                        .values(**values))
        if not done.rowcount:
            await self._conn.execute(t.insert().values(content_id=details.content_id, **values))

    async def get(self, content_id: uuid.UUID) -> AudioDetails | None:
        t = content_audio
        row = (await self._conn.execute(select(t).where(t.c.content_id == content_id))).first()
        if row is None:
            return None
        return AudioDetails(
            content_id=row.content_id, version=row.version,
            measurements={f: Measurement(int(m[0]), float(m[1]), float(m[2]), float(m[3]))
                          for f, m in row.measurements.items()},
            silences=tuple(Silence(int(a), int(b)) for a, b in row.silences),
            waveform=tuple(float(v) for v in row.waveform),
            captions=tuple(CaptionCue(int(a), int(b), str(text)) for a, b, text in row.captions),
            voice=row.voice, background=row.background)


def _mood(score: int | None, words: str) -> Mood | None:
    return Mood(score, words) if score is not None else None


def _practice(row: Any) -> Practice:
    return Practice(id=row.id, user_id=row.user_id, content_id=row.content_id,
                    content_type=ContentType(row.content_type), started_at=row.started_at,
                    time_zone=row.time_zone, local_date=row.local_date,
                    state=PracticeState(row.state), completed_at=row.completed_at,
                    listened_seconds=row.listened_seconds, device=row.device,
                    context=row.context, mood_before=_mood(row.mood_before,
                                                           row.mood_before_words),
                    mood_after=_mood(row.mood_after, row.mood_after_words))


def _practice_values(p: Practice) -> dict[str, Any]:
    return {"user_id": p.user_id, "content_id": p.content_id,
            "content_type": p.content_type.value, "state": p.state.value,
            "started_at": p.started_at, "completed_at": p.completed_at,
            "listened_seconds": p.listened_seconds, "time_zone": p.time_zone,
            "local_date": p.local_date, "device": p.device, "context": p.context,
            "mood_before": p.mood_before.score if p.mood_before else None,
            "mood_before_words": p.mood_before.words if p.mood_before else "",
            "mood_after": p.mood_after.score if p.mood_after else None,
            "mood_after_words": p.mood_after.words if p.mood_after else ""}


class SqlPractices:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, practice: Practice) -> None:
        await self._conn.execute(practices.insert().values(id=practice.id,
                                                           **_practice_values(practice)))

    async def _one(self, practice_id: uuid.UUID, lock: bool) -> Practice | None:
        query = select(practices).where(practices.c.id == practice_id)
        if lock and self._conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return _practice(row) if row else None

    async def get(self, practice_id: uuid.UUID) -> Practice | None:
        return await self._one(practice_id, lock=False)

    async def get_for_update(self, practice_id: uuid.UUID) -> Practice | None:
        return await self._one(practice_id, lock=True)

    async def save(self, practice: Practice) -> None:
        await self._conn.execute(update(practices).where(practices.c.id == practice.id)
                                 .values(**_practice_values(practice)))

    async def list_for_user(self, user_id: uuid.UUID, *, before: uuid.UUID | None,
                            limit: int) -> list[Practice]:
        t = practices
        query = select(t).where(t.c.user_id == user_id).order_by(t.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(t.c.id < before)
        return [_practice(row) for row in await self._conn.execute(query)]

    async def all_for_user(self, user_id: uuid.UUID) -> list[Practice]:
        t = practices
        query = select(t).where(t.c.user_id == user_id).order_by(t.c.id)
        return [_practice(row) for row in await self._conn.execute(query)]

    async def latest_moods(self, user_id: uuid.UUID, limit: int) -> list[Practice]:
        t = practices
        query = (select(t).where(t.c.user_id == user_id,
                                 or_(t.c.mood_before.is_not(None), t.c.mood_after.is_not(None)))
                 .order_by(t.c.id.desc()).limit(limit))
        return [_practice(row) for row in await self._conn.execute(query)]


class SqlFolders:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _write(self, statement: Any) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(statement)
        except IntegrityError:
            raise AlreadyExists("a folder of that name exists", reason="FOLDER_EXISTS") from None

    async def add(self, folder: Folder) -> None:
        await self._write(folders.insert().values(
            id=folder.id, user_id=folder.user_id, display_name=folder.display_name,
            name_key=folder.display_name.casefold(), created_at=folder.created_at))

    async def get(self, folder_id: uuid.UUID) -> Folder | None:
        row = (await self._conn.execute(select(folders).where(folders.c.id == folder_id))).first()
        return Folder(row.id, row.user_id, row.display_name, row.created_at) if row else None

    async def save(self, folder: Folder) -> None:
        await self._write(update(folders).where(folders.c.id == folder.id).values(
            display_name=folder.display_name, name_key=folder.display_name.casefold()))

    async def delete(self, folder_id: uuid.UUID) -> None:
        await self._conn.execute(delete(folders).where(folders.c.id == folder_id))

    async def list_for_user(self, user_id: uuid.UUID) -> list[Folder]:
        query = (select(folders).where(folders.c.user_id == user_id)
                 .order_by(folders.c.name_key))
        return [Folder(r.id, r.user_id, r.display_name, r.created_at)
                for r in await self._conn.execute(query)]


class SqlShares:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, share: Share) -> None:
        await self._conn.execute(shares.insert().values(
            id=share.id, user_id=share.user_id, content_id=share.content_id,
            created_at=share.created_at, expires_at=share.expires_at,
            revoked_at=share.revoked_at))

    async def get(self, share_id: uuid.UUID) -> Share | None:
        row = (await self._conn.execute(select(shares).where(shares.c.id == share_id))).first()
        return _share(row) if row else None

    async def save(self, share: Share) -> None:
        await self._conn.execute(update(shares).where(shares.c.id == share.id)
                                 .values(revoked_at=share.revoked_at,
                                         expires_at=share.expires_at))

    async def list_for_content(self, content_id: uuid.UUID) -> list[Share]:
        query = (select(shares).where(shares.c.content_id == content_id)
                 .order_by(shares.c.created_at.desc()))
        return [_share(row) for row in await self._conn.execute(query)]


def _share(row: Any) -> Share:
    return Share(id=row.id, user_id=row.user_id, content_id=row.content_id,
                 created_at=row.created_at, expires_at=row.expires_at, revoked_at=row.revoked_at)


class SqlPreferences:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, user_id: uuid.UUID) -> ListeningPreferences | None:
        t = listening_preferences
        row = (await self._conn.execute(select(t).where(t.c.user_id == user_id))).first()
        return ListeningPreferences(row.user_id, row.voice, row.background) if row else None

    async def put(self, preferences: ListeningPreferences) -> None:
        t = listening_preferences
        values = {"voice": preferences.voice, "background": preferences.background}
        done = await self._conn.execute(update(t).where(t.c.user_id == preferences.user_id)
                                        .values(**values))
        if not done.rowcount:
            await self._conn.execute(t.insert().values(user_id=preferences.user_id, **values))


class SqlLibraryUnitOfWork(SqlUnitOfWork):
    items: SqlContentItems
    details: SqlAudioDetails
    practices: SqlPractices
    folders: SqlFolders
    shares: SqlShares
    preferences: SqlPreferences
    outbox: SqlOutbox
    processed: SqlProcessedEvents

    def __init__(self, engine: AsyncEngine, codec: EventCodec, *, read_only: bool = False,
                 trace_context: TraceContext = no_trace_context) -> None:
        super().__init__(engine, read_only=read_only)
        self._codec = codec
        self._trace_context = trace_context

    def _open(self, conn: AsyncConnection) -> None:
        self.items = SqlContentItems(conn)
        self.details = SqlAudioDetails(conn)
        self.practices = SqlPractices(conn)
        self.folders = SqlFolders(conn)
        self.shares = SqlShares(conn)
        self.preferences = SqlPreferences(conn)
        self.outbox = SqlOutbox(conn, self._codec, self._trace_context)
        self.processed = SqlProcessedEvents(conn)


def sql_library_uow(engine: AsyncEngine, codec: EventCodec,
                    trace_context: TraceContext = no_trace_context,
                    ) -> Callable[..., SqlLibraryUnitOfWork]:
    return lambda read_only=False: SqlLibraryUnitOfWork(
        engine, codec, read_only=read_only, trace_context=trace_context)
