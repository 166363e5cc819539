"""Audio encoding (MP3 through LAME) and PCM/MP3 helpers."""

from adapters.audio.mp3 import LameMp3Encoder, mp3_duration, silence

__all__ = ["LameMp3Encoder", "mp3_duration", "silence"]
