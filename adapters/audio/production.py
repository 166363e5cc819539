"""Producing a Mix: speech laid out sample-accurately over a generated sound
bed, ducked, faded, loudness-normalised and true-peak limited.

Layout is arithmetic, not detection: clip i starts after the lead-in and every
clip and pause before it, each rounded to whole samples (`clip_offsets`), the
rule the renderer's captions are timed by. The bed is ducked from the same
positions, so it dips exactly where speech is, starting a little before it
(look-ahead: the duck is in place by the first syllable) and coming back
slowly after.

Beds are synthesised here (numpy/scipy, seeded: the same mix always sounds the
same) in 10-second blocks whose filter state runs on from block to block, so a
bed has no seams at any length and memory stays one float32 copy of the mix.
Their level is set from a calibration measurement of each bed, BED_LEVEL_DB
under the speech's loudness.

Mastering: the whole is normalised to the target integrated loudness
(BS.1770-4) and a look-ahead limiter keeps the 4x oversampled (true) peak
under the ceiling. Limiting takes loudness away, so the gain is chosen for
what the limiter will leave, estimated from the energy it removes (cheap:
measuring BS.1770 loudness is most of the cost of a long mix); the result is
then measured, and chosen again with the estimate's error taken out if it
missed, a few passes at most. Each pass limits the unlimited mix afresh, so
passes never stack up distortion.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy import ndimage, signal

from adapters.audio.analysis import (
    LOUDNESS_FLOOR,
    integrated_lufs,
    oversampled_peaks,
    true_peak_dbtp,
)
from core.audio.model import Mix

BACKGROUNDS = ("none", "rain", "brown_noise", "drone")
#: The bed's loudness alone (in pauses), relative to the speech's (as laid,
#: before limiting, which may take a little from the speech); and how much
#: further it dips under speech.
BED_LEVEL_DB = -18.0
DUCK_DB = -10.0
#: The duck comes down over DUCK_ATTACK_S before speech and back up over
#: DUCK_RELEASE_S after it.
DUCK_ATTACK_S = 0.15
DUCK_RELEASE_S = 0.8
#: A mix without a lead-in (or fade-out) still fades over this, against clicks.
DECLICK_S = 0.02
#: The limiter reaches full reduction over LIMITER_ATTACK_S before a peak and
#: lets go exponentially with this time constant after it.
LIMITER_ATTACK_S = 0.005
LIMITER_RELEASE_S = 0.1
#: Samples per step of the limiter's gain.
LIMITER_BLOCK = 8
#: At most this much gain (dB) beyond plain normalisation, to make up for what
#: limiting takes: material that would need more is left quieter than the
#: target rather than crushed.
MAX_MAKEUP_DB = 12.0

#: Limit this far under the ceiling: gain moving between samples and 16-bit
#: rounding may lift a peak a hair.
_LIMITER_MARGIN_DB = 0.1
#: Mastering stops when the output is this close to the target (LU) ...
_LOUDNESS_SLACK = 0.2
#: ... or after this many passes.
_MAX_PASSES = 3
#: The gain that makes up for limiting is estimated to this precision (dB),
#: in at most this many steps.
_SOLVER_PRECISION = 0.02
_SOLVER_STEPS = 8
_BLOCK_SECONDS = 10.0
#: Seconds of each bed measured to set its level.
_CALIBRATION_SECONDS = 20.0
_FULL_SCALE = 32768.0
_RELEASE_CHUNK = 1 << 18


def _layout(mix: Mix) -> tuple[list[int], list[int], int]:
    """Start and length (samples) of each clip, and the samples of the whole."""
    starts, lengths = [], []
    position = round(mix.lead_in * mix.sample_rate)
    for clip in mix.clips:
        samples = len(clip.pcm) // 2
        starts.append(position)
        lengths.append(samples)
        position += samples + round(clip.pause_after * mix.sample_rate)
    return starts, lengths, position


def clip_offsets(mix: Mix) -> list[int]:
    """The sample each clip starts at: the lead-in, then every clip and its
    pause before it, each rounded to whole samples."""
    return _layout(mix)[0]


def mix_length(mix: Mix) -> int:
    """Samples of the produced mix."""
    return _layout(mix)[2]


def _ramp(samples: int) -> np.ndarray:
    """A raised-cosine rise from 0 (first sample) towards 1, float32."""
    return (0.5 - 0.5 * np.cos(np.pi * np.arange(samples) / samples)).astype(np.float32)


def ducking_gain(mix: Mix) -> np.ndarray:
    """The bed's gain at each sample (float32): 1 in pauses, DUCK_DB under
    speech, raised-cosine ramps (in dB) between, down before each clip and
    up after it; ramps that meet take the deeper duck."""
    starts, lengths, total = _layout(mix)
    attack = max(1, round(DUCK_ATTACK_S * mix.sample_rate))
    release = max(1, round(DUCK_RELEASE_S * mix.sample_rate))
    down, up = _ramp(attack), _ramp(release)[::-1]
    depth = np.zeros(total, np.float32)
    for start, length in zip(starts, lengths, strict=True):
        if not length:
            continue
        end = start + length
        depth[start:end] = 1.0
        before = depth[max(0, start - attack):start]
        np.maximum(before, down[attack - len(before):], out=before)
        after = depth[end:end + release]
        np.maximum(after, up[:len(after)], out=after)
    depth *= np.float32(DUCK_DB * math.log(10) / 20)
    return np.exp(depth, out=depth)


# --- beds ------------------------------------------------------------------------

Source = Callable[[int, int], np.ndarray]
"""A bed generator: the `count` samples from sample `start` on, called with
consecutive blocks."""


class _FilteredNoise:
    """White noise through a filter whose state carries over between blocks,
    scaled to unit RMS."""

    def __init__(self, sos: np.ndarray, sample_rate: int, rng: np.random.Generator) -> None:
        self._sos = sos
        self._state = np.zeros((len(sos), 2))
        self._rng = rng
        impulse = np.zeros(sample_rate)
        impulse[0] = 1.0
        self._scale = 1 / np.sqrt(np.sum(np.square(signal.sosfilt(sos, impulse))))

    def __call__(self, start: int, count: int) -> np.ndarray:
        out, self._state = signal.sosfilt(self._sos, self._rng.standard_normal(count),
                                          zi=self._state)
        return out * self._scale


class _Droplets:
    """Drops landing: short decaying tones (1.5-5 kHz, a few ms) at random
    moments, pitches and strengths. A drop that runs past the end of a block
    finishes in the next."""

    PER_SECOND = 20.0
    HZ = (1500.0, 5000.0)
    DECAY_S = (0.001, 0.004)
    #: Peak of the strongest drop, against the hiss's RMS of 1.
    LEVEL = 3.0
    LENGTH_S = 0.02

    def __init__(self, sample_rate: int, rng: np.random.Generator) -> None:
        self._rate = sample_rate
        self._rng = rng
        self._time = np.arange(round(self.LENGTH_S * sample_rate)) / sample_rate
        self._tail = np.zeros(len(self._time))

    def __call__(self, start: int, count: int) -> np.ndarray:
        rng, length = self._rng, len(self._time)
        number = rng.poisson(self.PER_SECOND * count / self._rate)
        where = rng.integers(0, count, number)
        hz = np.minimum(rng.uniform(*self.HZ, number), 0.45 * self._rate)
        decay = rng.uniform(*self.DECAY_S, number)
        level = self.LEVEL * rng.uniform(0.2, 1.0, number) ** 2
        drops = (level[:, None] * np.exp(-self._time / decay[:, None])
                 * np.sin(2 * np.pi * hz[:, None] * self._time))
        out = np.zeros(count + length)
        out[:length] = self._tail
        np.add.at(out, where[:, None] + np.arange(length), drops)
        self._tail = out[count:].copy()
        return out[:count]


def _band(low: float, high: float, sample_rate: int, order: int = 2) -> np.ndarray:
    high = min(high, 0.45 * sample_rate)
    return signal.butter(order, [low, high], btype="bandpass", fs=sample_rate, output="sos")


def _rain(sample_rate: int, rng: np.random.Generator) -> Source:
    """Soft broadband hiss (400 Hz-6 kHz, tilted down above 3 kHz) and droplets."""
    tilt = signal.butter(1, min(3000, 0.4 * sample_rate), fs=sample_rate, output="sos")
    hiss = _FilteredNoise(np.vstack([_band(400, 6000, sample_rate), tilt]), sample_rate, rng)
    drops = _Droplets(sample_rate, rng)
    return lambda start, count: hiss(start, count) + drops(start, count)


def _brown_noise(sample_rate: int, rng: np.random.Generator) -> Source:
    """White noise integrated (a leaky integrator: 1/f^2 above 20 Hz), its
    DC and rumble taken out by a 25 Hz high-pass."""
    leak = math.exp(-2 * math.pi * 20 / sample_rate)
    integrator = np.array([[1.0, 0.0, 0.0, 1.0, -leak, 0.0]])
    high_pass = signal.butter(2, 25, btype="highpass", fs=sample_rate, output="sos")
    return _FilteredNoise(np.vstack([integrator, high_pass]), sample_rate, rng)


class _Drone:
    """A low open chord (root, fifth, octave) of soft tones that breathe: each
    swells on its own slow cycle, and the whole chord drifts a little in pitch.
    A function of absolute time, so blocks join without a seam."""

    ROOT_HZ = 110.0
    #: (frequency relative to the root, level)
    TONES = ((1.0, 1.0), (1.5, 0.5), (2.0, 0.35))
    #: Levels of each tone's 2nd and 3rd harmonics.
    SECOND, THIRD = 0.25, 0.1
    SWELL_DEPTH = 0.35
    SWELL_HZ = (0.05, 0.12)
    #: Pitch drifts by ±DRIFT (relative) at DRIFT_HZ.
    DRIFT = 0.002
    DRIFT_HZ = 0.03

    def __init__(self, sample_rate: int, rng: np.random.Generator) -> None:
        self._rate = sample_rate
        self._phases = rng.uniform(0, 2 * np.pi, len(self.TONES))
        self._swells = [(rng.uniform(*self.SWELL_HZ), rng.uniform(0, 2 * np.pi))
                        for _ in self.TONES]
        self._drift_phase = rng.uniform(0, 2 * np.pi)

    def __call__(self, start: int, count: int) -> np.ndarray:
        # A second at a time: angles within a second stay small enough for
        # float32 (fast sines) to be exact to far below audibility.
        out = np.empty(count, np.float32)
        for offset in range(0, count, self._rate):
            length = min(self._rate, count - offset)
            out[offset:offset + length] = self._second(start + offset, length)
        return out

    def _angle(self, hz: float, phase: float, first: int, t: np.ndarray) -> np.ndarray:
        """2 pi hz (t0 + t) + phase, t0 the time of sample `first` (float64
        and reduced), t the float32 time since it."""
        origin = (2 * np.pi * hz * first / self._rate + phase) % (2 * np.pi)
        return np.float32(2 * np.pi * hz) * t + np.float32(origin)

    def _second(self, first: int, length: int) -> np.ndarray:
        t = np.arange(length, dtype=np.float32) / np.float32(self._rate)
        # Pitch 1 + DRIFT sin(a): the phase gains the integral, -DRIFT/w cos(a).
        drift = np.cos(self._angle(self.DRIFT_HZ, self._drift_phase, first, t))
        drift *= np.float32(self.DRIFT / (2 * np.pi * self.DRIFT_HZ))
        out = np.zeros(length, np.float32)
        for (ratio, level), phase, (swell_hz, swell_phase) in zip(
                self.TONES, self._phases, self._swells, strict=True):
            hz = self.ROOT_HZ * ratio
            s = np.sin(self._angle(hz, phase, first, t) - np.float32(2 * np.pi * hz) * drift)
            # cos 2x = 1 - 2 sin^2 x, sin 3x = 3 sin x - 4 sin^3 x: harmonics cheaply.
            square = s * s
            tone = s + self.SECOND * (1 - 2 * square) + self.THIRD * s * (3 - 4 * square)
            swell = 1 + self.SWELL_DEPTH * np.sin(self._angle(swell_hz, swell_phase, first, t))
            out += level * swell * tone
        return out


_SOURCES: dict[str, Callable[[int, np.random.Generator], Source]] = {
    "rain": _rain, "brown_noise": _brown_noise, "drone": _Drone}


def render_bed(background: str, samples: int, sample_rate: int, seed: int) -> np.ndarray:
    """`samples` of a bed at its raw (uncalibrated) level, float32."""
    if background not in _SOURCES:
        raise ValueError(f"no bed called {background!r}")
    source = _SOURCES[background](sample_rate, np.random.default_rng(seed))
    out = np.empty(samples, np.float32)
    block = round(_BLOCK_SECONDS * sample_rate)
    for start in range(0, samples, block):
        count = min(block, samples - start)
        out[start:start + count] = source(start, count)
    return out


@lru_cache(maxsize=32)
def _raw_loudness(background: str, sample_rate: int) -> float:
    """Integrated loudness of a bed at its raw level (measured once per rate)."""
    samples = round(_CALIBRATION_SECONDS * sample_rate)
    return integrated_lufs(render_bed(background, samples, sample_rate, 0), sample_rate)


# --- limiting ----------------------------------------------------------------------


def limiter_points(peaks: np.ndarray, ceiling: float, rate: float) -> np.ndarray | None:
    """The limiter's gain (float32, <= 1) at the start of each block, or None
    when no peak is over `ceiling` (linear). `peaks`: the true peak of each
    block; `rate`: blocks per second. The gain between two points is
    interpolated (`between`), so a point bounds the blocks either side of it.

    Each point needs ceiling/peak. The deepest need of the next
    LIMITER_ATTACK_S (a look-ahead minimum), averaged over the last
    LIMITER_ATTACK_S, comes down smoothly and is fully down at the peak; the
    reduction then decays exponentially (LIMITER_RELEASE_S) unless a deeper
    one comes.
    """
    over = peaks > ceiling
    if not over.any():
        return None
    need = np.ones(len(peaks), np.float32)
    need[over] = ceiling / peaks[over]
    need[1:] = np.minimum(need[1:], need[:-1])
    size = max(1, round(LIMITER_ATTACK_S * rate)) + 1
    ahead = ndimage.minimum_filter1d(need, size, mode="nearest", origin=-(size // 2))
    smooth = ndimage.uniform_filter1d(ahead, size, mode="nearest",
                                      origin=size - 1 - size // 2)
    np.minimum(smooth, need, out=smooth)  # a mean may round a hair above its parts
    return 1 - _released(1 - smooth, rate)


def _released(reduction: np.ndarray, rate: float) -> np.ndarray:
    """out[n] = max over m <= n of reduction[m] * exp(-(n - m) / tau): a peak
    hold with exponential decay, computed in the log domain as a running
    maximum (chunked, in float64 for the ramp's precision)."""
    decay = -1.0 / (LIMITER_RELEASE_S * rate)
    out = np.empty_like(reduction)
    carry = -np.inf
    for start in range(0, len(reduction), _RELEASE_CHUNK):
        part = reduction[start:start + _RELEASE_CHUNK].astype(np.float64)
        ramp = decay * np.arange(len(part))
        with np.errstate(divide="ignore"):
            logs = np.log(part) - ramp
        logs[0] = max(logs[0], carry + decay)
        held = np.maximum.accumulate(logs) + ramp
        out[start:start + len(part)] = np.exp(held)
        carry = held[-1]
    return out


def between(points: np.ndarray, block: int, samples: int) -> np.ndarray:
    """Linear interpolation from a point at the start of each block of
    `block` samples to each of `samples` (the last block towards the last
    point), float32."""
    following = np.append(points[1:], points[-1])
    weights = np.arange(block, dtype=np.float32) / block
    return (points[:, None] + (following - points)[:, None] * weights).reshape(-1)[:samples]


class _Limiter:
    """A mix's true peaks and energy, a block of LIMITER_BLOCK samples at a
    time: what limiting it at a gain takes away, cheaply, before doing it."""

    def __init__(self, audio: np.ndarray, sample_rate: int) -> None:
        self._audio = audio
        self._rate = sample_rate / LIMITER_BLOCK
        self._peaks = oversampled_peaks(audio, LIMITER_BLOCK)
        blocks = len(self._peaks)
        squares = np.zeros(blocks * LIMITER_BLOCK, np.float32)
        np.square(audio, out=squares[:len(audio)])
        self._energy = squares.reshape(blocks, LIMITER_BLOCK).sum(axis=1, dtype=np.float64)
        self._total = float(self._energy.sum())

    def points(self, gain_db: float, limit_db: float) -> np.ndarray | None:
        return limiter_points(self._peaks * np.float32(10 ** (gain_db / 20)),
                              10 ** (limit_db / 20), self._rate)

    def limiting_db(self, points: np.ndarray | None) -> float:
        """The change of loudness (dB, <= 0) limiting with `points` makes,
        estimated from the energy it removes."""
        if points is None:
            return 0.0
        kept = float(np.dot(self._energy, np.square(points, dtype=np.float64)))
        return 10 * math.log10(kept / self._total) if kept > 0 else LOUDNESS_FLOOR

    def gain_for(self, loudness: float, target: float, limit_db: float,
                 ) -> tuple[float, np.ndarray | None]:
        """The gain (dB) that brings `audio`, `loudness` LUFS as it is, to
        `target` once limited under `limit_db`, and the limiter's points: the
        root of loudness + gain + limiting(gain) = target, by secant steps."""
        gain = target - loudness
        most = gain + MAX_MAKEUP_DB
        tried: tuple[float, float] | None = None
        for _ in range(_SOLVER_STEPS):
            points = self.points(gain, limit_db)
            error = target - (loudness + gain + self.limiting_db(points))
            if abs(error) < _SOLVER_PRECISION:
                return gain, points
            slope = 1.0  # loudness per dB of gain: 1 unlimited, less as limiting bites
            if tried is not None and gain != tried[0]:
                slope = min(1.0, max(0.1, (tried[1] - error) / (gain - tried[0])))
            tried = (gain, error)
            gain = min(most, gain + error / slope)
        return gain, self.points(gain, limit_db)

    def apply(self, gain_db: float, points: np.ndarray | None) -> np.ndarray:
        out = self._audio * np.float32(10 ** (gain_db / 20))
        if points is not None:
            out *= between(points, LIMITER_BLOCK, len(out))
        return out


# --- assembly ------------------------------------------------------------------------


def _check(mix: Mix) -> None:
    if mix.sample_rate <= 0:
        raise ValueError("sample_rate must be positive")
    if mix.background not in BACKGROUNDS:
        raise ValueError(f"unknown background {mix.background!r}; one of {BACKGROUNDS}")
    if mix.lead_in < 0 or mix.fade_out < 0 or any(c.pause_after < 0 for c in mix.clips):
        raise ValueError("lead_in, fade_out and pauses must not be negative")


def _speech(mix: Mix, starts: list[int], total: int) -> np.ndarray:
    out = np.zeros(total, np.float32)
    for clip, start in zip(mix.clips, starts, strict=True):
        pcm = np.frombuffer(clip.pcm, "<i2", count=len(clip.pcm) // 2)
        out[start:start + len(pcm)] = pcm / np.float32(_FULL_SCALE)
    return out


def _bed(mix: Mix, samples: int, speech_lufs: float) -> np.ndarray:
    """The bed at its level, ducked under the speech."""
    bed = render_bed(mix.background, samples, mix.sample_rate, mix.seed)
    gain_db = speech_lufs + BED_LEVEL_DB - _raw_loudness(mix.background, mix.sample_rate)
    bed *= np.float32(10 ** (gain_db / 20))
    bed *= ducking_gain(mix)
    return bed


def _fade(audio: np.ndarray, mix: Mix) -> None:
    """Fade in over the lead-in and out over `fade_out`, in place."""
    declick = round(DECLICK_S * mix.sample_rate)
    fade_in = min(len(audio), round(mix.lead_in * mix.sample_rate) or declick)
    fade_out = min(len(audio), round(mix.fade_out * mix.sample_rate) or declick)
    if fade_in:
        audio[:fade_in] *= _ramp(fade_in)
    if fade_out:
        audio[len(audio) - fade_out:] *= _ramp(fade_out)[::-1]


def _quantize(audio: np.ndarray) -> np.ndarray:
    """16-bit samples, rounded and clipped (never wrapped)."""
    scaled = np.rint(audio * np.float32(_FULL_SCALE))
    return np.clip(scaled, -_FULL_SCALE, _FULL_SCALE - 1, out=scaled).astype("<i2")


def _master(audio: np.ndarray, mix: Mix, estimate: float) -> np.ndarray:
    """Normalised to the target loudness and limited under the ceiling, as
    16-bit samples. `estimate`: the loudness of `audio` if known already.

    The gain is chosen for the loudness the limiter will leave (estimated);
    the result is measured, and when the estimate was off, chosen again with
    the error taken into account."""
    rate = mix.sample_rate
    level = estimate if estimate > LOUDNESS_FLOOR else integrated_lufs(audio, rate)
    if level <= LOUDNESS_FLOOR:
        return _quantize(audio)  # silence: nothing to normalise
    limiter = _Limiter(audio, rate)
    limit_db = mix.ceiling_dbtp - _LIMITER_MARGIN_DB
    for _ in range(_MAX_PASSES):
        gain_db, points = limiter.gain_for(level, mix.target_lufs, limit_db)
        out = _quantize(limiter.apply(gain_db, points))
        measured = out / np.float32(_FULL_SCALE)
        error = integrated_lufs(measured, rate) - mix.target_lufs
        if abs(error) > _LOUDNESS_SLACK:
            level += error
            continue
        excess = true_peak_dbtp(measured) - mix.ceiling_dbtp
        if excess <= 0:
            return out
        limit_db -= excess + _LIMITER_MARGIN_DB
    return _under_ceiling(out, mix.ceiling_dbtp)


def _under_ceiling(out: np.ndarray, ceiling_dbtp: float) -> np.ndarray:
    """`out`, turned down if need be so its true peak is under the ceiling:
    when mastering ran out of passes, loudness gives way, never the ceiling."""
    excess = true_peak_dbtp(out / np.float32(_FULL_SCALE)) - ceiling_dbtp
    if excess <= 0:
        return out
    return _quantize(out * np.float32(10 ** (-(excess + 0.01) / 20) / _FULL_SCALE))


class NumpyAudioProducer:
    """ports.media.AudioProducer with numpy and scipy. Stateless (the bed
    calibration cache aside), so one instance may be shared by threads."""

    def produce(self, mix: Mix) -> bytes:
        _check(mix)
        starts, _, total = _layout(mix)
        if not total:
            return b""
        audio = _speech(mix, starts, total)
        speech_lufs = integrated_lufs(audio, mix.sample_rate)
        if mix.background != "none":
            reference = speech_lufs if speech_lufs > LOUDNESS_FLOOR else mix.target_lufs
            audio += _bed(mix, total, reference)
        _fade(audio, mix)
        return _master(audio, mix, speech_lufs).tobytes()
