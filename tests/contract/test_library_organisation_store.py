"""The library's newer repositories, for every adapter (memory, SQLite,
PostgreSQL): tags and folders of items, the audio details (report and
captions) of the playable version, practices, share links and listening
preferences, and what deleting an item takes with it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from core.library.model import (
    AudioDetails,
    Folder,
    ListeningPreferences,
    Mood,
    Practice,
    PracticeState,
    Share,
)
from core.shared.audio import CaptionCue, Measurement, Silence
from core.shared.creation import ContentType
from core.shared.errors import AlreadyExists
from core.shared.ids import uuid7
from tests.contract.conftest import Backend
from tests.contract.test_library_store import T0, add, get, item, library_uow


async def test_tags_filter_count_and_follow_saves(backend: Backend) -> None:
    uow = library_uow(backend)
    me, other = uuid7(), uuid7()
    first = item(me, tags=["sleep", "calm"])
    second = item(me, tags=["sleep"])
    theirs = item(other, tags=["sleep"])
    await add(uow, first, second, theirs)
    async with uow(read_only=True) as w:
        assert await w.items.tag_counts(me) == {"sleep": 2, "calm": 1}
        tagged = await w.items.list_for_user(me, content_type=None, before=None, limit=10,
                                             tag="sleep")
        assert [i.id for i in tagged] == [second.id, first.id]
        assert [i.id for i in await w.items.list_for_user(
            me, content_type=None, before=None, limit=10, tag="calm")] == [first.id]
        assert {i.id for i in await w.items.with_tag(me, "sleep")} == {first.id, second.id}
    async with uow() as w:
        changed = await w.items.get_for_update(first.id)
        changed.tags = ["rest"]
        await w.items.save(changed)
        await w.commit()
    async with uow(read_only=True) as w:
        assert await w.items.tag_counts(me) == {"sleep": 1, "rest": 1}
        assert await w.items.tag_counts(other) == {"sleep": 1}


async def test_folders_are_unique_per_person_whatever_the_case(backend: Backend) -> None:
    uow = library_uow(backend)
    me, other = uuid7(), uuid7()
    evenings = Folder(uuid7(), me, "Evenings", T0)
    async with uow() as w:
        await w.folders.add(evenings)
        await w.folders.add(Folder(uuid7(), other, "Evenings", T0))  # another person's
        await w.folders.add(Folder(uuid7(), me, "mornings", T0))
        await w.commit()
    async with uow() as w:
        with pytest.raises(AlreadyExists):
            await w.folders.add(Folder(uuid7(), me, "EVENINGS", T0))
        # the unit of work goes on after the refusal
        assert [f.display_name for f in await w.folders.list_for_user(me)] == [
            "Evenings", "mornings"]
        renamed = await w.folders.get(evenings.id)
        renamed.display_name = "Mornings"
        with pytest.raises(AlreadyExists):
            await w.folders.save(renamed)
        renamed.display_name = "Nights"
        await w.folders.save(renamed)
        await w.commit()
    async with uow(read_only=True) as w:
        assert (await w.folders.get(evenings.id)).display_name == "Nights"


async def test_items_in_folders_counted_listed_and_cleared(backend: Backend) -> None:
    uow = library_uow(backend)
    me = uuid7()
    folder = Folder(uuid7(), me, "Sleep", T0)
    inside, outside = item(me, folder_id=folder.id), item(me)
    async with uow() as w:
        await w.folders.add(folder)
        await w.commit()
    await add(uow, inside, outside)
    async with uow() as w:
        assert await w.items.folder_counts(me) == {folder.id: 1}
        assert [i.id for i in await w.items.list_for_user(
            me, content_type=None, before=None, limit=10, folder_id=folder.id)] == [inside.id]
        await w.items.clear_folder(folder.id)
        await w.folders.delete(folder.id)
        await w.commit()
    assert (await get(uow, inside.id)).folder_id is None
    async with uow(read_only=True) as w:
        assert await w.folders.get(folder.id) is None
        assert await w.items.folder_counts(me) == {}


def details(content_id: uuid.UUID, version: int = 1) -> AudioDetails:
    return AudioDetails(
        content_id=content_id, version=version,
        measurements={"mp3": Measurement(300_000, -16.02, -1.9, -1.2),
                      "ogg_opus": Measurement(300_010, -15.98, -2.0, -1.4)},
        silences=(Silence(0, 1_200), Silence(50_000, 62_500)),
        waveform=tuple(round(i / 200, 3) for i in range(200)),
        captions=(CaptionCue(3_000, 5_250, "Breathe in."),
                  CaptionCue(5_600, 7_100, "Let it go — «slowly».")),
        voice="joe", background="rain")


async def test_audio_details_are_replaced_by_the_next_version(backend: Backend) -> None:
    uow = library_uow(backend)
    content = item(uuid7())
    await add(uow, content)
    async with uow() as w:
        assert await w.details.get(content.id) is None
        await w.details.put(details(content.id))
        await w.commit()
    async with uow(read_only=True) as w:
        assert await w.details.get(content.id) == details(content.id)
    async with uow() as w:
        await w.details.put(details(content.id, version=2))
        await w.commit()
    async with uow(read_only=True) as w:
        assert (await w.details.get(content.id)).version == 2


def practice(user: uuid.UUID, content: uuid.UUID, started: datetime, **changes: object,
             ) -> Practice:
    return Practice(id=uuid7(), user_id=user, content_id=content,
                    content_type=ContentType.GUIDED_MEDITATION, started_at=started,
                    time_zone="Europe/Paris", local_date=date(2025, 3, 1), **changes)


async def test_practices_round_trip_list_newest_first_and_moods(backend: Backend) -> None:
    uow = library_uow(backend)
    me, content = uuid7(), uuid7()
    plain = practice(me, content, T0)
    full = practice(me, content, T0 + timedelta(minutes=5), state=PracticeState.COMPLETED,
                    completed_at=T0 + timedelta(minutes=15), listened_seconds=598.25,
                    device="ios 18", context="bed", mood_before=Mood(2, "tense, tired"),
                    mood_after=Mood(4, "lighter"))
    theirs = practice(uuid7(), content, T0)
    async with uow() as w:
        for one in (plain, full, theirs):
            await w.practices.add(one)
        await w.commit()
    async with uow() as w:
        assert await w.practices.get(full.id) == full
        assert await w.practices.get_for_update(plain.id) == plain
        assert await w.practices.get(uuid7()) is None
        assert [p.id for p in await w.practices.list_for_user(me, before=None, limit=10)] == [
            full.id, plain.id]
        assert [p.id for p in await w.practices.list_for_user(me, before=full.id,
                                                              limit=10)] == [plain.id]
        assert [p.id for p in await w.practices.all_for_user(me)] == [plain.id, full.id]
        assert [p.id for p in await w.practices.latest_moods(me, 3)] == [full.id]
        plain.state, plain.completed_at = PracticeState.COMPLETED, T0 + timedelta(hours=1)
        plain.mood_after = Mood(5)
        await w.practices.save(plain)
        await w.commit()
    async with uow(read_only=True) as w:
        stored = await w.practices.get(plain.id)
        assert stored == plain and stored.completed_at.utcoffset() == timedelta(0)


async def test_shares_and_what_deleting_an_item_takes(backend: Backend) -> None:
    uow = library_uow(backend)
    me = uuid7()
    content = item(me, tags=["x"])
    await add(uow, content)
    older = Share(uuid.uuid4(), me, content.id, T0, T0 + timedelta(days=7))
    newer = Share(uuid.uuid4(), me, content.id, T0 + timedelta(hours=1), T0 + timedelta(days=1))
    kept = practice(me, content.id, T0)
    async with uow() as w:
        await w.shares.add(older)
        await w.shares.add(newer)
        await w.details.put(details(content.id))
        await w.practices.add(kept)
        await w.commit()
    async with uow() as w:
        assert [s.id for s in await w.shares.list_for_content(content.id)] == [newer.id,
                                                                              older.id]
        older.revoked_at = datetime(2025, 3, 3, tzinfo=UTC)
        await w.shares.save(older)
        await w.commit()
    async with uow() as w:
        assert await w.shares.get(older.id) == older
        await w.items.delete(content.id)
        await w.commit()
    async with uow(read_only=True) as w:
        assert await w.shares.get(newer.id) is None
        assert await w.details.get(content.id) is None
        assert await w.items.tag_counts(me) == {}
        assert await w.practices.get(kept.id) == kept  # the person's history stays


async def test_listening_preferences_insert_then_replace(backend: Backend) -> None:
    uow = library_uow(backend)
    me = uuid7()
    async with uow() as w:
        assert await w.preferences.get(me) is None
        await w.preferences.put(ListeningPreferences(me, voice="joe", background="rain"))
        await w.commit()
    async with uow() as w:
        assert await w.preferences.get(me) == ListeningPreferences(me, "joe", "rain")
        await w.preferences.put(ListeningPreferences(me, voice="", background="drone"))
        await w.commit()
    async with uow(read_only=True) as w:
        assert await w.preferences.get(me) == ListeningPreferences(me, "", "drone")
