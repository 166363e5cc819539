"""Local neural text-to-speech with Piper (the embedded mode's voice)."""

from adapters.piper.speech import DEFAULT_VOICE, PiperSynthesizer

__all__ = ["DEFAULT_VOICE", "PiperSynthesizer"]
