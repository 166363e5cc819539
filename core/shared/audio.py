"""The shared vocabulary of rendered audio: what a file measures, its
silences, and its captions. Audio measures and writes them; the library keeps
and serves them; neither imports the other's core (DESIGN §2)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Silence:
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Measurement:
    """Length, integrated loudness (LUFS, BS.1770-4), sample peak (dBFS) and
    true peak (dBTP) of one encoded file."""

    duration_ms: int
    integrated_lufs: float
    sample_peak_dbfs: float
    true_peak_dbtp: float


@dataclass(frozen=True)
class CaptionCue:
    start_ms: int
    end_ms: int
    text: str


def webvtt(cues: list[CaptionCue] | tuple[CaptionCue, ...]) -> str:
    """The cues as a WebVTT file."""

    def stamp(ms: int) -> str:
        hours, rest = divmod(max(ms, 0), 3_600_000)
        minutes, rest = divmod(rest, 60_000)
        seconds, millis = divmod(rest, 1000)
        return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"

    blocks = ["WEBVTT", ""]
    for number, cue in enumerate(cues, 1):
        # A blank line or "-->" inside a cue would end or break it.
        text = " ".join(cue.text.replace("-->", "→").split())
        blocks += [str(number), f"{stamp(cue.start_ms)} --> {stamp(cue.end_ms)}", text, ""]
    return "\n".join(blocks)
