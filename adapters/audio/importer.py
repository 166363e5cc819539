"""Recordings people upload, made playable: analysed (length, loudness,
peaks, silences, waveform) and encoded as MP3 and Ogg Opus with the same
encoders as rendered audio. The library decides what is fit; this only
measures and encodes."""

from __future__ import annotations

import asyncio
import io

import av
import numpy as np

from adapters.audio.analysis import (
    decode,
    integrated_lufs,
    sample_peak_dbfs,
    silences,
    true_peak_dbtp,
    waveform,
)
from ports.library import ImportedAudio, ImportedRendition
from ports.media import AudioEncoder


def probe_seconds(data: bytes) -> float | None:
    """The container's own idea of its length, without decoding it (None
    when it does not say, or is not a container FFmpeg reads)."""
    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio or container.duration is None:
                return None
            return float(container.duration) / av.time_base
    except (av.FFmpegError, OSError, ValueError):
        return None


class PyAvImporter:
    def __init__(self, encoders: dict[str, AudioEncoder]) -> None:
        self._encoders = encoders

    async def analyze(self, data: bytes, max_seconds: float) -> ImportedAudio | None:
        """None when `data` is not audio. A file whose container says it is
        longer than `max_seconds` is measured by its length only (it is not
        decoded: a long file would take gigabytes)."""
        return await asyncio.to_thread(self._analyze, data, max_seconds)

    def _analyze(self, data: bytes, max_seconds: float) -> ImportedAudio | None:
        probed = probe_seconds(data)
        if probed is not None and probed > max_seconds:
            return ImportedAudio(duration_ms=round(probed * 1000), integrated_lufs=0.0,
                                 sample_peak_dbfs=0.0, true_peak_dbtp=0.0, silences=(),
                                 waveform=())
        try:
            samples, rate = decode(data)
        except ValueError:
            return None
        return ImportedAudio(
            duration_ms=round(len(samples) * 1000 / rate),
            integrated_lufs=integrated_lufs(samples, rate),
            sample_peak_dbfs=sample_peak_dbfs(samples), true_peak_dbtp=true_peak_dbtp(samples),
            silences=silences(samples, rate), waveform=waveform(samples))

    async def encode(self, data: bytes) -> list[ImportedRendition]:
        return await asyncio.to_thread(self._encode, data)

    def _encode(self, data: bytes) -> list[ImportedRendition]:
        samples, rate = decode(data)
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        renditions = []
        for fmt, encoder in self._encoders.items():
            encoded = encoder.encode(pcm, rate)
            renditions.append(ImportedRendition(fmt, encoded.extension, encoded.mime_type,
                                                encoded.data))
        return renditions
