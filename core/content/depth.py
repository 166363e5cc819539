"""How deep a piece goes and how long it lasts: decided by the system, never asked.

The depth rule (`assign_depth`) reads two things, how practised the person is
(the number of pieces they created before) and how long this piece is:

- experience: a *newcomer* has fewer than `REGULAR_FROM` earlier pieces, a
  *regular* at least that many, a *practised* person at least `PRACTISED_FROM`;
- length: *short* is under `SHORT_UNDER_MINUTES`, *long* is at least
  `LONG_FROM_MINUTES`.

A newcomer, or anyone in a short piece, gets SHALLOW: simple, outward anchors
(breath, sounds, the body's weight), nothing that asks much. A practised person
in a piece that is not short, or a regular in a long one, gets DEEP: more
inward (values, identity, long silences). Everyone else gets MEDIUM.
"""

from __future__ import annotations

from core.shared.creation import Brief, ContentType, Depth

REGULAR_FROM = 3
PRACTISED_FROM = 12
SHORT_UNDER_MINUTES = 5.0
LONG_FROM_MINUTES = 15.0

#: Length of a piece when the person did not say, in seconds.
DEFAULT_SECONDS = {
    ContentType.AFFIRMATION: 150.0,
    ContentType.GUIDED_MEDITATION: 600.0,
    ContentType.RITUAL: 300.0,
}
MIN_MINUTES, MAX_MINUTES = 1.0, 60.0


def assign_depth(history_count: int, target_minutes: float) -> Depth:
    """The depth of a piece for someone with `history_count` earlier pieces,
    lasting `target_minutes` (the rule is in the module's docstring)."""
    if history_count < REGULAR_FROM or target_minutes < SHORT_UNDER_MINUTES:
        return Depth.SHALLOW
    if history_count >= PRACTISED_FROM or target_minutes >= LONG_FROM_MINUTES:
        return Depth.DEEP
    return Depth.MEDIUM


def target_seconds(brief: Brief) -> float:
    """How long the piece should last: what the person asked for, clamped to
    1..60 minutes, or the type's default (affirmations 2.5 min, meditations
    10 min, rituals 5 min) when they did not say."""
    minutes = brief.target_minutes
    if not minutes or minutes <= 0 or minutes != minutes:  # unset, negative or NaN
        return DEFAULT_SECONDS[brief.content_type]
    return min(max(float(minutes), MIN_MINUTES), MAX_MINUTES) * 60.0
