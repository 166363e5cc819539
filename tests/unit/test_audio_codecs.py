"""Encoders and the analyzer together: produced audio encoded to Ogg Opus and
MP3 and measured back (PyAV decoding) keeps its duration and loudness; the
analyzer finds a silence where there is one, draws a 200-point waveform and
refuses what is not audio with ValueError; a 20-minute Opus file lasts 20
minutes."""

from __future__ import annotations

import io
import math
import wave
from functools import cache

import numpy as np
import pytest

from adapters.audio.analysis import (
    LOUDNESS_FLOOR,
    PEAK_FLOOR,
    WAVEFORM_POINTS,
    PyAvAnalyzer,
    decode,
    integrated_lufs,
)
from adapters.audio.mp3 import LameMp3Encoder, mp3_duration
from adapters.audio.opus import OpusEncoder
from adapters.audio.production import NumpyAudioProducer
from core.audio.model import Clip, Mix, Silence
from ports.media import AudioEncoder

analyzer = PyAvAnalyzer()


def voice(seconds: float, rate: int, rng: np.random.Generator) -> bytes:
    """A voice-like sound: a 140 Hz buzz of fading harmonics, gliding a little,
    in syllables."""
    t = np.arange(round(seconds * rate)) / rate
    pitch = 140 * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    buzz = sum(np.sin(k * phase) / k for k in range(1, 20) if k * 140 < rate / 2)
    syllables = np.clip(np.sin(2 * np.pi * 3.2 * t), 0, None)
    return pcm(0.2 * buzz * syllables)


def pcm(samples: np.ndarray) -> bytes:
    return np.clip(np.rint(samples * 32768), -32768, 32767).astype("<i2").tobytes()


@cache
def produced(rate: int) -> bytes:
    """Twelve seconds or so of voice over rain, produced as the renderer does."""
    rng = np.random.default_rng(rate)
    clips = tuple(Clip(voice(2.0, rate, rng), 0.7) for _ in range(4))
    return NumpyAudioProducer().produce(Mix(clips=clips, sample_rate=rate, background="rain",
                                            lead_in=1.0, fade_out=1.0, seed=1))


def loudness(data: bytes, rate: int) -> float:
    return integrated_lufs(np.frombuffer(data, "<i2") / 32768.0, rate)


#: LAME (as lameenc runs it) writes its input scaled by 0.95: every MP3 is
#: 0.45 dB quieter than its PCM (see test_lame_output_is_scaled).
LAME_GAIN_DB = 20 * math.log10(0.95)


def check_round_trip(encoder: AudioEncoder, rate: int, gain_db: float = 0.0) -> None:
    source = produced(rate)
    seconds = len(source) / 2 / rate
    encoded = encoder.encode(source, rate)
    assert encoded.duration_seconds == pytest.approx(seconds)
    report = analyzer.analyze(encoded.data)
    assert report.duration_ms / 1000 == pytest.approx(seconds, abs=0.06)
    assert report.integrated_lufs == pytest.approx(loudness(source, rate) + gain_db, abs=0.5)
    assert report.sample_peak_dbfs <= report.true_peak_dbtp + 0.01
    assert -6.0 < report.true_peak_dbtp < 0.0
    assert report.within_targets


@pytest.mark.parametrize("rate", [16000, 22050, 48000])
def test_opus_round_trip(rate: int) -> None:
    check_round_trip(OpusEncoder(), rate)


def test_opus_file() -> None:
    encoded = OpusEncoder().encode(produced(22050), 22050)
    assert (encoded.mime_type, encoded.extension) == ("audio/ogg", "opus")
    assert encoded.data[:4] == b"OggS"
    assert b"OpusHead" in encoded.data[:100]


@pytest.mark.parametrize("rate", [44100, 48000])
def test_mp3_round_trip(rate: int) -> None:
    check_round_trip(LameMp3Encoder(), rate, LAME_GAIN_DB)


def test_lame_output_is_scaled() -> None:
    rate = 44100
    sine = 0.5 * np.sin(2 * np.pi * 441 * np.arange(2 * rate) / rate)
    decoded, _ = decode(LameMp3Encoder().encode(pcm(sine), rate).data)
    level = np.std(decoded[rate // 2:3 * rate // 2]) / np.std(sine[rate // 2:3 * rate // 2])
    assert 20 * math.log10(level) == pytest.approx(LAME_GAIN_DB, abs=0.02)


def test_mp3_at_voice_rates_measures_what_plays() -> None:
    # LAME writes no gapless (LAME tag) header, so players play its encoder
    # delay and last-frame padding: at 22.05 kHz that is 50-76 ms more.
    source = produced(22050)
    data = LameMp3Encoder().encode(source, 22050).data
    report = analyzer.analyze(data)
    assert report.duration_ms / 1000 == pytest.approx(mp3_duration(data), abs=0.001)
    assert 0 <= report.duration_ms - len(source) / 2 / 22050 * 1000 <= 80
    assert report.integrated_lufs == pytest.approx(loudness(source, 22050) + LAME_GAIN_DB,
                                                   abs=0.5)


@pytest.mark.parametrize("encoder", [OpusEncoder(), LameMp3Encoder()],
                         ids=["opus", "mp3"])
def test_a_gap_of_silence_is_found_and_drawn(encoder: AudioEncoder) -> None:
    rate = 22050
    rng = np.random.default_rng(0)
    source = voice(1.0, rate, rng) + bytes(2 * 3 * rate) + voice(1.0, rate, rng)
    report = analyzer.analyze(encoder.encode(source, rate).data)
    assert len(report.silences) == 1
    gap = report.silences[0]
    assert gap.start_ms == pytest.approx(1000, abs=100)
    assert gap.end_ms == pytest.approx(4000, abs=100)
    assert len(report.waveform) == WAVEFORM_POINTS
    assert all(0.0 <= point <= 1.0 for point in report.waveform)
    assert all(round(point, 3) == point for point in report.waveform)
    # The gap is flat in the middle of the waveform, the voice is not.
    assert max(report.waveform[60:90]) < 0.01
    assert max(report.waveform[:40]) > 0.1


@pytest.mark.parametrize("encoder", [OpusEncoder(), LameMp3Encoder()],
                         ids=["opus", "mp3"])
def test_digital_silence_measures_at_the_floors(encoder: AudioEncoder) -> None:
    report = analyzer.analyze(encoder.encode(bytes(2 * 2 * 16000), 16000).data)
    assert report.duration_ms == pytest.approx(2000, abs=100)
    assert report.integrated_lufs == LOUDNESS_FLOOR
    assert report.sample_peak_dbfs == report.true_peak_dbtp == PEAK_FLOOR
    assert report.silences == (Silence(0, report.duration_ms),)
    assert set(report.waveform) == {0.0}


def wav(channels: list[np.ndarray], rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(len(channels))
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(np.column_stack(channels).astype("<i2").tobytes())
    return out.getvalue()


def test_other_formats_are_converted_and_channels_averaged() -> None:
    # 16-bit stereo WAV: not what the decoders of MP3 and Opus give.
    rate = 8000
    left = np.frombuffer(voice(1.5, rate, np.random.default_rng(1)), "<i2")
    samples, decoded_rate = decode(wav([left, left], rate))
    assert decoded_rate == rate
    assert np.abs(samples - left / 32768.0).max() < 1e-6
    samples, _ = decode(wav([left, np.zeros_like(left)], rate))
    assert np.abs(samples - left / 65536.0).max() < 1e-6
    assert analyzer.analyze(wav([left, left], rate)).duration_ms == 1500


@pytest.mark.parametrize("data", [b"", b"not audio at all" * 100, bytes(4096),
                                  b"OggS" + bytes(200), b"ID3\x04\x00\x00" + bytes(300)],
                         ids=["empty", "text", "zeros", "ogg-like", "id3-like"])
def test_what_is_not_audio_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        analyzer.analyze(data)


def test_a_file_cut_before_its_audio_is_refused() -> None:
    data = OpusEncoder().encode(produced(22050), 22050).data
    headers = data[:data.index(b"OggS", data.index(b"OpusTags"))]  # the header pages only
    with pytest.raises(ValueError):
        analyzer.analyze(headers)


def test_twenty_minutes_of_opus_last_twenty_minutes() -> None:
    rate = 22050
    minutes = 20
    noise = np.random.default_rng(0).integers(-1500, 1500, minutes * 60 * rate, np.int16)
    # The fastest complexity: what is checked (pre-skip, last page) does not depend on it.
    encoded = OpusEncoder(complexity=0).encode(noise.tobytes(), rate)
    samples, decoded_rate = decode(encoded.data)
    assert len(samples) / decoded_rate == pytest.approx(minutes * 60, abs=0.05)


@pytest.mark.parametrize(("bitrate", "complexity"), [(1000, 10), (600_000, 10), (48_000, 11),
                                                     (48_000, -1)])
def test_opus_encoder_refuses_bad_settings(bitrate: int, complexity: int) -> None:
    with pytest.raises(ValueError):
        OpusEncoder(bitrate, complexity)


@pytest.mark.parametrize(("data", "rate"), [(b"\x00\x00\x00", 22050), (bytes(100), 7000),
                                            (bytes(100), 96000)])
def test_opus_encoder_refuses_bad_input(data: bytes, rate: int) -> None:
    with pytest.raises(ValueError):
        OpusEncoder().encode(data, rate)
