"""Hosted text-to-speech with ElevenLabs (the official SDK)."""

from adapters.elevenlabs.speech import ElevenLabsSynthesizer

__all__ = ["ElevenLabsSynthesizer"]
