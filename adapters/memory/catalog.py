"""The catalog in memory, held to the same contract as the SQL one."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from adapters.memory.credits import MemoryProcessedEvents
from adapters.memory.outbox import MemoryOutbox
from adapters.memory.store import MemoryStore, MemoryUnitOfWork, Tables, stored, utc
from core.catalog.model import Creator, Entitlement, Pack, PackState, Upload
from core.catalog.recommend import Completion
from core.shared.errors import AlreadyExists
from ports.common import EventCodec, TraceContext, no_trace_context


def _stored_pack(pack: Pack) -> Pack:
    copied = copy.deepcopy(pack)
    copied.created_at, copied.updated_at = utc(pack.created_at), utc(pack.updated_at)
    if pack.published_at is not None:
        copied.published_at = utc(pack.published_at)
    if pack.archived_at is not None:
        copied.archived_at = utc(pack.archived_at)
    return copied


class MemoryCreators:
    def __init__(self, tables: Tables) -> None:
        self._rows: dict[uuid.UUID, Creator] = tables.creators
        self._packs: dict[uuid.UUID, Pack] = tables.packs

    async def add(self, creator: Creator) -> None:
        if creator.user_id in self._rows:
            raise AlreadyExists("this person is a creator already")
        self._rows[creator.user_id] = stored(creator)

    async def get(self, user_id: uuid.UUID) -> Creator | None:
        found = self._rows.get(user_id)
        return copy.copy(found) if found else None

    async def save(self, creator: Creator) -> None:
        self._rows[creator.user_id] = stored(creator)

    async def published_counts(self, creator_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        counts: dict[uuid.UUID, int] = {}
        wanted = set(creator_ids)
        for pack in self._packs.values():
            if pack.creator_id in wanted and pack.state is PackState.PUBLISHED:
                counts[pack.creator_id] = counts.get(pack.creator_id, 0) + 1
        return counts


class MemoryPacks:
    def __init__(self, tables: Tables) -> None:
        self._rows: dict[uuid.UUID, Pack] = tables.packs

    async def add(self, pack: Pack) -> None:
        if pack.request_id and any(
                p.creator_id == pack.creator_id and p.request_id == pack.request_id
                for p in self._rows.values()):
            raise AlreadyExists("a pack of this request exists")
        self._rows[pack.id] = _stored_pack(pack)

    async def get(self, pack_id: uuid.UUID) -> Pack | None:
        found = self._rows.get(pack_id)
        return copy.deepcopy(found) if found else None

    get_for_update = get

    async def get_by_request(self, creator_id: uuid.UUID, request_id: str) -> Pack | None:
        for pack in self._rows.values():
            if pack.creator_id == creator_id and pack.request_id == request_id:
                return copy.deepcopy(pack)
        return None

    async def get_many(self, pack_ids: list[uuid.UUID]) -> list[Pack]:
        return [copy.deepcopy(self._rows[i]) for i in dict.fromkeys(pack_ids)
                if i in self._rows]

    async def save(self, pack: Pack) -> None:
        if pack.id in self._rows:
            self._rows[pack.id] = _stored_pack(pack)

    async def containing(self, content_id: uuid.UUID) -> list[Pack]:
        return [copy.deepcopy(p) for p in self._rows.values()
                if any(i.content_id == content_id for i in p.items)]

    async def add_popularity(self, pack_ids: list[uuid.UUID], amount: int) -> None:
        for pack_id in pack_ids:
            if pack_id in self._rows:
                self._rows[pack_id].popularity += amount

    async def stale_popularity(self, limit: int) -> list[Pack]:
        stale = [p for p in self._rows.values() if p.state is PackState.PUBLISHED
                 and p.popularity != p.indexed_popularity]
        return [copy.deepcopy(p) for p in sorted(stale, key=lambda p: p.id)[:limit]]

    async def mark_indexed(self, pack_id: uuid.UUID, popularity: int) -> None:
        if pack_id in self._rows:
            self._rows[pack_id].indexed_popularity = popularity

    async def listed(self, limit: int) -> list[Pack]:
        listed = sorted((p for p in self._rows.values() if p.state is PackState.PUBLISHED),
                        key=lambda p: (p.popularity, p.id), reverse=True)
        return [copy.deepcopy(p) for p in listed[:limit]]

    async def listed_members_only(self) -> list[Pack]:
        return [copy.deepcopy(p) for p in self._rows.values()
                if p.state is PackState.PUBLISHED and p.price.members_only]

    async def list_by_creator(self, creator_id: uuid.UUID) -> list[Pack]:
        return sorted((copy.deepcopy(p) for p in self._rows.values()
                       if p.creator_id == creator_id), key=lambda p: p.id, reverse=True)


class MemoryEntitlements:
    def __init__(self, tables: Tables) -> None:
        self._rows: list[Entitlement] = tables.entitlements

    async def grant(self, entitlement: Entitlement) -> bool:
        for row in self._rows:
            if (row.user_id, row.pack_id, row.reference) == (
                    entitlement.user_id, entitlement.pack_id, entitlement.reference):
                if row.revoked_at is not None or row.expires_at is None:
                    return False
                if entitlement.expires_at is None or entitlement.expires_at > row.expires_at:
                    row.expires_at = (utc(entitlement.expires_at)
                                      if entitlement.expires_at else None)
                    return True
                return False
        self._rows.append(stored(entitlement))
        return True

    async def revoke(self, reference: str, at: datetime) -> list[Entitlement]:
        revoked = []
        for row in self._rows:
            if row.reference == reference and row.revoked_at is None:
                row.revoked_at = utc(at)
                revoked.append(copy.copy(row))
        return revoked

    async def with_reference(self, reference: str) -> list[Entitlement]:
        return [copy.copy(r) for r in self._rows if r.reference == reference]

    async def for_user(self, user_id: uuid.UUID, pack_ids: list[uuid.UUID],
                       ) -> list[Entitlement]:
        wanted = set(pack_ids)
        return [copy.copy(r) for r in self._rows
                if r.user_id == user_id and r.pack_id in wanted]

    async def list_for_user(self, user_id: uuid.UUID) -> list[Entitlement]:
        return sorted((copy.copy(r) for r in self._rows if r.user_id == user_id),
                      key=lambda r: r.granted_at, reverse=True)


class MemoryUploads:
    def __init__(self, tables: Tables) -> None:
        self._rows: dict[uuid.UUID, Upload] = tables.pack_uploads

    async def add(self, upload: Upload) -> None:
        self._rows[upload.id] = stored(upload)

    async def get(self, upload_id: uuid.UUID) -> Upload | None:
        found = self._rows.get(upload_id)
        return copy.copy(found) if found else None

    async def save(self, upload: Upload) -> None:
        self._rows[upload.id] = stored(upload)


class MemoryCompletions:
    def __init__(self, tables: Tables) -> None:
        self._rows: dict[uuid.UUID, tuple[uuid.UUID, Completion]] = tables.catalog_completions

    async def add(self, completion_id: uuid.UUID, completion: Completion,
                  content_id: uuid.UUID) -> None:
        if completion_id not in self._rows:
            self._rows[completion_id] = (content_id, replace(
                completion, completed_at=utc(completion.completed_at)))

    def _newest(self) -> list[Completion]:
        return sorted((c for _, c in self._rows.values()), key=lambda c: c.completed_at,
                      reverse=True)

    async def for_user(self, user_id: uuid.UUID, limit: int) -> list[Completion]:
        return [c for c in self._newest() if c.user_id == user_id][:limit]

    async def recent(self, since: datetime, limit: int) -> list[Completion]:
        return [c for c in self._newest() if c.completed_at >= since][:limit]


class MemorySearchState:
    def __init__(self, tables: Tables) -> None:
        self._box = tables.search_generation

    async def generation(self) -> int:
        return self._box[0]

    async def bump(self) -> None:
        self._box[0] += 1


class MemoryCatalogUnitOfWork(MemoryUnitOfWork):
    creators: MemoryCreators
    packs: MemoryPacks
    entitlements: MemoryEntitlements
    uploads: MemoryUploads
    completions: MemoryCompletions
    search_state: MemorySearchState
    outbox: MemoryOutbox
    processed_events: MemoryProcessedEvents

    def __init__(self, store: MemoryStore, codec: EventCodec, *, read_only: bool = False,
                 trace_context: TraceContext = no_trace_context) -> None:
        super().__init__(store, read_only=read_only)
        self._codec = codec
        self._trace_context = trace_context

    def _open(self, tables: Tables) -> None:
        self.creators = MemoryCreators(tables)
        self.packs = MemoryPacks(tables)
        self.entitlements = MemoryEntitlements(tables)
        self.completions = MemoryCompletions(tables)
        self.uploads = MemoryUploads(tables)
        self.search_state = MemorySearchState(tables)
        self.outbox = MemoryOutbox(tables, self._codec, self._trace_context)
        self.processed_events = MemoryProcessedEvents(tables)


def memory_catalog_uow(store: MemoryStore, codec: EventCodec,
                       trace_context: TraceContext = no_trace_context,
                       ) -> Callable[..., MemoryCatalogUnitOfWork]:
    return lambda read_only=False: MemoryCatalogUnitOfWork(
        store, codec, read_only=read_only, trace_context=trace_context)
