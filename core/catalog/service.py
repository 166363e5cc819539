"""The catalog's use cases: creators and their packs, search, and access."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core.catalog.model import (
    MEMBERSHIP,
    ROLE_ADMIN,
    Access,
    AccessDecision,
    Creator,
    CreatorCreated,
    CreatorExists,
    Entitlement,
    EntitlementSource,
    InvalidPrice,
    NotACreator,
    Pack,
    PackArchived,
    PackArchivedEvent,
    PackItem,
    PackPublished,
    PackState,
    PlayAttributed,
    Price,
    PriceType,
    Upload,
)
from core.catalog.recommend import Candidate, Completion, Embed, Recommendation, recommend
from core.catalog.records import (
    creator_from_record,
    creator_record,
    pack_from_record,
    pack_record,
)
from core.catalog.search import (
    MAX_SEARCH_PAGE,
    PackDocument,
    SearchQuery,
)
from core.shared.creation import ContentType
from core.shared.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from core.shared.ids import uuid7

if TYPE_CHECKING:
    from ports.catalog import (
        CatalogUnitOfWork,
        CatalogUnitOfWorkFactory,
        Library,
        LibraryItem,
        SearchIndex,
        UploadUrls,
    )
    from ports.common import Cache, Clock

#: How long a search result stays cached (the seed's `search:{hash}`, 5 min).
SEARCH_CACHE_SECONDS = 300
INDEX_CONSUMER = "catalog.search-index"
ACCESS_CONSUMER = "catalog.access"
PLAY_CONSUMER = "catalog.plays"
#: How long an upload URL accepts the file.
UPLOAD_TTL = timedelta(hours=1)
#: What recommendations read: the person's latest completions, everyone's of
#: the last 90 days (at most this many), and the most popular listed packs.
HISTORY_LIMIT = 200
OTHERS_WINDOW = timedelta(days=90)
OTHERS_LIMIT = 5000
CANDIDATE_LIMIT = 200


@dataclass(frozen=True)
class PackChanges:
    """What UpdatePack may change: None leaves a field as it is."""

    title: str | None = None
    description: str | None = None
    price: Price | None = None
    tags: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PackView:
    """A pack as one caller sees it."""

    pack: Pack
    creator: Creator | None
    #: Whether the caller may play its items.
    owned: bool
    creator_pack_count: int = 0


def clean_tags(tags: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Lower case, trimmed, each once, in the order given."""
    seen: dict[str, None] = {}
    for tag in tags:
        cleaned = " ".join(tag.split()).lower()
        if cleaned:
            seen.setdefault(cleaned)
    return tuple(seen)


class GrantNotYetKnown(Exception):
    """A revocation handled before its grant: retried by the bus."""


class CatalogService:
    def __init__(self, uow: CatalogUnitOfWorkFactory, clock: Clock, index: SearchIndex,
                 cache: Cache, library: Library, embed: Embed | None = None,
                 upload_urls: UploadUrls | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._index = index
        self._cache = cache
        self._library = library
        self._embed = embed
        self._upload_urls = upload_urls

    # --- creators -----------------------------------------------------------------

    async def create_creator(self, user_id: uuid.UUID, display_name: str, bio: str,
                             links: tuple[str, ...]) -> Creator:
        name = " ".join(display_name.split())
        if not name:
            raise InvalidArgument("a creator needs a display name",
                                  metadata={"field": "display_name"})
        now = self._clock.now()
        creator = Creator(user_id=user_id, display_name=name, bio=bio.strip(), links=links,
                          created_at=now, updated_at=now)
        async with self._uow() as uow:
            if await uow.creators.get(user_id) is not None:
                raise CreatorExists("you are a creator already")
            try:
                await uow.creators.add(creator)
            except AlreadyExists as exc:
                raise CreatorExists("you are a creator already") from exc
            await uow.outbox.add(CreatorCreated(occurred_at=now, user_id=user_id))
            await uow.commit()
        return creator

    async def get_creator(self, user_id: uuid.UUID) -> tuple[Creator, int]:
        async with self._uow(read_only=True) as uow:
            creator = await uow.creators.get(user_id)
            if creator is None:
                raise NotFound("no such creator")
            counts = await uow.creators.published_counts([user_id])
        return creator, counts.get(user_id, 0)

    async def update_creator(self, user_id: uuid.UUID, *, display_name: str | None,
                             bio: str | None, links: tuple[str, ...] | None) -> Creator:
        async with self._uow() as uow:
            creator = await uow.creators.get(user_id)
            if creator is None:
                raise NotFound("no such creator")
            if display_name is not None:
                name = " ".join(display_name.split())
                if not name:
                    raise InvalidArgument("a creator needs a display name",
                                          metadata={"field": "display_name"})
                creator.display_name = name
            if bio is not None:
                creator.bio = bio.strip()
            if links is not None:
                creator.links = links
            creator.updated_at = self._clock.now()
            await uow.creators.save(creator)
            # The creator's name is in their packs' search documents.
            for pack in await uow.packs.list_by_creator(user_id):
                if pack.listed:
                    await uow.outbox.add(PackPublished(occurred_at=creator.updated_at,
                                                       pack_id=pack.id, creator_id=user_id))
            await uow.commit()
        return creator

    # --- packs --------------------------------------------------------------------

    async def create_pack(self, user_id: uuid.UUID, request_id: str, title: str,
                          description: str, price: Price, tags: tuple[str, ...]) -> Pack:
        self._check_price(price)
        now = self._clock.now()
        pack = Pack(id=uuid7(), creator_id=user_id, title=title.strip(),
                    description=description.strip(), price=price, tags=clean_tags(tags),
                    state=PackState.DRAFT, created_at=now, updated_at=now,
                    request_id=request_id)
        async with self._uow() as uow:
            if await uow.creators.get(user_id) is None:
                raise NotACreator("become a creator first: POST /v1/creators")
            if request_id:
                earlier = await uow.packs.get_by_request(user_id, request_id)
                if earlier is not None:
                    return earlier
            try:
                await uow.packs.add(pack)
            except AlreadyExists:
                earlier = await uow.packs.get_by_request(user_id, request_id)
                if earlier is None:
                    raise
                return earlier
            await uow.commit()
        return pack

    async def get_pack(self, caller: uuid.UUID | None, pack_id: uuid.UUID) -> PackView:
        async with self._uow(read_only=True) as uow:
            pack = await uow.packs.get(pack_id)
            if pack is None or (pack.state is PackState.DRAFT and pack.creator_id != caller):
                raise NotFound("no such pack")
            return (await self._views(uow, caller, [pack]))[0]

    async def update_pack(self, user_id: uuid.UUID, pack_id: uuid.UUID,
                          changes: PackChanges) -> PackView:
        async with self._uow() as uow:
            pack = await self._own_pack(uow, user_id, pack_id)
            if pack.state is PackState.ARCHIVED:
                raise PackArchived("an archived pack cannot change")
            if changes.title is not None:
                pack.title = changes.title.strip()
            if changes.description is not None:
                pack.description = changes.description.strip()
            if changes.price is not None:
                self._check_price(changes.price)
                pack.price = changes.price
            if changes.tags is not None:
                pack.tags = clean_tags(changes.tags)
            if pack.listed:
                missing = pack.missing_for_publish()
                if missing is not None:
                    raise FailedPrecondition(f"a published pack needs its {missing}",
                                             reason="PACK_INCOMPLETE",
                                             metadata={"field": missing})
            pack.updated_at = self._clock.now()
            await uow.packs.save(pack)
            if pack.listed:
                await uow.outbox.add(PackPublished(occurred_at=pack.updated_at,
                                                   pack_id=pack.id, creator_id=user_id))
            await uow.commit()
            return (await self._views(uow, user_id, [pack]))[0]

    async def create_upload(self, user_id: uuid.UUID, pack_id: uuid.UUID, title: str,
                            content_type: ContentType) -> tuple[Upload, str]:
        """A place for the creator to PUT a recording for the pack: the
        upload and its URL (valid UPLOAD_TTL)."""
        if self._upload_urls is None:
            raise FailedPrecondition("uploads are not accepted here", reason="UPLOADS_OFF")
        title = " ".join(title.split())
        if not title:
            raise InvalidArgument("an upload needs a title", metadata={"field": "upload.title"})
        now = self._clock.now()
        async with self._uow() as uow:
            pack = await self._own_pack(uow, user_id, pack_id)
            if pack.state is PackState.ARCHIVED:
                raise PackArchived("an archived pack cannot change")
            upload_id = uuid7()
            upload = Upload(id=upload_id, pack_id=pack_id, creator_id=user_id, title=title,
                            content_type=content_type,
                            object_key=f"uploads/{user_id}/{upload_id}", created_at=now,
                            expires_at=now + UPLOAD_TTL)
            await uow.uploads.add(upload)
            await uow.commit()
        return upload, await self._upload_urls.upload_url(upload.object_key, UPLOAD_TTL)

    async def add_upload(self, user_id: uuid.UUID, pack_id: uuid.UUID,
                         upload_id: uuid.UUID) -> PackItem:
        """The uploaded recording, made an item of the creator's library by
        the library (which measures it and refuses what is not fit), added to
        the pack. A retry finds the item made."""
        async with self._uow(read_only=True) as uow:
            upload = await uow.uploads.get(upload_id)
        if upload is None or upload.pack_id != pack_id or upload.creator_id != user_id:
            raise NotFound("no such upload")
        if upload.content_id is not None:  # a retry of an add that went through
            async with self._uow(read_only=True) as uow:
                pack = await uow.packs.get(pack_id)
            for entry in pack.items if pack else ():
                if entry.content_id == upload.content_id:
                    return entry
        item = await self._library.import_audio(user_id, f"upload:{upload.id}",
                                                upload.object_key, upload.title,
                                                upload.content_type)
        async with self._uow() as uow:
            upload.content_id = item.content_id
            await uow.uploads.save(upload)
            await uow.commit()
        return await self._add(user_id, pack_id, item)

    async def add_item(self, user_id: uuid.UUID, pack_id: uuid.UUID,
                       content_id: uuid.UUID) -> PackItem:
        item = await self._library.owned_item(user_id, content_id)
        if item is None:
            raise NotFound("no such item in your library")
        return await self._add(user_id, pack_id, item)

    async def _add(self, user_id: uuid.UUID, pack_id: uuid.UUID,
                   item: LibraryItem) -> PackItem:
        content_id = item.content_id
        if not item.ready:
            raise FailedPrecondition("only a READY item can join a pack",
                                     reason="CONTENT_NOT_READY")
        entry = PackItem(content_id=content_id, position=0, title=item.title,
                         content_type=item.content_type, duration_ms=item.duration_ms)
        async with self._uow() as uow:
            pack = await self._own_pack(uow, user_id, pack_id)
            pack.add_item(entry)
            pack.updated_at = self._clock.now()
            await uow.packs.save(pack)
            if pack.listed:
                await uow.outbox.add(PackPublished(occurred_at=pack.updated_at,
                                                   pack_id=pack.id, creator_id=user_id))
            await uow.commit()
        return entry

    async def list_items(self, caller: uuid.UUID | None, pack_id: uuid.UUID) -> list[PackItem]:
        return list((await self.get_pack(caller, pack_id)).pack.items)

    async def remove_item(self, user_id: uuid.UUID, pack_id: uuid.UUID,
                          content_id: uuid.UUID) -> PackView:
        async with self._uow() as uow:
            pack = await self._own_pack(uow, user_id, pack_id)
            if not pack.remove_item(content_id):
                raise NotFound("no such item in this pack")
            pack.updated_at = self._clock.now()
            await uow.packs.save(pack)
            await uow.commit()
            return (await self._views(uow, user_id, [pack]))[0]

    async def publish(self, user_id: uuid.UUID, pack_id: uuid.UUID) -> PackView:
        async with self._uow() as uow:
            pack = await self._own_pack(uow, user_id, pack_id)
            if pack.state is PackState.ARCHIVED:
                raise PackArchived("an archived pack cannot be published again")
            if pack.state is PackState.DRAFT:
                missing = pack.missing_for_publish()
                if missing is not None:
                    raise FailedPrecondition(f"the pack needs its {missing} to be published",
                                             reason="PACK_INCOMPLETE",
                                             metadata={"field": missing})
                # Every item must still be the creator's and READY.
                for entry in pack.items:
                    item = await self._library.owned_item(user_id, entry.content_id)
                    if item is None or not item.ready:
                        raise FailedPrecondition(
                            "every item must be READY in your library",
                            reason="CONTENT_NOT_READY",
                            metadata={"content": f"contents/{entry.content_id}"})
                now = self._clock.now()
                pack.state, pack.published_at, pack.updated_at = PackState.PUBLISHED, now, now
                await uow.packs.save(pack)
                await uow.outbox.add(PackPublished(occurred_at=now, pack_id=pack.id,
                                                   creator_id=user_id))
                await uow.commit()
            return (await self._views(uow, user_id, [pack]))[0]

    async def archive(self, user_id: uuid.UUID, roles: frozenset[str],
                      pack_id: uuid.UUID) -> PackView:
        async with self._uow() as uow:
            pack = await uow.packs.get_for_update(pack_id)
            visible = pack is not None and (pack.creator_id == user_id
                                            or pack.state is not PackState.DRAFT
                                            or ROLE_ADMIN in roles)
            if pack is None or not visible:
                raise NotFound("no such pack")
            if pack.creator_id != user_id and ROLE_ADMIN not in roles:
                raise PermissionDenied("only its creator or an admin archives a pack",
                                       reason="NOT_YOUR_PACK")
            if pack.state is not PackState.ARCHIVED:
                now = self._clock.now()
                was_listed = pack.listed
                pack.state, pack.archived_at, pack.updated_at = PackState.ARCHIVED, now, now
                await uow.packs.save(pack)
                if was_listed:
                    await uow.outbox.add(PackArchivedEvent(occurred_at=now, pack_id=pack.id,
                                                           creator_id=pack.creator_id))
                await uow.commit()
            return (await self._views(uow, user_id, [pack]))[0]

    async def owned_packs(self, user_id: uuid.UUID) -> list[PackView]:
        """Packs the person may play (entitled, or made), newest first."""
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            entitled = [e.pack_id for e in await uow.entitlements.list_for_user(user_id)
                        if e.active(now)]
            if MEMBERSHIP in entitled:
                entitled += [p.id for p in await uow.packs.listed_members_only()]
            made = [p.id for p in await uow.packs.list_by_creator(user_id)]
            ids = list(dict.fromkeys([*entitled, *made]))
            packs = await uow.packs.get_many(ids)
            packs.sort(key=lambda p: p.id, reverse=True)
            return await self._views(uow, user_id, packs)

    # --- search -------------------------------------------------------------------

    async def search(self, caller: uuid.UUID | None, query: SearchQuery,
                     ) -> tuple[list[PackView], bool]:
        """A page of published packs matching `query`, and whether more follow.
        Cache first (`search:{hash}` of the query and the index's generation,
        5 min: the page's packs and creators as they were), then the index and
        the database. Every change the index sees moves the generation, so a
        cached page is never older than the index; only whether the caller
        owns each pack is read per request."""
        query = replace(query, text=" ".join(query.text.split()),
                        limit=max(1, min(query.limit, MAX_SEARCH_PAGE)),
                        tag=query.tag.lower() if query.tag else None)
        async with self._uow(read_only=True) as uow:
            generation = await uow.search_state.generation()
        key = self.search_key(query, generation)
        cached = await self._cache.get(key)
        if cached is not None:
            raw = json.loads(cached)
            packs = [pack_from_record(p) for p in raw["packs"]]
            creators = {uuid.UUID(k): creator_from_record(v) for k, v in raw["creators"].items()}
            counts = {uuid.UUID(k): v for k, v in raw["counts"].items()}
            async with self._uow(read_only=True) as uow:
                return await self._views(uow, caller, packs, creators, counts), raw["more"]
        page = await self._index.search(query)
        async with self._uow(read_only=True) as uow:
            found = {p.id: p for p in await uow.packs.get_many(page.pack_ids)}
            # The index may lag an archive by the relay's delay: the
            # database has the last word.
            packs = [found[i] for i in page.pack_ids if i in found and found[i].listed]
            creators, counts = await self._creators(uow, packs)
            views = await self._views(uow, caller, packs, creators, counts)
        await self._cache.set(key, json.dumps({
            "packs": [pack_record(p) for p in packs], "more": page.more,
            "creators": {str(k): creator_record(v) for k, v in creators.items() if v},
            "counts": {str(k): v for k, v in counts.items()}}).encode(), SEARCH_CACHE_SECONDS)
        return views, page.more

    @staticmethod
    def search_key(query: SearchQuery, generation: int) -> str:
        digest = hashlib.sha256(json.dumps([
            generation, query.text.lower(), query.content_type, query.price_type,
            str(query.creator_id) if query.creator_id else None, query.tag,
            query.order.value, query.offset, query.limit]).encode()).hexdigest()[:32]
        return f"search:{digest}"

    async def index_pack(self, event_id: uuid.UUID, pack_id: uuid.UUID) -> None:
        """Write the pack's search document from the database as it is now (a
        late or repeated event writes the same), or remove it if it is not
        listed any more."""
        async with self._uow(read_only=True) as uow:
            pack = await uow.packs.get(pack_id)
            creator = await uow.creators.get(pack.creator_id) if pack else None
        if pack is None or not pack.listed or creator is None:
            await self._index.remove(pack_id)
        else:
            await self._index.upsert(self.document(pack, creator))
        async with self._uow() as uow:
            if pack is not None:
                await uow.packs.mark_indexed(pack_id, pack.popularity)
            await uow.search_state.bump()
            await uow.commit()

    async def refresh_popularity(self, limit: int = 500) -> int:
        """Send the index the popularity of the listed packs whose purchases
        and plays moved since it last saw them (a periodic job: re-indexing
        on every play would move the search generation, and so empty the
        search cache, all the time). Returns how many packs it re-indexed."""
        async with self._uow(read_only=True) as uow:
            stale = await uow.packs.stale_popularity(limit)
            creators = {c: await uow.creators.get(c) for c in {p.creator_id for p in stale}}
        done = 0
        for pack in stale:
            creator = creators.get(pack.creator_id)
            if creator is None:
                continue
            await self._index.upsert(self.document(pack, creator))
            async with self._uow() as uow:
                await uow.packs.mark_indexed(pack.id, pack.popularity)
                await uow.commit()
            done += 1
        if done:
            async with self._uow() as uow:
                await uow.search_state.bump()
                await uow.commit()
        return done

    @staticmethod
    def document(pack: Pack, creator: Creator) -> PackDocument:
        return PackDocument(
            pack_id=pack.id, title=pack.title, description=pack.description,
            creator_id=pack.creator_id, creator_name=creator.display_name, tags=pack.tags,
            content_types=tuple(t.value for t in pack.content_types),
            price_type=pack.price.type.value,
            published_at=pack.published_at or pack.created_at, popularity=pack.popularity)

    # --- access -------------------------------------------------------------------

    async def check_access(self, user_id: uuid.UUID, content_id: uuid.UUID) -> AccessDecision:
        """Whether the person may play another person's item: it must be in a
        pack that is free and published, or one they are entitled to (bought,
        or subscribed for the period paid; an archived pack stays theirs)."""
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            packs = [p for p in await uow.packs.containing(content_id)
                     if p.state is not PackState.DRAFT]
            if not packs:
                return AccessDecision(Access.NOT_LISTED)
            if any(p.creator_id == user_id for p in packs):
                return AccessDecision(Access.OWNER, packs[0].id)
            entitlements = await uow.entitlements.for_user(
                user_id, [p.id for p in packs] + [MEMBERSHIP])
        active = {e.pack_id for e in entitlements if e.active(now)}
        for pack in packs:
            if pack.id in active:
                return AccessDecision(Access.ENTITLED, pack.id)
            if MEMBERSHIP in active and pack.listed and pack.price.members_only:
                return AccessDecision(Access.ENTITLED, pack.id)
        for pack in packs:
            if pack.listed and pack.price.type is PriceType.FREE:
                return AccessDecision(Access.FREE, pack.id)
        listed = [p for p in packs if p.listed]
        if not listed:
            return AccessDecision(Access.NOT_LISTED)
        return AccessDecision(Access.NOT_OWNED, listed[0].id)

    async def grant_access(self, user_id: uuid.UUID, pack_id: uuid.UUID,
                           source: EntitlementSource, reference: str,
                           expires_at: datetime | None = None,
                           event_id: uuid.UUID | None = None) -> Entitlement:
        """Give the person the pack (idempotent by `reference`; with an
        `event_id`, once per event). A purchase counts toward popularity."""
        entitlement = Entitlement(user_id=user_id, pack_id=pack_id, source=source,
                                  reference=reference, granted_at=self._clock.now(),
                                  expires_at=expires_at)
        async with self._uow() as uow:
            if event_id is not None and not await uow.processed_events.add(
                    ACCESS_CONSUMER, event_id, entitlement.granted_at):
                return entitlement
            if await uow.packs.get(pack_id) is None:
                raise NotFound("no such pack")
            changed = await uow.entitlements.grant(entitlement)
            if changed and source is EntitlementSource.PURCHASE:
                await uow.packs.add_popularity([pack_id], 1)
            await uow.commit()
        return entitlement

    async def set_membership(self, event_id: uuid.UUID, user_id: uuid.UUID, reference: str,
                             active_until: datetime | None,
                             pack_id: uuid.UUID | None = None) -> None:
        """A membership (the provider's subscription `reference`) plays every
        listed members-only pack until `active_until`, or with `pack_id` a
        subscription to that pack plays it; None ends it now."""
        now = self._clock.now()
        async with self._uow() as uow:
            if not await uow.processed_events.add(ACCESS_CONSUMER, event_id, now):
                return
            if active_until is None:
                await uow.entitlements.revoke(reference, now)
            else:
                await uow.entitlements.grant(Entitlement(
                    user_id=user_id, pack_id=pack_id or MEMBERSHIP,
                    source=EntitlementSource.SUBSCRIPTION,
                    reference=reference, granted_at=now, expires_at=active_until))
            await uow.commit()

    async def revoke_access(self, reference: str, event_id: uuid.UUID | None = None) -> int:
        """Take back what `reference` gave; returns how many entitlements."""
        now = self._clock.now()
        async with self._uow() as uow:
            if event_id is not None and not await uow.processed_events.add(
                    ACCESS_CONSUMER, event_id, now):
                return 0
            revoked = await uow.entitlements.revoke(reference, now)
            if not revoked and not await uow.entitlements.with_reference(reference):
                # The grant has not been handled yet (events of two facts may
                # arrive out of order): roll back and let the bus retry.
                raise GrantNotYetKnown(f"nothing granted by {reference} yet")
            await uow.commit()
        return len(revoked)

    async def record_play(self, event_id: uuid.UUID, completion: Completion,
                          content_id: uuid.UUID) -> None:
        """A completed practice of an item: recommendations remember it (with
        the pack it came from, and that pack's tags); the packs holding it
        gain popularity (their search documents are written again); and a
        member's play of a members-only pack is attributed to its creator.
        (The search index learns the new popularity from refresh_popularity.)"""
        user_id, played_at = completion.user_id, completion.completed_at
        async with self._uow() as uow:
            if not await uow.processed_events.add(PLAY_CONSUMER, event_id, self._clock.now()):
                return
            packs = [p for p in await uow.packs.containing(content_id)
                     if p.state is not PackState.DRAFT]
            source = next((p for p in packs if p.creator_id != user_id), None)
            await uow.completions.add(event_id, replace(
                completion, pack_id=source.id if source else None,
                tags=tuple(dict.fromkeys([*completion.tags, *(source.tags if source else ())]))),
                content_id)
            if packs:
                await uow.packs.add_popularity([p.id for p in packs], 1)
            members_only = [p for p in packs if p.listed and p.creator_id != user_id
                            and p.price.type is PriceType.SUBSCRIPTION]
            if members_only:
                pack = members_only[0]
                await uow.outbox.add(PlayAttributed(
                    occurred_at=played_at, user_id=user_id, creator_id=pack.creator_id,
                    pack_id=pack.id, content_id=content_id))
            await uow.commit()

    async def recommendations(self, user_id: uuid.UUID, limit: int,
                              ) -> list[tuple[PackView, Recommendation]]:
        """The best listed packs for the person, each with its reason (see
        core/catalog/recommend.py): never one they made or bought."""
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            history = await uow.completions.for_user(user_id, HISTORY_LIMIT)
            others = await uow.completions.recent(now - OTHERS_WINDOW, OTHERS_LIMIT)
            packs = await uow.packs.listed(CANDIDATE_LIMIT)
            bought = {e.pack_id for e in await uow.entitlements.list_for_user(user_id)
                      if e.active(now) and e.pack_id != MEMBERSHIP}
            creators = {c: await uow.creators.get(c) for c in {p.creator_id for p in packs}}
            candidates = [Candidate(
                pack_id=p.id, title=p.title, description=p.description, tags=p.tags,
                content_types=tuple(t.value for t in p.content_types), creator_id=p.creator_id,
                creator_name=creators[p.creator_id].display_name if creators[p.creator_id]
                else "", popularity=p.popularity, published_at=p.published_at or p.created_at)
                for p in packs]
            ranked = await recommend(user_id, history, others, candidates, bought, now=now,
                                     embed=self._embed, limit=limit)
            by_id = {p.id: p for p in packs}
            views = await self._views(uow, user_id, [by_id[r.pack_id] for r in ranked])
        return list(zip(views, ranked, strict=True))

    # --- helpers ------------------------------------------------------------------

    async def _own_pack(self, uow: CatalogUnitOfWork, user_id: uuid.UUID,
                        pack_id: uuid.UUID) -> Pack:
        pack = await uow.packs.get_for_update(pack_id)
        if pack is None or (pack.state is PackState.DRAFT and pack.creator_id != user_id):
            raise NotFound("no such pack")
        if pack.creator_id != user_id:
            raise PermissionDenied("only its creator changes a pack", reason="NOT_YOUR_PACK")
        return pack

    @staticmethod
    async def _creators(uow: CatalogUnitOfWork, packs: list[Pack],
                        ) -> tuple[dict[uuid.UUID, Creator | None], dict[uuid.UUID, int]]:
        creator_ids = list(dict.fromkeys(p.creator_id for p in packs))
        creators = {c: await uow.creators.get(c) for c in creator_ids}
        return creators, await uow.creators.published_counts(creator_ids)

    async def _views(self, uow: CatalogUnitOfWork, caller: uuid.UUID | None,
                     packs: list[Pack],
                     creators: dict[uuid.UUID, Creator | None] | None = None,
                     counts: dict[uuid.UUID, int] | None = None) -> list[PackView]:
        if creators is None or counts is None:
            creators, counts = await self._creators(uow, packs)
        now = self._clock.now()
        entitled: set[uuid.UUID] = set()
        if caller is not None and packs:
            entitled = {e.pack_id for e in await uow.entitlements.for_user(
                caller, [p.id for p in packs] + [MEMBERSHIP]) if e.active(now)}
        return [PackView(pack=p, creator=creators.get(p.creator_id),
                         owned=(p.creator_id == caller or p.id in entitled
                                or (p.listed and p.price.type is PriceType.FREE)
                                or (MEMBERSHIP in entitled and p.listed
                                    and p.price.members_only)),
                         creator_pack_count=counts.get(p.creator_id, 0)) for p in packs]

    @staticmethod
    def _check_price(price: Price) -> None:
        problem = price.problem()
        if problem is not None:
            raise InvalidPrice(problem, metadata={"field": "price"})
