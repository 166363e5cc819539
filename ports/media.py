"""Ports of the creation pipeline's infrastructure: the speech voice, the audio
encoder, object storage and the work queue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from core.audio.model import AudioReport, Mix, SpeechError

__all__ = ["SpeechError"]


@dataclass(frozen=True)
class Voice:
    """A voice of the catalog."""

    id: str
    display_name: str
    language: str = "en-US"
    #: Who renders it (`piper`, `elevenlabs`).
    provider: str = ""
    #: Paces (core.shared.creation.Pace values) it speaks at.
    paces: tuple[str, ...] = ("slow", "medium", "fast")


class SpeechSynthesizer(Protocol):
    """Text to speech. Audio is 16-bit little-endian mono PCM at `sample_rate`."""

    #: Samples per second of everything `synthesize` returns.
    sample_rate: int

    def voices(self) -> list[Voice]:
        """The voices this synthesizer speaks with; the first is the default."""
        ...

    async def synthesize(self, text: str, voice: str, rate: float) -> bytes:
        """`text` spoken by `voice` ("" = the default) at `rate` (1.0 = natural,
        larger is faster). Raises SpeechError."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class EncodedAudio:
    data: bytes
    mime_type: str
    #: File extension without the dot (`mp3`).
    extension: str
    duration_seconds: float


class AudioEncoder(Protocol):
    def encode(self, pcm: bytes, sample_rate: int) -> EncodedAudio:
        """16-bit mono PCM to a compressed file."""
        ...


class AudioProducer(Protocol):
    """Assembles a Mix into finished audio. CPU-bound and synchronous (callers
    on the event loop use a thread); one instance may be shared by threads."""

    def produce(self, mix: Mix) -> bytes:
        """16-bit mono PCM at `mix.sample_rate`: the lead-in, then each clip
        followed by exactly its pause (sample-accurate: clip i starts at
        lead_in + the lengths of everything before it, rounded to samples),
        the bed under everything, faded, loudness-normalised and limited."""
        ...


class AudioAnalyzer(Protocol):
    """Measures an encoded file (any format the encoders write)."""

    def analyze(self, data: bytes) -> AudioReport: ...


class ObjectStore(Protocol):
    """Blobs by key (`audio/{user}/{content}/{version}.mp3`). Writes replace."""

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes | None:
        """The object, or None when there is none."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix`; how many went."""
        ...

    async def list_keys(self, prefix: str) -> list[str]: ...

    async def signed_url(self, key: str, expires_in: timedelta,
                         download_name: str | None = None) -> str:
        """A URL that reads the object directly (HTTP Range included) until it
        expires, and is refused after that or when altered; with
        `download_name` (letters, digits, `._-`), answered as an attachment
        (`Content-Disposition`) of that file name."""
        ...

    async def upload_url(self, key: str, expires_in: timedelta) -> str:
        """A URL that stores the bytes PUT to it under `key` until it expires
        (a person's upload goes straight to the store, not through a
        service's memory)."""
        ...

    async def close(self) -> None: ...


class RetryLater(Exception):
    """Raised by a job handler: put the job back for another attempt after
    `delay` seconds (a transient failure)."""

    def __init__(self, reason: str, delay: float = 5.0) -> None:
        super().__init__(reason)
        self.delay = delay


@dataclass(frozen=True)
class QueuedJob:
    id: str
    queue: str
    payload: bytes
    #: Earlier deliveries of this job that did not end in an ack (0 = first).
    attempts: int = 0


JobHandler = Callable[[QueuedJob], Awaitable[None]]


class WorkQueue(Protocol):
    """At-least-once jobs with explicit acks.

    `enqueue` of a job id already waiting or running is ignored (de-duplicated).
    A handler that returns acks the job; one that raises RetryLater has it
    redelivered after the delay; any other exception is logged and the job is
    redelivered too, up to `max_deliveries`, then dropped. A consumer that dies
    mid-job (no ack) has its job redelivered after the ack wait. Handlers must
    therefore be idempotent.
    """

    async def enqueue(self, queue: str, job_id: str, payload: bytes) -> None: ...

    def consume(self, queue: str, handler: JobHandler, *, concurrency: int = 1) -> None:
        """Register the handler of `queue`; deliveries start with `start()`."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...
