"""How a person organises their library (Organiser and LibraryService on the
memory unit of work): folders, tags, share links and listening preferences,
each the owner's alone; the preferences a new creation takes (a brief's own
choice first, then the person's, then the type's); and a new version of a
ready item (another voice or bed), paid only when it succeeds, the old
version playing until the new one replaces it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from core.library import organiser as organiser_module
from core.library.model import (
    ContentFailed,
    ContentItem,
    ContentReady,
    ItemState,
    ListeningPreferences,
)
from core.library.organiser import (
    DEFAULT_SHARE_TTL,
    MAX_SHARE_TTL,
    MIN_SHARE_TTL,
    Organiser,
)
from core.library.service import UNCHANGED, credits_request, metadata_key
from core.shared.creation import Background
from core.shared.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from core.shared.ids import uuid7
from tests.unit.fakes import (
    OTHER,
    SCRIPT,
    T0,
    USER,
    A,
    M,
    R,
    World,
    library_world,
    ready,
    rendered,
    rendering,
    start,
)


@pytest.fixture
def w() -> World:
    return library_world()


@pytest.fixture
def o(w: World) -> Organiser:
    return Organiser(w.uow, w.clock)


async def move(w: World, item: ContentItem, folder_id: uuid.UUID | None,
               user: uuid.UUID = USER) -> ContentItem:
    return await w.service.update(user, item.id, title=None, tags=None, folder_id=folder_id)


async def tag(w: World, item: ContentItem, *tags: str) -> ContentItem:
    return await w.service.update(USER, item.id, title=None, tags=list(tags))


async def listed(w: World, **filters: object) -> list[uuid.UUID]:
    items, _ = await w.service.list(USER, None, 50, None, **filters)  # type: ignore[arg-type]
    return [i.id for i in items]


# --- folders ------------------------------------------------------------------------------


async def test_folders_are_created_listed_by_name_and_unique_per_person(
        w: World, o: Organiser) -> None:
    morning = await o.create_folder(USER, "  Morning   calm ")
    assert (morning.user_id, morning.display_name, morning.created_at) == (
        USER, "Morning calm", T0)
    sleep = await o.create_folder(USER, "sleep")
    assert [f.display_name for f in await o.folders(USER)] == ["Morning calm", "sleep"]
    for name in ("MORNING CALM", "morning  calm", "Sleep"):
        with pytest.raises(AlreadyExists) as raised:
            await o.create_folder(USER, name)
        assert raised.value.reason == "FOLDER_EXISTS"
    # Another person's names are theirs.
    theirs = await o.create_folder(OTHER, "Sleep")
    assert [f.id for f in await o.folders(OTHER)] == [theirs.id]
    assert {f.id for f in await o.folders(USER)} == {morning.id, sleep.id}


@pytest.mark.parametrize("name", ["", "   ", "x" * 61, "tab\there", "line\nbreak"])
async def test_a_folder_name_is_1_to_60_printable_characters(o: Organiser, name: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await o.create_folder(USER, name)
    assert raised.value.reason == "INVALID_FOLDER_NAME"
    assert await o.folders(USER) == []


async def test_a_person_has_a_limited_number_of_folders(
        o: Organiser, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(organiser_module, "MAX_FOLDERS", 2)
    await o.create_folder(USER, "one")
    await o.create_folder(USER, "two")
    with pytest.raises(FailedPrecondition) as raised:
        await o.create_folder(USER, "three")
    assert raised.value.reason == "TOO_MANY_FOLDERS"
    await o.create_folder(OTHER, "one")


async def test_items_move_into_folders_and_the_list_filters_by_folder(
        w: World, o: Organiser) -> None:
    first, second, third = await ready(w), await ready(w), await ready(w)
    calm, sleep = await o.create_folder(USER, "Calm"), await o.create_folder(USER, "Sleep")
    moved = await move(w, first, calm.id)
    assert moved.folder_id == calm.id
    await move(w, second, calm.id)
    await move(w, third, sleep.id)
    assert await listed(w, folder_id=calm.id) == [second.id, first.id]
    assert await listed(w, folder_id=sleep.id) == [third.id]
    assert {f.display_name: f.item_count for f in await o.folders(USER)} == {
        "Calm": 2, "Sleep": 1}
    # Leaving the folder as it is, moving out of any, and into another.
    kept = await w.service.update(USER, first.id, title="Renamed", tags=None,
                                  folder_id=UNCHANGED)
    assert kept.folder_id == calm.id
    await w.service.update(USER, first.id, title=None, tags=None)  # UNCHANGED by default
    assert (await w.service.get(USER, first.id)).folder_id == calm.id
    assert (await move(w, first, None)).folder_id is None
    await move(w, second, sleep.id)
    assert await listed(w, folder_id=calm.id) == []
    assert await listed(w, folder_id=sleep.id) == [third.id, second.id]
    assert len(await listed(w)) == 3


async def test_another_persons_folder_is_not_found(w: World, o: Organiser) -> None:
    item = await ready(w)
    theirs = await o.create_folder(OTHER, "Theirs")
    for call in (lambda: move(w, item, theirs.id),
                 lambda: move(w, item, uuid7()),
                 lambda: w.service.list(USER, None, 10, None, folder_id=theirs.id),
                 lambda: o.rename_folder(USER, theirs.id, "Mine"),
                 lambda: o.delete_folder(USER, theirs.id),
                 lambda: o.delete_folder(USER, uuid7())):
        with pytest.raises(NotFound) as raised:
            await call()
        assert raised.value.reason == "FOLDER_NOT_FOUND"
    assert (await w.item(item.id)).folder_id is None  # type: ignore[union-attr]
    assert [f.display_name for f in await o.folders(OTHER)] == ["Theirs"]
    # And nobody moves another person's item.
    mine = await o.create_folder(USER, "Mine")
    with pytest.raises(NotFound) as raised:
        await move(w, item, mine.id, user=OTHER)
    assert raised.value.reason == "CONTENT_NOT_FOUND"


async def test_a_folder_is_renamed_but_not_onto_another(w: World, o: Organiser) -> None:
    item = await ready(w)
    calm, sleep = await o.create_folder(USER, "Calm"), await o.create_folder(USER, "Sleep")
    await move(w, item, calm.id)
    renamed = await o.rename_folder(USER, calm.id, "  Deep   calm ")
    assert (renamed.id, renamed.display_name, renamed.item_count) == (calm.id, "Deep calm", 1)
    assert (await o.rename_folder(USER, calm.id, "DEEP CALM")).display_name == "DEEP CALM"
    with pytest.raises(AlreadyExists) as raised:
        await o.rename_folder(USER, calm.id, "sleep")
    assert raised.value.reason == "FOLDER_EXISTS"
    with pytest.raises(InvalidArgument):
        await o.rename_folder(USER, sleep.id, " ")
    assert [f.display_name for f in await o.folders(USER)] == ["DEEP CALM", "Sleep"]


async def test_deleting_a_folder_keeps_its_items_in_no_folder(w: World, o: Organiser) -> None:
    first, second = await ready(w), await ready(w)
    calm, sleep = await o.create_folder(USER, "Calm"), await o.create_folder(USER, "Sleep")
    await move(w, first, calm.id)
    await move(w, second, sleep.id)
    await o.delete_folder(USER, calm.id)
    assert [f.id for f in await o.folders(USER)] == [sleep.id]
    stored = await w.item(first.id)
    assert stored is not None and stored.folder_id is None and stored.state is ItemState.READY
    assert (await w.item(second.id)).folder_id == sleep.id  # type: ignore[union-attr]
    assert len(await listed(w)) == 2
    with pytest.raises(NotFound):
        await w.service.list(USER, None, 10, None, folder_id=calm.id)
    # The name is free again.
    again = await o.create_folder(USER, "calm")
    assert {f.display_name: f.item_count for f in await o.folders(USER)} == {
        "calm": 0, "Sleep": 1}
    assert again.id != calm.id


# --- tags -----------------------------------------------------------------------------------


async def test_tags_are_counted_and_filter_the_list(w: World, o: Organiser) -> None:
    first, second, third = await ready(w), await ready(w), await ready(w)
    await tag(w, first, "work", "calm")
    await tag(w, second, "Calm", "sleep")
    await tag(w, third, "work")
    theirs = await ready(w, user=OTHER)
    await w.service.update(OTHER, theirs.id, title=None, tags=["work"])
    assert await o.tags(USER) == {"calm": 1, "Calm": 1, "sleep": 1, "work": 2}
    assert list(await o.tags(USER)) in (["calm", "Calm", "sleep", "work"],
                                        ["Calm", "calm", "sleep", "work"])
    assert await listed(w, tag="work") == [third.id, first.id]
    assert await listed(w, tag="sleep") == [second.id]
    assert await listed(w, tag="nothing") == []
    assert await o.tags(OTHER) == {"work": 1}


async def test_renaming_a_tag_merges_it_with_one_already_there(w: World, o: Organiser) -> None:
    first, second = await ready(w), await ready(w)
    await tag(w, first, "work", "calm", "focus")
    await tag(w, second, "work")
    theirs = await ready(w, user=OTHER)
    await w.service.update(OTHER, theirs.id, title=None, tags=["work"])
    counts = await o.rename_tag(USER, "  work ", "calm")
    assert counts == {"calm": 2, "focus": 1}
    assert (await w.item(first.id)).tags == ["calm", "focus"]  # type: ignore[union-attr]
    assert (await w.item(second.id)).tags == ["calm"]  # type: ignore[union-attr]
    assert await o.tags(OTHER) == {"work": 1}  # another person's tag is theirs
    assert await o.rename_tag(USER, "focus", "Deep   focus") == {"calm": 2, "Deep focus": 1}


async def test_deleting_a_tag_takes_it_off_every_item(w: World, o: Organiser) -> None:
    first, second = await ready(w), await ready(w)
    await tag(w, first, "work", "calm")
    await tag(w, second, "work")
    assert await o.delete_tag(USER, "work") == {"calm": 1}
    assert (await w.item(first.id)).tags == ["calm"]  # type: ignore[union-attr]
    assert (await w.item(second.id)).tags == []  # type: ignore[union-attr]
    for call in (lambda: o.delete_tag(USER, "work"),
                 lambda: o.rename_tag(USER, "nothing", "else"),
                 lambda: o.delete_tag(OTHER, "calm")):
        with pytest.raises(NotFound) as raised:
            await call()
        assert raised.value.reason == "TAG_NOT_FOUND"
    for bad in ("", "   ", "x" * 41):
        with pytest.raises(InvalidArgument) as invalid:
            await o.rename_tag(USER, "calm", bad)
        assert invalid.value.reason == "INVALID_TAG"
    assert await o.tags(USER) == {"calm": 1}


# --- shares -----------------------------------------------------------------------------------


async def test_a_share_opens_the_item_until_it_expires(w: World, o: Organiser) -> None:
    item = await ready(w)
    share = await o.create_share(USER, item.id)
    assert (share.user_id, share.content_id, share.created_at, share.expires_at) == (
        USER, item.id, T0, T0 + DEFAULT_SHARE_TTL)
    assert share.id.version == 4  # random: not guessable from another link
    opened, shown = await o.open_share(share.id)
    assert (opened, shown) == (share, item)
    w.clock.advance(DEFAULT_SHARE_TTL - timedelta(seconds=1))
    await o.open_share(share.id)
    w.clock.advance(timedelta(seconds=1))
    with pytest.raises(FailedPrecondition) as raised:
        await o.open_share(share.id)
    assert raised.value.reason == "SHARE_ENDED"
    with pytest.raises(NotFound) as missing:
        await o.open_share(uuid.uuid4())
    assert missing.value.reason == "SHARE_NOT_FOUND"


@pytest.mark.parametrize("ttl", [MIN_SHARE_TTL, timedelta(hours=5), MAX_SHARE_TTL])
async def test_a_share_lasts_a_minute_to_30_days(w: World, o: Organiser,
                                                 ttl: timedelta) -> None:
    item = await ready(w)
    assert (await o.create_share(USER, item.id, ttl)).expires_at == T0 + ttl


@pytest.mark.parametrize("ttl", [timedelta(seconds=59), MAX_SHARE_TTL + timedelta(seconds=1),
                                 timedelta(seconds=-5)])
async def test_a_share_of_any_other_length_is_refused(w: World, o: Organiser,
                                                      ttl: timedelta) -> None:
    item = await ready(w)
    with pytest.raises(InvalidArgument) as raised:
        await o.create_share(USER, item.id, ttl)
    assert raised.value.reason == "INVALID_TTL"
    assert await o.shares(USER, item.id) == []


async def test_only_the_owner_shares_a_playable_item(w: World, o: Organiser) -> None:
    item = await ready(w)
    for user, content_id in ((OTHER, item.id), (USER, uuid7())):
        with pytest.raises(NotFound) as missing:
            await o.create_share(user, content_id)
        assert missing.value.reason == "CONTENT_NOT_FOUND"
    with pytest.raises(NotFound):
        await o.shares(OTHER, item.id)
    being_made = await rendering(w)
    with pytest.raises(FailedPrecondition) as raised:
        await o.create_share(USER, being_made.id)
    assert raised.value.reason == "AUDIO_NOT_READY"
    assert w.store.tables.shares == {}


async def test_a_revoked_share_ends_at_once(w: World, o: Organiser) -> None:
    item = await ready(w)
    first = await o.create_share(USER, item.id)
    w.clock.advance(timedelta(minutes=1))
    second = await o.create_share(USER, item.id)
    assert [s.id for s in await o.shares(USER, item.id)] == [second.id, first.id]
    with pytest.raises(NotFound) as raised:  # nobody else revokes it
        await o.revoke_share(OTHER, first.id)
    assert raised.value.reason == "SHARE_NOT_FOUND"
    await o.open_share(first.id)
    w.clock.advance(timedelta(minutes=1))
    revoked_at = w.clock.now()
    await o.revoke_share(USER, first.id)
    with pytest.raises(FailedPrecondition) as ended:
        await o.open_share(first.id)
    assert ended.value.reason == "SHARE_ENDED"
    await o.open_share(second.id)  # the other link still works
    w.clock.advance(timedelta(minutes=1))
    await o.revoke_share(USER, first.id)  # again: nothing changes
    [_, kept] = await o.shares(USER, item.id)
    assert kept.revoked_at == revoked_at
    with pytest.raises(NotFound):
        await o.revoke_share(USER, uuid.uuid4())


async def test_deleting_the_item_ends_its_shares(w: World, o: Organiser) -> None:
    item = await ready(w)
    share = await o.create_share(USER, item.id)
    await w.service.delete(USER, item.id)
    with pytest.raises(NotFound):
        await o.open_share(share.id)


# --- listening preferences -------------------------------------------------------------------


async def test_preferences_start_empty_and_are_updated(o: Organiser) -> None:
    assert await o.preferences(USER) == ListeningPreferences(USER, "", "")
    updated = await o.update_preferences(USER, voice="  en_GB-alba ", background_name="rain")
    assert updated == ListeningPreferences(USER, "en_GB-alba", "rain")
    assert await o.preferences(USER) == updated
    # None leaves a choice as it is; "" clears it.
    assert await o.update_preferences(USER, voice=None, background_name="drone") == \
        ListeningPreferences(USER, "en_GB-alba", "drone")
    assert await o.update_preferences(USER, voice="", background_name=None) == \
        ListeningPreferences(USER, "", "drone")
    assert await o.update_preferences(USER, voice=None, background_name="") == \
        ListeningPreferences(USER, "", "")
    assert await o.preferences(OTHER) == ListeningPreferences(OTHER)


@pytest.mark.parametrize("name", ["waves", "RAIN", " rain"])
async def test_an_unknown_background_is_refused(o: Organiser, name: str) -> None:
    await o.update_preferences(USER, voice="v", background_name="drone")
    with pytest.raises(InvalidArgument) as raised:
        await o.update_preferences(USER, voice="other", background_name=name)
    assert raised.value.reason == "INVALID_BACKGROUND"
    assert raised.value.metadata == {"field": "background"}
    assert await o.preferences(USER) == ListeningPreferences(USER, "v", "drone")


@pytest.mark.parametrize(("content_type", "bed"), [(A, "none"), (M, "rain"), (R, "drone")])
async def test_without_preferences_a_creation_takes_the_types_bed(
        w: World, content_type: object, bed: str) -> None:
    item = await start(w, content_type=content_type)
    assert (item.voice, item.background) == ("en_US-default", bed)


async def test_a_creation_takes_the_persons_preferences(w: World, o: Organiser) -> None:
    await o.update_preferences(USER, voice="en_GB-alba", background_name="brown_noise")
    item = await start(w, content_type=M)
    assert (item.voice, item.background) == ("en_GB-alba", "brown_noise")
    await w.service.write_text(item.id)
    assert w.renders.requests[-1][4:] == ("en_GB-alba", 1.0, "brown_noise")
    # A brief's own choice wins over the preferences.
    own = await start(w, content_type=M, voice="en_US-amy", background=Background.NONE)
    assert (own.voice, own.background) == ("en_US-amy", "none")
    # Another person's preferences are not theirs.
    theirs = await start(w, user=OTHER, content_type=M)
    assert (theirs.voice, theirs.background) == ("en_US-default", "rain")


async def test_a_preferred_voice_alone_keeps_the_types_bed(w: World, o: Organiser) -> None:
    await o.update_preferences(USER, voice="en_GB-alba", background_name=None)
    item = await start(w, content_type=R)
    assert (item.voice, item.background) == ("en_GB-alba", "drone")
    await o.update_preferences(USER, voice="", background_name="rain")
    item = await start(w, content_type=A)
    assert (item.voice, item.background) == ("en_US-default", "rain")


# --- a new version ------------------------------------------------------------------------------


async def test_a_new_version_replaces_the_old_one_and_is_paid_once(w: World) -> None:
    item = await ready(w)  # 1 credit spent of 5
    await w.service.playback(USER, item.id)  # cached
    deleted = list(w.audio.deleted)
    w.clock.advance(timedelta(minutes=5))
    again = await w.service.rerender(USER, item.id, "rerender:1", voice="en_GB-alba",
                                     background=Background.RAIN)
    assert again.state is ItemState.RENDERING_AUDIO
    assert (again.version, again.audio_version, again.voice, again.background) == (
        2, 1, "en_GB-alba", "rain")
    assert again.render_started_at == T0 + timedelta(minutes=5)
    assert again.hold_id is not None and w.credits.holds[again.hold_id].amount == 1
    assert w.credits.calls[-1] == ("reserve", credits_request("reserve", item.id, 2))
    assert (w.credits.balances[USER], w.credits.held(USER)) == (4, 1)
    assert w.renders.requests[-1] == (item.id, USER, 2, SCRIPT, "en_GB-alba", 1.0, "rain")
    # A retry of the same request is the same version.
    assert await w.service.rerender(USER, item.id, "rerender:1", voice="x") == again
    assert w.credits.count("reserve") == 2 and len(w.renders.requests) == 2
    # The old version plays meanwhile, from the cache and from the store.
    assert (await w.service.playback(USER, item.id)).url.endswith("/1.mp3?ttl=900")
    await w.cache.delete(metadata_key(item.id))
    assert (await w.service.playback(USER, item.id)).url.endswith("/1.mp3?ttl=900")

    await rendered(w, again, version=2)
    stored = await w.item(item.id)
    assert stored is not None and stored.state is ItemState.READY
    assert (stored.version, stored.audio_version) == (2, 2)
    assert stored.audio_key == f"audio/{USER}/{item.id}/2.mp3"
    assert set(stored.renditions) == {"mp3", "ogg_opus"}
    assert w.credits.spent[-1] == (USER, 1, credits_request("commit", item.id, 2))
    assert (w.credits.balances[USER], w.credits.held(USER)) == (3, 0)
    # The replaced version stays (a cached URL may still name it); the preview goes.
    assert w.audio.deleted == [*deleted, f"audio/{USER}/{item.id}/2.preview"]
    assert (await w.service.playback(USER, item.id)).url.endswith("/2.mp3?ttl=900")
    _, found = await w.service.details(USER, item.id)
    assert (found.version, found.voice, found.background) == (2, "en_GB-alba", "rain")
    assert len(w.events(ContentReady.topic)) == 2
    # Delivered again: nothing more is spent or deleted.
    await rendered(w, again, version=2)
    assert len(w.credits.spent) == 2 and len(w.audio.deleted) == len(deleted) + 1


async def test_a_failed_new_version_keeps_the_old_one_playing(w: World) -> None:
    item = await ready(w)
    again = await w.service.rerender(USER, item.id, "rerender:1", voice="en_GB-alba")
    await w.service.preview_ready(item.id, 2, f"audio/{USER}/{item.id}/2.preview.mp3", 5_000)
    assert not (await w.service.playback(USER, item.id)).preview  # the old one, whole
    await w.service.audio_failed(item.id, 2, "SPEECH_FAILED")
    stored = await w.item(item.id)
    assert stored is not None and stored.state is ItemState.READY
    assert (stored.version, stored.audio_version, stored.audio_key) == (
        2, 1, item.audio_key)
    assert stored.render_failure_reason == "AUDIO_RENDERING_FAILED"
    assert (stored.preview_key, stored.failure_reason) == ("", "")
    assert again.hold_id is not None and w.credits.holds[again.hold_id].state == "released"
    assert (w.credits.balances[USER], w.credits.available(USER)) == (4, 4)
    assert w.events(ContentFailed.topic) == []
    played = await w.service.playback(USER, item.id)
    assert played.url.endswith("/1.mp3?ttl=900") and not played.preview
    # A late render of the failed version changes nothing.
    await rendered(w, again, version=2)
    assert await w.item(item.id) == stored and len(w.credits.spent) == 1
    # The next version is 3: a version number is never used twice.
    third = await w.service.rerender(USER, item.id, "rerender:2", voice="en_GB-alba")
    assert third.version == 3
    assert w.credits.calls[-1] == ("reserve", credits_request("reserve", item.id, 3))
    await rendered(w, third, version=3)
    stored = await w.item(item.id)
    assert stored is not None and (stored.audio_version, stored.render_failure_reason) == (
        3, "")
    assert f"audio/{USER}/{item.id}/1." not in w.audio.deleted  # the one just replaced
    fourth = await w.service.rerender(USER, item.id, "rerender:3", voice="en_GB-alba")
    await rendered(w, fourth, version=4)
    # Now every version before the replaced one (3) goes, the failed 2 included.
    assert {f"audio/{USER}/{item.id}/1.", f"audio/{USER}/{item.id}/2."} <= set(
        w.audio.deleted)
    assert f"audio/{USER}/{item.id}/3." not in w.audio.deleted


async def test_a_new_version_stuck_past_its_deadline_fails_back_to_the_old(w: World) -> None:
    item = await ready(w)
    w.clock.advance(timedelta(hours=2))  # the item itself is old; the deadline counts anew
    await w.service.rerender(USER, item.id, "rerender:1", background=Background.DRONE)
    w.clock.advance(timedelta(minutes=10))
    await w.service.resume_stale(idle=timedelta(minutes=5), deadline=timedelta(minutes=30))
    assert (await w.item(item.id)).state is ItemState.RENDERING_AUDIO  # type: ignore[union-attr]
    assert w.renders.requests[-1][2] == 2  # asked again
    w.clock.advance(timedelta(minutes=25))
    await w.service.resume_stale(idle=timedelta(minutes=5), deadline=timedelta(minutes=30))
    stored = await w.item(item.id)
    assert stored is not None and stored.state is ItemState.READY
    assert (stored.audio_version, stored.render_failure_reason) == (1, "CREATION_TIMED_OUT")
    assert w.credits.available(USER) == 4


async def test_a_new_version_needs_a_ready_item_not_busy(w: World) -> None:
    item = await ready(w)
    await w.service.rerender(USER, item.id, "rerender:1", voice="en_GB-alba")
    with pytest.raises(FailedPrecondition) as raised:
        await w.service.rerender(USER, item.id, "rerender:2", voice="en_US-amy")
    assert raised.value.reason == "CONTENT_BUSY"
    being_made = await rendering(w)
    with pytest.raises(FailedPrecondition) as raised:
        await w.service.rerender(USER, being_made.id, "rerender:3")
    assert raised.value.reason == "CONTENT_BUSY"
    failed = await rendering(w)
    await w.service.audio_failed(failed.id, 1, "SPEECH_FAILED")
    with pytest.raises(FailedPrecondition) as raised:
        await w.service.rerender(USER, failed.id, "rerender:4")
    assert raised.value.reason == "AUDIO_NOT_READY"
    with pytest.raises(NotFound):
        await w.service.rerender(OTHER, item.id, "rerender:5")
    with pytest.raises(InvalidArgument) as invalid:
        await w.service.rerender(USER, item.id, "")
    assert invalid.value.reason == "REQUEST_ID_REQUIRED"
    stored = await w.item(item.id)
    assert stored is not None and stored.version == 2 and stored.voice == "en_GB-alba"


async def test_a_new_version_without_credits_leaves_the_item_ready(w: World) -> None:
    item = await ready(w)
    w.credits.balances[USER] = 0  # all spent
    requests = len(w.renders.requests)
    with pytest.raises(FailedPrecondition) as raised:
        await w.service.rerender(USER, item.id, "rerender:1", voice="en_GB-alba")
    assert raised.value.reason == "INSUFFICIENT_CREDITS"
    stored = await w.item(item.id)
    assert stored is not None and stored.state is ItemState.READY
    assert (stored.audio_version, stored.audio_key, stored.renditions) == (
        1, item.audio_key, item.renditions)
    assert stored.render_failure_reason == "INSUFFICIENT_CREDITS"
    assert stored.version == 2  # moved on: never reused
    assert len(w.renders.requests) == requests and w.credits.holds.keys() == {item.hold_id}
    assert (await w.service.playback(USER, item.id)).url.endswith("/1.mp3?ttl=900")
    # Once the person can pay, the same request makes the next version.
    w.credits.grant(USER, 1)
    again = await w.service.rerender(USER, item.id, "rerender:1", voice="en_GB-alba")
    assert (again.state, again.version) == (ItemState.RENDERING_AUDIO, 3)


async def test_a_new_version_without_credits_keeps_the_voice_and_bed(w: World) -> None:
    item = await ready(w, content_type=M)
    w.credits.balances[USER] = 0
    with pytest.raises(FailedPrecondition):
        await w.service.rerender(USER, item.id, "rerender:1", voice="en_GB-alba",
                                 background=Background.DRONE)
    stored = await w.item(item.id)
    assert stored is not None
    assert (stored.voice, stored.background) == (item.voice, item.background)
