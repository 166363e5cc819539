"""A person's content items and the events of their creation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import ClassVar

from core.shared.audio import CaptionCue, Measurement, Silence
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
from core.shared.errors import FailedPrecondition
from core.shared.events import DomainEvent


class ItemState(StrEnum):
    GENERATING_TEXT = "generating_text"
    RENDERING_AUDIO = "rendering_audio"
    READY = "ready"
    FAILED = "failed"

    @property
    def busy(self) -> bool:
        return self in (ItemState.GENERATING_TEXT, ItemState.RENDERING_AUDIO)


class FailureReason(StrEnum):
    TEXT_GENERATION_FAILED = "TEXT_GENERATION_FAILED"
    AUDIO_RENDERING_FAILED = "AUDIO_RENDERING_FAILED"
    CREATION_TIMED_OUT = "CREATION_TIMED_OUT"


class ContentBusy(FailedPrecondition):
    reason = "CONTENT_BUSY"


class AudioNotReady(FailedPrecondition):
    reason = "AUDIO_NOT_READY"


@dataclass
class ContentItem:
    id: uuid.UUID
    user_id: uuid.UUID
    content_type: ContentType
    state: ItemState
    request_id: str
    cost: int
    brief: Brief
    created_at: datetime
    updated_at: datetime
    conversation_id: uuid.UUID | None = None
    hold_id: uuid.UUID | None = None
    title: str = ""
    text: str = ""
    structure: dict[str, object] | None = None
    script: Script | None = None
    depth: Depth | None = None
    voice: str = ""
    model: str = ""
    version: int = 1
    tags: list[str] = field(default_factory=list)
    failure_reason: str = ""
    failure_message: str = ""
    audio_key: str = ""
    audio_mime_type: str = ""
    audio_duration_ms: int = 0
    audio_bytes: int = 0
    play_count: int = 0
    last_played_at: datetime | None = None
    folder_id: uuid.UUID | None = None
    #: Sound bed of the version being rendered (Background value).
    background: str = ""
    #: Version of the playable audio (0 = none yet); `version` runs ahead of
    #: it while a new version renders.
    audio_version: int = 0
    #: Every encoding of the playable version, by format.
    renditions: dict[str, StoredRendition] = field(default_factory=dict)
    #: First part of the version being rendered, playable before the rest.
    preview_key: str = ""
    preview_ms: int = 0
    #: Why the latest re-render failed (the playable version stayed).
    render_failure_reason: str = ""
    #: Request id of the latest re-render (AIP-155 idempotency).
    render_request_id: str = ""
    #: When the latest re-render started (its deadline counts from there).
    render_started_at: datetime | None = None

    def copy(self) -> ContentItem:
        return replace(self, tags=list(self.tags), renditions=dict(self.renditions))

    @property
    def playable(self) -> bool:
        return bool(self.audio_key)

    def rendition(self, fmt: AudioFormat) -> StoredRendition | None:
        """The playable version in `fmt` (items rendered before renditions
        existed have their MP3 only)."""
        found = self.renditions.get(fmt.value)
        if found is None and fmt is AudioFormat.MP3 and self.audio_key:
            return StoredRendition(fmt.value, self.audio_key, self.audio_mime_type,
                                   self.audio_bytes)
        return found


class AudioFormat(StrEnum):
    MP3 = "mp3"
    OGG_OPUS = "ogg_opus"

    @property
    def extension(self) -> str:
        return {"mp3": "mp3", "ogg_opus": "opus"}[self.value]


@dataclass(frozen=True)
class StoredRendition:
    format: str
    key: str
    mime_type: str
    size: int


@dataclass(frozen=True)
class AudioDetails:
    """What one rendered version measures, and its captions
    (`content_audio`, one row per item: the playable version's)."""

    content_id: uuid.UUID
    version: int
    measurements: dict[str, Measurement]
    silences: tuple[Silence, ...]
    waveform: tuple[float, ...]
    captions: tuple[CaptionCue, ...]
    voice: str = ""
    background: str = ""


# --- practice ------------------------------------------------------------------

class PracticeState(StrEnum):
    STARTED = "started"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


@dataclass(frozen=True)
class Mood:
    score: int
    words: str = ""


@dataclass
class Practice:
    """One listening of an item (the seed's `practice_events`). `local_date` is
    the person's day where they were when it started: streaks count those
    days, so a later change of zone never moves an earlier practice."""

    id: uuid.UUID
    user_id: uuid.UUID
    content_id: uuid.UUID
    content_type: ContentType
    started_at: datetime
    time_zone: str
    local_date: date
    state: PracticeState = PracticeState.STARTED
    completed_at: datetime | None = None
    listened_seconds: float = 0.0
    device: str = ""
    context: str = ""
    mood_before: Mood | None = None
    mood_after: Mood | None = None

    def state_at(self, now: datetime, abandon_after: timedelta) -> PracticeState:
        """A practice left started past `abandon_after` counts as abandoned."""
        if self.state is PracticeState.STARTED and now - self.started_at > abandon_after:
            return PracticeState.ABANDONED
        return self.state


@dataclass
class Folder:
    id: uuid.UUID
    user_id: uuid.UUID
    display_name: str
    created_at: datetime
    item_count: int = 0


@dataclass
class Share:
    """A share link of one item: anyone holding it may play that item until
    it expires or its owner revokes it."""

    id: uuid.UUID
    user_id: uuid.UUID
    content_id: uuid.UUID
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass
class ListeningPreferences:
    user_id: uuid.UUID
    voice: str = ""
    background: str = ""


# --- (de)serialisation of the value objects kept as JSON -----------------------

def brief_to_dict(brief: Brief) -> dict[str, object]:
    return {"content_type": brief.content_type.value, "intent": brief.intent,
            "situation": brief.situation,
            "time_of_day": brief.time_of_day.value if brief.time_of_day else "",
            "target_minutes": brief.target_minutes, "focus": brief.focus, "voice": brief.voice,
            "pace": brief.pace.value if brief.pace else "",
            "tone": brief.tone.value if brief.tone else "", "name": brief.name,
            "background": brief.background.value if brief.background else ""}


def brief_from_dict(data: dict[str, object]) -> Brief:
    def text(key: str) -> str:
        return str(data.get(key) or "")

    return Brief(content_type=ContentType(text("content_type")), intent=text("intent"),
                 situation=text("situation"),
                 time_of_day=TimeOfDay(text("time_of_day")) if text("time_of_day") else None,
                 target_minutes=float(str(data.get("target_minutes") or 0)),
                 focus=text("focus"), voice=text("voice"),
                 pace=Pace(text("pace")) if text("pace") else None,
                 tone=Tone(text("tone")) if text("tone") else None, name=text("name"),
                 background=Background(text("background")) if text("background") else None)


def script_to_dict(script: Script) -> dict[str, object]:
    return {"target_seconds": script.target_seconds,
            "segments": [{"text": s.text, "pause_after": s.pause_after}
                         for s in script.segments]}


def script_from_dict(data: dict[str, object]) -> Script:
    segments = data.get("segments") or []
    assert isinstance(segments, list)
    return Script(segments=tuple(Segment(str(s["text"]), float(s["pause_after"]))
                                for s in segments),
                  target_seconds=float(str(data.get("target_seconds") or 0)))


# --- events -----------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class ContentReady(DomainEvent):
    topic: ClassVar[str] = "waqup.library.content.ready.v1"
    content_id: uuid.UUID
    user_id: uuid.UUID
    content_type: ContentType


@dataclass(frozen=True, kw_only=True)
class ContentFailed(DomainEvent):
    topic: ClassVar[str] = "waqup.library.content.failed.v1"
    content_id: uuid.UUID
    user_id: uuid.UUID
    reason: str


@dataclass(frozen=True, kw_only=True)
class PracticeCompleted(DomainEvent):
    topic: ClassVar[str] = "waqup.library.practice.completed.v1"
    practice_id: uuid.UUID
    content_id: uuid.UUID
    user_id: uuid.UUID
    content_type: ContentType
    listened_seconds: float
    local_date: date
    #: The hour it started at in the person's zone.
    local_hour: int = 0
    title: str = ""
    tags: tuple[str, ...] = ()
    #: 1-5, 0 when not given.
    mood_before: int = 0
    mood_after: int = 0
