"""The stores of the creation pipeline, for every adapter (memory, SQLite and
PostgreSQL, on migrated databases): the library's unit of work (content items,
outbox, handled events), audio's unit of work (renders and outbox) and the
archive of conversations.

The memory adapters are the twins the core tests run on; holding them to the
same suite as the SQL ones is what makes those core tests worth anything."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from adapters.memory.audio import memory_audio_uow
from adapters.memory.conversations import MemoryConversationArchive
from adapters.memory.library import memory_library_uow
from adapters.sql.audio import sql_audio_uow
from adapters.sql.conversations import SqlConversationArchive
from adapters.sql.library import sql_library_uow
from adapters.sql.schema import conversations
from core.audio.model import AudioRendered, Render, event_id
from core.library.model import (
    ContentFailed,
    ContentItem,
    ContentReady,
    ItemState,
    StoredRendition,
)
from core.shared.creation import (
    Background,
    Brief,
    ContentType,
    Depth,
    Pace,
    Script,
    Segment,
    TimeOfDay,
    Tone,
)
from core.shared.errors import AlreadyExists
from core.shared.events import DomainEvent
from core.shared.ids import uuid7
from tests.contract.conftest import Backend

T0 = datetime(2025, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
LATER = T0 + timedelta(days=365)
A, M, R = ContentType.AFFIRMATION, ContentType.GUIDED_MEDITATION, ContentType.RITUAL


class JsonCodec:
    """Any event as JSON of its fields (services use protobuf; the stores only
    keep what the codec hands them)."""

    def encode(self, event: DomainEvent) -> tuple[str, bytes]:
        body = {f.name: str(getattr(event, f.name)) for f in dataclasses.fields(event)}
        return event.topic, json.dumps(body, sort_keys=True).encode()

    def decode(self, topic: str, payload: bytes, event_id: uuid.UUID) -> DomainEvent:
        raise NotImplementedError("the tests read payloads as JSON")


def library_uow(backend: Backend) -> Callable[..., Any]:
    if backend.store is not None:
        return memory_library_uow(backend.store, JsonCodec())
    assert backend.engine is not None
    return sql_library_uow(backend.engine, JsonCodec())


def audio_uow(backend: Backend) -> Callable[..., Any]:
    if backend.store is not None:
        return memory_audio_uow(backend.store, JsonCodec())
    assert backend.engine is not None
    return sql_audio_uow(backend.engine, JsonCodec())


def archive(backend: Backend) -> Any:
    if backend.store is not None:
        return MemoryConversationArchive(backend.store)
    assert backend.engine is not None
    return SqlConversationArchive(backend.engine)


def item(user: uuid.UUID, *, request_id: str | None = None, content_type: ContentType = A,
         state: ItemState = ItemState.GENERATING_TEXT, created_at: datetime = T0,
         updated_at: datetime | None = None, **changes: Any) -> ContentItem:
    """A minimal item (every optional field at its default)."""
    return ContentItem(id=changes.pop("id", None) or uuid7(), user_id=user,
                       content_type=content_type, state=state,
                       request_id=request_id or f"req-{uuid.uuid4()}", cost=1,
                       brief=Brief(content_type), created_at=created_at,
                       updated_at=updated_at or created_at, **changes)


def full_item(user: uuid.UUID) -> ContentItem:
    """An item with every field away from its default, times in another zone."""
    plus_two = timezone(timedelta(hours=2))
    return ContentItem(
        id=uuid7(), user_id=user, content_type=R, state=ItemState.READY,
        request_id="conversation:0190a000-0000-7000-8000-00000000abcd", cost=2,
        brief=Brief(R, intent="sleep better", situation="after a late shift",
                    time_of_day=TimeOfDay.NIGHT, target_minutes=7.5, focus="letting go",
                    voice="en_US-joe", pace=Pace.SLOW, tone=Tone.WARM, name="Zoë",
                    background=Background.DRONE),
        created_at=datetime(2025, 3, 1, 14, 0, 0, 123_456, tzinfo=plus_two),
        updated_at=datetime(2025, 3, 1, 14, 5, 0, 654_321, tzinfo=plus_two),
        conversation_id=uuid7(), hold_id=uuid7(), title="Evening «release» ritual",
        text="Breathe in.\nLet go.",
        structure={"sections": [{"name": "opening", "lines": ["Breathe in."]},
                                {"name": "closing", "lines": ["Let go.", "Rest."]}],
                   "count": 2, "ratio": 0.5, "grounding": True, "note": None},
        script=Script((Segment("Breathe in.", 2.5), Segment("Let go.", 0.0)),
                      target_seconds=420.0),
        depth=Depth.DEEP, voice="en_US-joe", model="gpt-4o-mini", version=3,
        tags=["sleep", "calm", "évening"], failure_reason="AUDIO_RENDERING_FAILED",
        failure_message="an earlier version failed", audio_key="audio/u/c/3.mp3",
        audio_mime_type="audio/mpeg", audio_duration_ms=421_337, audio_bytes=3_370_001,
        play_count=4, last_played_at=datetime(2025, 3, 2, 8, 30, 0, 5, tzinfo=UTC),
        folder_id=uuid7(), background="rain", audio_version=2,
        renditions={"mp3": StoredRendition("mp3", "audio/u/c/2.mp3", "audio/mpeg", 3_370_001),
                    "ogg_opus": StoredRendition("ogg_opus", "audio/u/c/2.opus", "audio/ogg",
                                                1_200_000)},
        preview_key="audio/u/c/3.preview.mp3", preview_ms=12_345,
        render_failure_reason="AUDIO_RENDERING_FAILED", render_request_id="again-1",
        render_started_at=datetime(2025, 3, 2, 9, 0, 0, 7, tzinfo=plus_two))


async def add(uow_factory: Callable[..., Any], *items: ContentItem) -> None:
    async with uow_factory() as uow:
        for one in items:
            await uow.items.add(one)
        await uow.commit()


async def get(uow_factory: Callable[..., Any], content_id: uuid.UUID) -> ContentItem | None:
    async with uow_factory(read_only=True) as uow:
        return await uow.items.get(content_id)


async def outbox_payloads(backend: Backend, topic: str) -> list[dict[str, str]]:
    pending = await backend.outbox_store.fetch_pending(1000, LATER)
    return [json.loads(m.payload) for m in pending if m.topic == topic]


# --- content items ------------------------------------------------------------------


async def test_every_field_round_trips(backend: Backend) -> None:
    """What is saved is what comes back, JSON value objects and times included
    (times normalised to UTC, the same instant)."""
    uow = library_uow(backend)
    full, bare = full_item(uuid7()), item(uuid7())
    await add(uow, full, bare)
    for original in (full, bare):
        async with uow() as w:
            stored = await w.items.get(original.id)
            assert stored == original
            assert await w.items.get_for_update(original.id) == original
            assert await w.items.get_by_request(original.request_id) == original
    stored = await get(uow, full.id)
    assert stored is not None
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.updated_at.utcoffset() == timedelta(0)
    assert stored.created_at == datetime(2025, 3, 1, 12, 0, 0, 123_456, tzinfo=UTC)
    assert (stored.structure, stored.script, stored.depth) == (full.structure, full.script,
                                                              Depth.DEEP)
    bare_stored = await get(uow, bare.id)
    assert bare_stored is not None
    assert (bare_stored.structure, bare_stored.script, bare_stored.depth) == (None, None, None)
    assert bare_stored.tags == [] and bare_stored.last_played_at is None


async def test_the_store_keeps_its_own_copy(backend: Backend) -> None:
    uow = library_uow(backend)
    one = item(uuid7(), tags=["a"])
    await add(uow, one)
    one.title = "changed after add"
    one.tags.append("b")
    stored = await get(uow, one.id)
    assert stored is not None and (stored.title, stored.tags) == ("", ["a"])
    stored.tags.append("c")
    again = await get(uow, one.id)
    assert again is not None and again.tags == ["a"]


async def test_unknown_ids_and_requests(backend: Backend) -> None:
    uow = library_uow(backend)
    await add(uow, item(uuid7(), request_id="known"))
    async with uow() as w:
        assert await w.items.get(uuid7()) is None
        assert await w.items.get_for_update(uuid7()) is None
        assert await w.items.get_by_request("unknown") is None
        await w.items.delete(uuid7())  # nothing to delete: no error
        await w.commit()


async def test_save_updates_and_delete_removes(backend: Backend) -> None:
    uow = library_uow(backend)
    one, other = item(uuid7()), item(uuid7())
    await add(uow, one, other)
    async with uow() as w:
        current = await w.items.get_for_update(one.id)
        assert current is not None
        current.state, current.title = ItemState.RENDERING_AUDIO, "Morning calm"
        current.script = Script((Segment("I am calm.", 1.0),), target_seconds=60.0)
        current.structure, current.depth = {"statements": ["I am calm."]}, Depth.SHALLOW
        current.updated_at = T0 + timedelta(minutes=1)
        await w.items.save(current)
        await w.commit()
    assert await get(uow, one.id) == current
    assert await get(uow, other.id) == other
    async with uow() as w:
        await w.items.delete(one.id)
        await w.commit()
    assert await get(uow, one.id) is None
    assert await get(uow, other.id) == other
    async with uow(read_only=True) as r:
        assert await r.items.get_by_request(one.request_id) is None


async def test_save_of_an_item_never_added_creates_nothing(backend: Backend) -> None:
    uow = library_uow(backend)
    ghost = item(uuid7())
    async with uow() as w:
        await w.items.save(ghost)
        await w.commit()
    assert await get(uow, ghost.id) is None


async def test_leaving_without_commit_rolls_back(backend: Backend) -> None:
    uow = library_uow(backend)
    kept = item(uuid7())
    await add(uow, kept)
    dropped = item(uuid7())
    async with uow() as w:
        await w.items.add(dropped)
        changed = await w.items.get_for_update(kept.id)
        assert changed is not None
        changed.title = "never committed"
        await w.items.save(changed)
        await w.outbox.add(ContentFailed(occurred_at=T0, content_id=kept.id,
                                         user_id=kept.user_id, reason="X"))
        assert await w.processed.add("library.test", uuid7(), T0) is True
    with pytest.raises(RuntimeError):
        async with uow() as w:
            await w.items.delete(kept.id)
            raise RuntimeError("boom")
    assert await get(uow, dropped.id) is None
    assert await get(uow, kept.id) == kept
    assert await outbox_payloads(backend, ContentFailed.topic) == []


async def test_duplicate_request_id_raises_already_exists_and_the_unit_of_work_goes_on(
        backend: Backend) -> None:
    """A concurrent retry of one creation loses with AlreadyExists; the unit of
    work it happened in stays usable (a savepoint on SQL)."""
    uow = library_uow(backend)
    user = uuid7()
    first = item(user, request_id="conversation:1")
    await add(uow, first)
    after = item(user)
    async with uow() as w:
        with pytest.raises(AlreadyExists):
            await w.items.add(item(user, request_id="conversation:1"))
        await w.items.add(after)
        assert await w.items.get_by_request("conversation:1") == first
        await w.commit()
    assert await get(uow, after.id) == after
    # Twice in one unit of work: the first stays, the second is refused.
    twin_a, twin_b = item(user, request_id="twin"), item(user, request_id="twin")
    async with uow() as w:
        await w.items.add(twin_a)
        with pytest.raises(AlreadyExists) as raised:
            await w.items.add(twin_b)
        assert raised.value.reason == "ALREADY_EXISTS"
        await w.commit()
    assert await get(uow, twin_a.id) == twin_a
    assert await get(uow, twin_b.id) is None


async def test_list_for_user_newest_first_filtered_and_paged(backend: Backend) -> None:
    uow = library_uow(backend)
    user, other = uuid7(), uuid7()
    kinds = [A, M, A, R, A, M]
    mine = [item(user, content_type=k) for k in kinds]  # ids are time-ordered
    await add(uow, item(other), *mine, item(other, content_type=M))
    newest_first = list(reversed(mine))
    async with uow(read_only=True) as r:
        listed = await r.items.list_for_user(user, content_type=None, before=None, limit=100)
        assert [i.id for i in listed] == [i.id for i in newest_first]
        assert listed == newest_first
        page1 = await r.items.list_for_user(user, content_type=None, before=None, limit=4)
        page2 = await r.items.list_for_user(user, content_type=None, before=page1[-1].id,
                                            limit=4)
        assert [i.id for i in page1 + page2] == [i.id for i in newest_first]
        assert len(page1) == 4 and len(page2) == 2
        assert await r.items.list_for_user(user, content_type=None, before=mine[0].id,
                                           limit=4) == []
        affirmations = await r.items.list_for_user(user, content_type=A, before=None,
                                                   limit=100)
        assert [i.id for i in affirmations] == [mine[4].id, mine[2].id, mine[0].id]
        older = await r.items.list_for_user(user, content_type=A, before=mine[4].id, limit=1)
        assert [i.id for i in older] == [mine[2].id]
        assert [i.id for i in await r.items.list_for_user(
            user, content_type=R, before=None, limit=100)] == [mine[3].id]
        assert await r.items.list_for_user(uuid7(), content_type=None, before=None,
                                           limit=10) == []


async def test_count_created_since(backend: Backend) -> None:
    """The rate limit's count: the person's items created at or after `since`."""
    uow = library_uow(backend)
    user, other = uuid7(), uuid7()
    await add(uow, *(item(user, created_at=T0 + timedelta(minutes=m)) for m in (0, 10, 20, 30)),
              item(other, created_at=T0 + timedelta(minutes=30)))
    async with uow(read_only=True) as r:
        assert await r.items.count_created_since(user, T0 - timedelta(hours=1)) == 4
        assert await r.items.count_created_since(user, T0 + timedelta(minutes=10)) == 3
        assert await r.items.count_created_since(user, T0 + timedelta(minutes=10,
                                                                      microseconds=1)) == 2
        in_paris = (T0 + timedelta(minutes=20)).astimezone(timezone(timedelta(hours=1)))
        assert await r.items.count_created_since(user, in_paris) == 2
        assert await r.items.count_created_since(user, T0 + timedelta(hours=1)) == 0
        assert await r.items.count_created_since(uuid7(), T0 - timedelta(hours=1)) == 0


async def test_list_stale_oldest_first_in_the_given_states(backend: Backend) -> None:
    uow = library_uow(backend)
    user = uuid7()

    def at(minutes: int, state: ItemState) -> ContentItem:
        return item(user, state=state, created_at=T0,
                    updated_at=T0 + timedelta(minutes=minutes))

    text_old, audio_mid, text_new = (at(1, ItemState.GENERATING_TEXT),
                                     at(5, ItemState.RENDERING_AUDIO),
                                     at(30, ItemState.GENERATING_TEXT))
    ready_old, failed_old = at(0, ItemState.READY), at(0, ItemState.FAILED)
    await add(uow, text_new, ready_old, audio_mid, failed_old, text_old)
    busy = (ItemState.GENERATING_TEXT, ItemState.RENDERING_AUDIO)
    async with uow(read_only=True) as r:
        stale = await r.items.list_stale(busy, T0 + timedelta(minutes=10), 100)
        assert stale == [text_old, audio_mid]
        assert [i.id for i in await r.items.list_stale(busy, T0 + timedelta(hours=1), 100)] \
            == [text_old.id, audio_mid.id, text_new.id]
        assert [i.id for i in await r.items.list_stale(busy, T0 + timedelta(hours=1), 2)] \
            == [text_old.id, audio_mid.id]
        # Strictly before: an item updated exactly at the cut-off is not stale.
        assert [i.id for i in await r.items.list_stale(busy, T0 + timedelta(minutes=5), 100)] \
            == [text_old.id]
        assert [i.id for i in await r.items.list_stale(
            (ItemState.RENDERING_AUDIO,), T0 + timedelta(hours=1), 100)] == [audio_mid.id]
        assert await r.items.list_stale(busy, T0, 100) == []


async def test_items_outbox_and_handled_events_share_the_transaction(backend: Backend) -> None:
    uow = library_uow(backend)
    one = item(uuid7(), state=ItemState.RENDERING_AUDIO)
    await add(uow, one)
    handled = uuid7()
    ready = ContentReady(occurred_at=T0, content_id=one.id, user_id=one.user_id,
                         content_type=one.content_type)
    async with uow() as w:
        assert await w.processed.add("library.audio-rendered", handled, T0) is True
        assert await w.processed.add("library.audio-rendered", handled, T0) is False
        current = await w.items.get_for_update(one.id)
        assert current is not None
        current.state = ItemState.READY
        await w.items.save(current)
        await w.outbox.add(ready)
        await w.commit()
    stored = await get(uow, one.id)
    assert stored is not None and stored.state is ItemState.READY
    pending = await backend.outbox_store.fetch_pending(10, LATER)
    assert [(m.event_id, m.topic) for m in pending] == [(ready.event_id, ContentReady.topic)]
    assert json.loads(pending[0].payload)["content_id"] == str(one.id)
    async with uow() as w:
        assert await w.processed.add("library.audio-rendered", handled, T0) is False
        assert await w.processed.add("another.consumer", handled, T0) is True


async def test_concurrent_adds_of_one_request_keep_one_row(backend: Backend) -> None:
    """Ten transactions insert an item of the same request at once (a confirm
    retried in ten processes): one row is kept, the nine others get
    AlreadyExists. On PostgreSQL all ten transactions are open before any
    inserts; SQLite and memory serialise writers on entry."""
    uow = library_uow(backend)
    user = uuid7()
    candidates = [item(user, request_id="conversation:race") for _ in range(10)]
    together = asyncio.Barrier(len(candidates)) if backend.name == "postgres" else None

    async def insert(candidate: ContentItem) -> uuid.UUID:
        async with uow() as w:
            await w.items.count_created_since(user, T0)  # opens the transaction
            if together is not None:
                await together.wait()
            await w.items.add(candidate)
            await w.commit()
        return candidate.id

    async with asyncio.timeout(30):
        results = await asyncio.gather(*(insert(c) for c in candidates),
                                       return_exceptions=True)
    won = [r for r in results if isinstance(r, uuid.UUID)]
    lost = [r for r in results if isinstance(r, AlreadyExists)]
    assert len(won) == 1 and len(lost) == 9, results
    async with uow(read_only=True) as r:
        stored = await r.items.get_by_request("conversation:race")
        assert stored is not None and stored.id == won[0]
        assert [i.id for i in await r.items.list_for_user(
            user, content_type=None, before=None, limit=100)] == won


# --- audio renders ------------------------------------------------------------------


def render(content_id: uuid.UUID | None = None, version: int = 1, **changes: Any) -> Render:
    values: dict[str, Any] = {
        "content_id": content_id or uuid7(), "version": version, "user_id": uuid7(),
        "object_key": "audio/u/c/1.mp3", "mime_type": "audio/mpeg", "duration_ms": 180_250,
        "size": 1_442_001, "render_ms": 3_120, "created_at": T0}
    values.update(changes)
    return Render(**values)


async def test_renders_are_recorded_once_per_content_and_version(backend: Backend) -> None:
    uow = audio_uow(backend)
    first = render(created_at=datetime(2025, 3, 1, 13, 0, 0, 1, tzinfo=UTC))
    second = render(first.content_id, 2, object_key="audio/u/c/2.mp3")
    async with uow() as w:
        assert await w.renders.get(first.content_id, 1) is None
        assert await w.renders.add(first) is True
        assert await w.renders.add(first) is False
        await w.commit()
    async with uow() as w:
        # Another delivery of the same job: refused, the first render stays.
        assert await w.renders.add(render(first.content_id, 1, object_key="other",
                                          size=1)) is False
        assert await w.renders.add(second) is True
        await w.commit()
    async with uow(read_only=True) as r:
        assert await r.renders.get(first.content_id, 1) == first
        assert await r.renders.get(first.content_id, 2) == second
        assert await r.renders.get(first.content_id, 3) is None
        assert await r.renders.get(uuid7(), 1) is None


async def test_a_render_and_its_event_commit_together_or_not_at_all(backend: Backend) -> None:
    uow = audio_uow(backend)
    done = render()
    event = AudioRendered(occurred_at=T0, event_id=event_id(done.content_id, 1, "rendered"),
                          content_id=done.content_id, user_id=done.user_id, version=1,
                          object_key=done.object_key, mime_type=done.mime_type,
                          duration_ms=done.duration_ms, size=done.size, voice="en_US-joe")
    async with uow() as w:
        assert await w.renders.add(done) is True
        await w.outbox.add(event)  # no commit
    async with uow(read_only=True) as r:
        assert await r.renders.get(done.content_id, 1) is None
    assert await outbox_payloads(backend, AudioRendered.topic) == []
    async with uow() as w:
        assert await w.renders.add(done) is True
        await w.outbox.add(event)
        await w.commit()
    async with uow(read_only=True) as r:
        assert await r.renders.get(done.content_id, 1) == done
    payloads = await outbox_payloads(backend, AudioRendered.topic)
    assert [(p["content_id"], p["event_id"]) for p in payloads] == [
        (str(done.content_id), str(event.event_id))]


# --- the archive of conversations ---------------------------------------------------


async def archived_row(backend: Backend, conversation_id: uuid.UUID) -> tuple[Any, ...] | None:
    """(user, state, resulting content) as stored, beside the port's `load`."""
    if backend.store is not None:
        row = backend.store.tables.conversations.get(conversation_id)
        return (row[0], row[1], row[3]) if row else None
    assert backend.engine is not None
    t = conversations
    async with backend.engine.connect() as conn:
        found = (await conn.execute(select(t.c.user_id, t.c.state, t.c.resulting_content_id)
                                    .where(t.c.id == conversation_id))).first()
    return tuple(found) if found else None


async def test_archive_inserts_then_replaces(backend: Backend) -> None:
    store = archive(backend)
    conversation, user, other = uuid7(), uuid7(), uuid7()
    assert await store.load(conversation) is None
    first = {"state": "collecting", "messages": [{"role": "user", "text": "Bonjour, ça va"}],
             "turns": 1, "brief": {"target_minutes": 3.5, "voice": None}}
    await store.save(conversation, user, json.dumps(first).encode(), "collecting", None)
    await store.save(other, user, json.dumps({"other": True}).encode(), "cancelled", None)
    loaded = await store.load(conversation)
    assert loaded is not None and json.loads(loaded) == first
    assert await archived_row(backend, conversation) == (user, "collecting", None)

    content = uuid7()
    second = {**first, "state": "completed", "turns": 5}
    await store.save(conversation, user, json.dumps(second).encode(), "completed", content)
    loaded = await store.load(conversation)
    assert loaded is not None and json.loads(loaded) == second
    assert await archived_row(backend, conversation) == (user, "completed", content)
    other_loaded = await store.load(other)
    assert other_loaded is not None and json.loads(other_loaded) == {"other": True}
    assert await store.load(uuid7()) is None
