"""Rendering: a script to stored audio, once per (content, version)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from core.shared.audio import CaptionCue, Measurement, Silence
from core.shared.creation import Script
from core.shared.events import DomainEvent

__all__ = ["CaptionCue", "Measurement", "Silence"]

#: Namespace of the ids derived from (content, version): a re-render of the
#: same version is the same render and announces the same event.
RENDER_NAMESPACE = uuid.UUID("5b0c2f4e-8a61-4d2e-9f3c-7a1d6e9b2c40")


def object_key(user_id: uuid.UUID, content_id: uuid.UUID, version: int, extension: str) -> str:
    """Every version has its own keys: an object never changes once written,
    so caches (CDN, players) may keep it forever."""
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
    #: Sound bed (core.shared.creation.Background value).
    background: str = "none"


@dataclass(frozen=True)
class Rendition:
    """One stored encoding of a render and what it measures."""

    format: str
    object_key: str
    mime_type: str
    size: int
    measurement: Measurement


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
    background: str = "none"
    renditions: tuple[Rendition, ...] = ()
    silences: tuple[Silence, ...] = ()
    waveform: tuple[float, ...] = ()
    captions: tuple[CaptionCue, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AudioPreviewReady(DomainEvent):
    """The first part of (content, version) is playable while the rest renders."""

    topic: ClassVar[str] = "waqup.audio.audio.preview_ready.v1"
    content_id: uuid.UUID
    user_id: uuid.UUID
    version: int
    object_key: str
    duration_ms: int


@dataclass(frozen=True, kw_only=True)
class AudioFailed(DomainEvent):
    topic: ClassVar[str] = "waqup.audio.audio.failed.v1"
    content_id: uuid.UUID
    user_id: uuid.UUID
    version: int
    reason: str


# --- production: the mix, its measurement, its captions ------------------------

#: Loudness every rendition is normalised to (LUFS, integrated, BS.1770-4),
#: within ±1 LU; and the highest true peak allowed (dBTP).
TARGET_LUFS = -16.0
LOUDNESS_TOLERANCE = 1.0
MAX_TRUE_PEAK = -1.0


@dataclass(frozen=True)
class Clip:
    """One sentence of speech (16-bit mono PCM) and the silence after it."""

    pcm: bytes
    pause_after: float
    #: What the voice says in it (captions).
    text: str = ""


@dataclass(frozen=True)
class Mix:
    """What to assemble: after `lead_in` seconds of bed alone, each clip then
    its pause, laid end to end at `sample_rate`; the bed (if any) under all of
    it, ducked under speech; faded in over the lead-in and out over the last
    `fade_out` seconds; normalised to `target_lufs` with true peaks limited
    below `ceiling_dbtp`. `seed` makes a bed's randomness repeatable."""

    clips: tuple[Clip, ...]
    sample_rate: int
    background: str = "none"
    lead_in: float = 0.0
    fade_out: float = 0.0
    seed: int = 0
    target_lufs: float = TARGET_LUFS
    #: Below MAX_TRUE_PEAK with room for the encoders, which raise peaks
    #: (measured: MP3 up to 1.4 dB, Opus up to 1.8 dB on broadband beds).
    ceiling_dbtp: float = -2.5


@dataclass(frozen=True)
class AudioReport:
    """What an encoded file measures: its length, integrated loudness (LUFS),
    sample peak (dBFS), true peak (dBTP, 4x oversampled), the silences in it
    (at least `MIN_SILENCE_MS`, below `SILENCE_DBFS`) and a 200-point peak
    envelope (0..1) for a waveform display."""

    duration_ms: int
    integrated_lufs: float
    sample_peak_dbfs: float
    true_peak_dbtp: float
    silences: tuple[Silence, ...]
    waveform: tuple[float, ...]

    @property
    def measurement(self) -> Measurement:
        return Measurement(self.duration_ms, self.integrated_lufs, self.sample_peak_dbfs,
                           self.true_peak_dbtp)

    @property
    def within_targets(self) -> bool:
        return (abs(self.integrated_lufs - TARGET_LUFS) <= LOUDNESS_TOLERANCE
                and self.true_peak_dbtp <= MAX_TRUE_PEAK)
