"""The library core (LibraryService) on in-memory fakes of its ports: the
creation saga (reserve, write the text, render, spend once or release), its
idempotence under retried jobs and redelivered events, the sweep of stale
creations, and the person's library (ownership, edits, deletion, playback and
download of each rendition through the cache, the preview of a render, the
audio details, the rate limit)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from typing import Any

import pytest

from core.library.model import (
    AudioFormat,
    ContentFailed,
    ContentItem,
    ContentReady,
    ItemState,
)
from core.library.service import (
    MAX_TITLE,
    Playback,
    credits_request,
    metadata_key,
)
from core.shared.creation import ContentType, Depth, Pace
from core.shared.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from core.shared.ids import uuid7
from tests.unit.fakes import (
    DURATION_MS,
    MP3_BYTES,
    OPUS_BYTES,
    OTHER,
    PLAYBACK_TTL,
    SCRIPT,
    T0,
    USER,
    A,
    M,
    R,
    World,
    brief,
    details,
    library_world,
    ready,
    rendered,
    rendering,
    start,
)


@pytest.fixture
def w() -> World:
    return library_world()


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
    # A meditation's default bed is rain.
    assert w.renders.requests[-1] == (item.id, USER, 1, SCRIPT, "en_US-default",
                                      Pace.SLOW.speech_rate, "rain")
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
                                             "en_US-default", 1.0, "none")]
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
    deleted = list(w.audio.deleted)
    assert await w.service.get(USER, item.id) == item
    for call in (lambda: w.service.get(OTHER, item.id),
                 lambda: w.service.get(USER, uuid7()),
                 lambda: w.service.update(OTHER, item.id, title="mine", tags=None),
                 lambda: w.service.delete(OTHER, item.id),
                 lambda: w.service.playback(OTHER, item.id),
                 lambda: w.service.playback(USER, uuid7()),
                 lambda: w.service.download(OTHER, item.id),
                 lambda: w.service.details(OTHER, item.id)):
        with pytest.raises(NotFound) as raised:
            await call()
        assert raised.value.reason == "CONTENT_NOT_FOUND"
    assert await w.item(item.id) == item and w.audio.deleted == deleted


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
    deleted = list(w.audio.deleted)
    await w.service.delete(USER, item.id)
    assert await w.item(item.id) is None
    assert await w.cache.get(metadata_key(item.id)) is None
    assert w.audio.deleted == [*deleted, f"audio/{USER}/{item.id}/"]
    assert item.id not in w.store.tables.content_audio  # its details went with it
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
    for call in (lambda: w.service.download(USER, item.id),
                 lambda: w.service.details(USER, item.id)):
        with pytest.raises(FailedPrecondition) as raised:
            await call()
        assert raised.value.reason == "AUDIO_NOT_READY"
    assert await w.cache.get(metadata_key(item.id)) is None  # not cached while not ready
    await rendered(w, item)
    played = await w.service.playback(USER, item.id)
    assert (played.url, played.mime_type, played.duration_ms, played.format,
            played.preview) == (
        f"https://media.test/audio/{USER}/{item.id}/1.mp3?ttl={PLAYBACK_TTL}", "audio/mpeg",
        DURATION_MS, AudioFormat.MP3, False)


async def test_playback_reads_the_cache_first(w: World) -> None:
    item = await ready(w)
    w.clock.advance(timedelta(minutes=7))
    opened = w.uow.opened
    first = await w.service.playback(USER, item.id)
    assert first == Playback(f"https://media.test/{item.audio_key}?ttl={PLAYBACK_TTL}",
                             w.clock.now() + timedelta(seconds=PLAYBACK_TTL), "audio/mpeg",
                             DURATION_MS, AudioFormat.MP3, preview=False)
    assert w.uow.opened == opened + 1
    cached = json.loads(await w.cache.get(metadata_key(item.id)) or b"{}")
    assert cached["r"]["mp3"] == [item.audio_key, "audio/mpeg", MP3_BYTES]
    second = await w.service.playback(USER, item.id)
    assert second == first
    opus = await w.service.playback(USER, item.id, AudioFormat.OGG_OPUS)
    assert (opus.url, opus.mime_type, opus.format) == (
        f"https://media.test/audio/{USER}/{item.id}/1.opus?ttl={PLAYBACK_TTL}", "audio/ogg",
        AudioFormat.OGG_OPUS)
    assert w.uow.opened == opened + 1  # the later calls made no store read
    with pytest.raises(NotFound):  # the cached metadata knows its owner
        await w.service.playback(OTHER, item.id)
    assert w.uow.opened == opened + 1


async def test_audio_rendered_keeps_every_rendition_and_the_details(w: World) -> None:
    item = await rendering(w, content_type=M)
    await rendered(w, item)
    stored = await w.item(item.id)
    assert stored is not None and stored.audio_version == 1 and stored.version == 1
    assert {f: (r.key, r.mime_type, r.size) for f, r in stored.renditions.items()} == {
        "mp3": (f"audio/{USER}/{item.id}/1.mp3", "audio/mpeg", MP3_BYTES),
        "ogg_opus": (f"audio/{USER}/{item.id}/1.opus", "audio/ogg", OPUS_BYTES)}
    assert (stored.audio_key, stored.audio_bytes) == (f"audio/{USER}/{item.id}/1.mp3",
                                                      MP3_BYTES)
    # The first render replaces nothing; only its preview goes.
    assert w.audio.deleted == [f"audio/{USER}/{item.id}/1.preview"]
    shown, found = await w.service.details(USER, item.id)
    assert shown == stored and found == details(item)
    assert (found.voice, found.background) == ("en_US-default", "rain")


async def test_an_item_with_only_an_mp3_has_no_opus(w: World) -> None:
    item = await rendering(w)
    await rendered(w, item, formats=("mp3",))
    assert (await w.service.playback(USER, item.id)).format is AudioFormat.MP3
    for call in (lambda: w.service.playback(USER, item.id, AudioFormat.OGG_OPUS),
                 lambda: w.service.download(USER, item.id, AudioFormat.OGG_OPUS)):
        with pytest.raises(FailedPrecondition) as raised:
            await call()
        assert raised.value.reason == "FORMAT_NOT_AVAILABLE"


async def test_an_item_rendered_before_renditions_plays_its_mp3(w: World) -> None:
    item = await ready(w)
    async with w.uow() as uow:  # as stored before there were renditions
        old = await uow.items.get(item.id)
        assert old is not None
        old.renditions = {}
        await uow.items.save(old)
        await uow.commit()
    await w.cache.delete(metadata_key(item.id))
    played = await w.service.playback(USER, item.id)
    assert (played.url, played.mime_type) == (
        f"https://media.test/{item.audio_key}?ttl={PLAYBACK_TTL}", "audio/mpeg")
    with pytest.raises(FailedPrecondition) as raised:
        await w.service.playback(USER, item.id, AudioFormat.OGG_OPUS)
    assert raised.value.reason == "FORMAT_NOT_AVAILABLE"


async def test_the_preview_plays_while_the_rest_renders(w: World) -> None:
    item = await rendering(w)
    key = f"audio/{USER}/{item.id}/1.preview.mp3"
    await w.service.preview_ready(item.id, 2, key, 9_000)  # another version: ignored
    with pytest.raises(FailedPrecondition):
        await w.service.playback(USER, item.id)
    await w.service.preview_ready(item.id, 1, key, 9_000)
    played = await w.service.playback(USER, item.id)
    assert played == Playback(f"https://media.test/{key}?ttl={PLAYBACK_TTL}",
                              T0 + timedelta(seconds=PLAYBACK_TTL), "audio/mpeg", 9_000,
                              AudioFormat.MP3, preview=True)
    with pytest.raises(FailedPrecondition) as raised:  # no download of a part
        await w.service.download(USER, item.id)
    assert raised.value.reason == "AUDIO_NOT_READY"
    await rendered(w, item)
    stored = await w.item(item.id)
    assert stored is not None and (stored.preview_key, stored.preview_ms) == ("", 0)
    played = await w.service.playback(USER, item.id)
    assert not played.preview and played.duration_ms == DURATION_MS
    assert f"audio/{USER}/{item.id}/1.preview" in w.audio.deleted
    await w.service.preview_ready(item.id, 1, key, 9_000)  # late: READY stays as it is
    assert await w.item(item.id) == stored


async def test_download_names_the_file_after_the_title(w: World) -> None:
    item = await ready(w)
    await w.service.update(USER, item.id, title="Morning: Courage & Calm!", tags=None)
    got = await w.service.download(USER, item.id)
    assert (got.filename, got.size) == ("morning-courage-calm.mp3", MP3_BYTES)
    assert got.url == (f"https://media.test/{item.audio_key}?ttl={PLAYBACK_TTL}"
                       "&download=morning-courage-calm.mp3")
    assert got.expires_at == T0 + timedelta(seconds=PLAYBACK_TTL)
    opus = await w.service.download(USER, item.id, AudioFormat.OGG_OPUS)
    assert (opus.filename, opus.size) == ("morning-courage-calm.opus", OPUS_BYTES)


async def test_a_download_after_a_rename_is_named_after_the_new_title(w: World) -> None:
    item = await ready(w)
    await w.service.playback(USER, item.id)  # caches the metadata, title included
    await w.service.update(USER, item.id, title="New name", tags=None)
    assert (await w.service.download(USER, item.id)).filename == "new-name.mp3"


async def test_a_failed_creation_plays_no_preview(w: World) -> None:
    item = await rendering(w)
    await w.service.preview_ready(item.id, 1, f"audio/{USER}/{item.id}/1.preview.mp3", 9_000)
    await w.service.audio_failed(item.id, 1, "SPEECH_FAILED")
    with pytest.raises(FailedPrecondition) as raised:
        await w.service.playback(USER, item.id)
    assert raised.value.reason == "AUDIO_NOT_READY"


class FakeImporter:
    """Measures every upload as `analysis` (None: not audio); encodes two renditions."""

    def __init__(self, analysis: Any) -> None:
        self.analysis = analysis
        self.encoded = 0

    async def analyze(self, data: bytes, max_seconds: float) -> Any:
        return self.analysis

    async def encode(self, data: bytes) -> list[Any]:
        from ports.library import ImportedRendition

        self.encoded += 1
        return [ImportedRendition("mp3", "mp3", "audio/mpeg", b"mp3" + data),
                ImportedRendition("ogg_opus", "opus", "audio/ogg", b"ogg" + data)]


async def test_an_upload_becomes_a_ready_free_item_once_and_unfit_ones_are_refused() -> None:
    from ports.library import ImportedAudio

    def measured(seconds: float, lufs: float, peak: float = -3.0) -> ImportedAudio:
        return ImportedAudio(round(seconds * 1000), lufs, peak, peak, (), (0.5,) * 200)

    importer = FakeImporter(measured(60, -18))
    w = library_world(importer=importer)
    w.audio.objects["uploads/u/1"] = b"RIFF..."
    with pytest.raises(FailedPrecondition, match="uploaded"):
        await w.service.import_audio(USER, "upload:0", "uploads/u/none", "T",
                                     ContentType.GUIDED_MEDITATION)
    item = await w.service.import_audio(USER, "upload:1", "uploads/u/1", "  Evening  ",
                                        ContentType.GUIDED_MEDITATION)
    assert (item.state, item.cost, item.audio_duration_ms) == (ItemState.READY, 0, 60_000)
    assert set(item.renditions) == {"mp3", "ogg_opus"}
    assert "uploads/u/1" not in w.audio.objects  # the upload is gone, its renditions stay
    again = await w.service.import_audio(USER, "upload:1", "uploads/u/1", "x",
                                         ContentType.RITUAL)
    assert again.id == item.id and importer.encoded == 1
    with pytest.raises(NotFound):  # someone else's request id
        await w.service.import_audio(OTHER, "upload:1", "uploads/u/1", "x", ContentType.RITUAL)
    for analysis, reason in ((None, "NOT_AUDIO"), (measured(5, -18), "AUDIO_TOO_SHORT"),
                             (measured(31 * 60, -18), "AUDIO_TOO_LONG"),
                             (measured(60, -40), "AUDIO_TOO_QUIET"),
                             (measured(60, -5), "AUDIO_TOO_LOUD"),
                             (measured(60, -18, peak=0.5), "AUDIO_TOO_LOUD")):
        importer.analysis = analysis
        w.audio.objects["uploads/u/2"] = b"data"
        with pytest.raises(InvalidArgument) as refused:
            await w.service.import_audio(USER, f"upload:{reason}:{analysis}", "uploads/u/2",
                                         "T", ContentType.AFFIRMATION)
        assert refused.value.reason == reason
