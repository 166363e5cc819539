"""The library's items in memory, held to the same contract as the SQL ones."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from adapters.memory.credits import MemoryProcessedEvents
from adapters.memory.outbox import MemoryOutbox
from adapters.memory.store import MemoryStore, MemoryUnitOfWork, Tables, utc
from core.library.model import ContentItem, ItemState
from core.shared.creation import ContentType
from core.shared.errors import AlreadyExists
from ports.common import EventCodec, TraceContext, no_trace_context


def _stored(item: ContentItem) -> ContentItem:
    copy = item.copy()
    copy.created_at, copy.updated_at = utc(item.created_at), utc(item.updated_at)
    if item.last_played_at is not None:
        copy.last_played_at = utc(item.last_played_at)
    return copy


class MemoryContentItems:
    def __init__(self, tables: Tables) -> None:
        self._items: dict[uuid.UUID, ContentItem] = tables.content_items

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

    async def list_for_user(self, user_id: uuid.UUID, *, content_type: ContentType | None,
                            before: uuid.UUID | None, limit: int) -> list[ContentItem]:
        found = sorted((i for i in self._items.values() if i.user_id == user_id
                        and (content_type is None or i.content_type is content_type)
                        and (before is None or i.id < before)),
                       key=lambda i: i.id, reverse=True)
        return [i.copy() for i in found[:limit]]

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


class MemoryLibraryUnitOfWork(MemoryUnitOfWork):
    items: MemoryContentItems
    outbox: MemoryOutbox
    processed: MemoryProcessedEvents

    def __init__(self, store: MemoryStore, codec: EventCodec, *, read_only: bool = False,
                 trace_context: TraceContext = no_trace_context) -> None:
        super().__init__(store, read_only=read_only)
        self._codec = codec
        self._trace_context = trace_context

    def _open(self, tables: Tables) -> None:
        self.items = MemoryContentItems(tables)
        self.outbox = MemoryOutbox(tables, self._codec, self._trace_context)
        self.processed = MemoryProcessedEvents(tables)


def memory_library_uow(store: MemoryStore, codec: EventCodec,
                       trace_context: TraceContext = no_trace_context,
                       ) -> Callable[..., MemoryLibraryUnitOfWork]:
    return lambda read_only=False: MemoryLibraryUnitOfWork(
        store, codec, read_only=read_only, trace_context=trace_context)
