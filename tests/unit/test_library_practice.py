"""Practice (PracticeService) and its stats on the memory unit of work and a
clock the test sets: a practice starts on a playable item of the person's
(the play count follows), completes once (a retry with the same values is
the same completion), is abandoned after 24 hours, and is the person's alone;
the stats count local dates, so streaks survive time-zone changes and
daylight-saving days; mood check-ins are averaged and feed the next
creation's brief."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.library.model import (
    ContentItem,
    Mood,
    Practice,
    PracticeCompleted,
    PracticeState,
)
from core.library.practice import ABANDON_AFTER, PracticeService
from core.library.stats import DayActivity, TypeTotals, streaks
from core.shared.creation import ContentType
from core.shared.errors import FailedPrecondition, InvalidArgument, NotFound
from core.shared.ids import uuid7
from tests.unit.fakes import (
    OTHER,
    USER,
    A,
    M,
    R,
    World,
    library_world,
    ready,
    rendering,
    start,
)


@pytest.fixture
def w() -> World:
    return library_world()


@pytest.fixture
def p(w: World) -> PracticeService:
    return PracticeService(w.uow, w.clock)


def local(zone: str, year: int, month: int, day: int, hour: int = 12,
          minute: int = 0) -> datetime:
    """A wall-clock time in `zone`, as the UTC instant the clock reads."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


async def practise(w: World, p: PracticeService, item: ContentItem, at: datetime,
                   zone: str = "UTC", minutes: float = 10.0, *,
                   before: Mood | None = None, after: Mood | None = None) -> Practice:
    """A practice started at `at` in `zone` and completed `minutes` later."""
    w.clock.current = at
    started = await p.start(USER, item.id, time_zone=zone, mood_before=before)
    w.clock.advance(timedelta(minutes=minutes))
    return await p.complete(USER, started.id, minutes * 60, after)


# --- start ------------------------------------------------------------------------------


async def test_start_counts_a_play_and_keeps_where_and_how(w: World,
                                                           p: PracticeService) -> None:
    item = await ready(w, content_type=M)
    assert (item.play_count, item.last_played_at) == (0, None)
    w.clock.current = at = local("Asia/Tokyo", 2026, 1, 11, 0, 30)
    practice = await p.start(USER, item.id, time_zone="Asia/Tokyo", device="  phone ",
                             context="x" * 100, mood_before=Mood(2, "  tired \n and   tense "))
    assert (practice.user_id, practice.content_id, practice.content_type) == (USER, item.id, M)
    assert practice.state is PracticeState.STARTED and practice.started_at == at
    # Half past midnight in Tokyo is still the 10th in UTC: the local date counts.
    assert (practice.time_zone, practice.local_date) == ("Asia/Tokyo", date(2026, 1, 11))
    assert (practice.device, practice.context) == ("phone", "x" * 64)
    assert practice.mood_before == Mood(2, "tired and tense")
    assert await p.get(USER, practice.id) == practice
    stored = await w.item(item.id)
    assert stored is not None and (stored.play_count, stored.last_played_at) == (1, at)
    w.clock.advance(timedelta(hours=2))
    await p.start(USER, item.id)
    stored = await w.item(item.id)
    assert stored is not None and (stored.play_count, stored.last_played_at) == (
        2, at + timedelta(hours=2))


async def test_no_time_zone_is_utc(w: World, p: PracticeService) -> None:
    item = await ready(w)
    w.clock.current = datetime(2026, 1, 10, 23, 30, tzinfo=UTC)
    practice = await p.start(USER, item.id)
    assert (practice.time_zone, practice.local_date) == ("UTC", date(2026, 1, 10))


async def test_start_needs_a_playable_item_of_the_persons(w: World,
                                                          p: PracticeService) -> None:
    item = await ready(w)
    for user, content_id in ((OTHER, item.id), (USER, uuid7())):
        with pytest.raises(NotFound) as missing:
            await p.start(user, content_id)
        assert missing.value.reason == "CONTENT_NOT_FOUND"
    being_made = await rendering(w)
    with pytest.raises(FailedPrecondition) as raised:
        await p.start(USER, being_made.id)
    assert raised.value.reason == "AUDIO_NOT_READY"
    assert w.store.tables.practices == {}
    for untouched in (item, being_made):
        stored = await w.item(untouched.id)
        assert stored is not None and stored.play_count == 0
    # An item whose new version is rendering still plays its current one.
    await w.service.rerender(USER, item.id, "rerender:1", voice="en_GB-alba")
    assert (await p.start(USER, item.id)).content_id == item.id


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "../../etc/passwd", "EST+5", " "])
async def test_an_unknown_time_zone_is_refused(w: World, p: PracticeService,
                                               name: str) -> None:
    item = await ready(w)
    for call in (lambda: p.start(USER, item.id, time_zone=name),
                 lambda: p.stats(USER, name)):
        with pytest.raises(InvalidArgument) as raised:
            await call()
        assert raised.value.reason == "INVALID_TIME_ZONE"
        assert raised.value.metadata == {"field": "time_zone"}
    assert w.store.tables.practices == {}


@pytest.mark.parametrize("score", [0, 6, -1])
async def test_a_mood_is_scored_1_to_5(w: World, p: PracticeService, score: int) -> None:
    item = await ready(w)
    with pytest.raises(InvalidArgument) as raised:
        await p.start(USER, item.id, mood_before=Mood(score))
    assert raised.value.reason == "INVALID_MOOD"
    practice = await p.start(USER, item.id, mood_before=Mood(1))
    with pytest.raises(InvalidArgument) as raised:
        await p.complete(USER, practice.id, 30, Mood(score, "great"))
    assert raised.value.reason == "INVALID_MOOD"
    assert (await p.get(USER, practice.id)).state is PracticeState.STARTED


# --- complete -----------------------------------------------------------------------------


async def test_complete_ends_the_practice_once(w: World, p: PracticeService) -> None:
    item = await ready(w, content_type=R)
    practice = await p.start(USER, item.id, time_zone="Europe/Paris")
    w.clock.advance(timedelta(minutes=12))
    done = await p.complete(USER, practice.id, 600.4444, Mood(4, "light, calm"))
    assert done.state is PracticeState.COMPLETED
    assert (done.completed_at, done.listened_seconds) == (w.clock.now(), 600.444)
    assert done.mood_after == Mood(4, "light, calm")
    assert await p.get(USER, practice.id) == done
    [event] = [e for e in w.uow.codec.encoded.values() if isinstance(e, PracticeCompleted)]
    assert (event.practice_id, event.content_id, event.user_id, event.content_type,
            event.listened_seconds, event.local_date) == (
        practice.id, item.id, USER, R, 600.444, practice.local_date)
    assert len(w.events(PracticeCompleted.topic)) == 1
    # A retry with the same values is the same completion, announced once.
    w.clock.advance(timedelta(minutes=1))
    assert await p.complete(USER, practice.id, 600.4444, Mood(4, "light,   calm")) == done
    assert len(w.events(PracticeCompleted.topic)) == 1
    # Anything else is refused: the practice has ended.
    for seconds, mood in ((300, Mood(4, "light, calm")), (600.4444, Mood(5, "light, calm")),
                          (600.4444, None)):
        with pytest.raises(FailedPrecondition) as raised:
            await p.complete(USER, practice.id, seconds, mood)
        assert raised.value.reason == "PRACTICE_ALREADY_ENDED"
    assert await p.get(USER, practice.id) == done


async def test_listening_is_capped_to_the_time_since_the_start(w: World,
                                                               p: PracticeService) -> None:
    item = await ready(w)
    first = await p.start(USER, item.id)
    w.clock.advance(timedelta(minutes=5))
    assert (await p.complete(USER, first.id, 3_600)).listened_seconds == 360  # 5 min + 60 s
    second = await p.start(USER, item.id)
    w.clock.advance(timedelta(minutes=5))
    assert (await p.complete(USER, second.id, 100)).listened_seconds == 100
    third = await p.start(USER, item.id)
    assert (await p.complete(USER, third.id, 90)).listened_seconds == 60  # the slack alone


async def test_a_retried_completion_whose_listening_was_capped_is_the_same(
        w: World, p: PracticeService) -> None:
    item = await ready(w)
    practice = await p.start(USER, item.id)
    w.clock.advance(timedelta(minutes=5))
    done = await p.complete(USER, practice.id, 3_600)
    assert await p.complete(USER, practice.id, 3_600) == done


@pytest.mark.parametrize("seconds", [-1, 86_401])
async def test_listening_is_0_to_24_hours(w: World, p: PracticeService,
                                         seconds: float) -> None:
    item = await ready(w)
    practice = await p.start(USER, item.id)
    with pytest.raises(InvalidArgument) as raised:
        await p.complete(USER, practice.id, seconds)
    assert raised.value.reason == "INVALID_DURATION"


async def test_a_practice_left_for_24_hours_is_abandoned(w: World, p: PracticeService) -> None:
    item = await ready(w)
    left = await p.start(USER, item.id)
    w.clock.advance(timedelta(minutes=1))
    kept = await p.start(USER, item.id)
    w.clock.advance(ABANDON_AFTER - timedelta(minutes=1))
    # `left` is exactly 24 hours old: not yet abandoned.
    assert (await p.get(USER, left.id)).state is PracticeState.STARTED
    w.clock.advance(timedelta(seconds=1))
    assert (await p.get(USER, left.id)).state is PracticeState.ABANDONED
    assert (await p.get(USER, kept.id)).state is PracticeState.STARTED
    listed, _ = await p.list(USER, 10, None)
    assert [(x.id, x.state) for x in listed] == [(kept.id, PracticeState.STARTED),
                                                 (left.id, PracticeState.ABANDONED)]
    with pytest.raises(FailedPrecondition) as raised:
        await p.complete(USER, left.id, 60)
    assert raised.value.reason == "PRACTICE_ALREADY_ENDED"
    assert (await p.complete(USER, kept.id, 60)).state is PracticeState.COMPLETED
    stats, _ = await p.stats(USER)
    assert (stats.started, stats.completed, stats.abandoned) == (2, 1, 1)


async def test_a_practice_is_the_persons_alone(w: World, p: PracticeService) -> None:
    item = await ready(w)
    practice = await p.start(USER, item.id)
    for call in (lambda: p.get(OTHER, practice.id),
                 lambda: p.complete(OTHER, practice.id, 30),
                 lambda: p.get(USER, uuid7()),
                 lambda: p.complete(USER, uuid7(), 30)):
        with pytest.raises(NotFound) as raised:
            await call()
        assert raised.value.reason == "PRACTICE_NOT_FOUND"
    assert (await p.get(USER, practice.id)).state is PracticeState.STARTED
    assert await p.list(OTHER, 10, None) == ([], None)
    stats, _ = await p.stats(OTHER)
    assert stats.started == 0


async def test_list_pages_newest_first(w: World, p: PracticeService) -> None:
    item = await ready(w)
    made = []
    for _ in range(5):
        made.append(await p.start(USER, item.id))
        w.clock.advance(timedelta(minutes=1))
    page, token = await p.list(USER, 2, None)
    assert [x.id for x in page] == [made[4].id, made[3].id] and token == made[3].id
    page, token = await p.list(USER, 2, token)
    assert [x.id for x in page] == [made[2].id, made[1].id] and token == made[1].id
    page, token = await p.list(USER, 2, token)
    assert [x.id for x in page] == [made[0].id] and token is None


# --- stats ----------------------------------------------------------------------------------


async def test_stats_count_totals_minutes_and_types(w: World, p: PracticeService) -> None:
    affirmation, meditation = await ready(w, content_type=A), await ready(w, content_type=M)
    day = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
    await practise(w, p, affirmation, day, minutes=3)
    await practise(w, p, affirmation, day + timedelta(hours=1), minutes=2.5)
    await practise(w, p, meditation, day + timedelta(hours=2), minutes=20)
    w.clock.current = day + timedelta(hours=3)
    await p.start(USER, meditation.id)  # left: abandoned a day later
    w.clock.advance(timedelta(hours=1))
    await p.start(USER, affirmation.id)  # still going
    stats, zone = await p.stats(USER)
    assert zone == "UTC"
    assert (stats.started, stats.completed, stats.abandoned) == (5, 3, 0)
    assert stats.minutes == 25.5
    assert stats.by_type == (TypeTotals(ContentType.AFFIRMATION, 2, 5.5),
                             TypeTotals(ContentType.GUIDED_MEDITATION, 1, 20.0))
    w.clock.advance(timedelta(hours=23, minutes=1))
    stats, _ = await p.stats(USER)
    assert (stats.started, stats.completed, stats.abandoned) == (5, 3, 1)


async def test_streaks_current_and_longest(w: World, p: PracticeService) -> None:
    item = await ready(w)
    today = date(2026, 5, 20)
    # Five days in a row, a gap of a day, then three days up to today; two
    # practices on one day count once.
    days = [today - timedelta(days=n) for n in (10, 9, 8, 7, 6, 2, 1, 0)]
    for day in days:
        await practise(w, p, item, local("Europe/Berlin", day.year, day.month, day.day, 8))
    await practise(w, p, item, local("Europe/Berlin", 2026, 5, 19, 21), "Europe/Berlin")
    w.clock.current = local("Europe/Berlin", 2026, 5, 20, 22)
    stats, _ = await p.stats(USER, "Europe/Berlin")
    assert (stats.current_streak, stats.longest_streak) == (3, 5)


async def test_the_current_streak_runs_through_yesterday_until_a_day_is_missed(
        w: World, p: PracticeService) -> None:
    item = await ready(w)
    for day in (1, 2, 3):
        await practise(w, p, item, local("America/Chicago", 2026, 7, day, 19), "America/Chicago")
    w.clock.current = local("America/Chicago", 2026, 7, 4, 23, 59)  # the 4th is not over
    stats, _ = await p.stats(USER, "America/Chicago")
    assert (stats.current_streak, stats.longest_streak) == (3, 3)
    w.clock.current = local("America/Chicago", 2026, 7, 5, 0, 1)  # the 4th was missed
    stats, _ = await p.stats(USER, "America/Chicago")
    assert (stats.current_streak, stats.longest_streak) == (0, 3)
    await practise(w, p, item, w.clock.now(), "America/Chicago")
    stats, _ = await p.stats(USER, "America/Chicago")
    assert (stats.current_streak, stats.longest_streak) == (1, 3)


def test_streaks_on_dates() -> None:
    d = date(2026, 3, 1)
    assert streaks(set(), d) == (0, 0)
    assert streaks({d}, d) == (1, 1)
    assert streaks({d - timedelta(days=1)}, d) == (1, 1)
    assert streaks({d - timedelta(days=2)}, d) == (0, 1)
    # Across the end of February (2026 is not a leap year) and of a year.
    feb = {date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1)}
    assert streaks(feb, d) == (3, 3)
    new_year = {date(2025, 12, 30), date(2025, 12, 31), date(2026, 1, 1)}
    assert streaks(new_year, date(2026, 1, 2)) == (3, 3)


async def test_a_flight_west_to_east_neither_breaks_nor_doubles_a_day(
        w: World, p: PracticeService) -> None:
    """23:30 on the 10th in Los Angeles is the 11th in UTC and in Tokyo; the
    next practice, on the 11th in Tokyo, is the next local day: two days, a
    streak of two (by UTC dates it would be one day)."""
    item = await ready(w)
    await practise(w, p, item, local("America/Los_Angeles", 2026, 1, 10, 23, 30),
                   "America/Los_Angeles")
    await practise(w, p, item, local("Asia/Tokyo", 2026, 1, 11, 22, 0), "Asia/Tokyo")
    await practise(w, p, item, local("Asia/Tokyo", 2026, 1, 12, 7, 0), "Asia/Tokyo")
    w.clock.current = local("Asia/Tokyo", 2026, 1, 12, 20, 0)
    stats, zone = await p.stats(USER)  # today where the latest practice was
    assert zone == "Asia/Tokyo"
    assert (stats.current_streak, stats.longest_streak) == (3, 3)
    assert [(d.date, d.completed) for d in stats.last_7_days[-3:]] == [
        (date(2026, 1, 10), 1), (date(2026, 1, 11), 1), (date(2026, 1, 12), 1)]


async def test_a_flight_east_to_west_counts_a_day_once(w: World, p: PracticeService) -> None:
    """08:00 on the 10th in Tokyo (the 9th in UTC) then 20:00 on the 10th in
    Los Angeles (the 11th in UTC): one local day, practised twice."""
    item = await ready(w)
    await practise(w, p, item, local("Asia/Tokyo", 2026, 1, 10, 8, 0), "Asia/Tokyo")
    await practise(w, p, item, local("America/Los_Angeles", 2026, 1, 10, 20, 0),
                   "America/Los_Angeles")
    await practise(w, p, item, local("America/Los_Angeles", 2026, 1, 11, 20, 0),
                   "America/Los_Angeles")
    w.clock.current = local("America/Los_Angeles", 2026, 1, 11, 21, 0)
    stats, zone = await p.stats(USER)
    assert zone == "America/Los_Angeles"
    assert (stats.current_streak, stats.longest_streak) == (2, 2)
    assert [(d.date, d.completed) for d in stats.last_7_days[-3:]] == [
        (date(2026, 1, 9), 0), (date(2026, 1, 10), 2), (date(2026, 1, 11), 1)]


@pytest.mark.parametrize(("zone", "day"), [
    ("Europe/Paris", date(2026, 3, 29)),       # 23 hours
    ("Europe/Paris", date(2026, 10, 25)),      # 25 hours
    ("America/New_York", date(2026, 3, 8)),    # 23 hours
    ("America/New_York", date(2026, 11, 1)),   # 25 hours
])
async def test_a_daylight_saving_day_is_one_day(w: World, p: PracticeService, zone: str,
                                                day: date) -> None:
    """00:30 and 23:30 local on the day before, the day itself and the day
    after: three days of two practices each, a streak of three, whatever the
    days' lengths in hours."""
    item = await ready(w)
    days = [day - timedelta(days=1), day, day + timedelta(days=1)]
    for d in days:
        for hour, minute in ((0, 30), (23, 30)):
            done = await practise(w, p, item, local(zone, d.year, d.month, d.day, hour, minute),
                                  zone, minutes=5)
            assert done.local_date == d
    hours = (local(zone, day.year, day.month, day.day + 1, 0)
             - local(zone, day.year, day.month, day.day, 0)) / timedelta(hours=1)
    assert hours in (23, 25)  # the day really is a daylight-saving day
    w.clock.current = local(zone, days[-1].year, days[-1].month, days[-1].day, 23, 50)
    stats, used = await p.stats(USER, zone)
    assert used == zone
    assert (stats.current_streak, stats.longest_streak) == (3, 3)
    assert stats.last_7_days[-3:] == tuple(DayActivity(d, 2, 10.0) for d in days)
    assert stats.last_7_days[-4].completed == 0
    # Seen from the next morning (the day after is over): still three.
    w.clock.current = local(zone, days[-1].year, days[-1].month, days[-1].day + 1, 9)
    stats, _ = await p.stats(USER, zone)
    assert stats.current_streak == 3


async def test_the_day_series_end_today_oldest_first(w: World, p: PracticeService) -> None:
    item = await ready(w)
    zone = "Australia/Sydney"
    today = date(2026, 4, 15)
    for ago, minutes in ((0, 4.0), (0, 6.123), (6, 1.0), (7, 2.0), (29, 3.0), (30, 5.0)):
        d = today - timedelta(days=ago)
        await practise(w, p, item, local(zone, d.year, d.month, d.day, 7), zone, minutes)
    w.clock.current = local(zone, 2026, 4, 15, 18)
    stats, _ = await p.stats(USER, zone)
    week, month = stats.last_7_days, stats.last_30_days
    assert len(week) == 7 and len(month) == 30
    assert [d.date for d in week] == [today - timedelta(days=n) for n in range(6, -1, -1)]
    assert [d.date for d in month] == [today - timedelta(days=n) for n in range(29, -1, -1)]
    assert week[-1] == DayActivity(today, 2, 10.12)
    assert week[0] == DayActivity(today - timedelta(days=6), 1, 1.0)
    assert sum(d.completed for d in week) == 3
    assert month[0] == DayActivity(today - timedelta(days=29), 1, 3.0)
    assert sum(d.completed for d in month) == 5  # the practice 30 days ago is outside
    assert month[-7:] == week
    assert stats.completed == 6 and stats.minutes == 21.12
    # Asked from another zone, "today" is that zone's (Sydney's evening of the
    # 15th is the 15th's morning in London).
    stats, _ = await p.stats(USER, "Europe/London")
    assert stats.last_7_days[-1].date == today


async def test_moods_are_averaged_and_their_words_counted(w: World,
                                                          p: PracticeService) -> None:
    item = await ready(w)
    at = datetime(2026, 6, 1, 8, tzinfo=UTC)
    await practise(w, p, item, at, before=Mood(2, "tense"), after=Mood(4, "Calm, light."))
    await practise(w, p, item, at + timedelta(hours=2), before=Mood(3),
                   after=Mood(5, "calm and rested"))
    await practise(w, p, item, at + timedelta(hours=4), after=Mood(3, "calm"))
    await practise(w, p, item, at + timedelta(hours=6), before=Mood(1))
    stats, _ = await p.stats(USER)
    assert stats.average_mood_before == 2.0  # (2 + 3 + 1) / 3
    assert stats.average_mood_after == 4.0  # (4 + 5 + 3) / 3
    assert stats.average_mood_change == 2.0  # (+2, +2): pairs only
    assert stats.mood_words[0] == "calm"
    assert set(stats.mood_words) == {"calm", "light", "and", "rested"}
    empty, _ = await p.stats(OTHER)
    assert (empty.average_mood_before, empty.average_mood_change, empty.mood_words) == (
        0.0, 0.0, ())
    assert (empty.current_streak, len(empty.last_7_days), len(empty.last_30_days)) == (0, 7, 30)


async def test_recent_moods_are_folded_into_the_next_brief(w: World,
                                                           p: PracticeService) -> None:
    item = await ready(w)
    at = datetime(2026, 6, 1, 8, tzinfo=UTC)
    await practise(w, p, item, at, before=Mood(1, "awful"))  # the oldest: not among the 3
    await practise(w, p, item, at + timedelta(hours=1), after=Mood(4, "calm"))
    await practise(w, p, item, at + timedelta(hours=2), before=Mood(2, "tired"),
                   after=Mood(5, "rested"))
    await practise(w, p, item, at + timedelta(hours=3), before=Mood(4, "calm"))
    await practise(w, p, item, at + timedelta(hours=4))  # no check-in
    w.clock.advance(timedelta(hours=1))
    fresh = await start(w, situation="a big week")
    await w.service.write_text(fresh.id)
    brief = w.writer.calls[-1][2]
    # After (or else before) of the latest three: 4, 5, 4 -> good.
    assert brief.situation == "a big week; lately they have felt good (calm, rested)"
    assert brief.intent == fresh.brief.intent
    # Another person's check-ins are not theirs.
    other = await w.service.start_creation(OTHER, "conversation:other", fresh.brief)
    await w.service.write_text(other.id)
    assert w.writer.calls[-1][2].situation == "a big week"


@pytest.mark.parametrize(("scores", "feeling"), [((1, 2, 3), "low"), ((3, 3, 4), "steady"),
                                                  ((3, 4, 4), "good")])
async def test_the_feeling_told_follows_the_average(w: World, p: PracticeService,
                                                    scores: tuple[int, ...],
                                                    feeling: str) -> None:
    item = await ready(w)
    at = datetime(2026, 6, 1, 8, tzinfo=UTC)
    for n, score in enumerate(scores):
        await practise(w, p, item, at + timedelta(hours=n), after=Mood(score))
    fresh = await start(w)
    await w.service.write_text(fresh.id)
    assert w.writer.calls[-1][2].situation == f"lately they have felt {feeling}"
