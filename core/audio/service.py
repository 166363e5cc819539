"""The audio worker's use case: a script to produced audio, exactly once per
(content, version).

Production: each sentence is spoken on its own (so captions are exact), the
pauses between passages are fitted so the piece lasts what was asked (never
by stretching speech), and the whole is mixed over a sound bed, faded and
normalised (AudioProducer). It is then encoded to MP3 and Ogg Opus, and each
encoded file is measured (AudioAnalyzer): a rendition measuring further than
0.5 LU from -16 LUFS, or above -1 dBTP, is produced again with the measured
error corrected (twice at most). The first passage is mixed and published on its own as soon
as it is spoken, so a person can start listening long before the rest is
done.

A job may be delivered more than once (a worker died mid-job, an ack was
lost). The render is keyed by (content, version): object keys are fixed, so a
second upload replaces the first with the same audio, and the record of the
render and its event are written in one transaction that only the first
finisher commits (the event id is derived from the key as well).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from core.audio.model import (
    MAX_TRUE_PEAK,
    TARGET_LUFS,
    AudioFailed,
    AudioPreviewReady,
    AudioRendered,
    AudioReport,
    CaptionCue,
    Clip,
    Mix,
    Render,
    RenderJob,
    Rendition,
    SpeechError,
    event_id,
    object_key,
)
from core.shared.creation import Script

if TYPE_CHECKING:
    from ports.audio import AudioUnitOfWorkFactory
    from ports.common import Clock
    from ports.media import (
        AudioAnalyzer,
        AudioEncoder,
        AudioProducer,
        EncodedAudio,
        ObjectStore,
        SpeechSynthesizer,
    )

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


#: Silence between two sentences of one passage (part of the speech).
SENTENCE_GAP = 0.35
#: Bed alone before the voice starts, and this much after it ends (less
#: when a target length leaves no room for it).
BED_LEAD_IN = 3.0
BED_TAIL = 5.0
#: Without a bed: a breath of silence before and after the voice.
PLAIN_LEAD_IN = 0.3
PLAIN_TAIL = 0.7
#: A rendition measuring further than this from the target is produced again
#: (well inside the ±1 LU promised, so the corrected one lands inside it).
CORRECT_BEYOND_LU = 0.5
#: Productions again of one rendition, at most (each from the last's
#: measurement: an encoder's overshoot is not quite the same twice).
MAX_CORRECTIONS = 2
#: How much lower than strictly needed a corrected mix's peak ceiling goes.
CORRECTION_MARGIN_DB = 0.5
#: (format, extension of the object key) of every rendition, MP3 first.
MP3 = "mp3"
OGG_OPUS = "ogg_opus"

#: A sentence: up to terminal marks (and closing quotes) followed by space or
#: the end of the text.
_SENTENCE = re.compile(r"\S.*?(?:[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s|$)|$)", re.S)


def sentences(text: str) -> list[str]:
    """The text's sentences, in order, whitespace collapsed."""
    return [" ".join(m.group().split()) for m in _SENTENCE.finditer(text)
            if m.group().strip()]


@dataclass(frozen=True)
class Timing:
    """Where things fall in a mix: a lead-in, then each passage's sentences
    and gaps, then the passage's (fitted) pause; the last pause is the tail."""

    lead_in: float
    fade_out: float
    pauses: tuple[float, ...]


def plan_timing(speech_per_passage: list[float], pauses: list[float], target: float,
                with_bed: bool) -> Timing:
    """Pauses fitted so lead-in + speech + pauses lasts `target` (when > 0);
    the piece ends with a tail long enough to fade the bed out."""
    lead_in = BED_LEAD_IN if with_bed else PLAIN_LEAD_IN
    tail = BED_TAIL if with_bed else PLAIN_TAIL
    pauses = list(pauses)
    if pauses:
        pauses[-1] = max(pauses[-1], tail)
    if target > 0:
        pauses = fit_pauses(speech_per_passage, pauses, target - lead_in)
    last = pauses[-1] if pauses else 0.0
    return Timing(lead_in, min(tail, last), tuple(pauses))


class AudioRenderer:
    def __init__(self, uow: AudioUnitOfWorkFactory, speech: SpeechSynthesizer,
                 producer: AudioProducer, encoders: Mapping[str, AudioEncoder],
                 analyzer: AudioAnalyzer, objects: ObjectStore, clock: Clock) -> None:
        if MP3 not in encoders:
            raise ValueError("an MP3 encoder is required (the default rendition)")
        self._uow = uow
        self._speech = speech
        self._producer = producer
        self._encoders = dict(encoders)
        self._analyzer = analyzer
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
            passages = await self._speak(job)
            mix = self._mix(job, passages)
            renditions, report, captions = await self._produce(job, mix)
        except SpeechError as error:
            if error.retryable and attempts + 1 < MAX_SPEECH_ATTEMPTS:
                raise TransientRenderError(str(error),
                                           max(error.retry_after, 2.0 ** attempts)) from error
            await self.fail(job, "SPEECH_FAILED")
            raise RenderFailed("SPEECH_FAILED", str(error)) from error
        except _StoreFailed as error:
            raise TransientRenderError(f"could not store the audio: {error}", 5.0) from error
        except Exception as error:
            log.exception("production of %s failed", job.content_id)
            await self.fail(job, "ENCODING_FAILED")
            raise RenderFailed("ENCODING_FAILED", str(error)) from error
        mp3 = renditions[0]
        now = self._clock.now()
        render = Render(content_id=job.content_id, version=job.version, user_id=job.user_id,
                        object_key=mp3.object_key, mime_type=mp3.mime_type,
                        duration_ms=report.duration_ms, size=mp3.size,
                        render_ms=round((time.perf_counter() - started) * 1000), created_at=now)
        async with self._uow() as uow:
            fresh = await uow.renders.add(render)
            if fresh:
                await uow.outbox.add(AudioRendered(
                    occurred_at=now, event_id=event_id(job.content_id, job.version, "rendered"),
                    content_id=job.content_id, user_id=job.user_id, version=job.version,
                    object_key=mp3.object_key, mime_type=mp3.mime_type,
                    duration_ms=render.duration_ms, size=mp3.size, voice=job.voice,
                    background=job.background, renditions=tuple(renditions),
                    silences=report.silences, waveform=report.waveform,
                    captions=tuple(captions)))
            await uow.commit()
        speech_seconds = sum(len(c.pcm) for c in mix.clips) / 2 / mix.sample_rate
        return RenderOutcome(render, fresh=fresh, speech_seconds=speech_seconds)

    async def fail(self, job: RenderJob, reason: str) -> None:
        async with self._uow() as uow:
            await uow.outbox.add(AudioFailed(
                occurred_at=self._clock.now(),
                event_id=event_id(job.content_id, job.version, "failed"),
                content_id=job.content_id, user_id=job.user_id, version=job.version,
                reason=reason))
            await uow.commit()

    # --- speech ---------------------------------------------------------------

    async def _speak(self, job: RenderJob) -> list[list[Clip]]:
        """Every passage as its sentences' clips. The first passage, once
        spoken, is published as the preview."""
        passages: list[list[Clip]] = []
        for index, segment in enumerate(job.script.segments):
            clips = []
            for sentence in sentences(segment.text):
                pcm = await self._speech.synthesize(sentence, job.voice, job.rate)
                clips.append(Clip(pcm, SENTENCE_GAP, sentence))
            passages.append(clips)
            if index == 0 and len(job.script.segments) > 1 and clips:
                await self._preview(job, clips)
        return passages

    def _mix(self, job: RenderJob, passages: list[list[Clip]]) -> Mix:
        rate = self._speech.sample_rate
        spoken = [sum(len(c.pcm) / 2 / rate for c in clips)
                  + SENTENCE_GAP * max(len(clips) - 1, 0) for clips in passages]
        timing = plan_timing(spoken, [s.pause_after for s in job.script.segments],
                             job.script.target_seconds, job.background != "none")
        laid: list[Clip] = []
        lead_in = timing.lead_in
        for clips, pause in zip(passages, timing.pauses, strict=True):
            if not clips:  # a passage with nothing to say still keeps its pause
                if laid:
                    last = laid[-1]
                    laid[-1] = Clip(last.pcm, last.pause_after + pause, last.text)
                else:
                    lead_in += pause
                continue
            laid += clips[:-1]
            laid.append(Clip(clips[-1].pcm, pause, clips[-1].text))
        return Mix(clips=tuple(laid), sample_rate=rate, background=job.background,
                   lead_in=lead_in, fade_out=timing.fade_out,
                   seed=job.content_id.int % (2 ** 32))

    async def _preview(self, job: RenderJob, clips: list[Clip]) -> None:
        """The first passage mixed on its own, stored and announced. Best
        effort: the full render does not wait on it or fail with it."""
        try:
            mix = self._mix(replace(job, script=Script(job.script.segments[:1], 0.0)),
                            [clips])
            encoded = await asyncio.to_thread(self._encode, mix, MP3)
            key = object_key(job.user_id, job.content_id, job.version, "preview.mp3")
            await self._objects.put(key, encoded.data, encoded.mime_type)
            async with self._uow() as uow:
                await uow.outbox.add(AudioPreviewReady(
                    occurred_at=self._clock.now(),
                    event_id=event_id(job.content_id, job.version, "preview"),
                    content_id=job.content_id, user_id=job.user_id, version=job.version,
                    object_key=key, duration_ms=round(encoded.duration_seconds * 1000)))
                await uow.commit()
        except Exception:
            log.warning("no preview for %s", job.content_id, exc_info=True)

    # --- production -------------------------------------------------------------

    def _encode(self, mix: Mix, fmt: str) -> EncodedAudio:
        pcm = self._producer.produce(mix)
        return self._encoders[fmt].encode(pcm, mix.sample_rate)

    async def _produce(self, job: RenderJob, mix: Mix,
                       ) -> tuple[list[Rendition], AudioReport, list[CaptionCue]]:
        """Every rendition produced, measured (corrected once if off target)
        and stored; the MP3's report; the captions."""
        pcm = await asyncio.to_thread(self._producer.produce, mix)
        renditions: list[Rendition] = []
        report: AudioReport | None = None
        for fmt in self._encoders:
            encoded, measured = await asyncio.to_thread(self._encode_measured, pcm, mix, fmt)
            key = object_key(job.user_id, job.content_id, job.version, encoded.extension)
            try:
                await self._objects.put(key, encoded.data, encoded.mime_type)
            except Exception as error:
                raise _StoreFailed(str(error)) from error
            renditions.append(Rendition(fmt, key, encoded.mime_type, len(encoded.data),
                                        measured.measurement))
            if fmt == MP3:
                report = measured
        assert report is not None
        return renditions, report, captions_of(mix)

    def _encode_measured(self, pcm: bytes, mix: Mix, fmt: str,
                         ) -> tuple[EncodedAudio, AudioReport]:
        """Encode and measure; while the encoded file misses the targets
        (encoders move peaks and, a little, loudness), produce again with the
        measured error taken out, at most MAX_CORRECTIONS times."""
        encoded = self._encoders[fmt].encode(pcm, mix.sample_rate)
        report = self._analyzer.analyze(encoded.data)
        for _ in range(MAX_CORRECTIONS):
            if (abs(report.integrated_lufs - TARGET_LUFS) <= CORRECT_BEYOND_LU
                    and report.true_peak_dbtp <= MAX_TRUE_PEAK):
                break
            log.info("%s measured %.2f LUFS, %.2f dBTP: produced again", fmt,
                     report.integrated_lufs, report.true_peak_dbtp)
            mix = replace(
                mix, target_lufs=mix.target_lufs + (TARGET_LUFS - report.integrated_lufs),
                ceiling_dbtp=mix.ceiling_dbtp
                - max(0.0, report.true_peak_dbtp - MAX_TRUE_PEAK) - CORRECTION_MARGIN_DB)
            encoded = self._encoders[fmt].encode(self._producer.produce(mix), mix.sample_rate)
            report = self._analyzer.analyze(encoded.data)
        return encoded, report


def captions_of(mix: Mix) -> list[CaptionCue]:
    """A cue per sentence, timed where the producer lays it (AudioProducer's
    rule: each clip starts after the lead-in and everything before it)."""
    rate = mix.sample_rate
    cues = []
    position = round(mix.lead_in * rate)
    for clip in mix.clips:
        samples = len(clip.pcm) // 2
        if clip.text and samples:
            cues.append(CaptionCue(round(position * 1000 / rate),
                                   round((position + samples) * 1000 / rate), clip.text))
        position += samples + round(clip.pause_after * rate)
    return cues


class _StoreFailed(Exception):
    """The object store refused a write (transient)."""
