"""The producer on synthetic speech (tone bursts and shaped noise, no TTS): the
layout is sample-accurate, the bed ducks by DUCK_DB smoothly and ahead of
speech, fades reach zero, every bed and a loud peaky input come out at the
target loudness under the true-peak ceiling, and beds are repeatable by seed
and sound like what they are named."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from adapters.audio.analysis import integrated_lufs, true_peak_dbtp
from adapters.audio.production import (
    BED_LEVEL_DB,
    DUCK_ATTACK_S,
    DUCK_DB,
    DUCK_RELEASE_S,
    NumpyAudioProducer,
    clip_offsets,
    ducking_gain,
    limiter_points,
    mix_length,
    render_bed,
)
from core.audio.model import TARGET_LUFS, Clip, Mix

RATE = 16000
BEDS = ("rain", "brown_noise", "drone")


def pcm(samples: np.ndarray) -> bytes:
    return np.clip(np.rint(samples * 32768), -32768, 32767).astype("<i2").tobytes()


def samples_of(data: bytes) -> np.ndarray:
    return np.frombuffer(data, "<i2") / 32768.0


def tone(seconds: float, hz: float = 220.0, level: float = 0.3) -> np.ndarray:
    """A sine burst with 10 ms edges."""
    count = round(seconds * RATE)
    burst = level * np.sin(2 * np.pi * hz * np.arange(count) / RATE)
    edge = min(count // 2, RATE // 100)
    burst[:edge] *= np.linspace(0, 1, edge)
    burst[count - edge:] *= np.linspace(1, 0, edge)
    return burst


def speech(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Speech-like: band-passed noise in syllables, peaks well above its loudness."""
    count = round(seconds * RATE)
    t = np.arange(count) / RATE
    syllables = np.clip(np.sin(2 * np.pi * 3.5 * t), 0, None) ** 0.7
    voiced = signal.sosfilt(signal.butter(2, [150, 3500], btype="bandpass", fs=RATE,
                                          output="sos"), rng.standard_normal(count))
    out = voiced * syllables * (1 + 0.5 * np.sin(2 * np.pi * 140 * t))
    return 0.6 * out / np.abs(out).max()


def peaky(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Loud and hard: clipped square bursts at full scale with clicks on top."""
    count = round(seconds * RATE)
    t = np.arange(count) / RATE
    square = np.clip(3 * np.sign(np.sin(2 * np.pi * 180 * t)) * (np.sin(2 * np.pi * 2 * t) > 0),
                     -1, 1)
    clicks = np.zeros(count)
    clicks[rng.integers(0, count, 20)] = rng.choice((-1.0, 1.0), 20)
    return np.clip(0.3 * square + clicks, -1, 1)


def rms_db(samples: np.ndarray) -> float:
    return 10 * math.log10(float(np.mean(np.square(samples))) + 1e-20)


def produce(mix: Mix) -> np.ndarray:
    data = NumpyAudioProducer().produce(mix)
    assert len(data) == 2 * mix_length(mix)
    return samples_of(data)


# --- layout ------------------------------------------------------------------------


def test_layout_is_sample_accurate() -> None:
    lengths = (12345, 8001, 16000, 777)
    pauses = (0.3337, 0.0, 1.23456, 0.25)
    clips = tuple(Clip(pcm(tone(n / RATE)), pause) for n, pause in zip(lengths, pauses,
                                                                         strict=True))
    mix = Mix(clips=clips, sample_rate=RATE, lead_in=0.50013)
    expected, position = [], round(0.50013 * RATE)
    for n, pause in zip(lengths, pauses, strict=True):
        expected.append(position)
        position += n + round(pause * RATE)
    assert clip_offsets(mix) == expected
    assert mix_length(mix) == position
    assert len(produce(mix)) == position  # no tail beyond the last pause


def test_each_clip_lands_at_its_offset() -> None:
    hz = (300.0, 500.0, 700.0)
    bursts = [tone(0.4 + 0.1 * i, f) for i, f in enumerate(hz)]
    mix = Mix(clips=tuple(Clip(pcm(b), 0.3) for b in bursts), sample_rate=RATE,
              lead_in=0.25, fade_out=0.1)
    out = produce(mix)
    for burst, start in zip(bursts, clip_offsets(mix), strict=True):
        laid = out[start:start + len(burst)]
        correlation = np.dot(laid, burst) / np.sqrt(np.dot(laid, laid) * np.dot(burst, burst))
        assert correlation > 0.999
        shifted = out[start + 1:start + 1 + len(burst)]
        assert np.dot(shifted, burst) < np.dot(laid, burst)
        # Nothing (no bed) in the pause before it.
        assert np.abs(out[start - 2000:start]).max() == 0


# --- ducking -----------------------------------------------------------------------


def silent_speech_mix(background: str) -> Mix:
    """Six-second clips of digital silence with six-second pauses: only the bed,
    normalised to where it sits under speech at the usual target (a bed alone
    at -16 LUFS would be limited, which is not what is measured here)."""
    clip = pcm(np.zeros(6 * RATE))
    return Mix(clips=(Clip(clip, 6.0), Clip(clip, 6.0)), sample_rate=RATE,
               background=background, lead_in=1.0, fade_out=1.0, seed=3,
               target_lufs=TARGET_LUFS + BED_LEVEL_DB)


@pytest.mark.parametrize("background", BEDS)
def test_the_bed_ducks_under_speech(background: str) -> None:
    mix = silent_speech_mix(background)
    out = produce(mix)
    first = clip_offsets(mix)[0]
    under = out[first + 2 * RATE:first + 5 * RATE]  # well inside the clip
    alone = out[first + 8 * RATE:first + 11 * RATE]  # well inside the pause after it
    assert rms_db(under) - rms_db(alone) == pytest.approx(DUCK_DB, abs=2.0)


def test_ducking_is_smooth_and_in_place_when_speech_starts() -> None:
    clips = (Clip(pcm(tone(2.0)), 3.0), Clip(pcm(tone(1.0)), 0.2), Clip(pcm(tone(1.0)), 2.0))
    mix = Mix(clips=clips, sample_rate=RATE, background="rain", lead_in=1.0)
    gain = ducking_gain(mix)
    ducked = 10 ** (DUCK_DB / 20)
    assert len(gain) == mix_length(mix)
    starts = clip_offsets(mix)
    attack, release = round(DUCK_ATTACK_S * RATE), round(DUCK_RELEASE_S * RATE)
    first_end = starts[0] + 2 * RATE
    # Down before speech (look-ahead), fully down from its first sample to its last.
    assert gain[starts[0] - attack - 1] == 1.0
    assert 0.4 < gain[starts[0] - attack // 2] < 0.9
    assert gain[starts[0]:first_end] == pytest.approx(ducked, rel=1e-5)
    # Back up slowly after it.
    assert ducked < gain[first_end + release // 2] < 1.0
    assert gain[first_end + release] == 1.0
    # A short pause between two clips: the duck stays down.
    assert gain[starts[1]:starts[2] + RATE].max() < 0.6
    # Never a step: at most a thousandth of full gain from one sample to the next.
    assert np.abs(np.diff(gain)).max() < 1e-3


# --- fades -------------------------------------------------------------------------


def test_fades_in_over_the_lead_in_and_out_at_the_end() -> None:
    mix = Mix(clips=(Clip(pcm(tone(2.0)), 3.0),), sample_rate=RATE, background="rain",
              lead_in=2.0, fade_out=2.0)
    out = produce(mix)
    assert abs(out[0]) < 1e-3
    quarter = RATE // 4
    rising = [rms_db(out[i * quarter:(i + 1) * quarter]) for i in range(8)]
    assert rising[0] < rising[3] < rising[7]
    assert np.abs(out[-10:]).max() < 0.005
    assert rms_db(out[-quarter:]) < rms_db(out[-2 * RATE:-2 * RATE + quarter]) - 10


def test_without_lead_in_or_fade_out_the_edges_are_declicked() -> None:
    mix = Mix(clips=(Clip(pcm(tone(1.0, level=0.5)), 0.0),), sample_rate=RATE)
    out = produce(mix)
    assert abs(out[0]) < 1e-3
    assert abs(out[-1]) < 1e-3
    middle = out[RATE // 4:3 * RATE // 4]
    assert np.abs(out[:20]).max() < np.abs(middle).max() / 10
    assert np.abs(out[-20:]).max() < np.abs(middle).max() / 10


# --- loudness and peaks ----------------------------------------------------------------


def speech_mix(background: str, make=speech, seed: int = 1) -> Mix:
    rng = np.random.default_rng(seed)
    clips = tuple(Clip(pcm(make(rng.uniform(1.5, 3.0), rng)), rng.uniform(0.4, 1.5))
                  for _ in range(6))
    return Mix(clips=clips, sample_rate=RATE, background=background, lead_in=1.5,
               fade_out=2.0, seed=seed)


@pytest.mark.parametrize(("background", "make"),
                         [(b, speech) for b in ("none", *BEDS)] + [("none", peaky),
                                                                   ("rain", peaky)])
def test_loudness_is_on_target_and_true_peaks_under_the_ceiling(background: str,
                                                                make) -> None:
    mix = speech_mix(background, make)
    out = produce(mix)
    assert integrated_lufs(out, RATE) == pytest.approx(mix.target_lufs, abs=0.5)
    assert true_peak_dbtp(out) <= mix.ceiling_dbtp
    assert np.abs(out).max() < 1.0


def test_other_targets_and_ceilings_are_met() -> None:
    mix = speech_mix("drone", peaky)
    quieter = Mix(clips=mix.clips, sample_rate=RATE, background="drone", lead_in=1.0,
                  target_lufs=-23.0, ceiling_dbtp=-6.0)
    out = produce(quieter)
    assert integrated_lufs(out, RATE) == pytest.approx(-23.0, abs=0.5)
    assert true_peak_dbtp(out) <= -6.0


@pytest.mark.parametrize("background", ["rain", "brown_noise"])
def test_the_bed_sits_under_the_speech(background: str) -> None:
    # Tone "speech" is not limited: limiting would take loudness from the
    # speech alone and leave the bed that much closer to it.
    clips = (Clip(pcm(tone(4.0)), 6.0), Clip(pcm(tone(4.0)), 1.0))
    mix = Mix(clips=clips, sample_rate=RATE, background=background, lead_in=1.0)
    out = produce(mix)
    end = clip_offsets(mix)[0] + 4 * RATE
    alone = out[end + RATE:end + 5 * RATE]  # the bed in the pause, back up
    assert integrated_lufs(alone, RATE) - mix.target_lufs == pytest.approx(BED_LEVEL_DB, abs=1.0)


def test_limiter_points_bound_every_block() -> None:
    rng = np.random.default_rng(0)
    peaks = np.abs(rng.standard_normal(50_000)).astype(np.float32) * 0.3
    peaks[rng.integers(0, len(peaks), 200)] = rng.uniform(1.0, 4.0, 200)
    ceiling = 0.8
    points = limiter_points(peaks, ceiling, RATE / 8)
    assert points is not None
    assert points.max() <= 1.0
    # A point bounds the block before it and the block after it.
    assert (points * peaks <= ceiling * (1 + 1e-6)).all()
    assert (points[1:] * peaks[:-1] <= ceiling * (1 + 1e-6)).all()
    assert limiter_points(peaks * 0.1, ceiling, RATE / 8) is None


# --- edge cases ----------------------------------------------------------------------


def test_unknown_background_is_refused() -> None:
    with pytest.raises(ValueError, match="background"):
        NumpyAudioProducer().produce(Mix(clips=(), sample_rate=RATE, background="ocean"))


def test_negative_pauses_are_refused() -> None:
    with pytest.raises(ValueError):
        NumpyAudioProducer().produce(Mix(clips=(Clip(b"\x00\x00", -1.0),), sample_rate=RATE))


def test_a_silent_mix_is_silence_of_the_right_length() -> None:
    mix = Mix(clips=(Clip(bytes(2 * RATE), 0.5), Clip(b"", 0.25)), sample_rate=RATE,
              lead_in=1.0, fade_out=0.5)
    data = NumpyAudioProducer().produce(mix)
    assert data == bytes(2 * mix_length(mix))
    assert mix_length(mix) == round(2.75 * RATE)
    assert NumpyAudioProducer().produce(Mix(clips=(), sample_rate=RATE)) == b""
    short = Mix(clips=(Clip(pcm(tone(0.05)), 0.0),), sample_rate=RATE)  # shorter than a block
    assert len(produce(short)) == round(0.05 * RATE)


# --- beds --------------------------------------------------------------------------


@pytest.mark.parametrize("background", BEDS)
def test_beds_are_repeatable_by_seed(background: str) -> None:
    mix = silent_speech_mix(background)
    first = NumpyAudioProducer().produce(mix)
    assert NumpyAudioProducer().produce(mix) == first
    other = Mix(clips=mix.clips, sample_rate=RATE, background=background,
                lead_in=mix.lead_in, fade_out=mix.fade_out, seed=mix.seed + 1)
    assert NumpyAudioProducer().produce(other) != first


def spectrum(background: str) -> tuple[np.ndarray, np.ndarray]:
    out = produce(silent_speech_mix(background))
    assert np.abs(out).max() < 0.5
    assert rms_db(out) > -50  # clearly audible
    return signal.welch(out, RATE, nperseg=8192)


def band(frequencies: np.ndarray, power: np.ndarray, low: float, high: float) -> float:
    inside = (frequencies >= low) & (frequencies < high)
    return float(power[inside].sum() / power.sum())


def test_each_bed_sounds_like_its_name() -> None:
    brown_f, brown = spectrum("brown_noise")
    rain_f, rain = spectrum("rain")
    drone_f, drone = spectrum("drone")
    assert band(brown_f, brown, 0, 200) > 0.6
    assert band(rain_f, rain, 1000, RATE / 2) > 0.5
    assert band(rain_f, rain, 1000, RATE / 2) > 10 * band(brown_f, brown, 1000, RATE / 2)
    low = (drone_f > 50) & (drone_f < 1000)
    assert drone_f[low][np.argmax(drone[low])] == pytest.approx(110, abs=3)


@pytest.mark.parametrize("background", BEDS)
def test_beds_have_no_seams_between_blocks(background: str) -> None:
    bed = render_bed(background, 25 * RATE, RATE, seed=7)
    jumps = np.abs(np.diff(bed))
    for boundary in (10 * RATE, 20 * RATE):
        elsewhere = np.concatenate((jumps[:boundary - 50], jumps[boundary + 50:]))
        assert jumps[boundary - 50:boundary + 50].max() <= elsewhere.max()
