"""The offline composer: waQup's embedded writer, no network and no model.

It writes the same JSON a language model would (per the prompt's schema), from
phrase banks (`phrases.py`) chosen and ordered by a random generator seeded with
the request's seed, so one request always reads the same and two requests
almost never do. What it writes follows the brief:

- theme: what the person wants (intent, focus, situation) picks one of a dozen
  themes (sleep, calm, confidence, focus, letting go...), which picks the
  statements, breath practice, scene, ritual action and title words;
- the person's own words come back to them, quoted ("You said: ...") or in
  safe frames ("My intention is clear: ..."), only when they are short and
  free of medical or crisis language;
- time of day (greeting, light of the scene, lying down at night, the return
  into the day or into sleep), tone (energetic greetings and breath, warm
  words), name (a greeting and a farewell), depth (deeper = more inward
  passages, fuller phases, more silence);
- timing: passages are dropped, lowest priority first, until the speech fits
  the piece's share of speaking; then the pauses are computed (weighted by
  what each passage asks the listener to do, at most 180 s each) so the
  script's estimated length at the person's pace is the target.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from adapters.offline_llm import phrases as P
from core.content.model import Completion, GenerationRequest, Prompt
from core.content.prompts import estimate_tokens
from core.content.structures import (
    SEGMENT_PAUSE_MAX,
    SEGMENTS_PER_PART_MAX,
    STATEMENT_PAUSE_MAX,
    STATEMENT_PAUSE_MIN,
    STATEMENT_TEXT_MAX,
    STATEMENTS_MAX,
    STATEMENTS_MIN,
    TITLE_MAX,
    is_affirmation,
    validate,
)
from core.shared.creation import WORDS_PER_SECOND, ContentType, Depth, Pace, Tone
from core.shared.safety import detect_crisis, medical_claims, normalise
from core.shared.text import first_forbidden

MODEL = "offline-composer"
#: Variants tried (each from its own sub-seed) before giving up on a brief.
VARIANTS = 5
#: Longest stretch of the person's words echoed back.
MAX_ECHO = 150
REQUIRED = 100.0

_SPEECH_SHARE = {Depth.SHALLOW: 0.6, Depth.MEDIUM: 0.5, Depth.DEEP: 0.42}
#: Longest comfortable average silence per passage before more passages are added.
_COMFORT_PAUSE = {Depth.SHALLOW: 20.0, Depth.MEDIUM: 30.0, Depth.DEEP: 45.0}
_INTENT_PREFIX = re.compile(
    r"^(?:i (?:really )?(?:want|wanna|need|would like|'d like|d like|wish|hope|am trying|"
    r"'m trying|m trying) to |help me (?:to )?|i want |to )", re.IGNORECASE)
_SECOND_PERSON = (
    (re.compile(r"\bi am\b", re.I), "you are"), (re.compile(r"\bi'm\b", re.I), "you're"),
    (re.compile(r"\bi've\b", re.I), "you've"), (re.compile(r"\bi'd\b", re.I), "you'd"),
    (re.compile(r"\bi was\b", re.I), "you were"), (re.compile(r"\bmyself\b", re.I), "yourself"),
    (re.compile(r"\bmine\b", re.I), "yours"), (re.compile(r"\bmy\b", re.I), "your"),
    (re.compile(r"\bme\b", re.I), "you"), (re.compile(r"\bi\b"), "you"),
)


class OfflineComposer:
    """ports.content.TextGenerator without a model: see the module docstring."""

    models: tuple[str, ...] = (MODEL,)

    async def generate(self, prompt: Prompt, model: str) -> Completion:
        structure = compose(prompt.request)
        text = json.dumps(structure, ensure_ascii=False)
        return Completion(
            text=text, model=MODEL,
            input_tokens=sum(estimate_tokens(m.content) for m in prompt.messages),
            output_tokens=estimate_tokens(text))

    async def close(self) -> None:
        return None


def compose(request: GenerationRequest) -> dict[str, object]:
    """The piece for `request` (deterministic in request.seed)."""
    content_type = request.brief.content_type
    pace = request.brief.pace or Pace.MEDIUM
    structure: dict[str, object] = {}
    for variant in range(VARIANTS):
        rng = random.Random(_seed(request, variant))
        person = Person.of(request, rng)
        if content_type is ContentType.AFFIRMATION:
            structure = _affirmations(person, rng, request)
        elif content_type is ContentType.GUIDED_MEDITATION:
            structure = _meditation(person, rng, request)
        else:
            structure = _ritual(person, rng, request)
        if not validate(content_type, structure, target_seconds=request.target_seconds,
                        pace=pace):
            break
    return structure


def _seed(request: GenerationRequest, variant: int) -> int:
    b = request.brief
    basis = request.seed or "|".join(
        (b.content_type.value, b.intent, b.situation, b.focus, b.name))
    digest = hashlib.sha256(f"{basis}\x00{variant}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


# --- who the piece is for ----------------------------------------------------------------

def echo(text: str) -> str | None:
    """The person's words, fit to be quoted back, or None."""
    said = " ".join(text.replace("“", "").replace("”", "").replace('"', "").split())
    said = said.strip(" .,;:!?-'")
    if not said or len(said) > MAX_ECHO or first_forbidden(said) >= 0:
        return None
    if medical_claims(said) or detect_crisis(said) or "{" in said or "}" in said:
        return None
    if "<" in said or ">" in said:
        return None
    return said


def second_person(phrase: str) -> str:
    """'sleep better before my exam' -> 'sleep better before your exam'."""
    for pattern, replacement in _SECOND_PERSON:
        phrase = pattern.sub(replacement, phrase)
    return phrase


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > 40 or medical_claims(name) or detect_crisis(name):
        return ""
    if not all(c.isalpha() or c in " -'." for c in name):
        return ""
    return name


def _themes(*weighted: tuple[str, int]) -> list[P.Theme]:
    """Themes that the words mention, best first (the default theme when none)."""
    scores: dict[str, int] = {}
    for n, (text, weight) in enumerate(weighted):
        said = " " + normalise(text) + " "
        first: tuple[int, str] | None = None
        for theme in P.THEMES:
            for word in theme.keywords:
                found = re.search(rf"\b{re.escape(word)}\b", said)
                if found:
                    scores[theme.key] = scores.get(theme.key, 0) + weight
                    if first is None or found.start() < first[0]:
                        first = (found.start(), theme.key)
        if n == 0 and first is not None:
            # What the person names first is usually what they want most.
            scores[first[1]] += 1
    ranked = sorted(scores, key=lambda k: (-scores[k],
                                           [t.key for t in P.THEMES].index(k)))
    return [P.THEMES_BY_KEY[k] for k in ranked] or [P.THEMES_BY_KEY[P.DEFAULT_THEME]]


@dataclass
class Person:
    theme: P.Theme
    second: P.Theme | None
    time: str
    tone: Tone
    pace: Pace
    depth: Depth
    name: str
    intent: str | None
    #: The intent as a verb phrase in the second person ("sleep better"), if it was one.
    intent_verb: str | None
    #: The intent as a short first-person phrase, for affirmations.
    intent_core: str | None
    situation: str | None
    focus: str | None
    slots: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, request: GenerationRequest, rng: random.Random) -> Person:
        brief = request.brief
        themes = _themes((brief.intent, 3), (brief.focus, 2), (brief.situation, 1))
        theme = themes[0]
        time = brief.time_of_day.value if brief.time_of_day else "any"
        if time == "any" and theme.key == "sleep":
            time = "night"
        intent = echo(brief.intent)
        core = verb = None
        if intent:
            stripped = _INTENT_PREFIX.sub("", intent, count=1)
            core = stripped if stripped and stripped != intent else intent
            if stripped != intent and stripped:
                verb = second_person(stripped)
        name = _clean_name(brief.name)
        person = cls(
            theme=theme, second=themes[1] if len(themes) > 1 else None, time=time,
            tone=brief.tone or Tone.CALM, pace=brief.pace or Pace.MEDIUM, depth=request.depth,
            name=name, intent=intent, intent_verb=verb, intent_core=core,
            situation=echo(brief.situation), focus=echo(brief.focus))
        time_word = {"morning": "morning ", "midday": "midday ", "evening": "evening ",
                     "night": "bedtime "}.get(time, "")
        person.slots = {
            "name_": f", {name}" if name else "", "name": name,
            "light": P.LIGHTS[time], "part_of_day": P.PARTS_OF_DAY[time],
            "noun": theme.noun, "time_word": time_word,
            "intent": intent or "", "situation": person.situation or "",
            "focus": person.focus or "",
        }
        return person

    def fill(self, text: str, **extra: str) -> str:
        return text.format_map({**self.slots, **extra})


# --- planning: passages, priorities, pauses ----------------------------------------------

@dataclass
class Passage:
    part: str
    sentences: list[str]
    priority: float
    weight: float
    min_pause: float = 1.0
    #: Extensions (sentences after the first) still in.
    extras: int = 0

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    @property
    def words(self) -> int:
        return len(self.text.split())


def passage(person: Person, part: str, source: str, priority: float, weight: float,
            min_pause: float = 1.0, **extra: str) -> Passage:
    sentences = [s.strip() for s in person.fill(source, **extra).split(" | ") if s.strip()]
    return Passage(part, sentences, priority, weight, min_pause, extras=len(sentences) - 1)


def _speech_seconds(passages: Sequence[Passage], pace: Pace) -> float:
    return sum(p.words for p in passages) / (WORDS_PER_SECOND * pace.speech_rate)


def _trim(passages: list[Passage], budget: float, pace: Pace, keep_parts: set[str]) -> None:
    """Drop the lowest-priority sentences until speech fits `budget` seconds: an
    extension goes before the passage it belongs to; a required passage
    (priority 100) and the last passage of a part in `keep_parts` stay."""
    while _speech_seconds(passages, pace) > budget:
        candidates: list[tuple[float, int, int]] = []  # (priority, -position, kind)
        counts: dict[str, int] = {}
        for p in passages:
            counts[p.part] = counts.get(p.part, 0) + 1
        for i, p in enumerate(passages):
            if p.extras > 0:
                candidates.append((p.priority - 0.5, -i, 1))
            elif p.priority < REQUIRED and (counts[p.part] > 1 or p.part not in keep_parts):
                candidates.append((p.priority, -i, 0))
        if not candidates:
            return
        _, neg_i, kind = min(candidates)
        chosen = passages[-neg_i]
        if kind == 1:
            chosen.sentences.pop()
            chosen.extras -= 1
        else:
            passages.pop(-neg_i)


def _fill_pauses(passages: Sequence[Passage], total: float) -> list[float]:
    """Pauses (one per passage, in 0.5 s steps, each between its minimum and
    SEGMENT_PAUSE_MAX) adding up to `total` as closely as they can, shared in
    proportion to the passages' weights."""
    mins = [p.min_pause for p in passages]
    weights = [max(p.weight, 0.01) for p in passages]
    if total <= sum(mins):
        return mins

    def spread(scale: float) -> list[float]:
        return [min(SEGMENT_PAUSE_MAX, max(m, scale * w)) for m, w in zip(mins, weights,
                                                                         strict=True)]

    low, high = 0.0, SEGMENT_PAUSE_MAX / min(weights) + 1
    for _ in range(60):
        mid = (low + high) / 2
        if sum(spread(mid)) < total:
            low = mid
        else:
            high = mid
    pauses = [round(x * 2) / 2 for x in spread(high)]
    # Put the rounding error where there is room for it.
    error = total - sum(pauses)
    order = sorted(range(len(pauses)), key=lambda i: -weights[i])
    for i in order:
        if abs(error) < 0.25:
            break
        adjusted = min(SEGMENT_PAUSE_MAX, max(mins[i], pauses[i] + round(error * 2) / 2))
        error -= adjusted - pauses[i]
        pauses[i] = adjusted
    return pauses


def _plan(person: Person, passages: list[Passage], target: float, keep_parts: set[str],
          fillers: dict[str, list[Passage]], share: float) -> list[tuple[Passage, float]]:
    """Trim to the speech budget, add fillers while silences would be too long,
    then compute the pauses."""
    pace = person.pace
    budget = min(target * share, target - sum(p.min_pause for p in passages) - 1)
    _trim(passages, budget, pace, keep_parts)
    comfort = _COMFORT_PAUSE[person.depth]
    while True:
        silence = target - _speech_seconds(passages, pace)
        if silence / max(1, len(passages)) <= comfort and silence <= 0.9 * SEGMENT_PAUSE_MAX \
                * len(passages):
            break
        eligible = []
        for part, queue in fillers.items():
            at = [i for i, p in enumerate(passages) if p.part == part]
            if queue and at and len(at) < SEGMENTS_PER_PART_MAX:
                eligible.append((-len(queue), part, at))
        if not eligible:
            break
        _, part, at = min(eligible)
        # Before the part's last passage: a part ends the way it was written to end.
        passages.insert(at[-1] if len(at) > 1 else at[-1] + 1, fillers[part].pop(0))
    pauses = _fill_pauses(passages, target - _speech_seconds(passages, pace))
    return list(zip(passages, pauses, strict=True))


def _parts(planned: list[tuple[Passage, float]], order: Sequence[str]) -> list[dict[str, object]]:
    parts: list[dict[str, object]] = []
    for name in order:
        segments = [{"text": p.text, "pause_seconds": pause}
                    for p, pause in planned if p.part == name]
        if segments:
            parts.append({"name": name, "segments": segments})
    return parts


# --- titles ------------------------------------------------------------------------

def _title(person: Person, rng: random.Random, patterns: Sequence[str],
           history: Sequence[str], scene: str = "") -> str:
    taken = {normalise(t) for t in history}
    noun_t = "-".join(w.capitalize() for w in person.theme.noun.split("-"))
    time_t = {"morning": "Morning ", "midday": "Midday ", "evening": "Evening ",
              "night": "Bedtime "}.get(person.time, "")
    qualities = list(person.theme.qualities)
    rng.shuffle(qualities)
    options = list(patterns)
    rng.shuffle(options)
    scene_bare = scene[4:] if scene.startswith("The ") else scene
    candidates = []
    for pattern in options:
        if "{scene" in pattern and not scene:
            continue
        for quality in qualities:
            candidates.append(pattern.format(
                quality=quality, noun_t=noun_t, time_t=time_t, scene=scene,
                scene_bare=f"the {scene_bare}" if scene_bare else "").strip())
    if person.name and rng.random() < 0.35:
        named = [f"{c} for {person.name}" for c in candidates[:3]]
        candidates = named + candidates
    for title in candidates:
        if len(title) <= TITLE_MAX and normalise(title) not in taken:
            return title
    base = candidates[0][: TITLE_MAX - 4] if candidates else "A Moment for You"
    for n in ("II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X"):
        if normalise(f"{base} {n}") not in taken:
            return f"{base} {n}"
    return base


# --- affirmation sets ------------------------------------------------------------------------

def _personal_statements(person: Person) -> list[str]:
    found = []
    if person.intent_core:
        found.append(f"My intention is clear: {person.intent_core}.")
    if person.focus:
        found.append(f"I give my attention to what matters to me: {person.focus}.")
    return [s for s in found if len(s) <= STATEMENT_TEXT_MAX and is_affirmation(s)
            and not medical_claims(s)]


def _affirmations(person: Person, rng: random.Random,
                  request: GenerationRequest) -> dict[str, object]:
    theme = person.theme
    simple = list(theme.statements)
    deep = list(theme.deep_statements)
    rng.shuffle(simple)
    rng.shuffle(deep)
    extra: list[str] = []
    if person.second:
        extra += rng.sample(person.second.statements, 2)
    if person.time != "any":
        extra += rng.sample(P.TIME_STATEMENTS[person.time], 2)
    if person.tone is Tone.ENERGETIC:
        extra += rng.sample(P.ENERGETIC_STATEMENTS, 2)
    extra += rng.sample(P.UNIVERSAL_STATEMENTS, 4)
    deep_count = {Depth.SHALLOW: 0, Depth.MEDIUM: 2, Depth.DEEP: 5}[person.depth]
    personal = _personal_statements(person)

    reps = {Depth.SHALLOW: 2, Depth.MEDIUM: 2, Depth.DEEP: 3}[person.depth]
    rate = WORDS_PER_SECOND * person.pace.speech_rate
    natural_pause = {Tone.CALM: 5.0, Tone.WARM: 4.5, Tone.ENERGETIC: 3.0}[person.tone]
    if person.depth is Depth.DEEP:
        natural_pause += 2.0
    target = request.target_seconds
    per_statement = 7.5 / rate + natural_pause  # about 7.5 words a statement
    count = round(target / (reps * per_statement))
    if count > STATEMENTS_MAX:
        reps = 3
        count = round(target / (reps * per_statement))
    if count < STATEMENTS_MIN and reps > 1:
        reps = max(1, round(target / (STATEMENTS_MIN * per_statement)))
        count = round(target / (reps * per_statement))
    count = min(STATEMENTS_MAX, max(STATEMENTS_MIN, count))

    opening = rng.choice(P.TIME_STATEMENTS[person.time]) if person.time != "any" \
        else rng.choice(("I am here, now.", "I breathe in and I feel at home in myself.",
                         "My breath is always with me."))
    first = [opening, *personal]
    closing = deep[: min(deep_count, max(0, count - len(first) - 3))]
    middle_count = count - len(first) - len(closing)
    theme_count = -(-middle_count * 7 // 10)
    middle = simple[:theme_count] + extra[: middle_count - theme_count]
    rng.shuffle(middle)
    chosen: list[str] = []
    for statement in (*first, *middle, *closing, *simple, *extra, *P.UNIVERSAL_STATEMENTS):
        if len(chosen) == count:
            break
        if normalise(statement) not in {normalise(c) for c in chosen}:
            chosen.append(statement)
    if closing:  # the deepest words come last, whatever the top-up added
        chosen = [c for c in chosen if c not in closing] + [c for c in closing if c in chosen]

    words = sum(len(s.split()) for s in chosen)
    pause = (target / reps - words / rate) / len(chosen)
    pause = round(min(STATEMENT_PAUSE_MAX, max(STATEMENT_PAUSE_MIN, pause)) * 2) / 2
    return {
        "title": _title(person, rng, P.AFFIRMATION_TITLES, request.history),
        "statements": chosen,
        "repetitions": reps,
        "pause_seconds": pause,
    }


# --- guided meditations ----------------------------------------------------------------------

def _pick(rng: random.Random, options: Sequence[str], k: int) -> list[str]:
    return rng.sample(list(options), min(k, len(options)))


def _scene(person: Person, rng: random.Random, history: Sequence[str]) -> str:
    suitable = [k for k, (_, times, _) in P.SCENES.items() if person.time in times]
    wanted = normalise(" ".join(filter(None, (person.focus, person.intent, person.situation))))
    for key, words in P.SCENE_KEYWORDS.items():
        if key in suitable and any(re.search(rf"\b{re.escape(w)}\b", wanted) for w in words):
            return key
    used = normalise(" ".join(history))
    fresh = [k for k in person.theme.scenes if k in suitable
             and normalise(P.SCENES[k][0]).removeprefix("the ") not in used]
    pool = fresh or [k for k in suitable if normalise(P.SCENES[k][0]) not in used] or suitable
    return rng.choice(pool)


def _body_practice(person: Person, rng: random.Random) -> str:
    focus = normalise(person.focus or "")
    if re.search(r"\b(?:tension|tense|shoulders?|jaw|neck|tight)\b", focus):
        return "release"
    if person.time == "night" or person.theme.key == "sleep":
        return rng.choice(("heaviness", "heaviness", "top_down"))
    if person.tone is Tone.WARM or person.theme.key in ("self_worth", "connection"):
        return rng.choice(("warmth", "warmth", "top_down"))
    return rng.choice(("top_down", "feet_up", "release"))


def _breath_practice(person: Person, rng: random.Random) -> str:
    if person.tone is Tone.ENERGETIC and person.time in ("morning", "midday", "any"):
        return rng.choice(("energising", *person.theme.breaths))
    options = [b for b in person.theme.breaths
               if not (b == "energising" and person.time in ("evening", "night"))]
    return rng.choice(options or ["natural"])


def _meditation(person: Person, rng: random.Random,
                request: GenerationRequest) -> dict[str, object]:
    target = request.target_seconds
    depth = person.depth
    deep = depth is Depth.DEEP
    out: list[Passage] = []

    # arrival
    greetings = list(P.GREETINGS[person.time])
    if person.tone is Tone.ENERGETIC:
        greetings += P.ENERGETIC_GREETINGS
    elif person.tone is Tone.WARM:
        greetings += P.WARM_GREETINGS
    out.append(passage(person, "arrival", rng.choice(greetings), REQUIRED, 0.6))
    lying = person.time == "night" or person.theme.key == "sleep"
    out.append(passage(person, "arrival", rng.choice(
        P.POSTURES_LYING if lying else P.POSTURES_SITTING), 60, 0.8))
    out.append(passage(person, "arrival", rng.choice(P.EYES), 30, 0.6))
    for i, line in enumerate(_pick(rng, P.SETTLING, 2 if depth is Depth.SHALLOW else 3)):
        out.append(passage(person, "arrival", line, 40 - 5 * i, 1.0))
    if person.situation:
        out.append(passage(person, "arrival", rng.choice(P.SITUATION_FRAMES), 70, 1.0))
    if person.focus:
        out.append(passage(person, "arrival", rng.choice(P.FOCUS_FRAMES), 50, 0.8))
    elif person.intent:
        out.append(passage(person, "arrival", rng.choice(P.INTENT_FRAMES), 55, 0.8))

    # breath
    practice = _breath_practice(person, rng)
    breath = P.BREATHS[practice]
    count = {Depth.SHALLOW: 3, Depth.MEDIUM: 4, Depth.DEEP: 5}[depth]
    for i, line in enumerate(breath[:count]):
        out.append(passage(person, "breath", line, REQUIRED if i == 0 else 58 - 4 * i, 1.6,
                           min_pause=2.0))

    # body (may be left out of short pieces)
    body_required = target > 300
    spare_scan: list[str] = []
    if target > 150 or depth is not Depth.SHALLOW:
        scan = P.BODIES[_body_practice(person, rng)]
        if depth is Depth.SHALLOW:
            lines = [scan[0], *scan[1:-1][:2], scan[-1]]
        elif depth is Depth.MEDIUM:
            lines = [scan[0], *scan[1:-1][: max(3, len(scan) - 4)], scan[-1]]
        else:
            lines = list(scan)
        spare_scan = [line for line in scan[1:-1] if line not in lines]
        for i, line in enumerate(lines):
            first_or_last = i in (0, len(lines) - 1)
            priority = (REQUIRED if body_required and i == 0
                        else 36 if first_or_last else 26 - i)
            out.append(passage(person, "body", line, priority, 1.4, min_pause=1.5))

    # visualisation
    scene_key = _scene(person, rng, request.history)
    scene_title, _, scene = P.SCENES[scene_key]
    insights = list(person.theme.insights)
    rng.shuffle(insights)
    lines = list(scene)
    for i, line in enumerate(lines):
        out.append(passage(person, "visualisation", line,
                           REQUIRED if i == 0 else 62 - 3 * i, 1.3, min_pause=1.5))
    out.insert(len(out) - 1 if len(lines) > 2 else len(out),
               passage(person, "visualisation", insights[0], 80, 1.5, min_pause=2.0))
    out.append(passage(person, "visualisation", rng.choice(P.SCENE_CLOSINGS), 35, 0.8))

    # integration
    if depth is not Depth.SHALLOW:
        out.append(passage(person, "integration", insights[1], 68, 1.5))
    if person.intent:
        if person.intent_verb and rng.random() < 0.6:
            line = (f"You came here to {person.intent_verb}. | Notice that some part of it is "
                    "already present, right here, in this breath.")
            out.append(passage(person, "integration", line.replace("{", "(").replace(
                "}", ")"), 75, 1.5))
        else:
            out.append(passage(person, "integration", rng.choice(P.INTENT_RETURNS), 75, 1.5))
    inward = _pick(rng, P.INWARD, {Depth.SHALLOW: 0, Depth.MEDIUM: 1, Depth.DEEP: 2}[depth])
    for i, line in enumerate(inward):
        out.append(passage(person, "integration", line, 44 - 3 * i, 2.2 if deep else 1.6,
                           min_pause=2.0))
    carry = rng.choice(person.theme.statements)
    out.append(passage(person, "integration", rng.choice(P.CARRY_FRAMES), REQUIRED, 2.0,
                       min_pause=2.0, carry=carry))
    if depth is not Depth.SHALLOW:
        out.append(passage(person, "integration", rng.choice(P.NOTICE_CHANGE), 30, 1.0))

    # return
    returns = P.RETURNS[person.time]
    for i, line in enumerate(returns):
        last = i == len(returns) - 1
        out.append(passage(person, "return", line, REQUIRED if last else 48 - 3 * i,
                           (2.5 if person.time == "night" else 0.15) if last else 0.7,
                           min_pause=0.5 if last else 1.0))
    if person.tone is Tone.ENERGETIC and person.time != "night":
        out.insert(len(out) - 1, passage(person, "return", P.ENERGETIC_RETURN, 25, 0.6))
    if person.tone is Tone.WARM and person.time != "night":
        out.insert(len(out) - 1, passage(person, "return", P.WARM_FAREWELL, 45, 0.6))

    # fillers for long pieces: the unused reflections first, then quiet dwellings
    dwellings = list(P.DWELLINGS)
    rng.shuffle(dwellings)
    spare_insights = insights[2:]
    spare_inward = [x for x in P.INWARD if x not in inward]
    other = rng.choice([k for k in P.BREATHS if k != practice and k != "energising"])
    more_breath = [*breath[count:], *P.BREATHS[other][1:-1]]
    fillers = {
        "breath": [passage(person, "breath", x, 12, 1.8, 2.0) for x in more_breath] + [
            passage(person, "breath", d, 10, 2.5, 2.0) for d in dwellings[:4]],
        "visualisation": [passage(person, "visualisation", x, 12, 2.0, 2.0)
                          for x in spare_insights] + [
            passage(person, "visualisation", d, 10, 2.5, 2.0) for d in dwellings[4:]],
        "integration": [passage(person, "integration", x, 12, 2.2, 2.0)
                        for x in spare_inward] if depth is not Depth.SHALLOW else [
            passage(person, "integration", x, 12, 1.8, 2.0)
            for x in (*P.NOTICE_CHANGE, *dwellings[6:])],
        "body": [passage(person, "body", x, 12, 1.6, 1.5) for x in spare_scan] + [
            passage(person, "body", d, 10, 2.5, 2.0) for d in dwellings[2:6]]
        if any(p.part == "body" for p in out) else [],
    }
    share = _SPEECH_SHARE[depth] + (0.08 if person.tone is Tone.ENERGETIC else 0.0) - (
        0.05 if person.time == "night" else 0.0)
    if target > 900:
        share *= max(0.55, 1 - (target - 900) / 5400)
    keep = {"arrival", "breath", "visualisation", "integration", "return"}
    if body_required:
        keep.add("body")
    planned = _plan(person, out, target, keep, fillers, share)
    return {
        "title": _title(person, rng, P.MEDITATION_TITLES, request.history, scene_title),
        "phases": _parts(planned, ("arrival", "breath", "body", "visualisation", "integration",
                                   "return")),
    }


# --- rituals --------------------------------------------------------------------------------

def _action(person: Person, rng: random.Random) -> str:
    options = list(person.theme.actions)
    if person.time in ("evening", "night"):
        options = [a for a in options if a not in ("stretch_rise", "power_stance",
                                                   "release_shake")] or ["candle_breath"]
    elif person.tone is Tone.ENERGETIC:
        options += ["stretch_rise", "power_stance"]
    if person.time == "morning" and rng.random() < 0.25:
        options.append("water")
    return rng.choice(options)


def _ritual(person: Person, rng: random.Random,
            request: GenerationRequest) -> dict[str, object]:
    target = request.target_seconds
    depth = person.depth
    out: list[Passage] = []

    # opening
    out.append(passage(person, "opening", rng.choice(P.RITUAL_GREETINGS), REQUIRED, 0.8))
    for i, line in enumerate(_pick(rng, P.RITUAL_OPENINGS, 2)):
        out.append(passage(person, "opening", line, 60 - 10 * i, 1.4, min_pause=2.0))
    if depth is Depth.DEEP:
        out.append(passage(person, "opening", rng.choice(P.RITUAL_DEEP_OPENINGS), 40, 1.6))

    # intention
    if person.intent:
        out.append(passage(person, "intention", rng.choice(P.RITUAL_INTENT_FRAMES), 85, 1.0))
    intention = rng.choice(person.theme.intentions)
    intention = second_person(intention)
    out.append(passage(person, "intention", rng.choice(P.RITUAL_CHOICES),
                       REQUIRED if not person.intent else 70, 1.0, intention=intention))
    out.append(passage(person, "intention", rng.choice(P.RITUAL_SAY_IT), 65, 2.0,
                       min_pause=2.0))
    out.append(passage(person, "intention", rng.choice(P.RITUAL_LEADINS), 55, 1.0))

    # identity: statements only
    identity = list(person.theme.identity)
    rng.shuffle(identity)
    count = {Depth.SHALLOW: 3, Depth.MEDIUM: 4, Depth.DEEP: 6}[depth]
    for i, line in enumerate(identity[:count]):
        out.append(passage(person, "identity", line, REQUIRED if i == 0 else 64 - 4 * i, 1.5,
                           min_pause=2.0))

    # action
    steps = P.ACTIONS[_action(person, rng)]
    for i, line in enumerate(steps):
        out.append(passage(person, "action", line, REQUIRED if i == 0 else 80 - 5 * i, 2.2,
                           min_pause=2.0))

    # closing
    closings = list(P.RITUAL_CLOSINGS)
    for i, line in enumerate(closings):
        out.append(passage(person, "closing", line, REQUIRED if i == 0 else 50 - 10 * i, 0.9))
    out.append(passage(person, "closing", P.RITUAL_CARRY[person.time], 58, 0.2,
                       min_pause=0.5))

    more_identity = [s for s in (*identity[count:], *person.theme.statements,
                                 *person.theme.deep_statements) if is_affirmation(s)]
    rng.shuffle(more_identity)
    dwellings = list(P.DWELLINGS)
    rng.shuffle(dwellings)
    fillers = {
        "identity": [passage(person, "identity", s, 10, 1.8, 2.0) for s in more_identity],
        "action": [passage(person, "action", d, 10, 2.5, 2.0) for d in dwellings[:5]],
        "opening": [passage(person, "opening", d, 10, 2.0, 2.0) for d in dwellings[5:]],
    }
    share = {Depth.SHALLOW: 0.58, Depth.MEDIUM: 0.5, Depth.DEEP: 0.44}[depth] + (
        0.06 if person.tone is Tone.ENERGETIC else 0.0)
    if target > 900:
        share *= max(0.55, 1 - (target - 900) / 5400)
    planned = _plan(person, out, target, {"opening", "intention", "identity", "action",
                                          "closing"}, fillers, share)
    return {
        "title": _title(person, rng, P.RITUAL_TITLES, request.history),
        "sections": _parts(planned, ("opening", "intention", "identity", "action", "closing")),
    }
