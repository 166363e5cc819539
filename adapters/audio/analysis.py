"""Measuring audio: what an encoded file really sounds like once decoded.

The renderer checks every rendition it stores against the loudness targets, so
the measurement is of the decoded file (PyAV, i.e. FFmpeg's decoders), not of
the PCM that went into the encoder: encoders move peaks and, slightly,
loudness. MP3 and Ogg Opus (whatever FFmpeg reads) are decoded to float mono at
the file's own rate, Opus pre-skip and end trimming honoured by the demuxer.

Loudness is BS.1770-4 integrated loudness (pyloudnorm). True peak is the peak
of the signal 4x oversampled, computed in overlapping chunks so a long file
never needs a 4x copy of itself in memory. The same measures serve the
producer (adapters.audio.production), which must meet what is measured here.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from itertools import pairwise

import av
import numpy as np
import pyloudnorm
from scipy import signal

from core.audio.model import AudioReport, Silence

#: The quietest loudness reported (LUFS): BS.1770's absolute gate, so silence
#: measures this rather than -inf.
LOUDNESS_FLOOR = -70.0
#: The lowest peak reported (dBFS, dBTP): digital silence.
PEAK_FLOOR = -120.0
#: A silence is at least this long and every 50 ms window in it is this quiet.
MIN_SILENCE_MS = 1000
SILENCE_DBFS = -50.0
WAVEFORM_POINTS = 200

OVERSAMPLING = 4
#: BS.1770 gating blocks are 400 ms: a shorter signal is measured padded to one.
_BLOCK_SECONDS = 0.4
#: Samples per chunk of the oversampled peak, and the samples either side a
#: chunk borrows from its neighbours (resample_poly's filter reaches 10).
_PEAK_CHUNK = 1 << 16
_PEAK_OVERLAP = 32
_SILENCE_HOP_SECONDS = 0.01
_SILENCE_WINDOW_HOPS = 5


def to_db(amplitude: float) -> float:
    """A linear magnitude in dB, never below PEAK_FLOOR."""
    return max(PEAK_FLOOR, 20 * math.log10(amplitude)) if amplitude > 0 else PEAK_FLOOR


def integrated_lufs(samples: np.ndarray, sample_rate: int) -> float:
    """BS.1770-4 integrated loudness of float samples (full scale 1.0), never
    below LOUDNESS_FLOOR."""
    minimum = math.ceil(_BLOCK_SECONDS * sample_rate)
    if len(samples) < minimum:
        samples = np.pad(samples, (0, minimum - len(samples)))
    loudness = pyloudnorm.Meter(sample_rate).integrated_loudness(samples.astype(np.float64))
    return LOUDNESS_FLOOR if math.isnan(loudness) else max(LOUDNESS_FLOOR, float(loudness))


def _oversampled(samples: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(start, magnitudes): the 4x oversampled signal, a chunk at a time, as
    OVERSAMPLING points per sample from `start` on."""
    for start in range(0, len(samples), _PEAK_CHUNK):
        stop = min(start + _PEAK_CHUNK, len(samples))
        lead = min(start, _PEAK_OVERLAP)
        upsampled = signal.resample_poly(samples[start - lead:stop + _PEAK_OVERLAP],
                                          OVERSAMPLING, 1)
        inner = upsampled[lead * OVERSAMPLING:(lead + stop - start) * OVERSAMPLING]
        yield start, np.abs(inner, out=inner)


def oversampled_peaks(samples: np.ndarray, block: int) -> np.ndarray:
    """The true peak of each block of `block` samples (the last may be
    shorter), as linear magnitudes (float32)."""
    if _PEAK_CHUNK % block:
        raise ValueError(f"block must divide {_PEAK_CHUNK}")
    peaks = np.empty(-(-len(samples) // block), np.float32)
    width = block * OVERSAMPLING
    for start, magnitudes in _oversampled(samples):
        first = start // block
        found = np.maximum.reduceat(magnitudes, np.arange(0, len(magnitudes), width))
        peaks[first:first + len(found)] = found
    return peaks


def true_peak_dbtp(samples: np.ndarray) -> float:
    peak = max((float(m.max()) for _, m in _oversampled(samples)), default=0.0)
    return to_db(peak)


def sample_peak_dbfs(samples: np.ndarray) -> float:
    return to_db(float(np.abs(samples).max(initial=0.0)))


def silences(samples: np.ndarray, sample_rate: int) -> tuple[Silence, ...]:
    """Stretches of at least MIN_SILENCE_MS in which every 50 ms window (taken
    every 10 ms) has an RMS level below SILENCE_DBFS."""
    hop = max(1, round(_SILENCE_HOP_SECONDS * sample_rate))
    hops = -(-len(samples) // hop)
    if hops < _SILENCE_WINDOW_HOPS:
        return ()
    padded = np.zeros(hops * hop, np.float32)
    padded[:len(samples)] = samples
    energy = np.square(padded).reshape(hops, hop).sum(axis=1, dtype=np.float64)
    window = np.convolve(energy, np.ones(_SILENCE_WINDOW_HOPS), "valid")
    quiet_window = window < (10 ** (SILENCE_DBFS / 20)) ** 2 * hop * _SILENCE_WINDOW_HOPS
    # A hop is silent when a quiet window covers it.
    quiet = np.convolve(quiet_window.astype(np.int8), np.ones(_SILENCE_WINDOW_HOPS, np.int8))
    edges = np.flatnonzero(np.diff(np.concatenate(([0], quiet > 0, [0])).astype(np.int8)))
    found = []
    for first, end in zip(edges[::2], edges[1::2], strict=True):
        start_ms = round(first * hop * 1000 / sample_rate)
        end_ms = round(min(end * hop, len(samples)) * 1000 / sample_rate)
        if end_ms - start_ms >= MIN_SILENCE_MS:
            found.append(Silence(start_ms, end_ms))
    return tuple(found)


def waveform(samples: np.ndarray, points: int = WAVEFORM_POINTS) -> tuple[float, ...]:
    """The peak magnitude of each of `points` equal stretches, 0..1."""
    edges = np.linspace(0, len(samples), points + 1).astype(int)
    return tuple(
        round(min(1.0, float(np.abs(samples[a:b]).max(initial=0.0))), 3)
        for a, b in pairwise(edges))


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """The first audio stream of an encoded file as float32 mono samples and
    their rate (the file's own). ValueError when `data` is not audio FFmpeg
    can decode."""
    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio:
                raise ValueError("no audio stream in the data")
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate
            parts = list(_mono(container.decode(stream), rate))
    except (av.FFmpegError, OSError) as error:
        raise ValueError(f"not decodable audio: {error}") from error
    if not rate or not parts:
        raise ValueError("no audio samples in the data")
    return np.concatenate(parts), rate


def _mono(frames: Iterator[av.AudioFrame], rate: int) -> Iterator[np.ndarray]:
    """Each decoded frame as float32 mono samples, its channels averaged (so
    peaks keep their level). Frames not already planar float (what the MP3 and
    Opus decoders give) are converted first."""
    resampler = None
    for frame in frames:
        if frame.format.name == "fltp":
            yield _averaged(frame)
            continue
        resampler = resampler or av.AudioResampler(format="fltp", layout=frame.layout.name,
                                                   rate=rate)
        yield from map(_averaged, resampler.resample(frame))
    if resampler is not None:
        yield from map(_averaged, resampler.resample(None))


def _averaged(frame: av.AudioFrame) -> np.ndarray:
    planes = frame.to_ndarray()
    return planes[0] if len(planes) == 1 else planes.mean(axis=0, dtype=np.float32)


class PyAvAnalyzer:
    """ports.media.AudioAnalyzer: measures an encoded file (MP3, Ogg Opus, any
    format FFmpeg decodes). Stateless, so one instance may be shared by threads."""

    def analyze(self, data: bytes) -> AudioReport:
        samples, rate = decode(bytes(data))
        return AudioReport(
            duration_ms=round(len(samples) * 1000 / rate),
            integrated_lufs=round(integrated_lufs(samples, rate), 2),
            sample_peak_dbfs=round(sample_peak_dbfs(samples), 2),
            true_peak_dbtp=round(true_peak_dbtp(samples), 2),
            silences=silences(samples, rate),
            waveform=waveform(samples))
