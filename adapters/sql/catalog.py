"""The catalog in SQL: creators, packs and their items, entitlements and the
search state, with the outbox and the record of handled events in the same
transaction."""

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
from adapters.sql.schema import (
    catalog_completions,
    creators,
    entitlements,
    pack_items,
    pack_uploads,
    packs,
    search_state,
)
from adapters.sql.uow import SqlUnitOfWork, upsert_insert
from core.catalog.model import (
    Creator,
    Entitlement,
    EntitlementSource,
    Interval,
    Pack,
    PackItem,
    PackState,
    Price,
    PriceType,
    Upload,
)
from core.catalog.recommend import Completion
from core.shared.creation import ContentType
from core.shared.errors import AlreadyExists
from core.shared.ids import uuid7
from ports.common import EventCodec, TraceContext, no_trace_context


def _creator(row: Any) -> Creator:
    return Creator(user_id=row.user_id, display_name=row.display_name, bio=row.bio,
                   links=tuple(row.links), created_at=row.created_at, updated_at=row.updated_at)


def _pack(row: Any, items: list[PackItem]) -> Pack:
    price = Price(PriceType(row.price_type), row.price_minor, row.currency,
                  Interval(row.interval) if row.interval else None)
    return Pack(id=row.id, creator_id=row.creator_id, title=row.title,
                description=row.description, price=price, tags=tuple(row.tags),
                state=PackState(row.state), created_at=row.created_at,
                updated_at=row.updated_at, request_id=row.request_id or "",
                published_at=row.published_at, archived_at=row.archived_at, items=items,
                popularity=row.popularity, indexed_popularity=row.indexed_popularity)


def _pack_values(pack: Pack) -> dict[str, Any]:
    return {
        "creator_id": pack.creator_id, "title": pack.title, "description": pack.description,
        "price_type": pack.price.type.value, "price_minor": pack.price.amount_minor,
        "currency": pack.price.currency,
        "interval": pack.price.interval.value if pack.price.interval else None,
        "tags": list(pack.tags), "state": pack.state.value,
        "request_id": pack.request_id or None, "popularity": pack.popularity,
        "indexed_popularity": pack.indexed_popularity,
        "created_at": pack.created_at, "updated_at": pack.updated_at,
        "published_at": pack.published_at, "archived_at": pack.archived_at,
    }


def _entitlement(row: Any) -> Entitlement:
    return Entitlement(user_id=row.user_id, pack_id=row.pack_id,
                       source=EntitlementSource(row.source), reference=row.reference,
                       granted_at=row.granted_at, expires_at=row.expires_at,
                       revoked_at=row.revoked_at)


class SqlCreators:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, creator: Creator) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(creators.insert().values(
                    user_id=creator.user_id, display_name=creator.display_name,
                    bio=creator.bio, links=list(creator.links), created_at=creator.created_at,
                    updated_at=creator.updated_at))
        except IntegrityError:
            raise AlreadyExists("this person is a creator already") from None

    async def get(self, user_id: uuid.UUID) -> Creator | None:
        row = (await self._conn.execute(
            select(creators).where(creators.c.user_id == user_id))).first()
        return _creator(row) if row else None

    async def save(self, creator: Creator) -> None:
        await self._conn.execute(update(creators).where(creators.c.user_id == creator.user_id)
                                 .values(display_name=creator.display_name, bio=creator.bio,
                                         links=list(creator.links),
                                         updated_at=creator.updated_at))

    async def published_counts(self, creator_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        if not creator_ids:
            return {}
        query = (select(packs.c.creator_id, func.count())
                 .where(packs.c.creator_id.in_(creator_ids),
                        packs.c.state == PackState.PUBLISHED.value)
                 .group_by(packs.c.creator_id))
        return {row[0]: row[1] for row in await self._conn.execute(query)}


class SqlPacks:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _items(self, pack_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[PackItem]]:
        found: dict[uuid.UUID, list[PackItem]] = {i: [] for i in pack_ids}
        if not pack_ids:
            return found
        query = (select(pack_items).where(pack_items.c.pack_id.in_(pack_ids))
                 .order_by(pack_items.c.pack_id, pack_items.c.position))
        for row in await self._conn.execute(query):
            found[row.pack_id].append(PackItem(
                content_id=row.content_id, position=row.position, title=row.title,
                content_type=ContentType(row.content_type), duration_ms=row.duration_ms))
        return found

    async def _load(self, query: Any) -> list[Pack]:
        rows = list(await self._conn.execute(query))
        items = await self._items([r.id for r in rows])
        return [_pack(r, items[r.id]) for r in rows]

    async def _write_items(self, pack: Pack) -> None:
        await self._conn.execute(delete(pack_items).where(pack_items.c.pack_id == pack.id))
        if pack.items:
            await self._conn.execute(pack_items.insert(), [{
                "pack_id": pack.id, "content_id": i.content_id, "position": i.position,
                "title": i.title[:120], "content_type": i.content_type.value,
                "duration_ms": i.duration_ms} for i in pack.items])

    async def add(self, pack: Pack) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(packs.insert().values(id=pack.id, **_pack_values(pack)))
        except IntegrityError:
            raise AlreadyExists("a pack of this request exists") from None
        await self._write_items(pack)

    async def get(self, pack_id: uuid.UUID) -> Pack | None:
        found = await self._load(select(packs).where(packs.c.id == pack_id))
        return found[0] if found else None

    async def get_for_update(self, pack_id: uuid.UUID) -> Pack | None:
        query = select(packs).where(packs.c.id == pack_id)
        if self._conn.dialect.name == "postgresql":
            query = query.with_for_update()
        found = await self._load(query)
        return found[0] if found else None

    async def get_by_request(self, creator_id: uuid.UUID, request_id: str) -> Pack | None:
        found = await self._load(select(packs).where(packs.c.creator_id == creator_id,
                                                     packs.c.request_id == request_id))
        return found[0] if found else None

    async def get_many(self, pack_ids: list[uuid.UUID]) -> list[Pack]:
        if not pack_ids:
            return []
        return await self._load(select(packs).where(packs.c.id.in_(list(set(pack_ids)))))

    async def save(self, pack: Pack) -> None:
        await self._conn.execute(update(packs).where(packs.c.id == pack.id)
                                 .values(**_pack_values(pack)))
        await self._write_items(pack)

    async def containing(self, content_id: uuid.UUID) -> list[Pack]:
        ids = select(pack_items.c.pack_id).where(pack_items.c.content_id == content_id)
        return await self._load(select(packs).where(packs.c.id.in_(ids)))

    async def add_popularity(self, pack_ids: list[uuid.UUID], amount: int) -> None:
        if pack_ids:
            await self._conn.execute(update(packs).where(packs.c.id.in_(pack_ids))
                                     .values(popularity=packs.c.popularity + amount))

    async def stale_popularity(self, limit: int) -> list[Pack]:
        return await self._load(select(packs).where(
            packs.c.state == PackState.PUBLISHED.value,
            packs.c.popularity != packs.c.indexed_popularity).order_by(packs.c.id).limit(limit))

    async def mark_indexed(self, pack_id: uuid.UUID, popularity: int) -> None:
        await self._conn.execute(update(packs).where(packs.c.id == pack_id)
                                 .values(indexed_popularity=popularity))

    async def listed(self, limit: int) -> list[Pack]:
        return await self._load(select(packs).where(packs.c.state == PackState.PUBLISHED.value)
                                .order_by(packs.c.popularity.desc(), packs.c.id.desc())
                                .limit(limit))

    async def listed_members_only(self) -> list[Pack]:
        return await self._load(select(packs).where(
            packs.c.state == PackState.PUBLISHED.value,
            packs.c.price_type == PriceType.SUBSCRIPTION.value, packs.c.price_minor == 0))

    async def list_by_creator(self, creator_id: uuid.UUID) -> list[Pack]:
        return await self._load(select(packs).where(packs.c.creator_id == creator_id)
                                .order_by(packs.c.id.desc()))


class SqlEntitlements:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def grant(self, entitlement: Entitlement) -> bool:
        key = (entitlements.c.user_id == entitlement.user_id,
               entitlements.c.pack_id == entitlement.pack_id,
               entitlements.c.reference == entitlement.reference)
        inserted = await self._conn.execute(
            upsert_insert(self._conn, entitlements).values(  # type: ignore[arg-type]
                id=uuid7(), user_id=entitlement.user_id, pack_id=entitlement.pack_id,
                source=entitlement.source.value, reference=entitlement.reference,
                granted_at=entitlement.granted_at, expires_at=entitlement.expires_at,
                revoked_at=None)
            .on_conflict_do_nothing().returning(entitlements.c.id))
        if inserted.first() is not None:
            return True
        # There already: a later expiry extends it (a renewed subscription);
        # a revoked one stays revoked, one for good stays for good.
        if entitlement.expires_at is None:
            extend = update(entitlements).where(
                *key, entitlements.c.revoked_at.is_(None),
                entitlements.c.expires_at.is_not(None)).values(expires_at=None)
        else:
            extend = update(entitlements).where(
                *key, entitlements.c.revoked_at.is_(None),
                entitlements.c.expires_at < entitlement.expires_at,
            ).values(expires_at=entitlement.expires_at)
        return bool((await self._conn.execute(extend)).rowcount)

    async def revoke(self, reference: str, at: datetime) -> list[Entitlement]:
        query = select(entitlements).where(entitlements.c.reference == reference,
                                           entitlements.c.revoked_at.is_(None))
        rows = [_entitlement(r) for r in await self._conn.execute(query)]
        if rows:
            await self._conn.execute(update(entitlements).where(
                entitlements.c.reference == reference, entitlements.c.revoked_at.is_(None))
                .values(revoked_at=at))
        for row in rows:
            row.revoked_at = at
        return rows

    async def with_reference(self, reference: str) -> list[Entitlement]:
        query = select(entitlements).where(entitlements.c.reference == reference)
        return [_entitlement(r) for r in await self._conn.execute(query)]

    async def for_user(self, user_id: uuid.UUID, pack_ids: list[uuid.UUID],
                       ) -> list[Entitlement]:
        if not pack_ids:
            return []
        query = select(entitlements).where(entitlements.c.user_id == user_id,
                                           entitlements.c.pack_id.in_(pack_ids))
        return [_entitlement(r) for r in await self._conn.execute(query)]

    async def list_for_user(self, user_id: uuid.UUID) -> list[Entitlement]:
        query = (select(entitlements).where(entitlements.c.user_id == user_id)
                 .order_by(entitlements.c.granted_at.desc()))
        return [_entitlement(r) for r in await self._conn.execute(query)]


def _completion(row: Any) -> Completion:
    return Completion(user_id=row.user_id, content_type=row.content_type,
                      completed_at=row.completed_at, local_hour=row.local_hour,
                      pack_id=row.pack_id, tags=tuple(row.tags), title=row.title,
                      mood_before=row.mood_before, mood_after=row.mood_after)


class SqlCompletions:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, completion_id: uuid.UUID, completion: Completion,
                  content_id: uuid.UUID) -> None:
        await self._conn.execute(
            upsert_insert(self._conn, catalog_completions).values(  # type: ignore[arg-type]
                id=completion_id, user_id=completion.user_id, content_id=content_id,
                pack_id=completion.pack_id, content_type=completion.content_type,
                completed_at=completion.completed_at, local_hour=completion.local_hour,
                tags=list(completion.tags), title=completion.title[:120],
                mood_before=completion.mood_before, mood_after=completion.mood_after)
            .on_conflict_do_nothing(index_elements=[catalog_completions.c.id]))

    async def for_user(self, user_id: uuid.UUID, limit: int) -> list[Completion]:
        query = (select(catalog_completions).where(catalog_completions.c.user_id == user_id)
                 .order_by(catalog_completions.c.completed_at.desc()).limit(limit))
        return [_completion(r) for r in await self._conn.execute(query)]

    async def recent(self, since: datetime, limit: int) -> list[Completion]:
        query = (select(catalog_completions)
                 .where(catalog_completions.c.completed_at >= since)
                 .order_by(catalog_completions.c.completed_at.desc()).limit(limit))
        return [_completion(r) for r in await self._conn.execute(query)]


_UPLOAD_FIELDS = ("pack_id", "creator_id", "title", "object_key", "created_at", "expires_at",
                  "content_id")


class SqlUploads:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, upload: Upload) -> None:
        await self._conn.execute(pack_uploads.insert().values(
            id=upload.id, content_type=upload.content_type.value,
            **{f: getattr(upload, f) for f in _UPLOAD_FIELDS}))

    async def get(self, upload_id: uuid.UUID) -> Upload | None:
        row = (await self._conn.execute(
            select(pack_uploads).where(pack_uploads.c.id == upload_id))).first()
        return Upload(id=row.id, content_type=ContentType(row.content_type),
                      **{f: getattr(row, f) for f in _UPLOAD_FIELDS}) if row else None

    async def save(self, upload: Upload) -> None:
        await self._conn.execute(update(pack_uploads).where(pack_uploads.c.id == upload.id)
                                 .values(content_id=upload.content_id))


class SqlSearchState:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def generation(self) -> int:
        value = await self._conn.scalar(
            select(search_state.c.generation).where(search_state.c.id == 1))
        return int(value or 0)

    async def bump(self) -> None:
        statement = upsert_insert(self._conn, search_state).values(id=1, generation=1)
        await self._conn.execute(statement.on_conflict_do_update(  # type: ignore[attr-defined]
            index_elements=[search_state.c.id],
            set_={"generation": search_state.c.generation + 1}))


class SqlCatalogUnitOfWork(SqlUnitOfWork):
    creators: SqlCreators
    packs: SqlPacks
    entitlements: SqlEntitlements
    uploads: SqlUploads
    completions: SqlCompletions
    search_state: SqlSearchState
    outbox: SqlOutbox
    processed_events: SqlProcessedEvents

    def __init__(self, engine: AsyncEngine, codec: EventCodec, *, read_only: bool = False,
                 trace_context: TraceContext = no_trace_context) -> None:
        super().__init__(engine, read_only=read_only)
        self._codec = codec
        self._trace_context = trace_context

    def _open(self, conn: AsyncConnection) -> None:
        self.creators = SqlCreators(conn)
        self.packs = SqlPacks(conn)
        self.entitlements = SqlEntitlements(conn)
        self.completions = SqlCompletions(conn)
        self.uploads = SqlUploads(conn)
        self.search_state = SqlSearchState(conn)
        self.outbox = SqlOutbox(conn, self._codec, self._trace_context)
        self.processed_events = SqlProcessedEvents(conn)


def sql_catalog_uow(engine: AsyncEngine, codec: EventCodec,
                    trace_context: TraceContext = no_trace_context,
                    ) -> Callable[..., SqlCatalogUnitOfWork]:
    return lambda read_only=False: SqlCatalogUnitOfWork(
        engine, codec, read_only=read_only, trace_context=trace_context)
