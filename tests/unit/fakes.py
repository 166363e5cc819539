"""Test doubles for core unit tests: a clock the test moves, a cheap hasher, an
event codec that keeps what it encoded, and the library's world (its ports
faked: credits with real holds, a text writer, render requests, text jobs,
signed URLs) on the memory unit of work, with helpers that walk an item
through its creation."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.memory.cache import MemoryCache
from adapters.memory.library import MemoryLibraryUnitOfWork, memory_library_uow
from adapters.memory.store import MemoryStore
from core.library.model import (
    AudioDetails,
    ContentItem,
    ItemState,
    StoredRendition,
)
from core.library.service import LibraryService
from core.shared.audio import CaptionCue, Measurement, Silence
from core.shared.creation import (
    Brief,
    ContentType,
    Depth,
    GeneratedText,
    Script,
    Segment,
)
from core.shared.errors import FailedPrecondition
from core.shared.events import DomainEvent
from core.shared.ids import uuid7


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


class PlainHasher:
    """Not a hash at all: keeps core tests fast. The real one has its own tests."""

    def __init__(self) -> None:
        self.rehash = False

    async def hash(self, password: str) -> str:
        return f"plain${password[::-1]}"

    async def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == f"plain${password[::-1]}"

    def needs_rehash(self, password_hash: str) -> bool:
        return self.rehash


class JsonCodec:
    """EventCodec: each field as a string in a JSON object. Keeps every event
    it encoded (`encoded`, by event id) so tests can read them whole."""

    def __init__(self) -> None:
        self.encoded: dict[uuid.UUID, DomainEvent] = {}

    def encode(self, event: DomainEvent) -> tuple[str, bytes]:
        self.encoded[event.event_id] = event
        body = {f.name: str(getattr(event, f.name)) for f in dataclasses.fields(event)}
        return event.topic, json.dumps(body).encode()

    def decode(self, topic: str, payload: bytes, event_id: uuid.UUID) -> DomainEvent:
        raise NotImplementedError


# --- the library's ports -------------------------------------------------------------

USER = uuid.UUID("0190a000-0000-7000-8000-000000000001")
OTHER = uuid.UUID("0190a000-0000-7000-8000-000000000002")
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PLAYBACK_TTL = 900
A, M, R = ContentType.AFFIRMATION, ContentType.GUIDED_MEDITATION, ContentType.RITUAL


@dataclass
class FakeHold:
    id: uuid.UUID
    user_id: uuid.UUID
    amount: int
    state: str = "active"


class FakeCredits:
    """CreditsPort with a real balance and holds, idempotent by (method,
    request id) like the credits context: a repeated request returns the first
    answer and changes nothing. Yields to the loop so that concurrent starts
    interleave."""

    def __init__(self) -> None:
        self.balances: dict[uuid.UUID, int] = {}
        self.holds: dict[uuid.UUID, FakeHold] = {}
        self.spent: list[tuple[uuid.UUID, int, str]] = []
        self.calls: list[tuple[str, str]] = []
        self.answers: dict[tuple[str, str], Any] = {}
        #: Raised by the next reserve (then cleared): a transient failure.
        self.reserve_error: Exception | None = None

    def grant(self, user: uuid.UUID, amount: int) -> None:
        self.balances[user] = self.balances.get(user, 0) + amount

    def held(self, user: uuid.UUID) -> int:
        return sum(h.amount for h in self.holds.values()
                   if h.user_id == user and h.state == "active")

    def available(self, user: uuid.UUID) -> int:
        return self.balances.get(user, 0) - self.held(user)

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.calls if m == method)

    def expire(self, hold_id: uuid.UUID) -> None:
        """The sweep of expired holds releases one (outside the library)."""
        self.holds[hold_id].state = "released"

    async def reserve(self, request_id: str, user_id: uuid.UUID, amount: int,
                      reason: str) -> uuid.UUID:
        self.calls.append(("reserve", request_id))
        await asyncio.sleep(0)
        if self.reserve_error is not None:
            error, self.reserve_error = self.reserve_error, None
            raise error
        if ("reserve", request_id) in self.answers:
            return self.answers["reserve", request_id]
        if amount > self.available(user_id):
            raise FailedPrecondition("not enough credits", reason="INSUFFICIENT_CREDITS")
        hold = FakeHold(uuid7(), user_id, amount)
        self.holds[hold.id] = hold
        self.answers["reserve", request_id] = hold.id
        return hold.id

    async def commit(self, request_id: str, user_id: uuid.UUID, hold_id: uuid.UUID) -> None:
        self.calls.append(("commit", request_id))
        await asyncio.sleep(0)
        if ("commit", request_id) in self.answers:
            return
        hold = self.holds[hold_id]
        assert hold.user_id == user_id
        if hold.state != "active":
            raise FailedPrecondition(f"the reservation is {hold.state}",
                                     reason="RESERVATION_NOT_ACTIVE")
        hold.state = "committed"
        self.balances[user_id] -= hold.amount
        self.spent.append((user_id, hold.amount, request_id))
        self.answers["commit", request_id] = None

    async def release(self, request_id: str, user_id: uuid.UUID, hold_id: uuid.UUID) -> None:
        self.calls.append(("release", request_id))
        await asyncio.sleep(0)
        hold = self.holds[hold_id]
        assert hold.user_id == user_id
        if hold.state == "committed":
            raise FailedPrecondition("the reservation is committed",
                                     reason="RESERVATION_NOT_ACTIVE")
        hold.state = "released"


SCRIPT = Script((Segment("I am calm.", 1.5), Segment("I breathe slowly.", 0.0)),
                target_seconds=60.0)


class FakeWriter:
    """TextWriter: a fixed piece per brief, or `error` raised."""

    def __init__(self) -> None:
        self.calls: list[tuple[uuid.UUID, str, Brief, list[str]]] = []
        self.error: Exception | None = None

    async def generate(self, user_id: uuid.UUID, request_id: str, brief: Brief,
                       history: list[str]) -> GeneratedText:
        self.calls.append((user_id, request_id, brief, list(history)))
        if self.error is not None:
            raise self.error
        return GeneratedText(title=f"Calm: {brief.intent}", depth=Depth.MEDIUM,
                             structure={"statements": ["I am calm.", "I breathe slowly."]},
                             script=SCRIPT, model="fake-writer")


class FakeRenders:
    """RenderRequests: (content, user, version, script, voice, rate, background)."""

    def __init__(self) -> None:
        self.requests: list[tuple[uuid.UUID, uuid.UUID, int, Script, str, float, str]] = []

    async def request(self, content_id: uuid.UUID, user_id: uuid.UUID, version: int,
                      script: Script, voice: str, rate: float, background: str) -> None:
        self.requests.append((content_id, user_id, version, script, voice, rate, background))


class FakeTextJobs:
    def __init__(self) -> None:
        self.queued: list[uuid.UUID] = []

    async def enqueue(self, content_id: uuid.UUID) -> None:
        self.queued.append(content_id)


class FakeAudioUrls:
    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.objects: dict[str, bytes] = {}

    async def signed_url(self, key: str, expires_in_seconds: int,
                         download_name: str | None = None) -> str:
        url = f"https://media.test/{key}?ttl={expires_in_seconds}"
        return f"{url}&download={download_name}" if download_name else url

    async def delete_prefix(self, prefix: str) -> int:
        self.deleted.append(prefix)
        for key in [k for k in self.objects if k.startswith(prefix)]:
            del self.objects[key]
        return 1

    async def get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self.objects[key] = data


class YieldingUow:
    """A memory unit of work that yields to the loop on entry, as a database
    round trip would, so that concurrent calls interleave between steps."""

    def __init__(self, inner: MemoryLibraryUnitOfWork) -> None:
        self._inner = inner

    async def __aenter__(self) -> MemoryLibraryUnitOfWork:
        await asyncio.sleep(0)
        return await self._inner.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)


class CountingUow:
    """The memory unit of work, counting how many were opened (store reads)."""

    def __init__(self, store: MemoryStore, codec: JsonCodec | None = None) -> None:
        self.codec = codec or JsonCodec()
        self._inner = memory_library_uow(store, self.codec)
        self.opened = 0

    def __call__(self, *, read_only: bool = False) -> Any:
        self.opened += 1
        return YieldingUow(self._inner(read_only=read_only))


@dataclass
class World:
    """LibraryService on the fakes and the memory store."""

    store: MemoryStore = field(default_factory=MemoryStore)
    clock: FakeClock = field(default_factory=lambda: FakeClock(T0))
    cache: MemoryCache = field(default_factory=MemoryCache)
    credits: FakeCredits = field(default_factory=FakeCredits)
    writer: FakeWriter = field(default_factory=FakeWriter)
    renders: FakeRenders = field(default_factory=FakeRenders)
    text_jobs: FakeTextJobs = field(default_factory=FakeTextJobs)
    audio: FakeAudioUrls = field(default_factory=FakeAudioUrls)
    uow: CountingUow = field(init=False)
    service: LibraryService = field(init=False)

    def build(self, **options: Any) -> World:
        self.uow = CountingUow(self.store)
        options.setdefault("playback_ttl_seconds", PLAYBACK_TTL)
        options.setdefault("default_voice", "en_US-default")
        self.service = LibraryService(self.uow, self.clock, self.cache, self.credits,
                                      self.writer, self.renders, self.text_jobs, self.audio,
                                      **options)
        return self

    async def item(self, content_id: uuid.UUID) -> ContentItem | None:
        async with self.uow(read_only=True) as uow:
            return await uow.items.get(content_id)

    def events(self, topic: str) -> list[dict[str, str]]:
        return [json.loads(r.payload) for r in self.store.tables.outbox.values()
                if r.topic == topic]


def library_world(**options: Any) -> World:
    """A world whose USER and OTHER have 5 credits each."""
    world = World().build(**options)
    world.credits.grant(USER, 5)
    world.credits.grant(OTHER, 5)
    return world


def brief(content_type: ContentType = A, **changes: Any) -> Brief:
    return Brief(content_type, intent="confidence before an interview", **changes)


async def start(w: World, request_id: str | None = None, user: uuid.UUID = USER,
                content_type: ContentType = A, **changes: Any) -> ContentItem:
    return await w.service.start_creation(user, request_id or f"conversation:{uuid7()}",
                                          brief(content_type, **changes))


async def rendering(w: World, **kw: Any) -> ContentItem:
    """An item whose text is written and whose render was requested."""
    item = await start(w, **kw)
    await w.service.write_text(item.id)
    found = await w.item(item.id)
    assert found is not None and found.state is ItemState.RENDERING_AUDIO
    return found


#: What every fake render measures (61.25 s; its MP3 490 000 bytes, its Opus 300 000).
DURATION_MS = 61_250
MP3_BYTES, OPUS_BYTES = 490_000, 300_000


def renditions(item: ContentItem, version: int = 1,
               formats: tuple[str, ...] = ("mp3", "ogg_opus")) -> list[StoredRendition]:
    base = f"audio/{item.user_id}/{item.id}/{version}"
    known = {"mp3": StoredRendition("mp3", f"{base}.mp3", "audio/mpeg", MP3_BYTES),
             "ogg_opus": StoredRendition("ogg_opus", f"{base}.opus", "audio/ogg", OPUS_BYTES)}
    return [known[f] for f in formats]


def details(item: ContentItem, version: int = 1) -> AudioDetails:
    measured = Measurement(DURATION_MS, -16.1, -2.0, -1.6)
    return AudioDetails(content_id=item.id, version=version,
                        measurements={"mp3": measured, "ogg_opus": measured},
                        silences=(Silence(0, 3_000), Silence(58_000, DURATION_MS)),
                        waveform=(0.0, 0.4, 0.8, 0.1),
                        captions=(CaptionCue(3_000, 4_200, "I am calm."),),
                        voice=item.voice, background=item.background)


async def rendered(w: World, item: ContentItem, event: uuid.UUID | None = None,
                   version: int = 1, formats: tuple[str, ...] = ("mp3", "ogg_opus")) -> None:
    """Audio announces the render of `version` of the item."""
    await w.service.audio_rendered(event or uuid7(), item.id, version,
                                   renditions(item, version, formats), DURATION_MS,
                                   details(item, version))


async def ready(w: World, **kw: Any) -> ContentItem:
    item = await rendering(w, **kw)
    await rendered(w, item)
    found = await w.item(item.id)
    assert found is not None and found.state is ItemState.READY
    return found
