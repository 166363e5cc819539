"""The voice catalog: every voice content can be rendered with, each with a
short sample a person can listen to before choosing.

A sample is rendered once per voice (the same sentence, produced like any
piece, without a bed) and kept in the object store under a fixed key; later
calls only sign a URL to it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from core.audio.model import Clip, Mix

if TYPE_CHECKING:
    from ports.media import AudioEncoder, AudioProducer, ObjectStore, SpeechSynthesizer, Voice

log = logging.getLogger(__name__)

SAMPLE_TEXT = ("Welcome. Take a slow breath in, and let it go. "
               "This is how I will sound when I guide you.")
#: Bump to render every sample again (a new text, a new mix).
SAMPLE_VERSION = 1


def sample_key(voice_id: str) -> str:
    return f"voices/{voice_id}/sample-v{SAMPLE_VERSION}.mp3"


class VoiceCatalog:
    def __init__(self, speech: SpeechSynthesizer, producer: AudioProducer,
                 encoder: AudioEncoder, objects: ObjectStore, *,
                 sample_ttl: timedelta = timedelta(hours=1)) -> None:
        self._speech = speech
        self._producer = producer
        self._encoder = encoder
        self._objects = objects
        self._ttl = sample_ttl
        self._locks: dict[str, asyncio.Lock] = {}
        self._ready: set[str] = set()

    async def voices(self) -> list[tuple[Voice, str]]:
        """Every voice (the default first) and a URL of its sample ("" when the
        sample could not be made: the voice is still listed)."""
        return [(voice, await self._sample_url(voice)) for voice in self._speech.voices()]

    async def _sample_url(self, voice: Voice) -> str:
        key = sample_key(voice.id)
        try:
            if voice.id not in self._ready:
                async with self._locks.setdefault(voice.id, asyncio.Lock()):
                    if voice.id not in self._ready:
                        if not await self._objects.exists(key):
                            await self._render_sample(voice, key)
                        self._ready.add(voice.id)
            return await self._objects.signed_url(key, self._ttl)
        except Exception:
            log.warning("no sample for the voice %s", voice.id, exc_info=True)
            return ""

    async def _render_sample(self, voice: Voice, key: str) -> None:
        pcm = await self._speech.synthesize(SAMPLE_TEXT, voice.id, 1.0)
        mix = Mix(clips=(Clip(pcm, 0.5, SAMPLE_TEXT),), sample_rate=self._speech.sample_rate,
                  lead_in=0.2, fade_out=0.3)
        encoded = await asyncio.to_thread(
            lambda: self._encoder.encode(self._producer.produce(mix), mix.sample_rate))
        await self._objects.put(key, encoded.data, encoded.mime_type)
