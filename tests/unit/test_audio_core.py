"""The audio core: fitting pauses to a target length (examples and property
tests), and AudioRenderer on a fake voice (deterministic PCM per text), the
real LAME encoder or a recording one, a fake object store and the memory unit
of work: exact silences, one render (one upload, one event) per (content,
version) however often the job runs, and transient versus final failures."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from adapters.audio.mp3 import LameMp3Encoder, mp3_duration
from adapters.memory.audio import memory_audio_uow
from adapters.memory.store import MemoryStore
from core.audio.model import (
    AudioFailed,
    AudioRendered,
    Render,
    RenderJob,
    SpeechError,
    event_id,
    object_key,
)
from core.audio.service import (
    MAX_PAUSE,
    MAX_SPEECH_ATTEMPTS,
    MIN_PAUSE,
    AudioRenderer,
    RenderFailed,
    TransientRenderError,
    fit_pauses,
)
from core.shared.creation import Script, Segment
from core.shared.events import DomainEvent
from ports.media import EncodedAudio, Voice
from tests.unit.fakes import FakeClock

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


@settings(max_examples=300, deadline=None)
@example(speech=[100.0], pauses=[0.5] * 4 + [1.5] * 4 + [10.0] * 2, target=108.0)
@example(speech=[0.0], pauses=[1.0, 10.0, 20.0], target=150.0)
@given(speech=speeches, pauses=pause_lists, target=st.floats(0.1, 900.0))
def test_fitted_pauses_sum_to_any_reachable_target(speech: list[float], pauses: list[float],
                                                   target: float) -> None:
    """Feasible: the pauses that exist can, within their bounds, fill what the
    speech leaves of the target."""
    count = sum(1 for p in pauses if p > 0)
    wanted = target - sum(speech)
    assume(count and MIN_PAUSE * count <= wanted <= MAX_PAUSE * count)
    fitted = fit_pauses(speech, pauses, target)
    assert sum(speech) + sum(fitted) == pytest.approx(target, abs=0.05)


# --- fakes for the renderer -----------------------------------------------------------


class JsonCodec:
    def encode(self, event: DomainEvent) -> tuple[str, bytes]:
        body = {f.name: str(getattr(event, f.name)) for f in dataclasses.fields(event)}
        return event.topic, json.dumps(body).encode()

    def decode(self, topic: str, payload: bytes, event_id: uuid.UUID) -> DomainEvent:
        raise NotImplementedError


def spoken(text: str) -> bytes:
    """The fake voice's PCM for `text`: 0.1 s a word, never a zero sample."""
    seed = hashlib.sha256(text.encode()).digest()
    count = PER_WORD * len(text.split())
    return struct.pack(f"<{count}h", *((seed[i % 32] + 1) * 60 * (1 if i % 2 else -1)
                                       for i in range(count)))


class FakeSpeech:
    """SpeechSynthesizer: deterministic PCM per text, errors queued by the test,
    and a hook run on each call (to act as a concurrent delivery)."""

    sample_rate = RATE

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float]] = []
        self.errors: list[SpeechError] = []
        self.hook: Any = None

    def voices(self) -> list[Voice]:
        return [Voice("fake", "Fake")]

    async def synthesize(self, text: str, voice: str, rate: float) -> bytes:
        self.calls.append((text, voice, rate))
        if self.hook is not None:
            await self.hook()
        if self.errors:
            raise self.errors.pop(0)
        return spoken(text)

    async def close(self) -> None:
        return None


class RecordingEncoder:
    """AudioEncoder that keeps the PCM it was given (or raises `error`)."""

    def __init__(self) -> None:
        self.pcm: list[bytes] = []
        self.error: Exception | None = None

    def encode(self, pcm: bytes, sample_rate: int) -> EncodedAudio:
        assert sample_rate == RATE
        if self.error is not None:
            raise self.error
        self.pcm.append(pcm)
        return EncodedAudio(data=b"MP3:" + hashlib.sha256(pcm).digest(),
                            mime_type="audio/mpeg", extension="mp3",
                            duration_seconds=len(pcm) / 2 / sample_rate)


class FakeObjects:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.puts: list[str] = []
        self.put_error: Exception | None = None

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self.puts.append(key)
        if self.put_error is not None:
            raise self.put_error
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

    async def signed_url(self, key: str, expires_in: timedelta) -> str:
        return f"https://media.test/{key}"

    async def close(self) -> None:
        return None


class Rig:
    def __init__(self, encoder: Any = None) -> None:
        self.store = MemoryStore()
        self.uow = memory_audio_uow(self.store, JsonCodec())
        self.speech = FakeSpeech()
        self.encoder = encoder or RecordingEncoder()
        self.objects = FakeObjects()
        self.clock = FakeClock(T0)
        self.renderer = AudioRenderer(self.uow, self.speech, self.encoder, self.objects,
                                      self.clock)

    def events(self, topic: str) -> list[dict[str, str]]:
        return [json.loads(r.payload) | {"id": str(r.event_id)}
                for r in self.store.tables.outbox.values() if r.topic == topic]

    async def recorded(self, job: RenderJob) -> Render | None:
        async with self.uow(read_only=True) as uow:
            return await uow.renders.get(job.content_id, job.version)


@pytest.fixture
def rig() -> Rig:
    return Rig()


def job(*segments: tuple[str, float], target: float = 0.0, version: int = 1,
        voice: str = "en_US-joe", rate: float = 0.85) -> RenderJob:
    return RenderJob(content_id=uuid.uuid4(), user_id=USER, version=version,
                     script=Script(tuple(Segment(t, p) for t, p in segments), target),
                     voice=voice, rate=rate)


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * round(seconds * RATE)


# --- rendering --------------------------------------------------------------------------


async def test_render_encodes_stores_records_and_announces_an_mp3() -> None:
    rig = Rig(LameMp3Encoder())
    work = job(("I am calm and steady", 0.75), ("My breath is my anchor", 0.0), version=2)
    outcome = await rig.renderer.render(work)
    key = object_key(USER, work.content_id, 2, "mp3")
    assert key == f"audio/{USER}/{work.content_id}/2.mp3"
    assert rig.objects.puts == [key]
    data, mime = rig.objects.objects[key]
    assert mime == "audio/mpeg"
    seconds = (10 * PER_WORD) / RATE + 0.75  # ten words and one pause
    assert mp3_duration(data) == pytest.approx(seconds, abs=0.1)
    assert outcome.fresh and outcome.speech_seconds == pytest.approx(1.0)
    render = outcome.render
    assert (render.content_id, render.version, render.user_id) == (work.content_id, 2, USER)
    assert (render.object_key, render.mime_type) == (key, "audio/mpeg")
    assert (render.duration_ms, render.size) == (round(seconds * 1000), len(data))
    assert render.render_ms >= 0 and render.created_at == T0
    assert await rig.recorded(work) == render
    assert rig.speech.calls == [("I am calm and steady", "en_US-joe", 0.85),
                                ("My breath is my anchor", "en_US-joe", 0.85)]
    [announced] = rig.events(AudioRendered.topic)
    assert announced["id"] == str(event_id(work.content_id, 2, "rendered"))
    assert {k: announced[k] for k in ("content_id", "user_id", "version", "object_key",
                                      "mime_type", "duration_ms", "size", "voice")} == {
        "content_id": str(work.content_id), "user_id": str(USER), "version": "2",
        "object_key": key, "mime_type": "audio/mpeg", "duration_ms": str(render.duration_ms),
        "size": str(len(data)), "voice": "en_US-joe"}
    assert rig.events(AudioFailed.topic) == []


async def test_a_job_delivered_again_is_rendered_once(rig: Rig) -> None:
    work = job(("Breathe in", 1.0), ("Breathe out", 0.0))
    first = await rig.renderer.render(work)
    second = await rig.renderer.render(work, attempts=1)
    assert first.fresh and not second.fresh
    assert second.render == first.render
    assert len(rig.speech.calls) == 2 and len(rig.encoder.pcm) == 1
    assert len(rig.objects.puts) == 1
    assert len(rig.events(AudioRendered.topic)) == 1
    # Another version of the same content is another render.
    newer = dataclasses.replace(work, version=2)
    assert (await rig.renderer.render(newer)).fresh
    assert len(rig.objects.puts) == 2 and len(rig.events(AudioRendered.topic)) == 2


async def test_a_delivery_that_finishes_second_announces_nothing(rig: Rig) -> None:
    """Two deliveries of one job at once: the one that records the render
    second uploads the same audio under the same key and writes no event."""
    work = job(("Rest now", 0.5))
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
    assert rig.events(AudioRendered.topic) == []
    assert await rig.recorded(work) == other


async def test_pauses_are_exact_silence_between_the_passages(rig: Rig) -> None:
    work = job(("One two", 0.5), ("three", 1.25), ("four five six", 0.0))
    outcome = await rig.renderer.render(work)
    assert rig.encoder.pcm == [spoken("One two") + silence(0.5) + spoken("three")
                               + silence(1.25) + spoken("four five six")]
    assert len(silence(1.25)) == 2 * 20_000
    assert outcome.speech_seconds == pytest.approx(0.6)
    assert outcome.render.duration_ms == 600 + 500 + 1250


async def test_pauses_are_fitted_to_the_target_length(rig: Rig) -> None:
    # 0.6 s of speech; 3 s of pauses asked; a 6.6 s target doubles them.
    work = job(("One two", 1.0), ("three", 2.0), ("four five six", 0.0), target=6.6)
    outcome = await rig.renderer.render(work)
    assert rig.encoder.pcm == [spoken("One two") + silence(2.0) + spoken("three")
                               + silence(4.0) + spoken("four five six")]
    assert outcome.render.duration_ms == 6_600


async def test_a_retryable_speech_error_asks_for_a_later_attempt(rig: Rig) -> None:
    work = job(("Hello there", 0.5))
    for attempts, retry_after, delay in [(0, 0.0, 1.0), (2, 0.0, 4.0), (1, 30.0, 30.0)]:
        rig.speech.errors = [SpeechError("rate limited", retryable=True,
                                         retry_after=retry_after)]
        with pytest.raises(TransientRenderError) as raised:
            await rig.renderer.render(work, attempts=attempts)
        assert raised.value.delay == delay
    assert rig.objects.puts == [] and rig.store.tables.outbox == {}
    assert await rig.recorded(work) is None
    # The next attempt succeeds.
    assert (await rig.renderer.render(work, attempts=3)).fresh
    assert len(rig.events(AudioRendered.topic)) == 1


@pytest.mark.parametrize(("retryable", "attempts"), [(False, 0),
                                                     (True, MAX_SPEECH_ATTEMPTS - 1)])
async def test_a_final_speech_error_announces_the_failure(rig: Rig, retryable: bool,
                                                          attempts: int) -> None:
    work = job(("Hello there", 0.5), version=3)
    rig.speech.errors = [SpeechError("unknown voice", retryable=retryable)]
    with pytest.raises(RenderFailed) as raised:
        await rig.renderer.render(work, attempts=attempts)
    assert raised.value.reason == "SPEECH_FAILED"
    [failed] = rig.events(AudioFailed.topic)
    assert failed["id"] == str(event_id(work.content_id, 3, "failed"))
    assert (failed["content_id"], failed["user_id"], failed["version"], failed["reason"]) \
        == (str(work.content_id), str(USER), "3", "SPEECH_FAILED")
    assert rig.events(AudioRendered.topic) == [] and rig.objects.puts == []
    assert await rig.recorded(work) is None


async def test_an_encoding_error_announces_the_failure(rig: Rig) -> None:
    work = job(("Hello there", 0.5))
    rig.encoder.error = ValueError("unsupported sample rate")
    with pytest.raises(RenderFailed) as raised:
        await rig.renderer.render(work)
    assert raised.value.reason == "ENCODING_FAILED"
    assert [e["reason"] for e in rig.events(AudioFailed.topic)] == ["ENCODING_FAILED"]
    assert rig.objects.puts == [] and await rig.recorded(work) is None


async def test_a_failed_upload_is_retried_without_a_record_or_an_event(rig: Rig) -> None:
    work = job(("Hello there", 0.5))
    rig.objects.put_error = OSError("connection reset")
    with pytest.raises(TransientRenderError) as raised:
        await rig.renderer.render(work)
    assert raised.value.delay == 5.0
    assert rig.store.tables.outbox == {} and await rig.recorded(work) is None
    rig.objects.put_error = None
    assert (await rig.renderer.render(work, attempts=1)).fresh
    assert len(rig.events(AudioRendered.topic)) == 1


async def test_a_job_that_fails_for_good_twice_announces_once(rig: Rig) -> None:
    work = job(("Hello there", 0.5))
    for _ in range(2):
        rig.speech.errors = [SpeechError("unknown voice", retryable=False)]
        with pytest.raises(RenderFailed):
            await rig.renderer.render(work)
    assert len(rig.events(AudioFailed.topic)) == 1
