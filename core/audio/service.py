"""The audio worker's use case: render a script with a voice, with exact
silences between passages, fit to the target length, encode it, store it and
announce it, exactly once per (content, version).

A job may be delivered more than once (a worker died mid-job, an ack was
lost). The render is keyed by (content, version): the object key is fixed, so
a second upload replaces the first with the same audio, and the record of the
render and its event are written in one transaction that only the first
finisher commits (the event id is derived from the key as well).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.audio.model import (
    AudioFailed,
    AudioRendered,
    Render,
    RenderJob,
    SpeechError,
    event_id,
    object_key,
)

if TYPE_CHECKING:
    from ports.audio import AudioUnitOfWorkFactory
    from ports.common import Clock
    from ports.media import AudioEncoder, ObjectStore, SpeechSynthesizer

log = logging.getLogger(__name__)

#: Shortest pause kept when pauses shrink to fit a target length.
MIN_PAUSE = 0.4
#: Longest a pause may grow to fit a target length.
MAX_PAUSE = 60.0
#: Transient speech failures of one job before it fails for good.
MAX_SPEECH_ATTEMPTS = 4


class RenderFailed(Exception):
    """The job cannot succeed (reason for the event)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TransientRenderError(Exception):
    """Try the job again later."""

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass(frozen=True)
class RenderOutcome:
    render: Render
    #: False when an earlier delivery had already finished it.
    fresh: bool
    speech_seconds: float = 0.0


def fit_pauses(speech: list[float], pauses: list[float], target: float) -> list[float]:
    """Pauses scaled so that speech + pauses lasts `target` seconds (within
    MIN_PAUSE and MAX_PAUSE per pause, and never below 0 for the last)."""
    total_pause = sum(pauses)
    if target <= 0 or total_pause <= 0:
        return pauses
    wanted = target - sum(speech)
    if wanted <= 0:
        return [min(p, MIN_PAUSE) for p in pauses]
    scale = wanted / total_pause
    fitted = [min(max(p * scale, MIN_PAUSE if p > 0 else 0.0), MAX_PAUSE) for p in pauses]
    # What clamping took or added is spread over the pauses that can still
    # move that way, until the sum is right or none can move.
    for _ in range(len(fitted) + 1):
        error = wanted - sum(fitted)
        if abs(error) <= 0.01:
            break
        free = [i for i, p in enumerate(fitted) if pauses[i] > 0 and (
            (error > 0 and p < MAX_PAUSE) or (error < 0 and p > MIN_PAUSE))]
        if not free:
            break
        share = error / len(free)
        for i in free:
            fitted[i] = min(max(fitted[i] + share, MIN_PAUSE), MAX_PAUSE)
    return fitted


class AudioRenderer:
    def __init__(self, uow: AudioUnitOfWorkFactory, speech: SpeechSynthesizer,
                 encoder: AudioEncoder, objects: ObjectStore, clock: Clock) -> None:
        self._uow = uow
        self._speech = speech
        self._encoder = encoder
        self._objects = objects
        self._clock = clock

    async def render(self, job: RenderJob, attempts: int = 0) -> RenderOutcome:
        """Render, store and announce the job's audio. Raises
        TransientRenderError (retry later) or, when it can never succeed,
        records AudioFailed and raises RenderFailed."""
        async with self._uow(read_only=True) as uow:
            done = await uow.renders.get(job.content_id, job.version)
        if done is not None:
            return RenderOutcome(done, fresh=False)
        started = time.perf_counter()
        try:
            pcm, speech_seconds = await self._speak(job)
        except SpeechError as error:
            if error.retryable and attempts + 1 < MAX_SPEECH_ATTEMPTS:
                raise TransientRenderError(str(error),
                                           max(error.retry_after, 2.0 ** attempts)) from error
            await self.fail(job, "SPEECH_FAILED")
            raise RenderFailed("SPEECH_FAILED", str(error)) from error
        try:
            encoded = await asyncio.to_thread(self._encoder.encode, pcm,
                                              self._speech.sample_rate)
        except Exception as error:
            await self.fail(job, "ENCODING_FAILED")
            raise RenderFailed("ENCODING_FAILED", str(error)) from error
        key = object_key(job.user_id, job.content_id, job.version, encoded.extension)
        try:
            await self._objects.put(key, encoded.data, encoded.mime_type)
        except Exception as error:
            raise TransientRenderError(f"could not store the audio: {error}", 5.0) from error
        now = self._clock.now()
        render = Render(content_id=job.content_id, version=job.version, user_id=job.user_id,
                        object_key=key, mime_type=encoded.mime_type,
                        duration_ms=round(encoded.duration_seconds * 1000),
                        size=len(encoded.data),
                        render_ms=round((time.perf_counter() - started) * 1000), created_at=now)
        async with self._uow() as uow:
            fresh = await uow.renders.add(render)
            if fresh:
                await uow.outbox.add(AudioRendered(
                    occurred_at=now, event_id=event_id(job.content_id, job.version, "rendered"),
                    content_id=job.content_id, user_id=job.user_id, version=job.version,
                    object_key=key, mime_type=render.mime_type, duration_ms=render.duration_ms,
                    size=render.size, voice=job.voice))
            await uow.commit()
        return RenderOutcome(render, fresh=fresh, speech_seconds=speech_seconds)

    async def fail(self, job: RenderJob, reason: str) -> None:
        async with self._uow() as uow:
            await uow.outbox.add(AudioFailed(
                occurred_at=self._clock.now(),
                event_id=event_id(job.content_id, job.version, "failed"),
                content_id=job.content_id, user_id=job.user_id, version=job.version,
                reason=reason))
            await uow.commit()

    async def _speak(self, job: RenderJob) -> tuple[bytes, float]:
        """The whole script as PCM, pauses fitted to the target; and the
        seconds of speech in it."""
        rate = self._speech.sample_rate
        spoken = [await self._speech.synthesize(s.text, job.voice, job.rate)
                  for s in job.script.segments]
        speech = [len(p) / 2 / rate for p in spoken]
        pauses = fit_pauses(speech, [s.pause_after for s in job.script.segments],
                            job.script.target_seconds)
        parts: list[bytes] = []
        for pcm, pause in zip(spoken, pauses, strict=True):
            parts.append(pcm)
            parts.append(b"\x00\x00" * round(pause * rate))
        return b"".join(parts), sum(speech)
