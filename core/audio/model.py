"""Rendering: a script to stored audio, once per (content, version)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from core.shared.creation import Script
from core.shared.events import DomainEvent

#: Namespace of the ids derived from (content, version): a re-render of the
#: same version is the same render and announces the same event.
RENDER_NAMESPACE = uuid.UUID("5b0c2f4e-8a61-4d2e-9f3c-7a1d6e9b2c40")


def object_key(user_id: uuid.UUID, content_id: uuid.UUID, version: int, extension: str) -> str:
    return f"audio/{user_id}/{content_id}/{version}.{extension}"


def event_id(content_id: uuid.UUID, version: int, outcome: str) -> uuid.UUID:
    return uuid.uuid5(RENDER_NAMESPACE, f"{content_id}:{version}:{outcome}")


class SpeechError(Exception):
    """Synthesis failed. `retryable`: a later attempt may succeed (rate limit,
    5xx, timeout); otherwise it never will (unknown voice, refused text)."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class RenderJob:
    content_id: uuid.UUID
    user_id: uuid.UUID
    version: int
    script: Script
    voice: str = ""
    rate: float = 1.0


@dataclass(frozen=True)
class Render:
    """A finished render (`audio_renders`)."""

    content_id: uuid.UUID
    version: int
    user_id: uuid.UUID
    object_key: str
    mime_type: str
    duration_ms: int
    size: int
    render_ms: int
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class AudioRendered(DomainEvent):
    topic: ClassVar[str] = "waqup.audio.audio.rendered.v1"
    content_id: uuid.UUID
    user_id: uuid.UUID
    version: int
    object_key: str
    mime_type: str
    duration_ms: int
    size: int
    voice: str


@dataclass(frozen=True, kw_only=True)
class AudioFailed(DomainEvent):
    topic: ClassVar[str] = "waqup.audio.audio.failed.v1"
    content_id: uuid.UUID
    user_id: uuid.UUID
    version: int
    reason: str
