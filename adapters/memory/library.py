"""The library's items in memory, held to the same contract as the SQL ones."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from adapters.memory.credits import MemoryProcessedEvents
from adapters.memory.outbox import MemoryOutbox
from adapters.memory.store import MemoryStore, MemoryUnitOfWork, Tables, stored, utc
from core.library.model import (
    AudioDetails,
    ContentItem,
    Folder,
    ItemState,
    ListeningPreferences,
    Practice,
    Share,
)
from core.shared.creation import ContentType
from core.shared.errors import AlreadyExists
from ports.common import EventCodec, TraceContext, no_trace_context


def _stored(item: ContentItem) -> ContentItem:
    copy = item.copy()
    copy.created_at, copy.updated_at = utc(item.created_at), utc(item.updated_at)
    if item.last_played_at is not None:
        copy.last_played_at = utc(item.last_played_at)
    if item.render_started_at is not None:
        copy.render_started_at = utc(item.render_started_at)
    return copy


class MemoryContentItems:
    def __init__(self, tables: Tables) -> None:
        self._items: dict[uuid.UUID, ContentItem] = tables.content_items
        self._tables = tables

    async def add(self, item: ContentItem) -> None:
        if any(i.request_id == item.request_id for i in self._items.values()):
            raise AlreadyExists("an item of this request exists", reason="ALREADY_EXISTS")
        if item.id in self._items:
            raise ValueError(f"duplicate item {item.id}")
        self._items[item.id] = _stored(item)

    async def get(self, content_id: uuid.UUID) -> ContentItem | None:
        item = self._items.get(content_id)
        return item.copy() if item else None

    get_for_update = get

    async def get_by_request(self, request_id: str) -> ContentItem | None:
        for item in self._items.values():
            if item.request_id == request_id:
                return item.copy()
        return None

    async def save(self, item: ContentItem) -> None:
        if item.id in self._items:
            self._items[item.id] = _stored(item)

    async def delete(self, content_id: uuid.UUID) -> None:
        self._items.pop(content_id, None)
        self._tables.content_audio.pop(content_id, None)
        for share_id in [s.id for s in self._tables.shares.values()
                         if s.content_id == content_id]:
            del self._tables.shares[share_id]

    async def list_for_user(self, user_id: uuid.UUID, *, content_type: ContentType | None,
                            before: uuid.UUID | None, limit: int, tag: str | None = None,
                            folder_id: uuid.UUID | None = None) -> list[ContentItem]:
        found = sorted((i for i in self._items.values() if i.user_id == user_id
                        and (content_type is None or i.content_type is content_type)
                        and (before is None or i.id < before)
                        and (tag is None or tag in i.tags)
                        and (folder_id is None or i.folder_id == folder_id)),
                       key=lambda i: i.id, reverse=True)
        return [i.copy() for i in found[:limit]]

    async def tag_counts(self, user_id: uuid.UUID) -> dict[str, int]:
        return dict(Counter(tag for i in self._items.values() if i.user_id == user_id
                            for tag in dict.fromkeys(i.tags)))

    async def with_tag(self, user_id: uuid.UUID, tag: str) -> list[ContentItem]:
        return [i.copy() for i in self._items.values() if i.user_id == user_id and tag in i.tags]

    async def folder_counts(self, user_id: uuid.UUID) -> dict[uuid.UUID, int]:
        return dict(Counter(i.folder_id for i in self._items.values()
                            if i.user_id == user_id and i.folder_id is not None))

    async def clear_folder(self, folder_id: uuid.UUID) -> None:
        for item in self._items.values():
            if item.folder_id == folder_id:
                item.folder_id = None

    async def count_created_since(self, user_id: uuid.UUID, since: datetime) -> int:
        since = utc(since)
        return sum(1 for i in self._items.values()
                   if i.user_id == user_id and i.created_at >= since)

    async def list_stale(self, states: tuple[ItemState, ...], updated_before: datetime,
                         limit: int) -> list[ContentItem]:
        cutoff = utc(updated_before)
        found = sorted((i for i in self._items.values()
                        if i.state in states and i.updated_at < cutoff),
                       key=lambda i: i.updated_at)
        return [i.copy() for i in found[:limit]]


class MemoryAudioDetails:
    def __init__(self, tables: Tables) -> None:
        self._rows: dict[uuid.UUID, AudioDetails] = tables.content_audio

    async def put(self, details: AudioDetails) -> None:
        self._rows[details.content_id] = details

    async def get(self, content_id: uuid.UUID) -> AudioDetails | None:
        return self._rows.get(content_id)


class MemoryPractices:
    def __init__(self, tables: Tables) -> None:
        self._rows: dict[uuid.UUID, Practice] = tables.practices

    async def add(self, practice: Practice) -> None:
        self._rows[practice.id] = stored(practice)

    async def get(self, practice_id: uuid.UUID) -> Practice | None:
        found = self._rows.get(practice_id)
        return replace(found) if found else None

    get_for_update = get

    async def save(self, practice: Practice) -> None:
        if practice.id in self._rows:
            self._rows[practice.id] = stored(practice)

    def _of(self, user_id: uuid.UUID) -> list[Practice]:
        return sorted((p for p in self._rows.values() if p.user_id == user_id),
                      key=lambda p: p.id, reverse=True)

    async def list_for_user(self, user_id: uuid.UUID, *, before: uuid.UUID | None,
                            limit: int) -> list[Practice]:
        return [replace(p) for p in self._of(user_id) if before is None or p.id < before][:limit]

    async def all_for_user(self, user_id: uuid.UUID) -> list[Practice]:
        return [replace(p) for p in reversed(self._of(user_id))]

    async def latest_moods(self, user_id: uuid.UUID, limit: int) -> list[Practice]:
        return [replace(p) for p in self._of(user_id) if p.mood_before or p.mood_after][:limit]


class MemoryFolders:
    def __init__(self, tables: Tables) -> None:
        self._rows: dict[uuid.UUID, Folder] = tables.folders

    def _check(self, folder: Folder) -> None:
        key = folder.display_name.casefold()
        if any(f.user_id == folder.user_id and f.id != folder.id
               and f.display_name.casefold() == key for f in self._rows.values()):
            raise AlreadyExists("a folder of that name exists", reason="FOLDER_EXISTS")

    async def add(self, folder: Folder) -> None:
        self._check(folder)
        self._rows[folder.id] = stored(replace(folder, item_count=0))

    async def get(self, folder_id: uuid.UUID) -> Folder | None:
        found = self._rows.get(folder_id)
        return replace(found) if found else None

    async def save(self, folder: Folder) -> None:
        self._check(folder)
        if folder.id in self._rows:
            self._rows[folder.id] = stored(replace(folder, item_count=0))

    async def delete(self, folder_id: uuid.UUID) -> None:
        self._rows.pop(folder_id, None)

    async def list_for_user(self, user_id: uuid.UUID) -> list[Folder]:
        return sorted((replace(f) for f in self._rows.values() if f.user_id == user_id),
                      key=lambda f: f.display_name.casefold())


class MemoryShares:
    def __init__(self, tables: Tables) -> None:
        self._rows: dict[uuid.UUID, Share] = tables.shares

    async def add(self, share: Share) -> None:
        self._rows[share.id] = stored(share)

    async def get(self, share_id: uuid.UUID) -> Share | None:
        found = self._rows.get(share_id)
        return replace(found) if found else None

    async def save(self, share: Share) -> None:
        if share.id in self._rows:
            self._rows[share.id] = stored(share)

    async def list_for_content(self, content_id: uuid.UUID) -> list[Share]:
        return sorted((replace(s) for s in self._rows.values() if s.content_id == content_id),
                      key=lambda s: s.created_at, reverse=True)


class MemoryPreferences:
    def __init__(self, tables: Tables) -> None:
        self._rows: dict[uuid.UUID, ListeningPreferences] = tables.listening_preferences

    async def get(self, user_id: uuid.UUID) -> ListeningPreferences | None:
        found = self._rows.get(user_id)
        return replace(found) if found else None

    async def put(self, preferences: ListeningPreferences) -> None:
        self._rows[preferences.user_id] = replace(preferences)


class MemoryLibraryUnitOfWork(MemoryUnitOfWork):
    items: MemoryContentItems
    details: MemoryAudioDetails
    practices: MemoryPractices
    folders: MemoryFolders
    shares: MemoryShares
    preferences: MemoryPreferences
    outbox: MemoryOutbox
    processed: MemoryProcessedEvents

    def __init__(self, store: MemoryStore, codec: EventCodec, *, read_only: bool = False,
                 trace_context: TraceContext = no_trace_context) -> None:
        super().__init__(store, read_only=read_only)
        self._codec = codec
        self._trace_context = trace_context

    def _open(self, tables: Tables) -> None:
        self.items = MemoryContentItems(tables)
        self.details = MemoryAudioDetails(tables)
        self.practices = MemoryPractices(tables)
        self.folders = MemoryFolders(tables)
        self.shares = MemoryShares(tables)
        self.preferences = MemoryPreferences(tables)
        self.outbox = MemoryOutbox(tables, self._codec, self._trace_context)
        self.processed = MemoryProcessedEvents(tables)


def memory_library_uow(store: MemoryStore, codec: EventCodec,
                       trace_context: TraceContext = no_trace_context,
                       ) -> Callable[..., MemoryLibraryUnitOfWork]:
    return lambda read_only=False: MemoryLibraryUnitOfWork(
        store, codec, read_only=read_only, trace_context=trace_context)
