"""Ports of the catalog context."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from core.catalog.model import Creator, Entitlement, Pack, Upload
from core.catalog.recommend import Completion
from core.catalog.search import PackDocument, SearchPage, SearchQuery
from core.shared.creation import ContentType
from ports.common import Outbox, ProcessedEvents, UnitOfWork


class SearchIndex(Protocol):
    """The packs people can find. Kept in sync from catalog's events
    (published, updated, archived), so it may lag the database by the
    relay's delay; the database stays the record. Every adapter passes
    tests/contract/test_search_index.py.

    Matching: each word of the query must match (a prefix of a word counts,
    and a word one or two letters off, when nothing matches it exactly);
    a title match ranks above a tag or creator match, which ranks above a
    description match. Filters are exact (tags case-insensitive)."""

    async def upsert(self, document: PackDocument) -> None:
        """Add the pack, or replace what the index holds of it."""
        ...

    async def remove(self, pack_id: uuid.UUID) -> None:
        """Forget the pack (a no-op when it is not there)."""
        ...

    async def search(self, query: SearchQuery) -> SearchPage:
        """The page `query.offset`..`offset + limit` of the matches, in
        `query.order` (ties: newest first, then by id)."""
        ...

    async def close(self) -> None: ...


class Creators(Protocol):
    async def add(self, creator: Creator) -> None:
        """Insert; core.shared.errors.AlreadyExists when the person is one."""
        ...

    async def get(self, user_id: uuid.UUID) -> Creator | None: ...

    async def save(self, creator: Creator) -> None: ...

    async def published_counts(self, creator_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        """How many PUBLISHED packs each creator has (absent: none)."""
        ...


class Packs(Protocol):
    async def add(self, pack: Pack) -> None:
        """Insert with its items; AlreadyExists when a pack of the same
        creator has the same non-empty `request_id` (a concurrent retry)."""
        ...

    async def get(self, pack_id: uuid.UUID) -> Pack | None:
        """The pack with its items in order."""
        ...

    async def get_for_update(self, pack_id: uuid.UUID) -> Pack | None:
        """The pack, locked until the unit of work ends."""
        ...

    async def get_by_request(self, creator_id: uuid.UUID, request_id: str) -> Pack | None: ...

    async def get_many(self, pack_ids: list[uuid.UUID]) -> list[Pack]:
        """Those that exist, in no particular order."""
        ...

    async def save(self, pack: Pack) -> None:
        """Write the pack and replace its items."""
        ...

    async def containing(self, content_id: uuid.UUID) -> list[Pack]:
        """Packs (any state) holding the item."""
        ...

    async def add_popularity(self, pack_ids: list[uuid.UUID], amount: int) -> None: ...

    async def stale_popularity(self, limit: int) -> list[Pack]:
        """PUBLISHED packs whose popularity differs from the indexed one."""
        ...

    async def mark_indexed(self, pack_id: uuid.UUID, popularity: int) -> None:
        """The index now holds this popularity of the pack."""
        ...

    async def listed(self, limit: int) -> list[Pack]:
        """PUBLISHED packs, most popular first (then newest), at most `limit`."""
        ...

    async def listed_members_only(self) -> list[Pack]:
        """Every PUBLISHED members-only pack (price type subscription)."""
        ...

    async def list_by_creator(self, creator_id: uuid.UUID) -> list[Pack]:
        """Every pack of the creator's, newest first."""
        ...


class Entitlements(Protocol):
    async def grant(self, entitlement: Entitlement) -> bool:
        """Record it, or extend the one with the same user, pack and
        reference (a later expiry wins, a revoked one stays revoked); False
        when it changed nothing."""
        ...

    async def revoke(self, reference: str, at: datetime) -> list[Entitlement]:
        """Revoke every entitlement given by `reference`; returns those it
        revoked now."""
        ...

    async def with_reference(self, reference: str) -> list[Entitlement]:
        """Every entitlement `reference` gave (any state)."""
        ...

    async def for_user(self, user_id: uuid.UUID, pack_ids: list[uuid.UUID],
                       ) -> list[Entitlement]:
        """The person's entitlements to these packs (any state)."""
        ...

    async def list_for_user(self, user_id: uuid.UUID) -> list[Entitlement]:
        """All the person's entitlements (any state), newest first."""
        ...


class Uploads(Protocol):
    async def add(self, upload: Upload) -> None: ...

    async def get(self, upload_id: uuid.UUID) -> Upload | None: ...

    async def save(self, upload: Upload) -> None: ...


class UploadUrls(Protocol):
    """Where a file is PUT (the object store's upload URLs)."""

    async def upload_url(self, key: str, expires_in: timedelta) -> str: ...


class Completions(Protocol):
    """Completed practices, as recommendations read them (a read model fed
    by the library's practice.completed)."""

    async def add(self, completion_id: uuid.UUID, completion: Completion,
                  content_id: uuid.UUID) -> None:
        """Record one (a repeated id is ignored)."""
        ...

    async def for_user(self, user_id: uuid.UUID, limit: int) -> list[Completion]:
        """The person's newest `limit`."""
        ...

    async def recent(self, since: datetime, limit: int) -> list[Completion]:
        """Everyone's since `since`, newest first, at most `limit`."""
        ...


class SearchState(Protocol):
    async def generation(self) -> int:
        """A number that moves whenever the index changes (cached search
        results name it, so a change makes them unreachable at once)."""
        ...

    async def bump(self) -> None: ...


class CatalogUnitOfWork(UnitOfWork, Protocol):
    creators: Creators
    packs: Packs
    entitlements: Entitlements
    uploads: Uploads
    completions: Completions
    search_state: SearchState
    outbox: Outbox
    processed_events: ProcessedEvents


class CatalogUnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> CatalogUnitOfWork: ...


@dataclass(frozen=True)
class LibraryItem:
    """What the catalog needs of a library item."""

    content_id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    content_type: ContentType
    ready: bool
    duration_ms: int


class Library(Protocol):
    """The library context, as the catalog sees it."""

    async def owned_item(self, user_id: uuid.UUID, content_id: uuid.UUID,
                         ) -> LibraryItem | None:
        """The person's own item; None when it is not theirs or does not exist."""
        ...

    async def import_audio(self, user_id: uuid.UUID, request_id: str, object_key: str,
                           title: str, content_type: ContentType) -> LibraryItem:
        """A READY item of the person's made from an uploaded file; the
        library's InvalidArgument (NOT_AUDIO, AUDIO_TOO_...) or
        FailedPrecondition (UPLOAD_MISSING) when it cannot be."""
        ...
