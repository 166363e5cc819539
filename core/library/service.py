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
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.library.access import require_access
from core.library.model import (
    AudioDetails,
    AudioFormat,
    AudioNotReady,
    ContentBusy,
    ContentFailed,
    ContentItem,
    ContentReady,
    FailureReason,
    ItemState,
    StoredRendition,
)
from core.shared.audio import Measurement
from core.shared.creation import Background, Brief, ContentType, Pace
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
        AudioImport,
        AudioUrls,
        CreditsPort,
        ImportedAudio,
        LibraryUnitOfWorkFactory,
        MarketAccess,
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
#: Credits a new version (another voice or bed) of a READY item costs.
DEFAULT_RERENDER_COST = 1
#: The bed a type gets when neither the creation nor the person names one.
DEFAULT_BACKGROUNDS: Mapping[ContentType, Background] = {
    ContentType.AFFIRMATION: Background.NONE,
    ContentType.GUIDED_MEDITATION: Background.RAIN,
    ContentType.RITUAL: Background.DRONE}
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_TITLE = 120
METADATA_TTL_SECONDS = 3600
AUDIO_RENDERED_CONSUMER = "library.audio-rendered"


#: Credits' request ids are UUIDs: each step's id is derived from the item, so
#: a retried step repeats its request exactly.
_REQUESTS = uuid.UUID("8f0c6a52-3b7e-4c1d-9a5e-2d4f6b8a0c13")


def credits_request(step: str, content_id: uuid.UUID, version: int = 1) -> str:
    """Version 1 is the creation; each later version (a re-render) has its own."""
    suffix = "" if version == 1 else f":v{version}"
    return str(uuid.uuid5(_REQUESTS, f"library:{step}:{content_id}{suffix}"))


def metadata_key(content_id: uuid.UUID) -> str:
    """The seed's cache key of an item's playback metadata."""
    return f"ritual:{content_id}:metadata"


class Unchanged:
    """Marks an argument left as it is (where None means "clear")."""


UNCHANGED = Unchanged()


@dataclass(frozen=True)
class Playback:
    url: str
    expires_at: datetime
    mime_type: str
    duration_ms: int
    format: AudioFormat
    #: The first part of an item still rendering.
    preview: bool


@dataclass(frozen=True)
class Download:
    url: str
    expires_at: datetime
    filename: str
    size: int


class CreationRateLimited(ResourceExhausted):
    reason = "CREATION_RATE_LIMITED"


class LibraryService:
    def __init__(self, uow: LibraryUnitOfWorkFactory, clock: Clock, cache: Cache,
                 credits: CreditsPort, writer: TextWriter, renders: RenderRequests,
                 text_jobs: TextJobs, audio: AudioUrls, *,
                 costs: Mapping[ContentType, int] = DEFAULT_COSTS,
                 creations_per_hour: int = 30, playback_ttl_seconds: int = 900,
                 default_voice: str = "", rerender_cost: int = DEFAULT_RERENDER_COST,
                 metadata_ttl_seconds: int = METADATA_TTL_SECONDS,
                 access: MarketAccess | None = None,
                 importer: AudioImport | None = None) -> None:
        self._uow = uow
        self._access = access
        self._importer = importer
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
        self._rerender_cost = rerender_cost
        self._metadata_ttl = metadata_ttl_seconds

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
        async with self._uow(read_only=True) as uow:
            prefs = await uow.preferences.get(user_id)
        background = (brief.background.value if brief.background
                      else (prefs.background if prefs and prefs.background
                            else DEFAULT_BACKGROUNDS[brief.content_type].value))
        item = ContentItem(id=uuid7(), user_id=user_id, content_type=brief.content_type,
                           state=ItemState.GENERATING_TEXT, request_id=request_id,
                           cost=self._costs[brief.content_type], brief=brief, created_at=now,
                           updated_at=now, conversation_id=conversation_id,
                           voice=brief.voice or (prefs.voice if prefs else "")
                           or self._default_voice, background=background)
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
                                               await self._with_moods(item), history)
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

    async def _with_moods(self, item: ContentItem) -> Brief:
        """The brief, its situation told how the person has been feeling after
        their latest practices (their mood check-ins), so the next piece meets
        them where they are."""
        async with self._uow(read_only=True) as uow:
            latest = await uow.practices.latest_moods(item.user_id, 3)
        felt = [p.mood_after or p.mood_before for p in latest]
        moods = [m for m in felt if m is not None]
        if not moods:
            return item.brief
        words = ", ".join(dict.fromkeys(m.words.strip() for m in moods if m.words.strip()))
        average = sum(m.score for m in moods) / len(moods)
        feeling = ("low" if average < 2.5 else "steady" if average < 3.5 else "good")
        note = f"lately they have felt {feeling}" + (f" ({words})" if words else "")
        situation = f"{item.brief.situation}; {note}" if item.brief.situation else note
        return replace(item.brief, situation=situation[:500])

    async def _request_render(self, item: ContentItem) -> None:
        assert item.script is not None
        pace = item.brief.pace or Pace.MEDIUM
        await self._renders.request(item.id, item.user_id, item.version, item.script,
                                    item.voice, pace.speech_rate,
                                    item.background or Background.NONE.value)

    async def audio_rendered(self, event_id: uuid.UUID, content_id: uuid.UUID, version: int,
                             renditions: list[StoredRendition], duration_ms: int,
                             details: AudioDetails) -> None:
        """Audio is stored: spend the hold (once), then the new version plays
        (READY); the preview goes, and the versions before the one replaced."""
        item = await self._get(content_id)
        if item is None or item.state is not ItemState.RENDERING_AUDIO or item.version != version:
            return
        assert item.hold_id is not None
        try:
            await self._credits.commit(credits_request("commit", item.id, version),
                                       item.user_id, item.hold_id)
        except FailedPrecondition as error:
            # The hold is gone (released by the sweep of expired holds): the
            # creation took too long to be charged; it fails, free.
            log.warning("could not spend the hold of %s: %s", item.id, error.reason)
            await self._fail(item.id, FailureReason.CREATION_TIMED_OUT,
                             "the creation took too long")
            return
        by_format = {r.format: r for r in renditions}
        mp3 = by_format.get(AudioFormat.MP3.value) or renditions[0]
        async with self._uow() as uow:
            if not await uow.processed.add(AUDIO_RENDERED_CONSUMER, event_id, self._clock.now()):
                return
            current = await uow.items.get_for_update(content_id)
            if current is None or current.state is not ItemState.RENDERING_AUDIO:
                await uow.commit()
                return
            replaced = current.audio_version
            current.state = ItemState.READY
            current.audio_key, current.audio_mime_type = mp3.key, mp3.mime_type
            current.audio_duration_ms, current.audio_bytes = duration_ms, mp3.size
            current.audio_version, current.renditions = version, by_format
            current.preview_key, current.preview_ms = "", 0
            current.render_failure_reason = ""
            current.updated_at = now = self._clock.now()
            await uow.items.save(current)
            await uow.details.put(details)
            await uow.outbox.add(ContentReady(occurred_at=now, content_id=current.id,
                                              user_id=current.user_id,
                                              content_type=current.content_type))
            await uow.commit()
        await self._cache.delete(metadata_key(content_id))
        prefix = f"audio/{item.user_id}/{content_id}/"
        # The version just replaced stays until the next one: a playback URL
        # or a cached copy of the metadata (in another worker's cache, up to
        # its TTL) may still point at it. Those before it go.
        for old in range(1, replaced):
            await self._audio.delete_prefix(f"{prefix}{old}.")
        await self._audio.delete_prefix(f"{prefix}{version}.preview")

    async def preview_ready(self, content_id: uuid.UUID, version: int, key: str,
                            duration_ms: int) -> None:
        """The first part of the version being rendered can be played."""
        async with self._uow() as uow:
            item = await uow.items.get_for_update(content_id)
            if (item is None or item.state is not ItemState.RENDERING_AUDIO
                    or item.version != version):
                return
            item.preview_key, item.preview_ms = key, duration_ms
            await uow.items.save(item)
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
            await self._credits.release(credits_request("release", item.id, item.version),
                                        item.user_id, item.hold_id)
        async with self._uow() as uow:
            current = await uow.items.get_for_update(content_id)
            if current is None or not current.state.busy:
                return
            if current.playable:
                # A new version failed: the one that played before still does.
                current.state = ItemState.READY
                current.render_failure_reason = reason.value
                current.preview_key, current.preview_ms = "", 0
                current.updated_at = self._clock.now()
                await uow.items.save(current)
                await uow.commit()
                await self._cache.delete(metadata_key(content_id))
                return
            current.state = ItemState.FAILED
            current.preview_key, current.preview_ms = "", 0
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
                if now - (item.render_started_at or item.created_at) > deadline:
                    await self._fail(item.id, FailureReason.CREATION_TIMED_OUT,
                                     "the creation did not finish in time")
                elif item.state is ItemState.RENDERING_AUDIO and item.hold_id is None:
                    # A re-render interrupted before its reserve: undo it.
                    await self._fail(item.id, FailureReason.AUDIO_RENDERING_FAILED,
                                     "the new version was interrupted")
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
                   page_size: int, before: uuid.UUID | None, *, tag: str | None = None,
                   folder_id: uuid.UUID | None = None,
                   ) -> tuple[list[ContentItem], uuid.UUID | None]:
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        async with self._uow(read_only=True) as uow:
            if folder_id is not None:
                folder = await uow.folders.get(folder_id)
                if folder is None or folder.user_id != user_id:
                    raise NotFound("no such folder", reason="FOLDER_NOT_FOUND")
            items = await uow.items.list_for_user(user_id, content_type=content_type,
                                                  before=before, limit=size + 1, tag=tag,
                                                  folder_id=folder_id)
        more = len(items) > size
        items = items[:size]
        return items, (items[-1].id if more and items else None)

    async def titles(self, user_id: uuid.UUID, limit: int) -> list[str]:
        return [i.title for i in await self._recent(user_id, limit) if i.title]

    async def update(self, user_id: uuid.UUID, content_id: uuid.UUID, *,
                     title: str | None, tags: list[str] | None,
                     folder_id: uuid.UUID | Unchanged | None = UNCHANGED) -> ContentItem:
        """`folder_id`: a folder of the person's to move the item into, None to
        take it out of any, UNCHANGED to leave it."""
        if title is not None and not title.strip():
            raise InvalidArgument("title must not be empty", reason="INVALID_TITLE",
                                  metadata={"field": "title"})
        async with self._uow() as uow:
            item = await uow.items.get_for_update(content_id)
            if item is None or item.user_id != user_id:
                raise _not_found()
            if not isinstance(folder_id, Unchanged):
                if folder_id is not None:
                    folder = await uow.folders.get(folder_id)
                    if folder is None or folder.user_id != user_id:
                        raise NotFound("no such folder", reason="FOLDER_NOT_FOUND")
                item.folder_id = folder_id
            if title is not None:
                item.title = title.strip()[:MAX_TITLE]
            if tags is not None:
                item.tags = normalise_tags(tags)
            item.updated_at = self._clock.now()
            await uow.items.save(item)
            await uow.commit()
        await self._cache.delete(metadata_key(content_id))  # the title names downloads
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

    async def _playback_meta(self, user_id: uuid.UUID, content_id: uuid.UUID,
                             ) -> dict[str, Any]:
        """What playback needs of an item: cache first (the seed's
        `ritual:{id}:metadata`, 1 h, for settled items), the database on a miss."""
        key = metadata_key(content_id)
        cached = await self._cache.get(key)
        if cached is not None:
            meta: dict[str, Any] = json.loads(cached)
        else:
            item = await self._get(content_id)
            if item is None:
                raise _not_found()
            renditions = ((f, item.rendition(f)) for f in AudioFormat)
            meta = {"user": str(item.user_id), "state": item.state.value,
                    "ms": item.audio_duration_ms, "title": item.title,
                    "r": {f.value: [r.key, r.mime_type, r.size] for f, r in renditions if r},
                    "preview": item.preview_key, "pms": item.preview_ms}
            if item.state is ItemState.READY and self._metadata_ttl > 0:
                await self._cache.set(key, json.dumps(meta).encode(), self._metadata_ttl)
        if meta["user"] != str(user_id):
            await self._check_access(user_id, content_id)
        return meta

    async def _check_access(self, user_id: uuid.UUID, content_id: uuid.UUID) -> None:
        await require_access(self._access, user_id, content_id, _not_found())

    async def playback(self, user_id: uuid.UUID, content_id: uuid.UUID,
                       fmt: AudioFormat = AudioFormat.MP3) -> Playback:
        """A signed URL of the audio in `fmt`; while a first render runs, of its
        first part (MP3) once that exists. Free."""
        meta = await self._playback_meta(user_id, content_id)
        expires = self._clock.now() + timedelta(seconds=self._playback_ttl)
        rendition = meta["r"].get(fmt.value)
        if rendition is None and meta["r"] and fmt is not AudioFormat.MP3:
            raise FailedPrecondition(f"this item has no {fmt.value} rendition; render it "
                                     "again to get one", reason="FORMAT_NOT_AVAILABLE")
        if rendition is not None:
            url = await self._audio.signed_url(rendition[0], self._playback_ttl)
            return Playback(url, expires, rendition[1], int(meta["ms"]), fmt, preview=False)
        if meta["preview"]:
            url = await self._audio.signed_url(meta["preview"], self._playback_ttl)
            return Playback(url, expires, "audio/mpeg", int(meta["pms"]), AudioFormat.MP3,
                            preview=True)
        raise AudioNotReady("the audio is not ready yet")

    async def download(self, user_id: uuid.UUID, content_id: uuid.UUID,
                       fmt: AudioFormat = AudioFormat.MP3) -> Download:
        """A signed URL answering with the file as an attachment."""
        meta = await self._playback_meta(user_id, content_id)
        rendition = meta["r"].get(fmt.value)
        if rendition is None:
            if meta["r"]:
                raise FailedPrecondition(f"this item has no {fmt.value} rendition",
                                         reason="FORMAT_NOT_AVAILABLE")
            raise AudioNotReady("the audio is not ready yet")
        filename = f"{file_stem(meta['title'])}.{fmt.extension}"
        url = await self._audio.signed_url(rendition[0], self._playback_ttl,
                                           download_name=filename)
        expires = self._clock.now() + timedelta(seconds=self._playback_ttl)
        return Download(url, expires, filename, int(rendition[2]))

    async def import_audio(self, user_id: uuid.UUID, request_id: str, object_key: str,
                           title: str, content_type: ContentType) -> ContentItem:
        """An item of the person's made from a recording they uploaded:
        measured, refused when it is not fit to play (not audio, too short or
        long, too quiet or loud), encoded as every rendition, READY at once
        and free. Idempotent by `request_id`."""
        existing = await self._by_request(request_id)
        if existing is not None:
            if existing.user_id != user_id:
                raise _not_found()
            return existing
        if self._importer is None:
            raise FailedPrecondition("uploads are not accepted here", reason="UPLOADS_OFF")
        data = await self._audio.get(object_key)
        if not data:
            raise FailedPrecondition("no file was uploaded yet", reason="UPLOAD_MISSING")
        analysis = await self._importer.analyze(data, IMPORT_MAX_SECONDS)
        check_import(analysis)
        assert analysis is not None
        renditions = await self._importer.encode(data)
        now = self._clock.now()
        content_id = uuid7()
        stored: dict[str, StoredRendition] = {}
        for rendition in renditions:
            key = f"audio/{user_id}/{content_id}/1.{rendition.extension}"
            await self._audio.put(key, rendition.data, rendition.mime_type)
            stored[rendition.format] = StoredRendition(rendition.format, key,
                                                       rendition.mime_type, len(rendition.data))
        mp3 = stored.get(AudioFormat.MP3.value) or next(iter(stored.values()))
        item = ContentItem(
            id=content_id, user_id=user_id, content_type=content_type, state=ItemState.READY,
            request_id=request_id, cost=0, brief=Brief(content_type=content_type),
            created_at=now, updated_at=now, title=title.strip()[:120] or "Recording",
            audio_key=mp3.key, audio_mime_type=mp3.mime_type,
            audio_duration_ms=analysis.duration_ms, audio_bytes=mp3.size, audio_version=1,
            renditions=stored, voice="uploaded")
        measurement = Measurement(analysis.duration_ms, analysis.integrated_lufs,
                                  analysis.sample_peak_dbfs, analysis.true_peak_dbtp)
        details = AudioDetails(content_id=content_id, version=1,
                               measurements={f: measurement for f in stored},
                               silences=analysis.silences, waveform=analysis.waveform,
                               captions=(), voice="uploaded")
        async with self._uow() as uow:
            try:
                await uow.items.add(item)
            except AlreadyExists:
                earlier = await uow.items.get_by_request(request_id)
                if earlier is None or earlier.user_id != user_id:
                    raise
                return earlier
            await uow.details.put(details)
            await uow.outbox.add(ContentReady(occurred_at=now, content_id=content_id,
                                              user_id=user_id, content_type=content_type))
            await uow.commit()
        await self._audio.delete_prefix(object_key)
        return item

    async def audio_url(self, key: str, ttl: timedelta) -> str:
        return await self._audio.signed_url(key, int(ttl.total_seconds()))

    async def details(self, user_id: uuid.UUID, content_id: uuid.UUID,
                      ) -> tuple[ContentItem, AudioDetails]:
        """The playable version's report and captions."""
        async with self._uow(read_only=True) as uow:
            item = await uow.items.get(content_id)
            if item is None:
                raise _not_found()
            found = await uow.details.get(content_id)
        if item.user_id != user_id:
            await self._check_access(user_id, content_id)
        if found is None or not item.playable:
            raise AudioNotReady("the audio is not ready yet")
        return item, found

    async def rerender(self, user_id: uuid.UUID, content_id: uuid.UUID, request_id: str, *,
                       voice: str = "", background: Background | None = None) -> ContentItem:
        """A new version of a READY item with another voice or bed; the
        current one plays until the new one replaces it. Costs
        `rerender_cost` credits, spent only if it succeeds."""
        if not request_id:
            raise InvalidArgument("request_id is required", reason="REQUEST_ID_REQUIRED")
        async with self._uow() as uow:
            item = await uow.items.get_for_update(content_id)
            if item is None or item.user_id != user_id:
                raise _not_found()
            if item.render_request_id == request_id:
                return item  # a retry
            if item.state.busy:
                raise ContentBusy("a version of this item is being rendered")
            if item.state is not ItemState.READY or item.script is None:
                raise AudioNotReady("only a ready item can be rendered again")
            previous = (item.voice, item.background)
            item.version += 1
            item.state = ItemState.RENDERING_AUDIO
            item.voice = voice or item.voice
            item.background = background.value if background else item.background
            item.render_request_id, item.render_failure_reason = request_id, ""
            item.hold_id = None
            item.updated_at = item.render_started_at = self._clock.now()
            await uow.items.save(item)
            await uow.commit()
        try:
            hold_id = await self._credits.reserve(
                credits_request("reserve", item.id, item.version), user_id,
                self._rerender_cost, f"new version {item.version} of contents/{item.id}")
        except FailedPrecondition:
            await self._undo_rerender(item, *previous)
            raise
        async with self._uow() as uow:
            current = await uow.items.get_for_update(content_id)
            if current is None or current.version != item.version:
                raise NotFound("the item was removed", reason="CONTENT_NOT_FOUND")
            current.hold_id = hold_id
            await uow.items.save(current)
            await uow.commit()
        await self._request_render(current)
        return current

    async def _undo_rerender(self, item: ContentItem, voice: str, background: str) -> None:
        """Not enough credits: the item is as it was (but for the version
        number, which moves on: a version is never reused)."""
        async with self._uow() as uow:
            current = await uow.items.get_for_update(item.id)
            if current is not None and current.version == item.version:
                current.state = ItemState.READY
                current.voice, current.background = voice, background
                current.render_request_id = ""
                current.render_failure_reason = "INSUFFICIENT_CREDITS"
                await uow.items.save(current)
            await uow.commit()

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


def normalise_tags(tags: list[str]) -> list[str]:
    """Trimmed, inner whitespace collapsed, duplicates dropped (case-blind,
    first spelling kept)."""
    seen: set[str] = set()
    kept = []
    for tag in tags:
        clean = " ".join(tag.split())
        if clean and clean.casefold() not in seen:
            seen.add(clean.casefold())
            kept.append(clean)
    return kept


def file_stem(title: str) -> str:
    """A safe file name from a title: letters, digits and dashes."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:60]
    return stem or "waqup-audio"


def _not_found() -> NotFound:
    return NotFound("no such content", reason="CONTENT_NOT_FOUND")


#: What an uploaded recording may be.
IMPORT_MIN_SECONDS = 10
IMPORT_MAX_SECONDS = 30 * 60
IMPORT_QUIETEST_LUFS = -30.0
IMPORT_LOUDEST_LUFS = -8.0
IMPORT_MAX_TRUE_PEAK_DBTP = 0.0


def check_import(analysis: ImportedAudio | None) -> None:
    """INVALID_ARGUMENT with the reason a recording is not fit to play."""
    if analysis is None:
        raise InvalidArgument("the file is not audio that can be played", reason="NOT_AUDIO")
    seconds = analysis.duration_ms / 1000
    if seconds < IMPORT_MIN_SECONDS:
        raise InvalidArgument(f"a recording lasts at least {IMPORT_MIN_SECONDS} s",
                              reason="AUDIO_TOO_SHORT")
    if seconds > IMPORT_MAX_SECONDS:
        raise InvalidArgument(f"a recording lasts at most {IMPORT_MAX_SECONDS // 60} minutes",
                              reason="AUDIO_TOO_LONG")
    if analysis.integrated_lufs < IMPORT_QUIETEST_LUFS:
        raise InvalidArgument(
            f"the recording is too quiet ({analysis.integrated_lufs:.1f} LUFS; at least "
            f"{IMPORT_QUIETEST_LUFS:g})", reason="AUDIO_TOO_QUIET")
    if (analysis.integrated_lufs > IMPORT_LOUDEST_LUFS
            or analysis.true_peak_dbtp > IMPORT_MAX_TRUE_PEAK_DBTP):
        raise InvalidArgument(
            f"the recording is too loud or clips ({analysis.integrated_lufs:.1f} LUFS, true "
            f"peak {analysis.true_peak_dbtp:.1f} dBTP)", reason="AUDIO_TOO_LOUD")
