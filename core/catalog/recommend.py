"""Which published packs to suggest to a person, each with a one-line reason.

A pack's score is a weighted sum of signals, each between 0 and 1:

- type (0.10): the share of the person's recent practice in the pack's content
  type (completions weigh less as they age: half as much every 30 days).
- tags (0.25): the share of the person's recent practice on the pack's topics:
  each completion counts by the overlap coefficient of its tags and the pack's
  (1 when either's tags hold the other's), so an item tagged "sleep" fully
  matches a pack tagged "sleep, night, calm" and a pack's co-occurring tags
  are not counted once each.
- time (0.20): the person's practice is split into morning (5-11h), afternoon
  (12-16h), evening (17-21h) and night (22-4h) by local hour; a pack whose tags
  or title speak of a part of the day ("sleep", "evening", "morning", "energy",
  ...) gets the share of practice in that part.
- mood (0.15): after which content types and tags the person's mood rose most
  (mood_after - mood_before, shrunk towards 0 by one pseudo-completion so a
  single good session proves little; a lift of 2 points is full marks).
- people (0.30): item-item collaborative filtering over other people's
  completions: packs co-completed with the packs the person practised, by
  cosine over who completed them with a shrinkage term (a pair seen once is
  weak evidence), weighted by how recently the person practised each.
- similar (0.25, only with an embedder): the best cosine between the pack's
  "title. description. tags" and what the person recently completed ("title.
  tags"), all embedded in one call.
- popular (0.10): a prior of log-scaled popularity (70%) and of other people's
  completions in the last 7 days (30%), relative to the most popular candidate;
  for a person with no history it is the whole score.

The reason names the signal contributing most to the pack's score. Then at
most 2 packs of one creator are kept ahead of other creators' packs, so one
prolific creator cannot fill the page (their further packs follow only when
nothing else is left). Packs the person owns, made, or already practises from
are never suggested. Equal scores are ordered by popularity, then pack id, so
the same inputs always give the same page.
"""

from __future__ import annotations

import enum
import math
import operator
import re
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.shared.errors import InvalidArgument

#: Texts in, unit-length vectors out (one per text, in order).
Embed = Callable[[list[str]], Awaitable[list[list[float]]]]

#: A completion counts half as much after this many days.
HALF_LIFE_DAYS = 30.0
#: What "this week" means for trending packs.
TRENDING_WINDOW = timedelta(days=7)
#: Most packs of one creator ahead of other creators' packs.
MAX_PER_CREATOR = 2
#: A mood lift (points on the 1-5 scale) that earns the full mood signal.
FULL_MOOD_LIFT = 2.0
#: Added to the co-occurrence cosine's denominator: damps pairs seen rarely.
COOCCURRENCE_SHRINK = 2.0
#: The most recent distinct completed items compared semantically.
SEMANTIC_HISTORY = 20
#: Longest title quoted in a reason (characters).
MAX_QUOTED_TITLE = 40


class Signal(enum.Enum):
    TYPE = "type"
    TAGS = "tags"
    TIME = "time"
    MOOD = "mood"
    PEOPLE = "people"
    SIMILAR = "similar"
    POPULAR = "popular"


#: How much each signal weighs; on a tie the earlier signal gives the reason.
WEIGHTS: dict[Signal, float] = {
    Signal.PEOPLE: 0.30,
    Signal.SIMILAR: 0.25,
    Signal.TAGS: 0.25,
    Signal.TIME: 0.20,
    Signal.MOOD: 0.15,
    Signal.TYPE: 0.10,
    Signal.POPULAR: 0.10,
}


class DayPart(enum.Enum):
    MORNING = "morning"
    AFTERNOON = "afternoon"
    EVENING = "evening"
    NIGHT = "night"


def day_part(local_hour: int) -> DayPart:
    if 5 <= local_hour <= 11:
        return DayPart.MORNING
    if 12 <= local_hour <= 16:
        return DayPart.AFTERNOON
    if 17 <= local_hour <= 21:
        return DayPart.EVENING
    return DayPart.NIGHT


#: Words of a pack's tags or title that tie it to a part of the day.
DAY_PART_WORDS: dict[DayPart, frozenset[str]] = {
    DayPart.MORNING: frozenset({"morning", "sunrise", "dawn", "wake", "waking", "awaken",
                                "energy", "energise", "energize", "energising", "energizing"}),
    DayPart.AFTERNOON: frozenset({"afternoon", "midday", "lunch", "lunchtime", "reset"}),
    DayPart.EVENING: frozenset({"evening", "dusk", "sunset", "unwind", "unwinding",
                                "wind-down", "winddown"}),
    DayPart.NIGHT: frozenset({"sleep", "sleepy", "night", "nighttime", "bedtime", "bed",
                              "insomnia", "dream", "dreams"}),
}
#: How a reason says a part of the day before a content type ("evening meditations").
_DAY_PART_ADJECTIVE = {DayPart.MORNING: "morning", DayPart.AFTERNOON: "afternoon",
                       DayPart.EVENING: "evening", DayPart.NIGHT: "night-time"}
#: ...and on its own ("because you practise in the evening").
_DAY_PART_ADVERB = {DayPart.MORNING: "in the morning", DayPart.AFTERNOON: "in the afternoon",
                    DayPart.EVENING: "in the evening", DayPart.NIGHT: "at night"}
_TYPE_PLURAL = {"affirmation": "affirmations", "guided_meditation": "meditations",
                "ritual": "rituals"}
_WORD = re.compile(r"[a-z][a-z'-]*")


@dataclass(frozen=True)
class Candidate:
    """A published pack the person could be recommended."""

    pack_id: uuid.UUID
    title: str
    description: str
    #: Lower case.
    tags: tuple[str, ...]
    #: ContentType values: `affirmation`, `guided_meditation`, `ritual`.
    content_types: tuple[str, ...]
    creator_id: uuid.UUID
    creator_name: str
    #: Purchases plus completed plays.
    popularity: int
    published_at: datetime


@dataclass(frozen=True)
class Completion:
    """One completed practice, the person's or someone else's."""

    user_id: uuid.UUID
    content_type: str
    #: UTC.
    completed_at: datetime
    #: 0-23 in the person's time zone, when known.
    local_hour: int | None
    #: The pack the item came from, if any.
    pack_id: uuid.UUID | None
    #: The item's (or its pack's) tags.
    tags: tuple[str, ...]
    title: str
    #: 1-5, when the person said.
    mood_before: int | None
    mood_after: int | None


@dataclass(frozen=True)
class Recommendation:
    pack_id: uuid.UUID
    score: float
    #: One line naming the strongest signal, no trailing period, under 100 characters.
    reason: str


@dataclass(frozen=True)
class _Profile:
    """What the person's history says, each part normalised to 0-1."""

    type_share: dict[str, float]
    #: Recency-weighted share of practice carrying each tag.
    tag_affinity: dict[str, float]
    #: (share of practice, its tags) of each tagged completion.
    tagged: list[tuple[float, frozenset[str]]]
    part_share: dict[DayPart, float]
    #: Mood score per ("type", value) or ("tag", value).
    mood: dict[tuple[str, str], float]
    best_mood: tuple[str, str] | None
    #: Recency weight of each pack practised from (the most recent completion's).
    packs: dict[uuid.UUID, float]
    #: Title of the most recent item of each pack practised from.
    pack_item_titles: dict[uuid.UUID, str]
    #: (text to embed, title to quote) of the most recent distinct items.
    recent_items: list[tuple[str, str]]


async def recommend(user_id: uuid.UUID, history: list[Completion], others: list[Completion],
                    candidates: list[Candidate], exclude: set[uuid.UUID], *,
                    now: datetime, embed: Embed | None = None, limit: int = 10,
                    ) -> list[Recommendation]:
    """The best `limit` packs for `user_id`, best first. `history` is the
    person's completions, `others` everyone else's (the person's own are
    ignored there), `exclude` the packs they own already. `now` dates the
    recency decay and "this week"; `embed`, when given, is called once."""
    if limit < 1:
        raise InvalidArgument("limit must be at least 1")
    practised = {c.pack_id for c in history if c.pack_id is not None}
    eligible = [c for c in candidates
                if c.pack_id not in exclude and c.pack_id not in practised
                and c.creator_id != user_id]
    if not eligible:
        return []
    others = [c for c in others if c.user_id != user_id]
    prior, trending = _prior(eligible, others, now)

    if not history:
        scored = [(c, prior[c.pack_id], "popular with listeners") for c in eligible]
        return _diverse(scored, limit)

    profile = _profile(history, now)
    people = _people(profile, eligible, others, {c.pack_id: c.title for c in candidates})
    similar = await _similar(profile, eligible, embed) if embed is not None else {}
    scored = []
    for candidate in eligible:
        signals: dict[Signal, tuple[float, str]] = {
            Signal.PEOPLE: people.get(candidate.pack_id, (0.0, "")),
            Signal.SIMILAR: similar.get(candidate.pack_id, (0.0, "")),
            Signal.TAGS: _tags(profile, candidate),
            Signal.TIME: _time(profile, candidate),
            Signal.MOOD: _mood(profile, candidate),
            Signal.TYPE: _type(profile, candidate),
            Signal.POPULAR: (prior[candidate.pack_id],
                             "popular this week" if trending[candidate.pack_id]
                             else "popular with listeners"),
        }
        contributions = {s: WEIGHTS[s] * value for s, (value, _) in signals.items()}
        strongest = max(WEIGHTS, key=lambda s: contributions[s])  # first of equals wins
        if contributions[strongest] <= 0.0:
            strongest = Signal.POPULAR
        scored.append((candidate, sum(contributions.values()), signals[strongest][1]))
    return _diverse(scored, limit)


def _recency(completed_at: datetime, now: datetime) -> float:
    age_days = max((now - completed_at).total_seconds(), 0.0) / 86_400
    return 0.5 ** (age_days / HALF_LIFE_DAYS)


def _profile(history: list[Completion], now: datetime) -> _Profile:
    by_type: dict[str, float] = defaultdict(float)
    by_tag: dict[str, float] = defaultdict(float)
    tagged: list[tuple[float, frozenset[str]]] = []
    by_part: dict[DayPart, float] = defaultdict(float)
    lifts: dict[tuple[str, str], list[int]] = defaultdict(list)
    packs: dict[uuid.UUID, float] = {}
    pack_item_titles: dict[uuid.UUID, str] = {}
    recent_items: dict[str, str] = {}
    total = timed = 0.0
    for completion in sorted(history, key=lambda c: c.completed_at, reverse=True):
        weight = _recency(completion.completed_at, now)
        total += weight
        by_type[completion.content_type] += weight
        for tag in set(completion.tags):
            by_tag[tag] += weight
        if completion.tags:
            tagged.append((weight, frozenset(completion.tags)))
        if completion.local_hour is not None:
            by_part[day_part(completion.local_hour)] += weight
            timed += weight
        if completion.mood_before is not None and completion.mood_after is not None:
            lift = completion.mood_after - completion.mood_before
            lifts[("type", completion.content_type)].append(lift)
            for tag in set(completion.tags):
                lifts[("tag", tag)].append(lift)
        if completion.pack_id is not None and completion.pack_id not in packs:
            packs[completion.pack_id] = weight
            pack_item_titles[completion.pack_id] = completion.title
        text = ". ".join(filter(None, [completion.title.strip(), ", ".join(completion.tags)]))
        if text and len(recent_items) < SEMANTIC_HISTORY:
            recent_items.setdefault(text, completion.title)
    mood = {key: min(max(sum(values) / (len(values) + 1) / FULL_MOOD_LIFT, 0.0), 1.0)
            for key, values in lifts.items()}
    # Sorted first so that equal lifts name the same type or tag every time.
    best_mood = max(sorted(mood), key=lambda key: mood[key], default=None)
    return _Profile(
        type_share={t: w / total for t, w in by_type.items()},
        tag_affinity={t: w / total for t, w in by_tag.items()},
        tagged=[(w / total, tags) for w, tags in tagged],
        part_share={p: w / timed for p, w in by_part.items()} if timed else {},
        mood=mood,
        best_mood=best_mood if best_mood is not None and mood[best_mood] > 0 else None,
        packs=packs,
        pack_item_titles=pack_item_titles,
        recent_items=[(text, title) for text, title in recent_items.items()],
    )


def _prior(eligible: list[Candidate], others: list[Completion],
           now: datetime) -> tuple[dict[uuid.UUID, float], dict[uuid.UUID, int]]:
    """Each pack's popularity prior (0-1) and its completions by others this week."""
    trending = {c.pack_id: 0 for c in eligible}
    for completion in others:
        if (completion.pack_id in trending
                and timedelta(0) <= now - completion.completed_at <= TRENDING_WINDOW):
            trending[completion.pack_id] += 1
    top_popularity = math.log1p(max(max(c.popularity, 0) for c in eligible))
    top_trending = math.log1p(max(trending.values()))
    prior = {}
    for c in eligible:
        popular = math.log1p(max(c.popularity, 0)) / top_popularity if top_popularity else 0.0
        recent = math.log1p(trending[c.pack_id]) / top_trending if top_trending else 0.0
        prior[c.pack_id] = 0.7 * popular + 0.3 * recent
    return prior, trending


def _people(profile: _Profile, eligible: list[Candidate], others: list[Completion],
            pack_titles: dict[uuid.UUID, str]) -> dict[uuid.UUID, tuple[float, str]]:
    """Item-item co-occurrence: for each eligible pack, the recency-weighted
    mean of its shrunk cosine with the packs the person practised from."""
    if not profile.packs:
        return {}
    finished: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for completion in others:
        if completion.pack_id is not None:
            finished[completion.user_id].add(completion.pack_id)
    wanted = {c.pack_id for c in eligible}
    completers: dict[uuid.UUID, int] = defaultdict(int)
    together: dict[tuple[uuid.UUID, uuid.UUID], int] = defaultdict(int)
    for packs in finished.values():
        for pack in packs:
            completers[pack] += 1
        for mine in packs & profile.packs.keys():
            for pack in packs & wanted:
                together[(mine, pack)] += 1
    total_weight = sum(profile.packs.values())
    out = {}
    for candidate in eligible:
        best: tuple[float, uuid.UUID] | None = None
        score = 0.0
        for mine, weight in sorted(profile.packs.items()):
            count = together.get((mine, candidate.pack_id), 0)
            if not count:
                continue
            cosine = count / (math.sqrt(completers[mine] * completers[candidate.pack_id])
                              + COOCCURRENCE_SHRINK)
            score += weight * cosine
            if best is None or weight * cosine > best[0]:
                best = (weight * cosine, mine)
        if best is not None:
            title = pack_titles.get(best[1]) or profile.pack_item_titles[best[1]]
            out[candidate.pack_id] = (score / total_weight,
                                      f"people who finished {_quote(title)} also finished this")
    return out


async def _similar(profile: _Profile, eligible: list[Candidate],
                   embed: Embed) -> dict[uuid.UUID, tuple[float, str]]:
    """Each pack's best cosine with a recently completed item (negative as 0)."""
    if not profile.recent_items:
        return {}
    texts = [". ".join(filter(None, [c.title.strip(), c.description.strip(), ", ".join(c.tags)]))
             for c in eligible]
    texts += [text for text, _ in profile.recent_items]
    vectors = await embed(texts)
    if len(vectors) != len(texts):
        raise ValueError(f"the embedder returned {len(vectors)} vectors for {len(texts)} texts")
    units = [_unit(v) for v in vectors]
    items = units[len(eligible):]
    out = {}
    for candidate, vector in zip(eligible, units[:len(eligible)], strict=True):
        cosines = [sum(map(operator.mul, vector, item)) for item in items]
        best = max(range(len(items)), key=lambda i: cosines[i])
        title = profile.recent_items[best][1]
        out[candidate.pack_id] = (min(max(cosines[best], 0.0), 1.0),
                                  f"like {_quote(title)} you completed")
    return out


def _unit(vector: Iterable[float]) -> list[float]:
    values = list(vector)
    norm = math.sqrt(sum(x * x for x in values))
    return [x / norm for x in values] if norm else values


def _tags(profile: _Profile, candidate: Candidate) -> tuple[float, str]:
    tags = frozenset(candidate.tags)
    if not tags:
        return 0.0, ""
    score = sum(share * len(tags & mine) / min(len(tags), len(mine))
                for share, mine in profile.tagged if tags & mine)
    if score <= 0.0:
        return 0.0, ""
    # Among equals, the pack's first tag (its creator's main topic) is named.
    topic = max(candidate.tags, key=lambda tag: profile.tag_affinity.get(tag, 0.0))
    return min(score, 1.0), f"because you return to {topic} practices"


def _time(profile: _Profile, candidate: Candidate) -> tuple[float, str]:
    words = set(candidate.tags) | set(_WORD.findall(candidate.title.lower()))
    matched = [p for p in DayPart if words & DAY_PART_WORDS[p] and profile.part_share.get(p)]
    if not matched:
        return 0.0, ""
    part = max(matched, key=lambda p: profile.part_share[p])  # DayPart order breaks ties
    kind = _favourite_type(profile, candidate)
    reason = (f"because you practise {_DAY_PART_ADJECTIVE[part]} {_plural(kind)}" if kind
              else f"because you practise {_DAY_PART_ADVERB[part]}")
    return profile.part_share[part], reason


def _mood(profile: _Profile, candidate: Candidate) -> tuple[float, str]:
    keys = [("type", t) for t in candidate.content_types] + [("tag", t) for t in candidate.tags]
    keys = [k for k in keys if profile.mood.get(k, 0.0) > 0.0]
    if not keys:
        return 0.0, ""
    key = max(keys, key=lambda k: profile.mood[k])
    what = _plural(key[1]) if key[0] == "type" else f"{key[1]} practices"
    most = " most" if key == profile.best_mood else ""
    return profile.mood[key], f"your mood lifts{most} after {what}"


def _type(profile: _Profile, candidate: Candidate) -> tuple[float, str]:
    kind = _favourite_type(profile, candidate)
    if kind is None:
        return 0.0, ""
    return profile.type_share[kind], f"because you often practise {_plural(kind)}"


def _favourite_type(profile: _Profile, candidate: Candidate) -> str | None:
    """The candidate's content type the person practises most, if any."""
    kinds = [t for t in candidate.content_types if profile.type_share.get(t)]
    return max(kinds, key=lambda t: (profile.type_share[t], t)) if kinds else None


def _plural(content_type: str) -> str:
    return _TYPE_PLURAL.get(content_type, content_type.replace("_", " ") + "s")


def _quote(title: str) -> str:
    """A title as a reason quotes it: one line, no asterisks, at most
    MAX_QUOTED_TITLE characters."""
    text = " ".join(title.replace("*", "").split()) or "a practice"
    if len(text) > MAX_QUOTED_TITLE:
        cut = text[:MAX_QUOTED_TITLE - 1]
        text = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,.;:-") + "…"
    return f"*{text}*"


def _diverse(scored: list[tuple[Candidate, float, str]], limit: int) -> list[Recommendation]:
    """The best `limit`, at most MAX_PER_CREATOR per creator ahead of the rest."""
    # Ranked by the score as shown (6 decimals): packs showing equal scores tie.
    ranked = sorted(scored, key=lambda s: (-round(s[1], 6), -s[0].popularity, s[0].pack_id))
    kept: list[tuple[Candidate, float, str]] = []
    held_back: list[tuple[Candidate, float, str]] = []
    per_creator: dict[uuid.UUID, int] = defaultdict(int)
    for entry in ranked:
        if per_creator[entry[0].creator_id] < MAX_PER_CREATOR:
            per_creator[entry[0].creator_id] += 1
            kept.append(entry)
        else:
            held_back.append(entry)
    return [Recommendation(pack_id=c.pack_id, score=round(score, 6), reason=reason)
            for c, score, reason in (kept + held_back)[:limit]]
