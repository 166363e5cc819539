"""The library's use cases: a person's items, their creation from brief to
READY (credits spent exactly once, or not at all), and playback.

A creation is a saga over three contexts, each step idempotent and resumable:

1. `start_creation`: the item is inserted (GENERATING_TEXT), the type's cost
   is reserved (a hold, idempotent by a request id derived from the item),
   and the text step is queued. Not enough credits: the item is removed and
   FAILED_PRECONDITION(INSUFFICIENT_CREDITS) raised; nothing was generated.
2. `write_text` (a job): the text is written, stored, the item moves to
   RENDERING_AUDIO and a render is requested from audio (a job there).
3. `audio_rendered` (an event): the hold is committed (a `consumption` entry,
   once), then the item becomes READY with its audio.
   `audio_failed`, a text that cannot be written, or a creation stuck past
   its deadline: the hold is released and the item FAILED with a reason.

Every step checks the item's state first, so a redelivered job or event is a
no-op; `resume_stale` re-queues steps whose job was lost with a process.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core.library.model import (
    AudioNotReady,
    ContentBusy,
    ContentFailed,
    ContentItem,
    ContentReady,
    FailureReason,
    ItemState,
)
from core.shared.creation import Brief, ContentType, Pace
from core.shared.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from core.shared.ids import uuid7

if TYPE_CHECKING:
    from ports.common import Cache, Clock
    from ports.library import (
        AudioUrls,
        CreditsPort,
        LibraryUnitOfWorkFactory,
        RenderRequests,
        TextJobs,
        TextWriter,
    )

log = logging.getLogger(__name__)

#: Credits per type (README: WAQUP_CREDIT_COST_*). A new person's free credit
#: buys an affirmation set.
DEFAULT_COSTS: Mapping[ContentType, int] = {ContentType.AFFIRMATION: 1,
                                            ContentType.GUIDED_MEDITATION: 2,
                                            ContentType.RITUAL: 2}
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_TITLE = 120
METADATA_TTL_SECONDS = 3600
AUDIO_RENDERED_CONSUMER = "library.audio-rendered"


#: Credits' request ids are UUIDs: each step's id is derived from the item, so
#: a retried step repeats its request exactly.
_REQUESTS = uuid.UUID("8f0c6a52-3b7e-4c1d-9a5e-2d4f6b8a0c13")


def credits_request(step: str, content_id: uuid.UUID) -> str:
    return str(uuid.uuid5(_REQUESTS, f"library:{step}:{content_id}"))


def metadata_key(content_id: uuid.UUID) -> str:
    """The seed's cache key of an item's playback metadata."""
    return f"ritual:{content_id}:metadata"


class CreationRateLimited(ResourceExhausted):
    reason = "CREATION_RATE_LIMITED"


class LibraryService:
    def __init__(self, uow: LibraryUnitOfWorkFactory, clock: Clock, cache: Cache,
                 credits: CreditsPort, writer: TextWriter, renders: RenderRequests,
                 text_jobs: TextJobs, audio: AudioUrls, *,
                 costs: Mapping[ContentType, int] = DEFAULT_COSTS,
                 creations_per_hour: int = 30, playback_ttl_seconds: int = 900,
                 default_voice: str = "") -> None:
        self._uow = uow
        self._clock = clock
        self._cache = cache
        self._credits = credits
        self._writer = writer
        self._renders = renders
        self._text_jobs = text_jobs
        self._audio = audio
        self._costs = dict(costs)
        self._per_hour = creations_per_hour
        self._playback_ttl = playback_ttl_seconds
        self._default_voice = default_voice

    # --- creation ---------------------------------------------------------------

    async def start_creation(self, user_id: uuid.UUID, request_id: str, brief: Brief,
                             conversation_id: uuid.UUID | None = None) -> ContentItem:
        """Reserve the cost and start creating; idempotent by `request_id`."""
        if not request_id:
            raise InvalidArgument("request_id is required", reason="REQUEST_ID_REQUIRED")
        existing = await self._by_request(request_id)
        if existing is not None:
            item = self._own(existing, user_id)
            if item.hold_id is not None or item.state is not ItemState.GENERATING_TEXT:
                return item
            # An earlier attempt inserted it but did not reserve (a transient
            # failure): carry on from the reserve.
            return await self._reserve_and_queue(item, user_id)
        now = self._clock.now()
        item = ContentItem(id=uuid7(), user_id=user_id, content_type=brief.content_type,
                           state=ItemState.GENERATING_TEXT, request_id=request_id,
                           cost=self._costs[brief.content_type], brief=brief, created_at=now,
                           updated_at=now, conversation_id=conversation_id,
                           voice=brief.voice or self._default_voice)
        async with self._uow() as uow:
            recent = await uow.items.count_created_since(user_id, now - timedelta(hours=1))
            if recent >= self._per_hour:
                raise CreationRateLimited(
                    f"at most {self._per_hour} creations an hour; try again later",
                    metadata={"limit": str(self._per_hour)})
            try:
                await uow.items.add(item)
                await uow.commit()
            except AlreadyExists:
                item = None  # type: ignore[assignment]
        if item is None:  # a concurrent retry of the same request inserted it
            found = await self._by_request(request_id)
            if found is None:
                raise FailedPrecondition("the creation is being started; retry",
                                         reason="CREATION_STARTING")
            item = self._own(found, user_id)
            if item.hold_id is not None:
                return item
        return await self._reserve_and_queue(item, user_id)

    async def _reserve_and_queue(self, item: ContentItem, user_id: uuid.UUID) -> ContentItem:
        try:
            hold_id = await self._credits.reserve(
                credits_request("reserve", item.id), user_id, item.cost,
                f"{item.content_type.label} contents/{item.id}")
        except FailedPrecondition:
            # Not enough credits: nothing is made, the item never existed.
            async with self._uow() as uow:
                await uow.items.delete(item.id)
                await uow.commit()
            raise
        async with self._uow() as uow:
            current = await uow.items.get_for_update(item.id)
            if current is None:
                raise NotFound("the creation was removed", reason="CONTENT_NOT_FOUND")
            current.hold_id = hold_id
            await uow.items.save(current)
            await uow.commit()
        await self._text_jobs.enqueue(item.id)
        return current

    async def write_text(self, content_id: uuid.UUID) -> None:
        """The text step (a job). Transient failures raise (the job retries);
        a text that cannot be written fails the creation."""
        item = await self._get(content_id)
        if item is None or item.state is not ItemState.GENERATING_TEXT:
            return
        if item.hold_id is None:
            return  # start_creation has not reserved yet; it queues the job after
        history = [i.title for i in await self._recent(item.user_id, 10)
                   if i.id != item.id and i.title]
        try:
            text = await self._writer.generate(item.user_id, f"library:text:{item.id}",
                                               item.brief, history)
        except DomainError as error:
            if error.reason == FailureReason.TEXT_GENERATION_FAILED:
                await self._fail(item.id, FailureReason.TEXT_GENERATION_FAILED, error.message)
                return
            raise
        async with self._uow() as uow:
            current = await uow.items.get_for_update(content_id)
            if current is None or current.state is not ItemState.GENERATING_TEXT:
                return
            current.title = text.title[:MAX_TITLE]
            current.text = text.script.text
            current.structure = text.structure
            current.script = text.script
            current.depth = text.depth
            current.model = text.model
            current.state = ItemState.RENDERING_AUDIO
            current.updated_at = self._clock.now()
            await uow.items.save(current)
            await uow.commit()
        await self._request_render(current)

    async def _request_render(self, item: ContentItem) -> None:
        assert item.script is not None
        pace = item.brief.pace or Pace.MEDIUM
        await self._renders.request(item.id, item.user_id, item.version, item.script,
                                    item.voice, pace.speech_rate)

    async def audio_rendered(self, event_id: uuid.UUID, content_id: uuid.UUID, version: int,
                             key: str, mime_type: str, duration_ms: int, size: int) -> None:
        """Audio is stored: spend the hold (once), then READY."""
        item = await self._get(content_id)
        if item is None or item.state is not ItemState.RENDERING_AUDIO or item.version != version:
            return
        assert item.hold_id is not None
        try:
            await self._credits.commit(credits_request("commit", item.id), item.user_id,
                                       item.hold_id)
        except FailedPrecondition as error:
            # The hold is gone (released by the sweep of expired holds): the
            # creation took too long to be charged; it fails, free.
            log.warning("could not spend the hold of %s: %s", item.id, error.reason)
            await self._fail(item.id, FailureReason.CREATION_TIMED_OUT,
                             "the creation took too long")
            return
        async with self._uow() as uow:
            if not await uow.processed.add(AUDIO_RENDERED_CONSUMER, event_id, self._clock.now()):
                return
            current = await uow.items.get_for_update(content_id)
            if current is None or current.state is not ItemState.RENDERING_AUDIO:
                await uow.commit()
                return
            current.state = ItemState.READY
            current.audio_key, current.audio_mime_type = key, mime_type
            current.audio_duration_ms, current.audio_bytes = duration_ms, size
            current.updated_at = now = self._clock.now()
            await uow.items.save(current)
            await uow.outbox.add(ContentReady(occurred_at=now, content_id=current.id,
                                              user_id=current.user_id,
                                              content_type=current.content_type))
            await uow.commit()
        await self._cache.delete(metadata_key(content_id))

    async def audio_failed(self, content_id: uuid.UUID, version: int, reason: str) -> None:
        item = await self._get(content_id)
        if item is None or item.state is not ItemState.RENDERING_AUDIO or item.version != version:
            return
        await self._fail(content_id, FailureReason.AUDIO_RENDERING_FAILED, reason)

    async def _fail(self, content_id: uuid.UUID, reason: FailureReason, message: str) -> None:
        """Release the hold (no charge), then FAILED with the reason."""
        item = await self._get(content_id)
        if item is None or not item.state.busy:
            return
        if item.hold_id is not None:
            await self._credits.release(credits_request("release", item.id), item.user_id,
                                        item.hold_id)
        async with self._uow() as uow:
            current = await uow.items.get_for_update(content_id)
            if current is None or not current.state.busy:
                return
            current.state = ItemState.FAILED
            current.failure_reason = reason.value
            current.failure_message = message[:500]
            current.updated_at = now = self._clock.now()
            await uow.items.save(current)
            await uow.outbox.add(ContentFailed(occurred_at=now, content_id=current.id,
                                               user_id=current.user_id, reason=reason.value))
            await uow.commit()

    async def resume_stale(self, *, idle: timedelta, deadline: timedelta,
                           batch: int = 100) -> int:
        """Re-queue steps idle for `idle` (their job was lost with a process);
        fail creations older than `deadline`. How many items were touched."""
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            stale = await uow.items.list_stale((ItemState.GENERATING_TEXT,
                                                ItemState.RENDERING_AUDIO), now - idle, batch)
        for item in stale:
            try:
                if now - item.created_at > deadline:
                    await self._fail(item.id, FailureReason.CREATION_TIMED_OUT,
                                     "the creation did not finish in time")
                elif item.state is ItemState.GENERATING_TEXT:
                    if item.hold_id is None:
                        continue  # its start was interrupted before the reserve
                    await self._text_jobs.enqueue(item.id)
                else:
                    await self._request_render(item)
            except Exception:
                # One item must not stop the sweep for all the others.
                log.warning("could not resume the creation %s", item.id, exc_info=True)
        return len(stale)

    # --- the person's library ---------------------------------------------------

    async def get(self, user_id: uuid.UUID, content_id: uuid.UUID) -> ContentItem:
        item = await self._get(content_id)
        if item is None or item.user_id != user_id:
            raise _not_found()
        return item

    async def list(self, user_id: uuid.UUID, content_type: ContentType | None,
                   page_size: int, before: uuid.UUID | None,
                   ) -> tuple[list[ContentItem], uuid.UUID | None]:
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        async with self._uow(read_only=True) as uow:
            items = await uow.items.list_for_user(user_id, content_type=content_type,
                                                  before=before, limit=size + 1)
        more = len(items) > size
        items = items[:size]
        return items, (items[-1].id if more and items else None)

    async def titles(self, user_id: uuid.UUID, limit: int) -> list[str]:
        return [i.title for i in await self._recent(user_id, limit) if i.title]

    async def update(self, user_id: uuid.UUID, content_id: uuid.UUID, *,
                     title: str | None, tags: list[str] | None) -> ContentItem:
        if title is not None and not title.strip():
            raise InvalidArgument("title must not be empty", reason="INVALID_TITLE",
                                  metadata={"field": "title"})
        async with self._uow() as uow:
            item = await uow.items.get_for_update(content_id)
            if item is None or item.user_id != user_id:
                raise _not_found()
            if title is not None:
                item.title = title.strip()[:MAX_TITLE]
            if tags is not None:
                item.tags = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
            item.updated_at = self._clock.now()
            await uow.items.save(item)
            await uow.commit()
        return item

    async def delete(self, user_id: uuid.UUID, content_id: uuid.UUID) -> None:
        """The item and its audio. Not while it is being created."""
        async with self._uow() as uow:
            item = await uow.items.get_for_update(content_id)
            if item is None or item.user_id != user_id:
                raise _not_found()
            if item.state.busy:
                raise ContentBusy("the item is still being created; delete it once it is "
                                  "ready or failed")
            await uow.items.delete(content_id)
            await uow.commit()
        await self._cache.delete(metadata_key(content_id))
        await self._audio.delete_prefix(f"audio/{user_id}/{content_id}/")

    async def playback(self, user_id: uuid.UUID, content_id: uuid.UUID,
                       ) -> tuple[str, datetime, str, int]:
        """(url, expire time, mime type, duration ms). Cache first (the seed's
        `ritual:{id}:metadata`, 1 h), the database on a miss; free."""
        key = metadata_key(content_id)
        cached = await self._cache.get(key)
        if cached is not None:
            meta = json.loads(cached)
        else:
            item = await self._get(content_id)
            if item is None:
                raise _not_found()
            meta = {"user": str(item.user_id), "state": item.state.value, "key": item.audio_key,
                    "mime": item.audio_mime_type, "ms": item.audio_duration_ms}
            if item.state is ItemState.READY:
                await self._cache.set(key, json.dumps(meta).encode(), METADATA_TTL_SECONDS)
        if meta["user"] != str(user_id):
            raise _not_found()
        if meta["state"] != ItemState.READY.value:
            raise AudioNotReady("the audio is not ready yet")
        url = await self._audio.signed_url(meta["key"], self._playback_ttl)
        expires = self._clock.now() + timedelta(seconds=self._playback_ttl)
        return url, expires, meta["mime"], int(meta["ms"])

    # --- helpers ------------------------------------------------------------------

    async def _get(self, content_id: uuid.UUID) -> ContentItem | None:
        async with self._uow(read_only=True) as uow:
            return await uow.items.get(content_id)

    async def _by_request(self, request_id: str) -> ContentItem | None:
        async with self._uow(read_only=True) as uow:
            return await uow.items.get_by_request(request_id)

    async def _recent(self, user_id: uuid.UUID, limit: int) -> list[ContentItem]:
        async with self._uow(read_only=True) as uow:
            return await uow.items.list_for_user(user_id, content_type=None, before=None,
                                                 limit=limit)

    @staticmethod
    def _own(item: ContentItem, user_id: uuid.UUID) -> ContentItem:
        if item.user_id != user_id:
            raise InvalidArgument("request_id is already used", reason="REQUEST_ID_REUSED")
        return item


def _not_found() -> NotFound:
    return NotFound("no such content", reason="CONTENT_NOT_FOUND")
