"""A person's practice, summed up: totals, minutes, by type, streaks and
activity by day, and how their mood moves.

Days are the person's own: each practice keeps the local date of where it
started (`Practice.local_date`), and "today" is counted in the zone the
caller names. Streaks are runs of consecutive calendar dates, computed on
dates, never on 24-hour spans, so a daylight-saving day (23 or 25 hours) or a
flight across zones neither breaks nor doubles a day.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from core.library.model import PracticeState
from core.shared.creation import ContentType

if TYPE_CHECKING:
    from core.library.model import Practice


@dataclass(frozen=True)
class DayActivity:
    date: date
    completed: int = 0
    minutes: float = 0.0


@dataclass(frozen=True)
class TypeTotals:
    content_type: ContentType
    completed: int = 0
    minutes: float = 0.0


@dataclass(frozen=True)
class PracticeStats:
    started: int = 0
    completed: int = 0
    abandoned: int = 0
    minutes: float = 0.0
    by_type: tuple[TypeTotals, ...] = ()
    current_streak: int = 0
    longest_streak: int = 0
    last_7_days: tuple[DayActivity, ...] = ()
    last_30_days: tuple[DayActivity, ...] = ()
    average_mood_before: float = 0.0
    average_mood_after: float = 0.0
    average_mood_change: float = 0.0
    mood_words: tuple[str, ...] = field(default_factory=tuple)


def streaks(days: set[date], today: date) -> tuple[int, int]:
    """(current, longest) runs of consecutive dates. The current run ends
    today, or yesterday when today has no practice yet (the day is not over)."""
    longest = run = 0
    previous: date | None = None
    for day in sorted(days):
        run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        longest = max(longest, run)
        previous = day
    current = 0
    day = today if today in days else today - timedelta(days=1)
    while day in days:
        current += 1
        day -= timedelta(days=1)
    return current, longest


def _series(by_day: dict[date, DayActivity], today: date, length: int,
            ) -> tuple[DayActivity, ...]:
    first = today - timedelta(days=length - 1)
    return tuple(by_day.get(first + timedelta(days=i), DayActivity(first + timedelta(days=i)))
                 for i in range(length))


def _average(values: list[int] | list[float]) -> float:
    return round(sum(values) / len(values), 2) if values else 0.0


def practice_stats(practices: list[Practice], today: date, now: datetime,
                   abandon_after: timedelta) -> PracticeStats:
    completed = [p for p in practices if p.state is PracticeState.COMPLETED]
    abandoned = sum(1 for p in practices
                    if p.state_at(now, abandon_after) is PracticeState.ABANDONED)
    by_day: dict[date, DayActivity] = {}
    by_type: dict[ContentType, TypeTotals] = {}
    for p in completed:
        minutes = p.listened_seconds / 60
        day = by_day.get(p.local_date, DayActivity(p.local_date))
        by_day[p.local_date] = DayActivity(day.date, day.completed + 1, day.minutes + minutes)
        kind = by_type.get(p.content_type, TypeTotals(p.content_type))
        by_type[p.content_type] = TypeTotals(kind.content_type, kind.completed + 1,
                                             kind.minutes + minutes)
    rounded = {d: DayActivity(a.date, a.completed, round(a.minutes, 2))
               for d, a in by_day.items()}
    current, longest = streaks(set(by_day), today)
    before = [p.mood_before.score for p in practices if p.mood_before]
    after = [p.mood_after.score for p in practices if p.mood_after]
    change = [p.mood_after.score - p.mood_before.score for p in practices
              if p.mood_before and p.mood_after]
    words = Counter(word.strip(" .,;!?").lower() for p in practices if p.mood_after
                    for word in p.mood_after.words.replace(",", " ").split())
    words.pop("", None)
    return PracticeStats(
        started=len(practices), completed=len(completed), abandoned=abandoned,
        minutes=round(sum(p.listened_seconds for p in completed) / 60, 2),
        by_type=tuple(TypeTotals(t.content_type, t.completed, round(t.minutes, 2))
                      for t in sorted(by_type.values(), key=lambda t: t.content_type.value)),
        current_streak=current, longest_streak=longest,
        last_7_days=_series(rounded, today, 7), last_30_days=_series(rounded, today, 30),
        average_mood_before=_average(before), average_mood_after=_average(after),
        average_mood_change=_average(change),
        mood_words=tuple(w for w, _ in words.most_common(10)))
