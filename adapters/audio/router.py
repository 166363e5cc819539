"""ports.media.SpeechSynthesizer over several synthesizers: the embedded
voices and, when configured, ElevenLabs' voices, as one catalog.

A voice id names the synthesizer that speaks it; "" or an id no synthesizer
has goes to the first (the default voice). All must share one sample rate:
the rest of the pipeline lays audio out by samples.
"""

from __future__ import annotations

from collections.abc import Sequence

from ports.media import SpeechSynthesizer, Voice


class VoiceRouter:
    def __init__(self, synthesizers: Sequence[SpeechSynthesizer]) -> None:
        if not synthesizers:
            raise ValueError("at least one synthesizer is required")
        rates = {s.sample_rate for s in synthesizers}
        if len(rates) != 1:
            raise ValueError(f"synthesizers must share one sample rate, not {sorted(rates)}")
        self.sample_rate: int = rates.pop()
        self._synthesizers = list(synthesizers)
        self._owner: dict[str, SpeechSynthesizer] = {}
        for synthesizer in self._synthesizers:
            for voice in synthesizer.voices():
                self._owner.setdefault(voice.id, synthesizer)

    def voices(self) -> list[Voice]:
        seen: set[str] = set()
        found = []
        for synthesizer in self._synthesizers:
            for voice in synthesizer.voices():
                if voice.id not in seen:
                    seen.add(voice.id)
                    found.append(voice)
        return found

    async def synthesize(self, text: str, voice: str, rate: float) -> bytes:
        owner = self._owner.get(voice)
        if owner is None:
            owner, voice = self._synthesizers[0], ""
        return await owner.synthesize(text, voice, rate)

    async def close(self) -> None:
        for synthesizer in self._synthesizers:
            await synthesizer.close()
