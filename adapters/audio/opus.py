"""Ogg Opus encoding (libopus through PyAV).

Opus runs at 48 kHz whatever the input, so 16-bit PCM at the voice's rate is
resampled (FFmpeg's resampler, which keeps its state from chunk to chunk) and
fed a second at a time: writing long audio as one giant frame is what failed
before, and chunks keep memory flat. Given frames stamped with their position,
the Ogg muxer records the encoder's pre-skip and the exact last sample, so a
decoder plays back precisely the samples that went in (to the sample).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np

from ports.media import EncodedAudio

OPUS_RATE = 48000
#: Input samples fed to the encoder at a time.
_CHUNK_SECONDS = 1.0
_TIME_BASE = Fraction(1, OPUS_RATE)


class OpusEncoder:
    """ports.media.AudioEncoder: 16-bit mono PCM to mono Ogg Opus (VBR).

    `complexity` is libopus's (0 fastest .. 10 best). CPU-bound and
    synchronous like the port; a fresh encoder per call, so one instance may be
    shared by threads.
    """

    def __init__(self, bitrate: int = 48_000, complexity: int = 10) -> None:
        if not 6_000 <= bitrate <= 510_000:
            raise ValueError("bitrate must be between 6000 and 510000 bits per second")
        if not 0 <= complexity <= 10:
            raise ValueError("complexity must be between 0 (fastest) and 10 (best)")
        self._bitrate = bitrate
        self._complexity = complexity

    def encode(self, pcm: bytes, sample_rate: int) -> EncodedAudio:
        if len(pcm) % 2:
            raise ValueError("16-bit PCM must have an even number of bytes")
        if not 8000 <= sample_rate <= 48000:
            raise ValueError(f"unsupported sample rate {sample_rate}")
        samples = np.frombuffer(pcm, "<i2")
        out = io.BytesIO()
        with av.open(out, "w", format="ogg") as container:
            stream = container.add_stream("libopus", rate=OPUS_RATE, layout="mono")
            stream.bit_rate = self._bitrate
            stream.codec_context.options = {"compression_level": str(self._complexity)}
            for frame in _resampled(samples, sample_rate):
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        return EncodedAudio(data=out.getvalue(), mime_type="audio/ogg", extension="opus",
                            duration_seconds=len(samples) / sample_rate)


def _resampled(samples: np.ndarray, sample_rate: int) -> Iterator[av.AudioFrame]:
    """The samples at 48 kHz, a chunk at a time, each frame stamped with its
    position: without timestamps the muxer miscounts the encoder's delay and
    the last page claims 312 samples too many."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=OPUS_RATE)
    chunk = round(_CHUNK_SECONDS * sample_rate)

    def batches() -> Iterator[list[av.AudioFrame]]:
        for start in range(0, len(samples), chunk):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + chunk],
                                               format="s16", layout="mono")
            frame.sample_rate = sample_rate
            yield resampler.resample(frame)
        yield resampler.resample(None)

    position = 0
    for batch in batches():
        for frame in batch:
            frame.pts = position
            frame.time_base = _TIME_BASE
            position += frame.samples
            yield frame
