"""The SpeechSynthesizer contract, held by Piper (the real model) and ElevenLabs
(the SDK against a local fake of its HTTP API), then each adapter's own rules:
ElevenLabs' error mapping and request shape."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.audio.router import VoiceRouter
from adapters.elevenlabs.speech import ElevenLabsSynthesizer, parse_retry_after
from adapters.piper.speech import PiperSynthesizer
from ports.media import SpeechError, SpeechSynthesizer
from tests.fakes.elevenlabs_server import FakeElevenLabs

SENTENCE = "Breathe in slowly, and let every thought settle like falling snow."
API_KEY = "test-key-123"
VOICE_MAP = {"joe": "el-voice-joe", "calm": "el-voice-calm"}


@pytest.fixture(scope="session")
def piper() -> PiperSynthesizer:
    """One Piper for the session: loading the model is the slow part."""
    return PiperSynthesizer()


@pytest.fixture(scope="session")
async def fake_elevenlabs() -> AsyncIterator[FakeElevenLabs]:
    fake = FakeElevenLabs()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def elevenlabs(fake_elevenlabs: FakeElevenLabs) -> AsyncIterator[ElevenLabsSynthesizer]:
    fake_elevenlabs.reset()
    synthesizer = ElevenLabsSynthesizer(
        API_KEY, default_voice_id="el-voice-joe", voice_ids=VOICE_MAP,
        voice_names={"joe": "Joe", "calm": "Calm"}, base_url=fake_elevenlabs.url,
        model_id="eleven_test_model", timeout=10)
    yield synthesizer
    await synthesizer.close()


@pytest.fixture
async def router(piper: PiperSynthesizer,
                 fake_elevenlabs: FakeElevenLabs) -> AsyncIterator[VoiceRouter]:
    """The embedded voice first, then ElevenLabs' (as `speech_for` wires them)."""
    fake_elevenlabs.reset()
    eleven = ElevenLabsSynthesizer(
        API_KEY, default_voice_id="el-voice-sarah", voice_ids={"sarah": "el-voice-sarah"},
        voice_names={"sarah": "Sarah"}, base_url=fake_elevenlabs.url,
        output_format=f"pcm_{piper.sample_rate}", timeout=10)
    yield VoiceRouter([piper, eleven])
    await eleven.close()


@pytest.fixture(params=["piper", "elevenlabs", "router"])
def synthesizer(request: pytest.FixtureRequest) -> SpeechSynthesizer:
    return request.getfixturevalue(request.param)


def seconds(pcm: bytes, sample_rate: int) -> float:
    return len(pcm) / 2 / sample_rate


# -- the contract -------------------------------------------------------------


async def test_a_sentence_becomes_pcm_of_plausible_length(synthesizer: SpeechSynthesizer) -> None:
    pcm = await synthesizer.synthesize(SENTENCE, "", 1.0)
    assert pcm and len(pcm) % 2 == 0  # whole 16-bit samples
    assert 0.3 < seconds(pcm, synthesizer.sample_rate) < 10
    assert any(pcm), "audio is not all silence"


async def test_a_slower_rate_gives_longer_audio(synthesizer: SpeechSynthesizer) -> None:
    slow = await synthesizer.synthesize(SENTENCE, "", 0.75)
    fast = await synthesizer.synthesize(SENTENCE, "", 1.2)
    assert len(slow) > len(fast) * 1.2


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
async def test_empty_text_is_no_audio(synthesizer: SpeechSynthesizer, text: str) -> None:
    assert await synthesizer.synthesize(text, "", 1.0) == b""


async def test_voices_are_listed_and_each_speaks(synthesizer: SpeechSynthesizer) -> None:
    voices = synthesizer.voices()
    assert voices and all(v.id and v.display_name for v in voices)
    for voice in voices:
        assert await synthesizer.synthesize("Hello there.", voice.id, 1.0)


async def test_an_unknown_voice_gets_the_default(synthesizer: SpeechSynthesizer) -> None:
    assert await synthesizer.synthesize("Hello there.", "no-such-voice", 1.0)


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan"), float("inf")])
async def test_a_nonsense_rate_is_refused(synthesizer: SpeechSynthesizer, rate: float) -> None:
    with pytest.raises(SpeechError) as caught:
        await synthesizer.synthesize(SENTENCE, "", rate)
    assert not caught.value.retryable


# -- Piper --------------------------------------------------------------------


async def test_piper_knows_its_sample_rate_before_loading() -> None:
    fresh = PiperSynthesizer()
    assert fresh.sample_rate == 22050
    assert fresh._model is None  # nothing loaded by the constructor
    assert [v.id for v in fresh.voices()] == ["joe"]


async def test_piper_loads_once_and_serves_concurrent_calls(piper: PiperSynthesizer) -> None:
    results = await asyncio.gather(*(piper.synthesize(f"Number {i}.", "joe", 1.0)
                                     for i in range(3)))
    assert all(results)
    model = piper._model
    await piper.synthesize("Again.", "", 1.0)
    assert piper._model is model


class _CountingModel:
    """Stands in for the Piper model: records how many threads use it at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.most = 0

    def synthesize(self, text: str, syn_config: object) -> list[object]:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        time.sleep(0.05)
        with self.lock:
            self.active -= 1
        return []


@pytest.mark.parametrize("limit", [1, 2])
async def test_piper_bounds_the_threads_using_the_model(limit: int) -> None:
    fresh = PiperSynthesizer(max_concurrency=limit)
    model = _CountingModel()
    fresh._model = model  # type: ignore[assignment]
    await asyncio.gather(*(fresh.synthesize(f"Line {i}.", "", 1.0) for i in range(6)))
    assert 1 <= model.most <= limit


# -- ElevenLabs ---------------------------------------------------------------


async def test_elevenlabs_request_shape(elevenlabs: ElevenLabsSynthesizer,
                                        fake_elevenlabs: FakeElevenLabs) -> None:
    await elevenlabs.synthesize(SENTENCE, "calm", 1.1)
    await elevenlabs.synthesize(SENTENCE, "", 1.0)
    await elevenlabs.synthesize(SENTENCE, "no-such-voice", 1.0)
    first, default, unknown = fake_elevenlabs.requests
    assert first.headers["xi-api-key"] == API_KEY
    assert first.voice_id == "el-voice-calm"
    assert default.voice_id == unknown.voice_id == "el-voice-joe"
    assert first.query["output_format"] == "pcm_22050"
    assert first.body["text"] == SENTENCE
    assert first.body["model_id"] == "eleven_test_model"
    assert first.body["voice_settings"]["speed"] == pytest.approx(1.1)


async def test_elevenlabs_clamps_the_rate_to_the_api_range(
        elevenlabs: ElevenLabsSynthesizer, fake_elevenlabs: FakeElevenLabs) -> None:
    await elevenlabs.synthesize("Hello.", "", 3.0)
    await elevenlabs.synthesize("Hello.", "", 0.2)
    speeds = [r.body["voice_settings"]["speed"] for r in fake_elevenlabs.requests]
    assert speeds == [pytest.approx(1.2), pytest.approx(0.7)]


async def test_elevenlabs_voices_put_the_default_first(
        elevenlabs: ElevenLabsSynthesizer) -> None:
    assert [(v.id, v.display_name) for v in elevenlabs.voices()] == [("joe", "Joe"),
                                                                     ("calm", "Calm")]


async def test_elevenlabs_rate_limit_is_retryable_after_the_header(
        elevenlabs: ElevenLabsSynthesizer, fake_elevenlabs: FakeElevenLabs) -> None:
    fake_elevenlabs.rate_limited("7")
    with pytest.raises(SpeechError) as caught:
        await elevenlabs.synthesize(SENTENCE, "", 1.0)
    assert caught.value.retryable
    assert caught.value.retry_after == 7.0
    assert len(fake_elevenlabs.requests) == 1, "the SDK must not retry by itself"


async def test_elevenlabs_rate_limit_without_header(
        elevenlabs: ElevenLabsSynthesizer, fake_elevenlabs: FakeElevenLabs) -> None:
    fake_elevenlabs.rate_limited(None)
    with pytest.raises(SpeechError) as caught:
        await elevenlabs.synthesize(SENTENCE, "", 1.0)
    assert caught.value.retryable and caught.value.retry_after == 0.0


@pytest.mark.parametrize(("status", "retryable"),
                         [(500, True), (503, True), (401, False), (400, False), (422, False)])
async def test_elevenlabs_status_mapping(elevenlabs: ElevenLabsSynthesizer,
                                         fake_elevenlabs: FakeElevenLabs,
                                         status: int, retryable: bool) -> None:
    fake_elevenlabs.status(status)
    with pytest.raises(SpeechError) as caught:
        await elevenlabs.synthesize(SENTENCE, "", 1.0)
    assert caught.value.retryable is retryable
    assert str(status) in str(caught.value)
    assert len(fake_elevenlabs.requests) == 1, "the SDK must not retry by itself"


async def test_elevenlabs_timeout_is_retryable(fake_elevenlabs: FakeElevenLabs) -> None:
    fake_elevenlabs.reset()
    impatient = ElevenLabsSynthesizer(API_KEY, default_voice_id="v", base_url=fake_elevenlabs.url,
                                      timeout=0.3)
    fake_elevenlabs.slow(10.0)
    with pytest.raises(SpeechError) as caught:
        await impatient.synthesize(SENTENCE, "", 1.0)
    assert caught.value.retryable
    # The next request is answered normally.
    assert await impatient.synthesize(SENTENCE, "", 1.0)
    await impatient.close()


async def test_elevenlabs_connection_refused_is_retryable() -> None:
    from tests.backends import free_port

    synthesizer = ElevenLabsSynthesizer(API_KEY, default_voice_id="v",
                                        base_url=f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(SpeechError) as caught:
        await synthesizer.synthesize(SENTENCE, "", 1.0)
    assert caught.value.retryable
    await synthesizer.close()


def test_retry_after_parsing() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) == 0.0
    assert parse_retry_after("soon") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT",
                             now=1445412480.0) == pytest.approx(30.0)


# -- the router: one catalog of several synthesizers ---------------------------


async def test_router_lists_every_voice_and_routes_each_to_its_synthesizer(
        router: VoiceRouter, fake_elevenlabs: FakeElevenLabs) -> None:
    assert [(v.id, v.provider) for v in router.voices()] == [("joe", "piper"),
                                                             ("sarah", "elevenlabs")]
    await router.synthesize("Hello there.", "joe", 1.0)
    assert fake_elevenlabs.requests == []  # Piper spoke
    await router.synthesize("Hello there.", "sarah", 1.0)
    assert [r.voice_id for r in fake_elevenlabs.requests] == ["el-voice-sarah"]
    await router.synthesize("Hello there.", "nobody", 1.0)  # the default: Piper
    assert len(fake_elevenlabs.requests) == 1


def test_router_refuses_synthesizers_of_different_rates(piper: PiperSynthesizer) -> None:
    class Other:
        sample_rate = 16_000

        def voices(self) -> list[Any]:
            return []

    with pytest.raises(ValueError, match="one sample rate"):
        VoiceRouter([piper, Other()])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        VoiceRouter([])
