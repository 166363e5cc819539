"""Practice: a person listening to their items. A practice starts when
playback starts (the play count and last-played time follow), ends when the
person completes it, and counts as abandoned when it is never completed.
Its mood check-ins (before and after) feed the stats and the personalisation
of the next creation."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.library.access import require_access
from core.library.model import Mood, Practice, PracticeCompleted, PracticeState
from core.library.stats import PracticeStats, practice_stats
from core.shared.errors import FailedPrecondition, InvalidArgument, NotFound
from core.shared.ids import uuid7

if TYPE_CHECKING:
    from ports.common import Clock
    from ports.library import LibraryUnitOfWorkFactory, MarketAccess

#: A practice not completed within this long is abandoned.
ABANDON_AFTER = timedelta(hours=24)
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class PracticeAlreadyEnded(FailedPrecondition):
    reason = "PRACTICE_ALREADY_ENDED"


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` ("" = UTC); INVALID_ARGUMENT for anything else."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidArgument(f"unknown time zone {name[:64]!r}; use an IANA name such as "
                              "Europe/Paris", reason="INVALID_TIME_ZONE",
                              metadata={"field": "time_zone"}) from None


def _mood(mood: Mood | None) -> Mood | None:
    if mood is None:
        return None
    if not 1 <= mood.score <= 5:
        raise InvalidArgument("a mood score is 1 to 5", reason="INVALID_MOOD",
                              metadata={"field": "score"})
    return Mood(mood.score, " ".join(mood.words.split())[:200])


class PracticeService:
    def __init__(self, uow: LibraryUnitOfWorkFactory, clock: Clock, *,
                 abandon_after: timedelta = ABANDON_AFTER,
                 access: MarketAccess | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._abandon_after = abandon_after
        self._access = access

    async def start(self, user_id: uuid.UUID, content_id: uuid.UUID, *, time_zone: str = "",
                    device: str = "", context: str = "",
                    mood_before: Mood | None = None) -> Practice:
        """Playback of a READY item started: one of the person's, or one the
        marketplace lets them play (a pack bought, a membership, a free pack)."""
        where = zone(time_zone)
        now = self._clock.now()
        missing = NotFound("no such content", reason="CONTENT_NOT_FOUND")
        async with self._uow(read_only=True) as uow:
            found = await uow.items.get(content_id)
        if found is None:
            raise missing
        if found.user_id != user_id:
            await require_access(self._access, user_id, content_id, missing)
        async with self._uow() as uow:
            item = await uow.items.get_for_update(content_id)
            if item is None:
                raise missing
            if not item.playable:
                raise FailedPrecondition("the audio is not ready yet", reason="AUDIO_NOT_READY")
            practice = Practice(id=uuid7(), user_id=user_id, content_id=content_id,
                                content_type=item.content_type, started_at=now,
                                time_zone=where.key, local_date=now.astimezone(where).date(),
                                device=device.strip()[:64], context=context.strip()[:64],
                                mood_before=_mood(mood_before))
            await uow.practices.add(practice)
            item.play_count += 1
            item.last_played_at = now
            await uow.items.save(item)
            await uow.commit()
        return practice

    async def complete(self, user_id: uuid.UUID, practice_id: uuid.UUID,
                       listened_seconds: float, mood_after: Mood | None = None) -> Practice:
        """The practice ended with `listened_seconds` of listening. A retry with
        the same values returns it; anything else on an ended practice is
        PRACTICE_ALREADY_ENDED."""
        if not 0 <= listened_seconds <= 86_400:
            raise InvalidArgument("listened_duration must be between 0 and 24 hours",
                                  reason="INVALID_DURATION",
                                  metadata={"field": "listened_duration"})
        mood = _mood(mood_after)
        now = self._clock.now()
        async with self._uow() as uow:
            practice = await uow.practices.get_for_update(practice_id)
            if practice is None or practice.user_id != user_id:
                raise _not_found()
            state = practice.state_at(now, self._abandon_after)
            if state is PracticeState.COMPLETED:
                # A retry: the same mood and listening (as capped the first time).
                if (practice.mood_after == mood and practice.completed_at is not None
                        and practice.listened_seconds == self._capped(
                            listened_seconds, practice, practice.completed_at)):
                    return practice
                raise PracticeAlreadyEnded("this practice was completed already")
            if state is PracticeState.ABANDONED:
                raise PracticeAlreadyEnded("this practice was abandoned: start another")
            practice.listened_seconds = self._capped(listened_seconds, practice, now)
            practice.state = PracticeState.COMPLETED
            practice.completed_at = now
            practice.mood_after = mood
            await uow.practices.save(practice)
            item = await uow.items.get(practice.content_id)
            await uow.outbox.add(PracticeCompleted(
                occurred_at=now, practice_id=practice.id, content_id=practice.content_id,
                user_id=user_id, content_type=practice.content_type,
                listened_seconds=practice.listened_seconds, local_date=practice.local_date,
                local_hour=practice.started_at.astimezone(zone(practice.time_zone)).hour,
                title=item.title if item else "", tags=tuple(item.tags) if item else (),
                mood_before=practice.mood_before.score if practice.mood_before else 0,
                mood_after=mood.score if mood else 0))
            await uow.commit()
        return practice

    async def get(self, user_id: uuid.UUID, practice_id: uuid.UUID) -> Practice:
        async with self._uow(read_only=True) as uow:
            practice = await uow.practices.get(practice_id)
        if practice is None or practice.user_id != user_id:
            raise _not_found()
        return self._as_of_now(practice)

    async def list(self, user_id: uuid.UUID, page_size: int, before: uuid.UUID | None,
                   ) -> tuple[list[Practice], uuid.UUID | None]:
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        async with self._uow(read_only=True) as uow:
            found = await uow.practices.list_for_user(user_id, before=before, limit=size + 1)
        more = len(found) > size
        found = [self._as_of_now(p) for p in found[:size]]
        return found, (found[-1].id if more and found else None)

    async def stats(self, user_id: uuid.UUID, time_zone: str = "",
                    ) -> tuple[PracticeStats, str]:
        """The stats, "today" in `time_zone` (else the zone of the latest
        practice, else UTC); and the zone used."""
        async with self._uow(read_only=True) as uow:
            practices = await uow.practices.all_for_user(user_id)
        if not time_zone and practices:
            time_zone = max(practices, key=lambda p: p.started_at).time_zone
        where = zone(time_zone)
        now = self._clock.now()
        return (practice_stats(practices, now.astimezone(where).date(), now,
                               self._abandon_after), where.key)

    @staticmethod
    def _capped(listened_seconds: float, practice: Practice, at: datetime) -> float:
        """Listening cannot outlast the time since it started (plus slack for
        clocks): a client's exaggeration is capped, not trusted."""
        elapsed = (at - practice.started_at).total_seconds() + 60
        return round(min(listened_seconds, elapsed), 3)

    def _as_of_now(self, practice: Practice) -> Practice:
        practice.state = practice.state_at(self._clock.now(), self._abandon_after)
        return practice


def _not_found() -> NotFound:
    return NotFound("no such practice", reason="PRACTICE_NOT_FOUND")

