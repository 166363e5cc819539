"""The library core (LibraryService) on in-memory fakes of its ports: the
creation saga (reserve, write the text, render, spend once or release), its
idempotence under retried jobs and redelivered events, the sweep of stale
creations, and the person's library (ownership, edits, deletion, playback
through the cache, the rate limit)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.memory.cache import MemoryCache
from adapters.memory.library import MemoryLibraryUnitOfWork, memory_library_uow
from adapters.memory.store import MemoryStore
from core.library.model import ContentFailed, ContentItem, ContentReady, ItemState
from core.library.service import (
    MAX_TITLE,
    LibraryService,
    credits_request,
    metadata_key,
)
from core.shared.creation import (
    Brief,
    ContentType,
    Depth,
    GeneratedText,
    Pace,
    Script,
    Segment,
)
from core.shared.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from core.shared.events import DomainEvent
from core.shared.ids import uuid7
from tests.unit.fakes import FakeClock

A, M, R = ContentType.AFFIRMATION, ContentType.GUIDED_MEDITATION, ContentType.RITUAL
USER = uuid.UUID("0190a000-0000-7000-8000-000000000001")
OTHER = uuid.UUID("0190a000-0000-7000-8000-000000000002")
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PLAYBACK_TTL = 900


# --- fakes of the ports -----------------------------------------------------------------


class JsonCodec:
    def encode(self, event: DomainEvent) -> tuple[str, bytes]:
        body = {f.name: str(getattr(event, f.name)) for f in dataclasses.fields(event)}
        return event.topic, json.dumps(body).encode()

    def decode(self, topic: str, payload: bytes, event_id: uuid.UUID) -> DomainEvent:
        raise NotImplementedError


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
    def __init__(self) -> None:
        self.requests: list[tuple[uuid.UUID, uuid.UUID, int, Script, str, float]] = []

    async def request(self, content_id: uuid.UUID, user_id: uuid.UUID, version: int,
                      script: Script, voice: str, rate: float) -> None:
        self.requests.append((content_id, user_id, version, script, voice, rate))


class FakeTextJobs:
    def __init__(self) -> None:
        self.queued: list[uuid.UUID] = []

    async def enqueue(self, content_id: uuid.UUID) -> None:
        self.queued.append(content_id)


class FakeAudioUrls:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    async def signed_url(self, key: str, expires_in_seconds: int) -> str:
        return f"https://media.test/{key}?ttl={expires_in_seconds}"

    async def delete_prefix(self, prefix: str) -> int:
        self.deleted.append(prefix)
        return 1


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

    def __init__(self, store: MemoryStore) -> None:
        self._inner = memory_library_uow(store, JsonCodec())
        self.opened = 0

    def __call__(self, *, read_only: bool = False) -> Any:
        self.opened += 1
        return YieldingUow(self._inner(read_only=read_only))


@dataclass
class World:
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


@pytest.fixture
def w() -> World:
    world = World().build()
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
    item = await start(w, **kw)
    await w.service.write_text(item.id)
    found = await w.item(item.id)
    assert found is not None and found.state is ItemState.RENDERING_AUDIO
    return found


async def rendered(w: World, item: ContentItem, event: uuid.UUID | None = None,
                   version: int = 1) -> None:
    await w.service.audio_rendered(event or uuid7(), item.id, version,
                                   f"audio/{item.user_id}/{item.id}/{version}.mp3",
                                   "audio/mpeg", 61_250, 490_000)


async def ready(w: World, **kw: Any) -> ContentItem:
    item = await rendering(w, **kw)
    await rendered(w, item)
    found = await w.item(item.id)
    assert found is not None and found.state is ItemState.READY
    return found


# --- starting a creation ------------------------------------------------------------


async def test_start_reserves_the_cost_and_queues_the_text(w: World) -> None:
    item = await start(w, content_type=M)
    stored = await w.item(item.id)
    assert stored == item
    assert item.state is ItemState.GENERATING_TEXT and item.user_id == USER
    assert item.cost == 2 and item.hold_id is not None
    assert item.voice == "en_US-default"
    assert w.credits.holds[item.hold_id].amount == 2
    assert (w.credits.available(USER), w.credits.balances[USER]) == (3, 5)
    assert w.credits.calls == [("reserve", credits_request("reserve", item.id))]
    assert w.text_jobs.queued == [item.id]
    assert w.writer.calls == [] and w.renders.requests == []


async def test_start_keeps_the_conversation_and_the_chosen_voice(w: World) -> None:
    conversation = uuid7()
    item = await w.service.start_creation(USER, "conversation:x", brief(voice="en_GB-alba"),
                                          conversation)
    assert (item.conversation_id, item.voice) == (conversation, "en_GB-alba")


async def test_insufficient_credits_removes_the_item_and_raises(w: World) -> None:
    w.credits.balances[USER] = 1
    with pytest.raises(FailedPrecondition) as raised:
        await start(w, request_id="conversation:poor", content_type=R)
    assert raised.value.reason == "INSUFFICIENT_CREDITS"
    assert w.store.tables.content_items == {}
    assert w.text_jobs.queued == [] and w.writer.calls == []
    assert (w.credits.available(USER), w.credits.holds) == (1, {})
    # The item never existed: the same request succeeds once the person can pay.
    w.credits.grant(USER, 1)
    item = await start(w, request_id="conversation:poor", content_type=R)
    assert item.hold_id is not None and w.text_jobs.queued == [item.id]
    assert w.credits.available(USER) == 0


async def test_start_is_idempotent_by_request_id(w: World) -> None:
    first = await start(w, request_id="conversation:1")
    again = await start(w, request_id="conversation:1")
    assert again == first
    assert w.credits.count("reserve") == 1 and len(w.credits.holds) == 1
    assert w.credits.available(USER) == 4
    assert len(w.store.tables.content_items) == 1
    assert w.text_jobs.queued == [first.id]


async def test_concurrent_starts_of_one_request_make_one_item_and_one_hold(w: World) -> None:
    items = await asyncio.gather(*(start(w, request_id="conversation:race")
                                   for _ in range(5)))
    assert len({i.id for i in items}) == 1
    assert len(w.store.tables.content_items) == 1
    assert len(w.credits.holds) == 1 and w.credits.available(USER) == 4
    stored = await w.item(items[0].id)
    assert stored is not None and stored.hold_id in w.credits.holds
    assert set(w.text_jobs.queued) == {stored.id}


async def test_request_id_is_required_and_belongs_to_one_person(w: World) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await w.service.start_creation(USER, "", brief())
    assert raised.value.reason == "REQUEST_ID_REQUIRED"
    await start(w, request_id="conversation:mine")
    with pytest.raises(InvalidArgument) as raised:
        await start(w, request_id="conversation:mine", user=OTHER)
    assert raised.value.reason == "REQUEST_ID_REUSED"
    assert w.credits.available(OTHER) == 5


async def test_a_start_retried_after_a_failed_reserve_reserves_and_queues(w: World) -> None:
    w.credits.reserve_error = Unavailable("credits are down", reason="UNAVAILABLE")
    with pytest.raises(Unavailable):
        await start(w, request_id="conversation:retry")
    item = await start(w, request_id="conversation:retry")
    assert item.hold_id is not None
    assert w.credits.held(USER) == 1
    assert w.text_jobs.queued == [item.id]


async def test_creations_are_rate_limited_per_hour(w: World) -> None:
    w.build(creations_per_hour=2)
    first = await start(w, request_id="conversation:1")
    await start(w, request_id="conversation:2")
    with pytest.raises(DomainError) as raised:
        await start(w, request_id="conversation:3")
    assert raised.value.reason == "CREATION_RATE_LIMITED"
    assert raised.value.metadata == {"limit": "2"}
    assert len(w.store.tables.content_items) == 2 and w.credits.count("reserve") == 2
    # A retry of a creation already started is no new creation.
    assert await start(w, request_id="conversation:1") == first
    w.clock.advance(timedelta(minutes=59))
    with pytest.raises(DomainError):
        await start(w, request_id="conversation:3")
    w.clock.advance(timedelta(minutes=1, seconds=1))  # the first two are over an hour old
    assert (await start(w, request_id="conversation:3")).hold_id is not None


# --- the text step --------------------------------------------------------------------


async def test_write_text_stores_the_piece_and_requests_the_render(w: World) -> None:
    earlier = await rendering(w, request_id="conversation:earlier")
    item = await start(w, content_type=M, pace=Pace.SLOW)
    await w.service.update(USER, item.id, title="Renamed while writing", tags=None)
    w.clock.advance(timedelta(seconds=20))
    await w.service.write_text(item.id)
    stored = await w.item(item.id)
    assert stored is not None and stored.state is ItemState.RENDERING_AUDIO
    assert stored.title == "Calm: confidence before an interview"
    assert (stored.text, stored.script) == (SCRIPT.text, SCRIPT)
    assert stored.structure == {"statements": ["I am calm.", "I breathe slowly."]}
    assert (stored.depth, stored.model) == (Depth.MEDIUM, "fake-writer")
    assert stored.updated_at == T0 + timedelta(seconds=20)
    user, request_id, given, history = w.writer.calls[-1]
    assert (user, request_id, given) == (USER, f"library:text:{item.id}", item.brief)
    assert history == [earlier.title]  # the person's other pieces, not this one
    assert w.renders.requests[-1] == (item.id, USER, 1, SCRIPT, "en_US-default",
                                      Pace.SLOW.speech_rate)
    # A redelivered job changes nothing and asks for nothing.
    await w.service.write_text(item.id)
    assert len(w.writer.calls) == 2 and len(w.renders.requests) == 2
    assert await w.item(item.id) == stored
    await w.service.write_text(uuid7())  # an unknown item: nothing to do


async def test_write_text_waits_for_the_reserve(w: World) -> None:
    item = ContentItem(id=uuid7(), user_id=USER, content_type=A,
                       state=ItemState.GENERATING_TEXT, request_id="r", cost=1, brief=brief(),
                       created_at=T0, updated_at=T0)
    async with w.uow() as uow:
        await uow.items.add(item)
        await uow.commit()
    await w.service.write_text(item.id)
    assert w.writer.calls == [] and await w.item(item.id) == item


async def test_text_that_cannot_be_written_fails_the_creation_and_releases(w: World) -> None:
    item = await start(w, content_type=R)
    w.writer.error = Unavailable("no model could write it", reason="TEXT_GENERATION_FAILED")
    await w.service.write_text(item.id)
    stored = await w.item(item.id)
    assert stored is not None and stored.state is ItemState.FAILED
    assert (stored.failure_reason, stored.failure_message) == ("TEXT_GENERATION_FAILED",
                                                               "no model could write it")
    assert (w.credits.available(USER), w.credits.balances[USER]) == (5, 5)
    assert w.credits.holds[item.hold_id].state == "released"  # type: ignore[index]
    assert w.renders.requests == []
    assert [e["reason"] for e in w.events(ContentFailed.topic)] == ["TEXT_GENERATION_FAILED"]
    await w.service.write_text(item.id)  # redelivered: FAILED stays FAILED
    assert len(w.writer.calls) == 1 and w.credits.count("release") == 1


@pytest.mark.parametrize("error", [
    RuntimeError("connection reset"),
    Unavailable("the model is overloaded", reason="MODEL_OVERLOADED"),
])
async def test_other_writer_errors_propagate_for_the_job_to_retry(w: World,
                                                                  error: Exception) -> None:
    item = await start(w)
    w.writer.error = error
    with pytest.raises(type(error)):
        await w.service.write_text(item.id)
    assert await w.item(item.id) == item
    assert w.credits.held(USER) == 1 and w.credits.count("release") == 0
    w.writer.error = None
    await w.service.write_text(item.id)  # the retry goes on
    stored = await w.item(item.id)
    assert stored is not None and stored.state is ItemState.RENDERING_AUDIO


# --- the end of the render ------------------------------------------------------------


async def test_audio_rendered_spends_once_and_makes_the_item_ready(w: World) -> None:
    item = await rendering(w, content_type=M)
    await w.cache.set(metadata_key(item.id), b"stale", 60)
    event = uuid7()
    w.clock.advance(timedelta(minutes=1))
    await rendered(w, item, event)
    stored = await w.item(item.id)
    assert stored is not None and stored.state is ItemState.READY
    assert (stored.audio_key, stored.audio_mime_type) == (
        f"audio/{USER}/{item.id}/1.mp3", "audio/mpeg")
    assert (stored.audio_duration_ms, stored.audio_bytes) == (61_250, 490_000)
    assert stored.updated_at == T0 + timedelta(minutes=1)
    assert w.credits.spent == [(USER, 2, credits_request("commit", item.id))]
    assert (w.credits.balances[USER], w.credits.held(USER)) == (3, 0)
    assert await w.cache.get(metadata_key(item.id)) is None
    assert [e["content_id"] for e in w.events(ContentReady.topic)] == [str(item.id)]

    # The same event again, and another event of the same render: nothing more.
    await rendered(w, item, event)
    await rendered(w, item, uuid7())
    assert await w.item(item.id) == stored
    assert w.credits.count("commit") == 1 and len(w.credits.spent) == 1
    assert len(w.events(ContentReady.topic)) == 1 and w.events(ContentFailed.topic) == []


async def test_concurrent_deliveries_of_audio_rendered_spend_once(w: World) -> None:
    item = await rendering(w)
    await asyncio.gather(*(rendered(w, item) for _ in range(4)))
    stored = await w.item(item.id)
    assert stored is not None and stored.state is ItemState.READY
    assert len(w.credits.spent) == 1 and w.credits.balances[USER] == 4
    assert len(w.events(ContentReady.topic)) == 1


async def test_audio_rendered_after_a_crash_past_the_commit_does_not_spend_twice(
        w: World) -> None:
    """The first delivery spent the hold and died before READY: the
    redelivery repeats the commit with the same request id."""
    item = await rendering(w)
    assert item.hold_id is not None
    await w.credits.commit(credits_request("commit", item.id), USER, item.hold_id)
    await rendered(w, item)
    stored = await w.item(item.id)
    assert stored is not None and stored.state is ItemState.READY
    assert len(w.credits.spent) == 1 and w.credits.balances[USER] == 4


async def test_audio_of_another_version_is_ignored(w: World) -> None:
    item = await rendering(w)
    await rendered(w, item, version=2)
    await w.service.audio_failed(item.id, 2, "SPEECH_FAILED")
    assert await w.item(item.id) == item
    assert w.credits.count("commit") == 0 and w.credits.count("release") == 0


async def test_audio_failed_fails_the_creation_and_releases(w: World) -> None:
    item = await rendering(w, content_type=R)
    await w.service.audio_failed(item.id, 1, "SPEECH_FAILED")
    stored = await w.item(item.id)
    assert stored is not None and stored.state is ItemState.FAILED
    assert (stored.failure_reason, stored.failure_message) == ("AUDIO_RENDERING_FAILED",
                                                               "SPEECH_FAILED")
    assert (w.credits.balances[USER], w.credits.available(USER)) == (5, 5)
    assert w.credits.calls[-1] == ("release", credits_request("release", item.id))
    # Late or repeated events change nothing: no charge after a failure.
    await w.service.audio_failed(item.id, 1, "SPEECH_FAILED")
    await rendered(w, item)
    assert await w.item(item.id) == stored
    assert w.credits.count("release") == 1 and w.credits.count("commit") == 0
    assert len(w.events(ContentFailed.topic)) == 1 and w.events(ContentReady.topic) == []


async def test_a_hold_gone_before_the_commit_fails_the_creation_free(w: World) -> None:
    item = await rendering(w)
    assert item.hold_id is not None
    w.credits.expire(item.hold_id)
    await rendered(w, item)
    stored = await w.item(item.id)
    assert stored is not None and stored.state is ItemState.FAILED
    assert stored.failure_reason == "CREATION_TIMED_OUT"
    assert (w.credits.balances[USER], w.credits.available(USER)) == (5, 5)
    assert w.credits.spent == [] and w.events(ContentReady.topic) == []
    assert [e["reason"] for e in w.events(ContentFailed.topic)] == ["CREATION_TIMED_OUT"]


# --- the sweep of stale creations -----------------------------------------------------


async def test_resume_stale_requeues_idle_steps_and_fails_those_past_the_deadline(
        w: World) -> None:
    waiting_text = await start(w, request_id="conversation:text")
    waiting_audio = await rendering(w, request_id="conversation:audio")
    unreserved = ContentItem(id=uuid7(), user_id=USER, content_type=A,
                             state=ItemState.GENERATING_TEXT, request_id="conversation:cut",
                             cost=1, brief=brief(), created_at=T0, updated_at=T0)
    async with w.uow() as uow:
        await uow.items.add(unreserved)
        await uow.commit()
    done = await ready(w, request_id="conversation:done")
    w.clock.advance(timedelta(minutes=10))
    fresh = await start(w, request_id="conversation:fresh")
    jobs, renders = list(w.text_jobs.queued), list(w.renders.requests)

    idle, deadline = timedelta(minutes=5), timedelta(minutes=30)
    assert await w.service.resume_stale(idle=idle, deadline=deadline) == 3
    assert w.text_jobs.queued == [*jobs, waiting_text.id]
    assert w.renders.requests == [*renders, (waiting_audio.id, USER, 1, SCRIPT,
                                             "en_US-default", 1.0)]
    for item in (waiting_text, waiting_audio, unreserved, fresh, done):
        assert await w.item(item.id) == item  # re-queued, not changed

    w.clock.advance(timedelta(minutes=25))  # the first three are 35 min old, `fresh` 25
    assert await w.service.resume_stale(idle=idle, deadline=deadline) == 4
    for item in (waiting_text, waiting_audio, unreserved):
        stored = await w.item(item.id)
        assert stored is not None and stored.state is ItemState.FAILED
        assert stored.failure_reason == "CREATION_TIMED_OUT"
    assert w.text_jobs.queued[-1] == fresh.id
    still = await w.item(fresh.id)
    assert still is not None and still.state is ItemState.GENERATING_TEXT
    # The two reserved holds are released; `fresh` still holds; `done` is spent.
    assert w.credits.held(USER) == 1 and w.credits.balances[USER] == 4
    assert await w.service.resume_stale(idle=idle, deadline=deadline) == 1


async def test_one_item_that_cannot_be_failed_does_not_stop_the_sweep(w: World) -> None:
    spent = await rendering(w, request_id="conversation:spent")
    assert spent.hold_id is not None
    w.clock.advance(timedelta(seconds=1))
    other = await rendering(w, request_id="conversation:other")
    await w.credits.commit(credits_request("commit", spent.id), USER, spent.hold_id)
    w.clock.advance(timedelta(hours=1))
    with contextlib.suppress(DomainError):
        await w.service.resume_stale(idle=timedelta(minutes=5), deadline=timedelta(minutes=30))
    stored = await w.item(other.id)
    assert stored is not None and stored.state is ItemState.FAILED


# --- the person's library -------------------------------------------------------------


async def test_only_the_owner_sees_changes_deletes_or_plays_an_item(w: World) -> None:
    item = await ready(w)
    assert await w.service.get(USER, item.id) == item
    for call in (lambda: w.service.get(OTHER, item.id),
                 lambda: w.service.get(USER, uuid7()),
                 lambda: w.service.update(OTHER, item.id, title="mine", tags=None),
                 lambda: w.service.delete(OTHER, item.id),
                 lambda: w.service.playback(OTHER, item.id),
                 lambda: w.service.playback(USER, uuid7())):
        with pytest.raises(NotFound) as raised:
            await call()
        assert raised.value.reason == "CONTENT_NOT_FOUND"
    assert await w.item(item.id) == item and w.audio.deleted == []


async def test_list_pages_newest_first_with_a_type_filter(w: World) -> None:
    w.credits.grant(USER, 10)
    made = [await start(w, content_type=t) for t in (A, M, A, R, A)]
    await start(w, user=OTHER)
    page, token = await w.service.list(USER, None, 2, None)
    assert [i.id for i in page] == [made[4].id, made[3].id] and token == made[3].id
    page, token = await w.service.list(USER, None, 2, token)
    assert [i.id for i in page] == [made[2].id, made[1].id] and token == made[1].id
    page, token = await w.service.list(USER, None, 2, token)
    assert [i.id for i in page] == [made[0].id] and token is None
    page, token = await w.service.list(USER, A, 0, None)
    assert [i.id for i in page] == [made[4].id, made[2].id, made[0].id] and token is None
    page, token = await w.service.list(USER, A, 3, None)  # exactly one full page
    assert len(page) == 3 and token is None


async def test_update_title_and_tags(w: World) -> None:
    item = await ready(w)
    w.clock.advance(timedelta(minutes=3))
    updated = await w.service.update(USER, item.id, title="  Morning courage  ",
                                     tags=[" work ", "calm", "work", "", "  "])
    assert (updated.title, updated.tags) == ("Morning courage", ["work", "calm"])
    assert updated.updated_at == T0 + timedelta(minutes=3)
    assert await w.item(item.id) == updated
    kept = await w.service.update(USER, item.id, title=None, tags=None)
    assert (kept.title, kept.tags) == ("Morning courage", ["work", "calm"])
    long = await w.service.update(USER, item.id, title="x" * 500, tags=[])
    assert (long.title, long.tags) == ("x" * MAX_TITLE, [])
    with pytest.raises(InvalidArgument) as raised:
        await w.service.update(USER, item.id, title="   ", tags=None)
    assert raised.value.reason == "INVALID_TITLE"


async def test_delete_is_refused_while_the_item_is_being_created(w: World) -> None:
    generating = await start(w)
    audio = await rendering(w)
    for item in (generating, audio):
        with pytest.raises(FailedPrecondition) as raised:
            await w.service.delete(USER, item.id)
        assert raised.value.reason == "CONTENT_BUSY"
        assert await w.item(item.id) == item
    assert w.audio.deleted == []


async def test_delete_removes_the_item_its_audio_and_its_cached_metadata(w: World) -> None:
    item = await ready(w)
    await w.service.playback(USER, item.id)
    assert await w.cache.get(metadata_key(item.id)) is not None
    other = await ready(w)
    await w.service.delete(USER, item.id)
    assert await w.item(item.id) is None
    assert await w.cache.get(metadata_key(item.id)) is None
    assert w.audio.deleted == [f"audio/{USER}/{item.id}/"]
    assert await w.item(other.id) == other
    with pytest.raises(NotFound):
        await w.service.playback(USER, item.id)
    with pytest.raises(NotFound):
        await w.service.delete(USER, item.id)
    # A failed creation can be deleted too.
    failed = await start(w)
    w.writer.error = Unavailable("no", reason="TEXT_GENERATION_FAILED")
    await w.service.write_text(failed.id)
    await w.service.delete(USER, failed.id)
    assert await w.item(failed.id) is None


async def test_playback_is_refused_before_ready(w: World) -> None:
    item = await rendering(w)
    for _ in range(2):
        with pytest.raises(FailedPrecondition) as raised:
            await w.service.playback(USER, item.id)
        assert raised.value.reason == "AUDIO_NOT_READY"
    assert await w.cache.get(metadata_key(item.id)) is None  # not cached while not ready
    await rendered(w, item)
    url, _, mime, ms = await w.service.playback(USER, item.id)
    assert (url, mime, ms) == (
        f"https://media.test/audio/{USER}/{item.id}/1.mp3?ttl={PLAYBACK_TTL}", "audio/mpeg",
        61_250)


async def test_playback_reads_the_cache_first(w: World) -> None:
    item = await ready(w)
    w.clock.advance(timedelta(minutes=7))
    opened = w.uow.opened
    first = await w.service.playback(USER, item.id)
    assert first == (f"https://media.test/{item.audio_key}?ttl={PLAYBACK_TTL}",
                     w.clock.now() + timedelta(seconds=PLAYBACK_TTL), "audio/mpeg", 61_250)
    assert w.uow.opened == opened + 1
    assert json.loads(await w.cache.get(metadata_key(item.id)) or b"{}")["key"] \
        == item.audio_key
    second = await w.service.playback(USER, item.id)
    assert second == first
    assert w.uow.opened == opened + 1  # the second call made no store read
    with pytest.raises(NotFound):  # the cached metadata knows its owner
        await w.service.playback(OTHER, item.id)
    assert w.uow.opened == opened + 1
