"""The shared vocabulary of creation: what kinds of content exist, how deep they
go, how they are paced, and the script a voice reads.

A shared kernel (DESIGN §2): conversation, content, audio and library each use
these value types; none of them owns them, and none imports another's core.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ContentType(StrEnum):
    AFFIRMATION = "affirmation"
    GUIDED_MEDITATION = "guided_meditation"
    RITUAL = "ritual"

    @property
    def label(self) -> str:
        return {"affirmation": "affirmation set", "guided_meditation": "guided meditation",
                "ritual": "ritual"}[self.value]


class Depth(StrEnum):
    """How far a piece goes. Assigned by the system (history and length), never asked."""

    SHALLOW = "shallow"
    MEDIUM = "medium"
    DEEP = "deep"


class Pace(StrEnum):
    SLOW = "slow"
    MEDIUM = "medium"
    FAST = "fast"

    @property
    def speech_rate(self) -> float:
        """Relative speaking rate (1.0 = the voice's natural rate)."""
        return {"slow": 0.85, "medium": 1.0, "fast": 1.12}[self.value]


class Tone(StrEnum):
    CALM = "calm"
    ENERGETIC = "energetic"
    WARM = "warm"


class Background(StrEnum):
    """The sound bed under the voice. Every bed is generated (no recordings, so
    no licence to track): `rain` is soft filtered noise with scattered drops,
    `brown_noise` deep 1/f² noise, `drone` a slow low chord."""

    NONE = "none"
    RAIN = "rain"
    BROWN_NOISE = "brown_noise"
    DRONE = "drone"


class TimeOfDay(StrEnum):
    MORNING = "morning"
    MIDDAY = "midday"
    EVENING = "evening"
    NIGHT = "night"


#: Words a voice speaks per second at Pace.MEDIUM (about 140 words a minute,
#: the calm reading rate of a meditation teacher). Used to plan timing; the
#: audio context measures the real durations.
WORDS_PER_SECOND = 2.35


@dataclass(frozen=True)
class Segment:
    """One spoken passage followed by exact silence."""

    text: str
    pause_after: float = 0.0


@dataclass(frozen=True)
class Script:
    """What the voice reads, in order. `target_seconds` (0: none) asks the
    renderer to stretch or shrink the pauses so the whole lasts that long."""

    segments: tuple[Segment, ...]
    target_seconds: float = 0.0

    @property
    def text(self) -> str:
        return "\n".join(s.text for s in self.segments)

    def estimated_seconds(self, pace: Pace = Pace.MEDIUM) -> float:
        words = sum(len(s.text.split()) for s in self.segments)
        return words / (WORDS_PER_SECOND * pace.speech_rate) + sum(
            s.pause_after for s in self.segments)


@dataclass(frozen=True)
class Brief:
    """What a person asked for, as gathered by a conversation. Empty strings and
    zero mean "not said"; the generator fills them from defaults."""

    content_type: ContentType
    intent: str = ""
    situation: str = ""
    time_of_day: TimeOfDay | None = None
    target_minutes: float = 0.0
    focus: str = ""
    voice: str = ""
    pace: Pace | None = None
    tone: Tone | None = None
    #: The person's name as they like to be addressed ("" = not used).
    name: str = ""
    #: The sound bed (None = the type's default).
    background: Background | None = None


@dataclass(frozen=True)
class GeneratedText:
    """What text generation hands back for one brief: a title, the structure
    of the type as data (JSON-ready), the script the voice reads, and the depth
    the system chose."""

    title: str
    depth: Depth
    structure: dict[str, object]
    script: Script
    #: The model (or "offline-composer") that wrote it.
    model: str = ""
