"""A person's content items and the events of their creation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from core.shared.creation import (
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

    def copy(self) -> ContentItem:
        return replace(self, tags=list(self.tags))


# --- (de)serialisation of the value objects kept as JSON -----------------------

def brief_to_dict(brief: Brief) -> dict[str, object]:
    return {"content_type": brief.content_type.value, "intent": brief.intent,
            "situation": brief.situation,
            "time_of_day": brief.time_of_day.value if brief.time_of_day else "",
            "target_minutes": brief.target_minutes, "focus": brief.focus, "voice": brief.voice,
            "pace": brief.pace.value if brief.pace else "",
            "tone": brief.tone.value if brief.tone else "", "name": brief.name}


def brief_from_dict(data: dict[str, object]) -> Brief:
    def text(key: str) -> str:
        return str(data.get(key) or "")

    return Brief(content_type=ContentType(text("content_type")), intent=text("intent"),
                 situation=text("situation"),
                 time_of_day=TimeOfDay(text("time_of_day")) if text("time_of_day") else None,
                 target_minutes=float(str(data.get("target_minutes") or 0)),
                 focus=text("focus"), voice=text("voice"),
                 pace=Pace(text("pace")) if text("pace") else None,
                 tone=Tone(text("tone")) if text("tone") else None, name=text("name"))


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
