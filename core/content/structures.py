"""The structure of each content type, as data, its JSON Schema, the validator
and the script a voice reads.

A generated piece is plain JSON-ready data (dicts, lists, strings, numbers), the
same shape whether a language model or the offline composer wrote it:

- affirmation set: ``{"title", "statements": [...], "repetitions", "pause_seconds"}``
- guided meditation: ``{"title", "phases": [{"name", "segments": [{"text",
  "pause_seconds"}]}]}`` with the phases arrival, breath, body, visualisation,
  integration, return, in that order (body may be left out of short ones);
- ritual: ``{"title", "sections": [{"name", "segments": [...]}]}`` with all of
  opening, intention, identity, action, closing, in that order.

`SCHEMAS` holds the JSON Schema of each (sent to models for structured output);
`validate` checks a piece against its schema with a small standard-library
checker (the subset of JSON Schema used here), then what a schema cannot say:
ordering, first-person present-tense affirmations, embodied actions, no
medical claims or crisis language, and timing (the script's estimated length
at the person's pace within `TIMING_TOLERANCE` of the target).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from core.shared.creation import ContentType, Pace, Script, Segment
from core.shared.errors import InvalidArgument
from core.shared.safety import detect_crisis, medical_claims, normalise
from core.shared.text import first_forbidden

TITLE_MAX = 80
SEGMENT_TEXT_MAX = 600
STATEMENT_TEXT_MAX = 240
STATEMENTS_MIN, STATEMENTS_MAX = 6, 20
REPETITIONS_MIN, REPETITIONS_MAX = 1, 3
#: Silence after each affirmation, seconds.
STATEMENT_PAUSE_MIN, STATEMENT_PAUSE_MAX = 1.0, 60.0
#: Silence after a meditation or ritual segment, seconds.
SEGMENT_PAUSE_MIN, SEGMENT_PAUSE_MAX = 0.0, 180.0
SEGMENTS_PER_PART_MIN, SEGMENTS_PER_PART_MAX = 1, 20

MEDITATION_PHASES = ("arrival", "breath", "body", "visualisation", "integration", "return")
OPTIONAL_PHASES = frozenset({"body"})
#: A meditation whose target is at most this long may leave out the body phase.
SHORT_MEDITATION_SECONDS = 300.0
RITUAL_SECTIONS = ("opening", "intention", "identity", "action", "closing")

#: How far (as a fraction of the target) a meditation's or ritual's estimated
#: length may be from its target. Affirmation sets are not held to a length:
#: their rhythm (statements, repetitions, pause) is theirs to choose.
TIMING_TOLERANCE = 0.25
TIMED_TYPES = frozenset({ContentType.GUIDED_MEDITATION, ContentType.RITUAL})


# --- the structures as data ------------------------------------------------------

#: What each type is made of, JSON-ready: templates show it to models, so the
#: rules they read are the rules the validator applies.
STRUCTURES: dict[ContentType, dict[str, Any]] = {
    ContentType.AFFIRMATION: {
        "title": f"a short, warm title (at most {TITLE_MAX} characters)",
        "statements": {
            "count": [STATEMENTS_MIN, STATEMENTS_MAX],
            "each": ("one first-person, present-tense statement starting with 'I' or 'My' "
                     f"(at most {STATEMENT_TEXT_MAX} characters); never future tense "
                     "('will', 'going to'), all different"),
        },
        "repetitions": {"range": [REPETITIONS_MIN, REPETITIONS_MAX],
                        "meaning": "how many times the whole set is read"},
        "pause_seconds": {"range": [STATEMENT_PAUSE_MIN, STATEMENT_PAUSE_MAX],
                          "meaning": "silence after each statement"},
    },
    ContentType.GUIDED_MEDITATION: {
        "title": f"a short, evocative title (at most {TITLE_MAX} characters)",
        "phases": {
            "order": list(MEDITATION_PHASES),
            "optional": sorted(OPTIONAL_PHASES),
            "optional_when": f"the target length is {SHORT_MEDITATION_SECONDS:.0f} s or less",
            "segments_per_phase": [SEGMENTS_PER_PART_MIN, SEGMENTS_PER_PART_MAX],
        },
        "segment": {
            "text": f"spoken guidance, second person (at most {SEGMENT_TEXT_MAX} characters)",
            "pause_seconds": {"range": [SEGMENT_PAUSE_MIN, SEGMENT_PAUSE_MAX],
                              "meaning": "silence after the text"},
        },
        "timing": (f"spoken words (about 140 a minute at medium pace) plus pauses within "
                   f"{TIMING_TOLERANCE:.0%} of the target length"),
    },
    ContentType.RITUAL: {
        "title": f"a short title naming the ritual (at most {TITLE_MAX} characters)",
        "sections": {
            "order": list(RITUAL_SECTIONS),
            "all_required": True,
            "segments_per_section": [SEGMENTS_PER_PART_MIN, SEGMENTS_PER_PART_MAX],
            "identity": ("every segment is one identity statement, first person, present "
                         "tense, starting with 'I' or 'My'"),
            "action": ("one embodied action the person does with their body "
                       "(hands, breath, posture, a movement, a gesture)"),
        },
        "segment": {
            "text": f"spoken words (at most {SEGMENT_TEXT_MAX} characters)",
            "pause_seconds": {"range": [SEGMENT_PAUSE_MIN, SEGMENT_PAUSE_MAX],
                              "meaning": "silence after the text"},
        },
        "timing": (f"spoken words (about 140 a minute at medium pace) plus pauses within "
                   f"{TIMING_TOLERANCE:.0%} of the target length"),
    },
}


# --- JSON Schemas -----------------------------------------------------------------

def _text(max_length: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length}


def _segments() -> dict[str, Any]:
    return {
        "type": "array", "minItems": SEGMENTS_PER_PART_MIN, "maxItems": SEGMENTS_PER_PART_MAX,
        "items": {
            "type": "object",
            "properties": {
                "text": _text(SEGMENT_TEXT_MAX),
                "pause_seconds": {"type": "number", "minimum": SEGMENT_PAUSE_MIN,
                                  "maximum": SEGMENT_PAUSE_MAX},
            },
            "required": ["text", "pause_seconds"],
            "additionalProperties": False,
        },
    }


def _parts(key: str, names: Sequence[str], min_items: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "title": _text(TITLE_MAX),
            key: {
                "type": "array", "minItems": min_items, "maxItems": len(names),
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string", "enum": list(names)},
                                   "segments": _segments()},
                    "required": ["name", "segments"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["title", key],
        "additionalProperties": False,
    }


SCHEMAS: dict[ContentType, dict[str, Any]] = {
    ContentType.AFFIRMATION: {
        "type": "object",
        "properties": {
            "title": _text(TITLE_MAX),
            "statements": {"type": "array", "minItems": STATEMENTS_MIN,
                           "maxItems": STATEMENTS_MAX, "items": _text(STATEMENT_TEXT_MAX)},
            "repetitions": {"type": "integer", "minimum": REPETITIONS_MIN,
                            "maximum": REPETITIONS_MAX},
            "pause_seconds": {"type": "number", "minimum": STATEMENT_PAUSE_MIN,
                              "maximum": STATEMENT_PAUSE_MAX},
        },
        "required": ["title", "statements", "repetitions", "pause_seconds"],
        "additionalProperties": False,
    },
    ContentType.GUIDED_MEDITATION: _parts(
        "phases", MEDITATION_PHASES, len(MEDITATION_PHASES) - len(OPTIONAL_PHASES)),
    ContentType.RITUAL: _parts("sections", RITUAL_SECTIONS, len(RITUAL_SECTIONS)),
}


def schema_for(content_type: ContentType) -> dict[str, Any]:
    """The JSON Schema of `content_type` (the shared dict: do not change it)."""
    return SCHEMAS[content_type]


# --- a small JSON Schema checker (the subset used above) ---------------------------

def _is_type(value: object, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not math.isfinite(value):
        return False
    return kind == "number" or float(value).is_integer()


def schema_errors(instance: object, schema: Mapping[str, Any], path: str = "$") -> list[str]:
    """Where `instance` breaks `schema`: type, properties, required,
    additionalProperties (false), items, enum, min/maxLength, min/maxItems,
    minimum/maximum. Other keywords are ignored. Empty when it conforms."""
    kind = schema.get("type")
    if kind is not None and not _is_type(instance, kind):
        return [f"{path}: expected {kind}"]
    errors: list[str] = []
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: {repr(instance)[:40]} is not one of {schema['enum']}")
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
    elif isinstance(instance, int | float) and not isinstance(instance, bool):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{path}: less than {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append(f"{path}: more than {schema['maximum']}")
    elif isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(instance):
                errors += schema_errors(item, schema["items"], f"{path}[{i}]")
    elif isinstance(instance, Mapping):
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in instance:
                errors.append(f"{path}: missing {name!r}")
        for name, value in instance.items():
            if name in properties:
                errors += schema_errors(value, properties[name], f"{path}.{name}")
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{path}: unexpected property {name!r}")
    return errors


# --- rules a schema cannot say ----------------------------------------------------

_FIRST_PERSON = re.compile(r"^(?:i|my)\b")
_FUTURE = re.compile(r"\b(?:will|shall|gonna|going to|won't)\b|'ll\b")
#: Words that make an action embodied: the body, the breath, a movement.
_EMBODIED = re.compile(
    r"\b(?:hands?|palms?|fingers?|fingertips|arms?|shoulders?|chest|heart|belly|stomach|"
    r"feet|foot|toes|legs?|knees?|spine|back|neck|head|chin|face|eyes?|lips|jaw|body|"
    r"breath|breathe|breathing|inhale|exhale|stand|standing|sit|sitting|kneel|lie|"
    r"lying|walk|step|steps|stretch|stretching|reach|raise|lift|press|touch|tap|clap|"
    r"bow|nod|smile|sway|shake|write|candle|water|drink|sip|hum|aloud|out loud|posture|"
    r"floor)\b")


def is_affirmation(statement: str) -> bool:
    """First person (starts with I / I'm / I am / My) and present tense (no
    'will', "I'll", 'going to'...)."""
    said = normalise(statement)
    return bool(_FIRST_PERSON.match(said)) and not _FUTURE.search(said)


def texts(content_type: ContentType, structure: Mapping[str, Any]) -> list[str]:
    """Every string a person would hear or read, title first."""
    found = [str(structure.get("title", ""))]
    if content_type is ContentType.AFFIRMATION:
        return found + [str(s) for s in structure.get("statements", [])]
    key = "phases" if content_type is ContentType.GUIDED_MEDITATION else "sections"
    for part in structure.get(key, []):
        found += [str(seg.get("text", "")) for seg in part.get("segments", [])]
    return found


def _order_errors(key: str, names: list[str], order: Sequence[str],
                  required: Sequence[str]) -> list[str]:
    errors = []
    if len(set(names)) != len(names):
        errors.append(f"$.{key}: a name appears twice")
    ranks = [order.index(n) for n in names if n in order]
    if ranks != sorted(ranks):
        errors.append(f"$.{key}: out of order (expected {', '.join(order)})")
    missing = [n for n in required if n not in names]
    if missing:
        errors.append(f"$.{key}: missing {', '.join(missing)}")
    return errors


def _semantic_errors(content_type: ContentType, structure: Mapping[str, Any],
                     target_seconds: float | None) -> list[str]:
    errors: list[str] = []
    for i, text in enumerate(texts(content_type, structure)):
        where = "$.title" if i == 0 else f"text {i}"
        if not text.strip():
            errors.append(f"{where}: blank")
        if first_forbidden(text) >= 0:
            errors.append(f"{where}: control or invisible character")
        if i == 0 and ("\n" in text or "\r" in text):
            errors.append(f"{where}: more than one line")
        for claim in medical_claims(text):
            errors.append(f"{where}: medical claim {claim!r}")
        crisis = detect_crisis(text)
        if crisis:
            errors.append(f"{where}: crisis language ({crisis})")
    if content_type is ContentType.AFFIRMATION:
        statements = structure["statements"]
        for i, statement in enumerate(statements):
            if not is_affirmation(statement):
                errors.append(f"$.statements[{i}]: not first person present tense")
        if len({normalise(s) for s in statements}) != len(statements):
            errors.append("$.statements: repeated statement")
        return errors
    if content_type is ContentType.GUIDED_MEDITATION:
        names = [p["name"] for p in structure["phases"]]
        short = target_seconds is None or target_seconds <= SHORT_MEDITATION_SECONDS
        required = [n for n in MEDITATION_PHASES if not (short and n in OPTIONAL_PHASES)]
        errors += _order_errors("phases", names, MEDITATION_PHASES, required)
        return errors
    sections = {s["name"]: s["segments"] for s in structure["sections"]}
    errors += _order_errors("sections", [s["name"] for s in structure["sections"]],
                            RITUAL_SECTIONS, RITUAL_SECTIONS)
    for i, seg in enumerate(sections.get("identity", [])):
        if not is_affirmation(seg["text"]):
            errors.append(f"identity segment {i}: not a first-person present-tense "
                          "identity statement")
    action = " ".join(seg["text"] for seg in sections.get("action", []))
    if "action" in sections and not _EMBODIED.search(normalise(action)):
        errors.append("action: no embodied action (body, breath or movement)")
    return errors


def validate(content_type: ContentType, structure: object, *,
             target_seconds: float | None = None, pace: Pace | None = None) -> list[str]:
    """What is wrong with `structure` as a piece of `content_type`; empty when it
    is valid. With `target_seconds`, meditations and rituals must last that long
    within TIMING_TOLERANCE at `pace` (medium when None)."""
    errors = schema_errors(structure, SCHEMAS[content_type])
    if errors:
        return errors
    assert isinstance(structure, Mapping)
    errors = _semantic_errors(content_type, structure, target_seconds)
    if target_seconds and content_type in TIMED_TYPES:
        estimated = to_script(content_type, structure, target_seconds).estimated_seconds(
            pace or Pace.MEDIUM)
        if abs(estimated - target_seconds) > TIMING_TOLERANCE * target_seconds:
            errors.append(f"timing: about {estimated:.0f} s, the target is "
                          f"{target_seconds:.0f} s (±{TIMING_TOLERANCE:.0%})")
    return errors


class StructureInvalid(InvalidArgument):
    """A piece that breaks its type's rules (the problems say which)."""

    reason = "INVALID_STRUCTURE"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:5]) or "invalid structure")
        self.problems = problems


def check(content_type: ContentType, structure: object, *,
          target_seconds: float | None = None, pace: Pace | None = None) -> dict[str, Any]:
    """`structure` itself when `validate` finds nothing, else StructureInvalid."""
    problems = validate(content_type, structure, target_seconds=target_seconds, pace=pace)
    if problems:
        raise StructureInvalid(problems)
    assert isinstance(structure, dict)
    return structure


# --- the script ----------------------------------------------------------------------

def to_script(content_type: ContentType, structure: Mapping[str, Any],
              target_seconds: float = 0.0) -> Script:
    """The script a voice reads: affirmations in order, each followed by the
    pause, the whole set `repetitions` times; meditation and ritual segments in
    order with their pauses. Meditations and rituals carry `target_seconds`, so
    the renderer can fit the pauses to the exact length."""
    if content_type is ContentType.AFFIRMATION:
        pause = float(structure["pause_seconds"])
        one_round = tuple(Segment(str(s).strip(), pause) for s in structure["statements"])
        return Script(one_round * int(structure["repetitions"]))
    key = "phases" if content_type is ContentType.GUIDED_MEDITATION else "sections"
    segments = tuple(Segment(str(seg["text"]).strip(), float(seg["pause_seconds"]))
                     for part in structure[key] for seg in part["segments"])
    return Script(segments, float(target_seconds) if target_seconds > 0 else 0.0)
