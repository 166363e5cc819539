"""The audio core: fitting pauses to a target length (examples and property
tests), splitting text into sentences, planning a mix's timing, and
AudioRenderer on a fake voice (deterministic PCM per sentence), a fake
producer that lays the Mix out as the port says (and records it), a recording
encoder per format, a fake analyzer whose reports the test chooses, a fake
object store and the memory unit of work: the Mix of a script (a clip per
sentence, gaps, pauses, lead-in and tail, the exact target length), captions
timed like the layout, the renditions and their measurement (produced again
once when off target), the preview of the first passage, one render (one
upload per format, one event) per (content, version) however often the job
runs, and transient versus final failures. One test runs the real producer,
LAME encoder and analyzer end to end."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import struct
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.memory.audio import memory_audio_uow
from adapters.memory.store import MemoryStore
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
    Silence,
    SpeechError,
    event_id,
    object_key,
)
from core.audio.service import (
    BED_LEAD_IN,
    BED_TAIL,
    CORRECTION_MARGIN_DB,
    MAX_CORRECTIONS,
    MAX_PAUSE,
    MAX_SPEECH_ATTEMPTS,
    MIN_PAUSE,
    PLAIN_LEAD_IN,
    PLAIN_TAIL,
    SENTENCE_GAP,
    AudioRenderer,
    RenderFailed,
    Timing,
    TransientRenderError,
    captions_of,
    fit_pauses,
    plan_timing,
    sentences,
)
from core.shared.creation import Script, Segment
from core.shared.events import DomainEvent
from ports.media import EncodedAudio, Voice
from tests.unit.fakes import FakeClock, JsonCodec

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
RATE = 16_000
#: Samples of speech per word of the fake voice (0.1 s).
PER_WORD = 1_600
USER = uuid.UUID("0190a000-0000-7000-8000-000000000001")

# --- fit_pauses -------------------------------------------------------------------------


def test_no_target_or_no_pauses_leaves_the_pauses_as_they_are() -> None:
    assert fit_pauses([3.0, 4.0], [1.5, 0.0], 0.0) == [1.5, 0.0]
    assert fit_pauses([3.0, 4.0], [1.5, 0.0], -5.0) == [1.5, 0.0]
    assert fit_pauses([3.0, 4.0], [0.0, 0.0], 60.0) == [0.0, 0.0]


def test_pauses_scale_in_proportion_to_reach_the_target() -> None:
    fitted = fit_pauses([10.0, 20.0, 5.0], [1.0, 3.0, 0.0], 43.0)  # 8 s of pauses wanted
    assert fitted == pytest.approx([2.0, 6.0, 0.0])
    shrunk = fit_pauses([10.0, 20.0], [4.0, 12.0], 34.0)  # 4 s wanted
    assert shrunk == pytest.approx([1.0, 3.0])


def test_what_clamping_takes_is_spread_over_the_other_pauses() -> None:
    # 0.1 s would shrink to 0.05 s: it stays at the minimum, the other gives way.
    fitted = fit_pauses([0.0], [0.1, 10.0], 5.0)
    assert fitted == pytest.approx([MIN_PAUSE, 5.0 - MIN_PAUSE])
    # 20 s would grow to 95 s: it stops at the maximum, the other takes the rest.
    fitted = fit_pauses([0.0], [1.0, 20.0], 100.0)
    assert fitted == pytest.approx([100.0 - MAX_PAUSE, MAX_PAUSE])


def test_speech_longer_than_the_target_keeps_minimal_pauses() -> None:
    assert fit_pauses([50.0, 20.0], [3.0, 0.2, 0.0], 60.0) == [MIN_PAUSE, 0.2, 0.0]
    assert fit_pauses([60.0], [3.0, 1.0], 60.0) == [MIN_PAUSE, MIN_PAUSE]


def test_pauses_stay_within_bounds_when_the_target_cannot_be_reached() -> None:
    assert fit_pauses([10.0], [1.0, 2.0], 10.5) == [MIN_PAUSE, MIN_PAUSE]  # too short
    assert fit_pauses([10.0], [1.0, 2.0], 1_000.0) == [MAX_PAUSE, MAX_PAUSE]  # too long
    assert fit_pauses([10.0], [0.0, 2.0, 0.0], 1_000.0) == [0.0, MAX_PAUSE, 0.0]


speeches = st.lists(st.floats(0.0, 30.0), min_size=1, max_size=12)
pause_lists = st.lists(st.one_of(st.just(0.0), st.floats(0.01, 30.0)), min_size=1,
                       max_size=12)


@settings(max_examples=300, deadline=None)
@given(speech=speeches, pauses=pause_lists, target=st.floats(0.1, 900.0))
def test_fitted_pauses_respect_their_bounds(speech: list[float], pauses: list[float],
                                            target: float) -> None:
    fitted = fit_pauses(speech, pauses, target)
    assert len(fitted) == len(pauses)
    for before, after in zip(pauses, fitted, strict=True):
        if before == 0:
            assert after == 0  # no silence where the script has none
        elif sum(speech) >= target:
            assert after == min(before, MIN_PAUSE)  # minimal, never longer than asked
        else:
            assert MIN_PAUSE <= after <= MAX_PAUSE


@settings(max_examples=300, deadline=None)
@given(speech=speeches, pauses=st.lists(st.floats(1.0, 10.0), min_size=1, max_size=12),
       scale=st.floats(0.4, 6.0))
def test_a_target_reachable_by_scaling_alone_is_met_exactly(
        speech: list[float], pauses: list[float], scale: float) -> None:
    target = sum(speech) + scale * sum(pauses)
    fitted = fit_pauses(speech, pauses, target)
    assert sum(speech) + sum(fitted) == pytest.approx(target, abs=0.05)
    assert fitted == pytest.approx([p * scale for p in pauses], abs=1e-6)


@st.composite
def reachable(draw: st.DrawFn) -> tuple[list[float], list[float], float]:
    """Speech, pauses (one at least not 0) and a target those pauses can, within
    their bounds, fill what the speech leaves of (drawn from that range, not
    filtered: a filter would reject most draws)."""
    speech, pauses = draw(speeches), draw(pause_lists)
    if not any(pauses):
        pauses = [*pauses, draw(st.floats(0.01, 30.0))]
    count = sum(1 for p in pauses if p > 0)
    fill = draw(st.floats(0.0, 1.0))
    return speech, pauses, sum(speech) + count * (MIN_PAUSE + fill * (MAX_PAUSE - MIN_PAUSE))


@settings(max_examples=300, deadline=None)
@example(case=([100.0], [0.5] * 4 + [1.5] * 4 + [10.0] * 2, 108.0))
@example(case=([0.0], [1.0, 10.0, 20.0], 150.0))
@given(case=reachable())
def test_fitted_pauses_sum_to_any_reachable_target(
        case: tuple[list[float], list[float], float]) -> None:
    """Feasible: the pauses that exist can, within their bounds, fill what the
    speech leaves of the target."""
    speech, pauses, target = case
    fitted = fit_pauses(speech, pauses, target)
    assert sum(speech) + sum(fitted) == pytest.approx(target, abs=0.05)


# --- sentences ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("I am calm. I am steady!  Are you? Yes\u2026",
     ["I am calm.", "I am steady!", "Are you?", "Yes\u2026"]),
    ('She said "rest." Then breathe.', ['She said "rest."', "Then breathe."]),
    ("(Rest here.) Now?! Go", ["(Rest here.)", "Now?!", "Go"]),
    ("Wait... then go.", ["Wait...", "then go."]),
    ("It is 3.5 km. Done.", ["It is 3.5 km.", "Done."]),  # no break inside a number
    ("Breathe\n in.\n\nBreathe   out", ["Breathe in.", "Breathe out"]),
    ("Breathe in and out", ["Breathe in and out"]),
    ("", []),
    (" \n\t ", []),
])
def test_sentences_split_at_terminal_marks(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .!?\u2026\"')\n")), max_size=60))
def test_sentences_keep_every_word_in_order(text: str) -> None:
    found = sentences(text)
    assert " ".join(found) == " ".join(text.split())
    assert all(s and s == " ".join(s.split()) for s in found)


# --- plan_timing --------------------------------------------------------------------------


def test_without_a_target_the_timing_adds_a_lead_in_and_a_tail() -> None:
    assert plan_timing([1.0, 2.0], [1.0, 0.0], 0.0, with_bed=False) == Timing(
        PLAIN_LEAD_IN, PLAIN_TAIL, (1.0, PLAIN_TAIL))
    assert plan_timing([1.0, 2.0], [1.0, 0.0], 0.0, with_bed=True) == Timing(
        BED_LEAD_IN, BED_TAIL, (1.0, BED_TAIL))
    # A last pause longer than the tail is kept; the fade takes the tail's length.
    assert plan_timing([1.0], [8.0], 0.0, with_bed=True) == Timing(BED_LEAD_IN, BED_TAIL,
                                                                   (8.0,))
    assert plan_timing([1.0], [0.5], 0.0, with_bed=False) == Timing(PLAIN_LEAD_IN, PLAIN_TAIL,
                                                                    (PLAIN_TAIL,))


@pytest.mark.parametrize("with_bed", [False, True])
def test_with_a_target_lead_in_speech_and_pauses_last_the_target(with_bed: bool) -> None:
    speech, target = [10.0, 12.0, 8.0], 60.0
    timing = plan_timing(speech, [2.0, 3.0, 0.0], target, with_bed)
    assert timing.lead_in == (BED_LEAD_IN if with_bed else PLAIN_LEAD_IN)
    assert timing.lead_in + sum(speech) + sum(timing.pauses) == pytest.approx(target, abs=0.05)
    assert timing.fade_out == min(BED_TAIL if with_bed else PLAIN_TAIL, timing.pauses[-1])
    assert all(MIN_PAUSE <= p <= MAX_PAUSE for p in timing.pauses)


@settings(max_examples=200, deadline=None)
@given(speech=st.lists(st.floats(0.5, 30.0), min_size=1, max_size=8),
       pauses=st.lists(st.floats(0.5, 10.0), min_size=1, max_size=8),
       spare=st.floats(0.0, 1.0), with_bed=st.booleans())
def test_any_reachable_target_is_met(speech: list[float], pauses: list[float], spare: float,
                                     with_bed: bool) -> None:
    pauses = pauses[:len(speech)] + [1.0] * (len(speech) - len(pauses))
    lead_in = BED_LEAD_IN if with_bed else PLAIN_LEAD_IN
    low, high = MIN_PAUSE * len(pauses), MAX_PAUSE * len(pauses)
    target = lead_in + sum(speech) + low + spare * (high - low)
    timing = plan_timing(speech, pauses, target, with_bed)
    assert timing.lead_in + sum(speech) + sum(timing.pauses) == pytest.approx(target, abs=0.05)


# --- fakes for the renderer -----------------------------------------------------------


def spoken(text: str) -> bytes:
    """The fake voice's PCM for `text`: 0.1 s a word, never a zero sample."""
    seed = hashlib.sha256(text.encode()).digest()
    count = PER_WORD * len(text.split())
    return struct.pack(f"<{count}h", *((seed[i % 32] + 1) * 60 * (1 if i % 2 else -1)
                                       for i in range(count)))


def toned(text: str) -> bytes:
    """A voice for the real producer: 0.1 s a word of a soft 150-400 Hz tone."""
    frequency = 150 + hashlib.sha256(text.encode()).digest()[0]
    count = PER_WORD * len(text.split())
    return struct.pack(f"<{count}h", *(round(6000 * math.sin(2 * math.pi * frequency * i / RATE))
                                       for i in range(count)))


def seconds(pcm: bytes) -> float:
    return len(pcm) / 2 / RATE


class FakeSpeech:
    """SpeechSynthesizer: deterministic PCM per text, errors queued by the test
    (each raised by the call of the same index, None for a call that speaks),
    and a hook run on each call (to act as a concurrent delivery)."""

    sample_rate = RATE

    def __init__(self, voice: Callable[[str], bytes] = spoken) -> None:
        self.calls: list[tuple[str, str, float]] = []
        self.errors: list[SpeechError | None] = []
        self.hook: Any = None
        self._voice = voice

    def voices(self) -> list[Voice]:
        return [Voice("fake", "Fake")]

    async def synthesize(self, text: str, voice: str, rate: float) -> bytes:
        self.calls.append((text, voice, rate))
        if self.hook is not None:
            await self.hook()
        if self.errors:
            error = self.errors.pop(0)
            if error is not None:
                raise error
        return self._voice(text)

    async def close(self) -> None:
        return None


def laid_out(mix: Mix) -> bytes:
    """The mix as the port lays it out: the lead-in, then each clip followed by
    exactly its pause, each rounded to whole samples (no bed, no mastering)."""
    out = bytearray(2 * round(mix.lead_in * mix.sample_rate))
    for clip in mix.clips:
        out += clip.pcm + bytes(2 * round(clip.pause_after * mix.sample_rate))
    return bytes(out)


class FakeProducer:
    """AudioProducer: the layout alone; records every Mix (or raises `error`)."""

    def __init__(self) -> None:
        self.mixes: list[Mix] = []
        self.error: Exception | None = None

    def produce(self, mix: Mix) -> bytes:
        self.mixes.append(mix)
        if self.error is not None:
            raise self.error
        return laid_out(mix)


FORMATS = {"mp3": ("audio/mpeg", "mp3"), "ogg_opus": ("audio/ogg", "opus")}


class RecordingEncoder:
    """AudioEncoder of one format: the data is a tag and the PCM itself (so the
    fake analyzer can measure it); keeps the PCM it was given (or raises `error`)."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.pcm: list[bytes] = []
        self.error: Exception | None = None

    def encode(self, pcm: bytes, sample_rate: int) -> EncodedAudio:
        assert sample_rate == RATE
        if self.error is not None:
            raise self.error
        self.pcm.append(pcm)
        mime, extension = FORMATS[self.fmt]
        return EncodedAudio(data=self.fmt.encode() + b":" + pcm, mime_type=mime,
                            extension=extension, duration_seconds=seconds(pcm))


class FakeAnalyzer:
    """AudioAnalyzer: the length of the PCM in a RecordingEncoder's data, and a
    loudness and true peak the test queues ((lufs, dbtp) per call; on target
    once the queue is empty)."""

    def __init__(self) -> None:
        self.levels: list[tuple[float, float]] = []
        self.analysed: list[bytes] = []
        self.error: Exception | None = None

    def analyze(self, data: bytes) -> AudioReport:
        if self.error is not None:
            raise self.error
        self.analysed.append(data)
        lufs, peak = self.levels.pop(0) if self.levels else (-16.2, -1.6)
        pcm = data.split(b":", 1)[1]
        return AudioReport(duration_ms=round(seconds(pcm) * 1000), integrated_lufs=lufs,
                           sample_peak_dbfs=peak - 0.4, true_peak_dbtp=peak,
                           silences=(Silence(0, 300),), waveform=(0.0, 0.5, 0.25))


class FakeObjects:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.puts: list[str] = []
        #: Raised by every put whose key contains the text (all when "").
        self.put_error: tuple[str, Exception] | None = None

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self.puts.append(key)
        if self.put_error is not None and self.put_error[0] in key:
            raise self.put_error[1]
        self.objects[key] = (bytes(data), content_type)

    async def get(self, key: str) -> bytes | None:
        found = self.objects.get(key)
        return found[0] if found else None

    async def exists(self, key: str) -> bool:
        return key in self.objects

    async def delete_prefix(self, prefix: str) -> int:
        gone = [k for k in self.objects if k.startswith(prefix)]
        for key in gone:
            del self.objects[key]
        return len(gone)

    async def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    async def signed_url(self, key: str, expires_in: timedelta,
                         download_name: str | None = None) -> str:
        return f"https://media.test/{key}"

    async def close(self) -> None:
        return None


class Rig:
    def __init__(self, *, formats: tuple[str, ...] = ("mp3", "ogg_opus"),
                 speech: FakeSpeech | None = None, producer: Any = None,
                 encoders: dict[str, Any] | None = None, analyzer: Any = None) -> None:
        self.store = MemoryStore()
        self.codec = JsonCodec()
        self.uow = memory_audio_uow(self.store, self.codec)
        self.speech = speech or FakeSpeech()
        self.producer = producer or FakeProducer()
        self.encoders = encoders or {f: RecordingEncoder(f) for f in formats}
        self.analyzer = analyzer or FakeAnalyzer()
        self.objects = FakeObjects()
        self.clock = FakeClock(T0)
        self.renderer = AudioRenderer(self.uow, self.speech, self.producer, self.encoders,
                                      self.analyzer, self.objects, self.clock)

    def events(self, kind: type[DomainEvent]) -> list[Any]:
        """The events of that kind in the outbox (committed), whole."""
        return [self.codec.encoded[r.event_id] for r in self.store.tables.outbox.values()
                if r.topic == kind.topic]

    @property
    def mix(self) -> Mix:
        """The Mix of the full render (the last one produced)."""
        return self.producer.mixes[-1]

    async def recorded(self, job: RenderJob) -> Render | None:
        async with self.uow(read_only=True) as uow:
            return await uow.renders.get(job.content_id, job.version)


@pytest.fixture
def rig() -> Rig:
    return Rig()


def job(*segments: tuple[str, float], target: float = 0.0, version: int = 1,
        voice: str = "en_US-joe", rate: float = 0.85, background: str = "none") -> RenderJob:
    return RenderJob(content_id=uuid.uuid4(), user_id=USER, version=version,
                     script=Script(tuple(Segment(t, p) for t, p in segments), target),
                     voice=voice, rate=rate, background=background)


def mix_seconds(mix: Mix) -> float:
    """What the mix lasts, in whole samples (as the producer lays it)."""
    return seconds(laid_out(mix))


# --- the mix ------------------------------------------------------------------------------


async def test_each_sentence_is_spoken_and_laid_as_a_clip(rig: Rig) -> None:
    work = job(("One two. Three.", 1.0), ("Four five six", 2.0))
    outcome = await rig.renderer.render(work)
    assert rig.speech.calls == [("One two.", "en_US-joe", 0.85), ("Three.", "en_US-joe", 0.85),
                                ("Four five six", "en_US-joe", 0.85)]
    [mix] = [m for m in rig.producer.mixes if len(m.clips) == 3]  # the other is the preview
    assert mix == Mix(clips=(Clip(spoken("One two."), SENTENCE_GAP, "One two."),
                             Clip(spoken("Three."), 1.0, "Three."),
                             Clip(spoken("Four five six"), 2.0, "Four five six")),
                      sample_rate=RATE, background="none", lead_in=PLAIN_LEAD_IN,
                      fade_out=PLAIN_TAIL, seed=work.content_id.int % 2 ** 32,
                      target_lufs=TARGET_LUFS)
    assert outcome.speech_seconds == pytest.approx(0.6)
    # Every format encodes what the producer made of that mix.
    for encoder in rig.encoders.values():
        assert encoder.pcm[-1] == laid_out(mix)
    assert outcome.render.duration_ms == round(mix_seconds(mix) * 1000) == 300 + 200 + 350 + 100 \
        + 1000 + 300 + 2000


async def test_the_last_pause_becomes_the_tail(rig: Rig) -> None:
    await rig.renderer.render(job(("Rest now.", 0.0)))
    assert [c.pause_after for c in rig.mix.clips] == [PLAIN_TAIL]
    assert (rig.mix.lead_in, rig.mix.fade_out) == (PLAIN_LEAD_IN, PLAIN_TAIL)


async def test_with_a_bed_the_voice_starts_late_and_the_bed_fades_out(rig: Rig) -> None:
    work = job(("One two. Three.", 1.0), ("Four.", 0.0), background="rain")
    await rig.renderer.render(work)
    mix = rig.mix
    assert (mix.background, mix.lead_in, mix.fade_out) == ("rain", BED_LEAD_IN, BED_TAIL)
    assert [c.pause_after for c in mix.clips] == [SENTENCE_GAP, 1.0, BED_TAIL]
    assert mix.seed == work.content_id.int % 2 ** 32
    [rendered] = rig.events(AudioRendered)
    assert rendered.background == "rain"


@pytest.mark.parametrize("background", ["none", "drone"])
async def test_a_script_whose_speech_fits_lasts_exactly_its_target(rig: Rig,
                                                                   background: str) -> None:
    # 1.9 s of speech in three passages and six sentences; 60 s asked.
    work = job(("I am here. I am calm. I breathe.", 2.0),
               ("My breath is slow and deep.", 5.0),
               ("All is well. Rest.", 0.0), target=60.0, background=background)
    outcome = await rig.renderer.render(work)
    mix = rig.mix
    assert len(mix.clips) == 6
    speech = sum(seconds(c.pcm) for c in mix.clips)
    assert mix.lead_in + speech + sum(c.pause_after for c in mix.clips) == pytest.approx(
        60.0, abs=0.05)
    assert mix_seconds(mix) == pytest.approx(60.0, abs=0.05)
    assert outcome.render.duration_ms == pytest.approx(60_000, abs=50)
    # The gaps inside a passage are never stretched: only the pauses are.
    # Clips 0-2, 3 and 4-5 are the passages: the gaps inside a passage are
    # never stretched; the passages' pauses (the last one the tail) all are,
    # in proportion.
    pauses = [c.pause_after for c in mix.clips]
    assert [pauses[i] for i in (0, 1, 4)] == [SENTENCE_GAP] * 3
    tail = BED_TAIL if background != "none" else PLAIN_TAIL
    scale = pauses[2] / 2.0
    assert scale > 1 and [pauses[3], pauses[5]] == pytest.approx([5.0 * scale, tail * scale])


async def test_a_render_whose_speech_outlasts_the_target_keeps_minimal_pauses(rig: Rig) -> None:
    work = job(("One two three four five.", 2.0), ("Six seven.", 1.0), target=0.5)
    await rig.renderer.render(work)
    assert [c.pause_after for c in rig.mix.clips] == [MIN_PAUSE, MIN_PAUSE]
    assert rig.mix.fade_out == MIN_PAUSE  # the tail shrank: the fade fits in it


async def test_captions_are_timed_where_the_sentences_are_laid(rig: Rig) -> None:
    work = job(("One two. Three.", 1.0), ("Four five six", 0.0))
    await rig.renderer.render(work)
    [rendered] = rig.events(AudioRendered)
    # 0.3 s lead-in; "One two." 0.2 s; a 0.35 s gap; "Three." 0.1 s; 1 s; the rest.
    assert rendered.captions == (CaptionCue(300, 500, "One two."),
                                 CaptionCue(850, 950, "Three."),
                                 CaptionCue(1950, 2250, "Four five six"))
    assert list(rendered.captions) == captions_of(rig.mix)


def test_captions_follow_the_sample_layout() -> None:
    pcm = b"\x01\x00" * 441
    mix = Mix(clips=(Clip(pcm, 0.0125, "a"), Clip(b"", 1.0, "nothing said"),
                     Clip(pcm, 0.5, ""), Clip(pcm, 0.0, "b")),
              sample_rate=44_100, lead_in=1.00001)
    # Cues only for clips with words and sound; every clip and pause moves the next.
    position = round(1.00001 * 44_100)
    starts = []
    for clip in mix.clips:
        starts.append(position)
        position += len(clip.pcm) // 2 + round(clip.pause_after * 44_100)
    assert captions_of(mix) == [
        CaptionCue(round(starts[0] * 1000 / 44_100), round((starts[0] + 441) * 1000 / 44_100),
                   "a"),
        CaptionCue(round(starts[3] * 1000 / 44_100), round((starts[3] + 441) * 1000 / 44_100),
                   "b")]
    assert captions_of(Mix(clips=(), sample_rate=RATE, lead_in=3.0)) == []


# --- renditions and their measurement -------------------------------------------------------


async def test_every_format_is_stored_measured_recorded_and_announced(rig: Rig) -> None:
    work = job(("I am calm and steady.", 0.75), version=2)
    outcome = await rig.renderer.render(work)
    mp3_key = object_key(USER, work.content_id, 2, "mp3")
    opus_key = object_key(USER, work.content_id, 2, "opus")
    assert mp3_key == f"audio/{USER}/{work.content_id}/2.mp3"
    assert rig.objects.puts == [mp3_key, opus_key]
    mp3, mp3_mime = rig.objects.objects[mp3_key]
    opus, opus_mime = rig.objects.objects[opus_key]
    assert (mp3_mime, opus_mime) == ("audio/mpeg", "audio/ogg")
    assert mp3 == b"mp3:" + laid_out(rig.mix) and opus == b"ogg_opus:" + laid_out(rig.mix)
    assert rig.analyzer.analysed == [mp3, opus]  # each encoded file is measured
    assert len(rig.producer.mixes) == 1  # produced once for both (one passage: no preview)
    render = outcome.render
    length_ms = round(mix_seconds(rig.mix) * 1000)
    assert (render.content_id, render.version, render.user_id) == (work.content_id, 2, USER)
    assert (render.object_key, render.mime_type, render.size) == (mp3_key, "audio/mpeg",
                                                                  len(mp3))
    assert render.duration_ms == length_ms and render.render_ms >= 0
    assert render.created_at == T0 and await rig.recorded(work) == render
    [announced] = rig.events(AudioRendered)
    assert announced.event_id == event_id(work.content_id, 2, "rendered")
    assert (announced.content_id, announced.user_id, announced.version, announced.voice) == (
        work.content_id, USER, 2, "en_US-joe")
    assert (announced.object_key, announced.mime_type, announced.size,
            announced.duration_ms) == (mp3_key, "audio/mpeg", len(mp3), length_ms)
    assert [(r.format, r.object_key, r.mime_type, r.size) for r in announced.renditions] == [
        ("mp3", mp3_key, "audio/mpeg", len(mp3)), ("ogg_opus", opus_key, "audio/ogg", len(opus))]
    for rendition in announced.renditions:
        assert (rendition.measurement.duration_ms, rendition.measurement.integrated_lufs,
                rendition.measurement.true_peak_dbtp) == (length_ms, -16.2, -1.6)
    assert announced.silences == (Silence(0, 300),)
    assert announced.waveform == (0.0, 0.5, 0.25)
    assert rig.events(AudioFailed) == [] and rig.events(AudioPreviewReady) == []


async def test_an_mp3_encoder_is_required() -> None:
    with pytest.raises(ValueError, match="MP3"):
        Rig(formats=("ogg_opus",))
    only_mp3 = Rig(formats=("mp3",))
    work = job(("Rest.", 0.5))
    await only_mp3.renderer.render(work)
    assert only_mp3.objects.puts == [object_key(USER, work.content_id, 1, "mp3")]
    [announced] = only_mp3.events(AudioRendered)
    assert [r.format for r in announced.renditions] == ["mp3"]


async def test_a_rendition_off_target_is_produced_again_once_corrected(rig: Rig) -> None:
    work = job(("I am calm.", 0.5))
    rig.analyzer.levels = [(-19.0, -2.0)]  # the MP3 measures 3 LU too quiet
    await rig.renderer.render(work)
    first, corrected = rig.producer.mixes
    assert first.target_lufs == TARGET_LUFS
    assert corrected == dataclasses.replace(first, target_lufs=-13.0,
                                            ceiling_dbtp=first.ceiling_dbtp - CORRECTION_MARGIN_DB)
    assert len(rig.encoders["mp3"].pcm) == 2 and len(rig.encoders["ogg_opus"].pcm) == 1
    assert len(rig.analyzer.analysed) == 3
    [announced] = rig.events(AudioRendered)
    mp3, opus = announced.renditions
    assert mp3.measurement.integrated_lufs == -16.2  # the second measurement is kept
    assert opus.measurement.integrated_lufs == -16.2


async def test_a_true_peak_over_the_ceiling_lowers_it(rig: Rig) -> None:
    rig.analyzer.levels = [(-16.0, -16.2), (-16.0, -0.4)]  # the Opus peaks at -0.4 dBTP
    await rig.renderer.render(job(("I am calm.", 0.5)))
    first, corrected = rig.producer.mixes
    assert corrected.target_lufs == pytest.approx(TARGET_LUFS)
    assert corrected.ceiling_dbtp == pytest.approx(first.ceiling_dbtp
                                                   - (-0.4 - MAX_TRUE_PEAK) - CORRECTION_MARGIN_DB)
    assert len(rig.encoders["mp3"].pcm) == 1 and len(rig.encoders["ogg_opus"].pcm) == 2


async def test_each_correction_starts_from_the_last_measurement(rig: Rig) -> None:
    rig.analyzer.levels = [(-19.0, -2.0), (-16.0, -0.5)]  # too quiet, then a peak too high
    await rig.renderer.render(job(("I am calm.", 0.5)))
    _first, second, third = rig.producer.mixes
    assert second.target_lufs == pytest.approx(-13.0)
    assert third.target_lufs == pytest.approx(-13.0)
    assert third.ceiling_dbtp == pytest.approx(second.ceiling_dbtp - 0.5 - CORRECTION_MARGIN_DB)


async def test_a_rendition_still_off_target_is_not_produced_again_forever(rig: Rig) -> None:
    rig.analyzer.levels = [(-19.0, -2.0), (-18.0, -2.0), (-17.0, -2.0)]
    await rig.renderer.render(job(("I am calm.", 0.5)))
    assert len(rig.producer.mixes) == 1 + MAX_CORRECTIONS
    [announced] = rig.events(AudioRendered)
    assert announced.renditions[0].measurement.integrated_lufs == -17.0


# --- the preview ------------------------------------------------------------------------------


async def test_the_first_passage_is_published_as_a_preview(rig: Rig) -> None:
    work = job(("One two. Three.", 1.0), ("Four five six.", 2.0), ("Seven.", 0.0),
               target=30.0)
    await rig.renderer.render(work)
    preview_mix, full = rig.producer.mixes
    # The first passage alone, with its own lead-in, no target, its pause
    # (longer than the tail) as the tail.
    assert preview_mix.clips == (Clip(spoken("One two."), SENTENCE_GAP, "One two."),
                                 Clip(spoken("Three."), 1.0, "Three."))
    assert preview_mix.lead_in == PLAIN_LEAD_IN and len(full.clips) == 4
    key = object_key(USER, work.content_id, 1, "preview.mp3")
    assert key == f"audio/{USER}/{work.content_id}/1.preview.mp3"
    assert rig.objects.puts[0] == key
    assert rig.objects.objects[key] == (b"mp3:" + laid_out(preview_mix), "audio/mpeg")
    [preview] = rig.events(AudioPreviewReady)
    assert preview.event_id == event_id(work.content_id, 1, "preview")
    assert (preview.content_id, preview.user_id, preview.version, preview.object_key,
            preview.duration_ms) == (work.content_id, USER, 1, key,
                                     round(mix_seconds(preview_mix) * 1000))
    assert len(rig.events(AudioRendered)) == 1


async def test_a_script_of_one_passage_has_no_preview(rig: Rig) -> None:
    await rig.renderer.render(job(("One. Two. Three. Four.", 0.0)))
    assert rig.events(AudioPreviewReady) == [] and len(rig.producer.mixes) == 1
    assert not any("preview" in k for k in rig.objects.puts)


async def test_the_preview_is_announced_once_however_often_the_job_runs(rig: Rig) -> None:
    work = job(("One two.", 1.0), ("Three.", 0.0))
    # The first attempt dies after the preview, on the second passage.
    rig.speech.errors = [None, SpeechError("rate limited", retryable=True)]
    with pytest.raises(TransientRenderError):
        await rig.renderer.render(work)
    assert len(rig.events(AudioPreviewReady)) == 1 and rig.events(AudioRendered) == []
    await rig.renderer.render(work, attempts=1)
    await rig.renderer.render(work, attempts=2)  # redelivered once done: nothing at all
    assert len(rig.events(AudioPreviewReady)) == 1 and len(rig.events(AudioRendered)) == 1


async def test_a_preview_that_cannot_be_stored_does_not_stop_the_render(rig: Rig) -> None:
    work = job(("One two.", 1.0), ("Three.", 0.0))
    rig.objects.put_error = ("preview", OSError("connection reset"))
    outcome = await rig.renderer.render(work)
    assert outcome.fresh and rig.events(AudioPreviewReady) == []
    assert len(rig.events(AudioRendered)) == 1


# --- exactly once -----------------------------------------------------------------------------


async def test_a_job_delivered_again_is_rendered_once(rig: Rig) -> None:
    work = job(("Breathe in.", 1.0), ("Breathe out.", 0.0))
    first = await rig.renderer.render(work)
    calls, mixes, puts = len(rig.speech.calls), len(rig.producer.mixes), len(rig.objects.puts)
    second = await rig.renderer.render(work, attempts=1)
    assert first.fresh and not second.fresh
    assert second.render == first.render
    assert (len(rig.speech.calls), len(rig.producer.mixes), len(rig.objects.puts)) == (
        calls, mixes, puts)
    assert len(rig.encoders["mp3"].pcm) == 2  # the preview and the render, once each
    assert len(rig.events(AudioRendered)) == 1 and len(rig.events(AudioPreviewReady)) == 1
    # Another version of the same content is another render.
    newer = dataclasses.replace(work, version=2)
    assert (await rig.renderer.render(newer)).fresh
    assert len(rig.events(AudioRendered)) == 2 and len(rig.events(AudioPreviewReady)) == 2


async def test_a_delivery_that_finishes_second_announces_nothing(rig: Rig) -> None:
    """Two deliveries of one job at once: the one that records the render
    second uploads the same audio under the same keys and writes no event."""
    work = job(("Rest now.", 0.5))
    other = Render(content_id=work.content_id, version=1, user_id=USER,
                   object_key=object_key(USER, work.content_id, 1, "mp3"),
                   mime_type="audio/mpeg", duration_ms=700, size=36, render_ms=5,
                   created_at=T0)

    async def the_other_finishes() -> None:
        rig.speech.hook = None
        async with rig.uow() as uow:
            assert await uow.renders.add(other)
            await uow.commit()

    rig.speech.hook = the_other_finishes
    outcome = await rig.renderer.render(work)
    assert not outcome.fresh
    assert rig.events(AudioRendered) == []
    assert await rig.recorded(work) == other


# --- failures -------------------------------------------------------------------------------


async def test_a_retryable_speech_error_asks_for_a_later_attempt(rig: Rig) -> None:
    work = job(("Hello there.", 0.5))
    for attempts, retry_after, delay in [(0, 0.0, 1.0), (2, 0.0, 4.0), (1, 30.0, 30.0)]:
        rig.speech.errors = [SpeechError("rate limited", retryable=True,
                                         retry_after=retry_after)]
        with pytest.raises(TransientRenderError) as raised:
            await rig.renderer.render(work, attempts=attempts)
        assert raised.value.delay == delay
    assert rig.objects.puts == [] and rig.store.tables.outbox == {}
    assert rig.producer.mixes == [] and await rig.recorded(work) is None
    # The next attempt succeeds.
    assert (await rig.renderer.render(work, attempts=3)).fresh
    assert len(rig.events(AudioRendered)) == 1


@pytest.mark.parametrize(("retryable", "attempts"), [(False, 0),
                                                     (True, MAX_SPEECH_ATTEMPTS - 1)])
async def test_a_final_speech_error_announces_the_failure(rig: Rig, retryable: bool,
                                                          attempts: int) -> None:
    work = job(("Hello there.", 0.5), version=3)
    rig.speech.errors = [SpeechError("unknown voice", retryable=retryable)]
    with pytest.raises(RenderFailed) as raised:
        await rig.renderer.render(work, attempts=attempts)
    assert raised.value.reason == "SPEECH_FAILED"
    [failed] = rig.events(AudioFailed)
    assert failed.event_id == event_id(work.content_id, 3, "failed")
    assert (failed.content_id, failed.user_id, failed.version, failed.reason) == (
        work.content_id, USER, 3, "SPEECH_FAILED")
    assert rig.events(AudioRendered) == [] and rig.objects.puts == []
    assert await rig.recorded(work) is None


async def test_a_job_that_fails_for_good_twice_announces_once(rig: Rig) -> None:
    work = job(("Hello there.", 0.5))
    for _ in range(2):
        rig.speech.errors = [SpeechError("unknown voice", retryable=False)]
        with pytest.raises(RenderFailed):
            await rig.renderer.render(work)
    assert len(rig.events(AudioFailed)) == 1


@pytest.mark.parametrize("broken", ["encoder", "producer", "analyzer"])
async def test_a_production_error_announces_the_failure(rig: Rig, broken: str) -> None:
    work = job(("Hello there.", 0.5))
    error = ValueError("unsupported sample rate")
    if broken == "encoder":
        rig.encoders["mp3"].error = error
    elif broken == "producer":
        rig.producer.error = error
    else:
        rig.analyzer.error = error
    with pytest.raises(RenderFailed) as raised:
        await rig.renderer.render(work)
    assert raised.value.reason == "ENCODING_FAILED"
    assert [e.reason for e in rig.events(AudioFailed)] == ["ENCODING_FAILED"]
    assert rig.objects.puts == [] and await rig.recorded(work) is None
    assert rig.events(AudioRendered) == []


@pytest.mark.parametrize("refused", ["", ".opus"])
async def test_a_failed_upload_is_retried_without_a_record_or_an_event(
        rig: Rig, refused: str) -> None:
    work = job(("Hello there.", 0.5))
    rig.objects.put_error = (refused, OSError("connection reset"))
    with pytest.raises(TransientRenderError) as raised:
        await rig.renderer.render(work)
    assert raised.value.delay == 5.0
    assert rig.store.tables.outbox == {} and await rig.recorded(work) is None
    rig.objects.put_error = None
    assert (await rig.renderer.render(work, attempts=1)).fresh
    assert len(rig.events(AudioRendered)) == 1 and rig.events(AudioFailed) == []


# --- the real producer, encoder and analyzer --------------------------------------------------


async def test_the_real_chain_meets_the_loudness_targets_and_the_length() -> None:
    from adapters.audio.analysis import PyAvAnalyzer
    from adapters.audio.mp3 import LameMp3Encoder
    from adapters.audio.production import NumpyAudioProducer

    rig = Rig(speech=FakeSpeech(toned), producer=NumpyAudioProducer(),
              encoders={"mp3": LameMp3Encoder()}, analyzer=PyAvAnalyzer())
    work = job(("I am calm. I am here.", 1.0), ("Breathe.", 0.0), target=6.0,
               background="brown_noise")
    outcome = await rig.renderer.render(work)
    [announced] = rig.events(AudioRendered)
    [mp3] = announced.renditions
    assert abs(mp3.measurement.integrated_lufs - TARGET_LUFS) <= 1.0
    assert mp3.measurement.true_peak_dbtp <= MAX_TRUE_PEAK
    assert outcome.render.duration_ms == pytest.approx(6_000, abs=100)
    assert [c.text for c in announced.captions] == ["I am calm.", "I am here.", "Breathe."]
    assert announced.captions[0].start_ms == BED_LEAD_IN * 1000
    assert len(announced.waveform) == 200
    [preview] = rig.events(AudioPreviewReady)
    assert preview.object_key in rig.objects.objects


async def test_a_leading_passage_with_nothing_to_say_keeps_its_pause(rig: Rig) -> None:
    # A segment whose text is blank once stripped (the structure's minLength
    # is checked before to_script strips it) is a pause alone.
    await rig.renderer.render(job(("  ", 2.0), ("Hello there.", 3.0), ("Bye.", 0.0),
                                  target=10.0))
    assert mix_seconds(rig.mix) == pytest.approx(10.0, abs=0.05)
