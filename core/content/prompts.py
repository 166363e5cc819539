"""Prompt templates: versioned files rendered for one GenerationRequest.

Each content type has a template file `core/content/prompts/<type>.<version>.txt`
(read with importlib.resources, so it ships inside the package): comment lines,
then a `[system]` part and a `[user]` part, with `$placeholders`
(string.Template). A new wording is a new file (`.v2.txt`) and a new entry in
`TEMPLATE_VERSIONS`; the AI history records which version wrote each piece.

The person's earlier titles go into the prompt newest first and are cut to a
token budget (estimated as characters / 4), dropping the oldest first, so a long
history never crowds out the instructions (the context window of the AI
request flow).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from string import Template

from core.content.model import GenerationRequest, Message, Prompt
from core.content.structures import STRUCTURES, TIMED_TYPES, schema_for
from core.shared.creation import WORDS_PER_SECOND, ContentType, Depth, Pace, TimeOfDay, Tone

TEMPLATE_VERSIONS: dict[ContentType, str] = {
    ContentType.AFFIRMATION: "v1",
    ContentType.GUIDED_MEDITATION: "v1",
    ContentType.RITUAL: "v1",
}
#: Tokens the history of titles may take in a prompt.
DEFAULT_HISTORY_TOKEN_BUDGET = 200
#: Longest stretch of a person's own words put into a prompt (characters).
MAX_FIELD_CHARS = 500
#: Share of a meditation's or ritual's time that is speech (the rest is silence).
SPEECH_SHARE = {Depth.SHALLOW: 0.6, Depth.MEDIUM: 0.5, Depth.DEEP: 0.42}

NOT_SAID = "(not said)"

DEPTH_GUIDANCE = {
    Depth.SHALLOW: ("A first or short practice: keep it simple and outward (breath, sounds, "
                    "the weight of the body), short sentences, nothing that asks much."),
    Depth.MEDIUM: ("A familiar practice: go a little inward (feelings, what matters to them), "
                   "with room for silence."),
    Depth.DEEP: ("An experienced practitioner: go inward (values, identity, the self beneath "
                 "the thoughts), fuller phases and longer silences."),
}
TONE_GUIDANCE = {
    Tone.CALM: "Soft, unhurried, spacious language.",
    Tone.ENERGETIC: "Bright, active verbs, forward momentum, shorter silences.",
    Tone.WARM: "Tender and affectionate, like a kind friend.",
}
TIME_GUIDANCE = {
    TimeOfDay.MORNING: "Open the day: waking up, freshness, the day ahead.",
    TimeOfDay.MIDDAY: "A reset in the middle of the day: pause, refocus, return refreshed.",
    TimeOfDay.EVENING: "Unwind from the day: let it settle, arrive home in oneself.",
    TimeOfDay.NIGHT: ("Toward sleep: heaviness, softness; the ending may drift into sleep "
                      "instead of opening the eyes."),
}


def estimate_tokens(text: str) -> int:
    """Tokens of `text`, estimated as characters / 4 (rounded up)."""
    return math.ceil(len(text) / 4)


@lru_cache(maxsize=32)
def load_template(name: str, version: str) -> tuple[str, str]:
    """The (system, user) parts of template `name` at `version`."""
    source = resources.files("core.content").joinpath(
        "prompts", f"{name}.{version}.txt").read_text(encoding="utf-8")
    parts: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in source.splitlines():
        marker = line.strip()
        if marker in ("[system]", "[user]"):
            current = parts.setdefault(marker[1:-1], [])
        elif current is not None:
            current.append(line)
        elif marker and not marker.startswith("#"):
            raise ValueError(f"template {name}.{version}: text before [system]")
    if set(parts) != {"system", "user"}:
        raise ValueError(f"template {name}.{version}: needs a [system] and a [user] part")
    return "\n".join(parts["system"]).strip(), "\n".join(parts["user"]).strip()


def truncate_history(titles: tuple[str, ...] | list[str], budget_tokens: int) -> list[str]:
    """The newest titles (given newest first) whose lines fit in `budget_tokens`;
    the oldest are dropped first."""
    kept: list[str] = []
    used = 0
    for title in titles:
        line = _history_line(title)
        cost = estimate_tokens(line + "\n")
        if used + cost > budget_tokens:
            break
        kept.append(title)
        used += cost
    return kept


def _history_line(title: str) -> str:
    return "  - " + " ".join(title.split())[:120]


def _words(value: str) -> str:
    """A person's words for the prompt: one line, bounded, or NOT_SAID."""
    said = " ".join(value.split())
    if not said:
        return NOT_SAID
    if len(said) > MAX_FIELD_CHARS:
        said = said[:MAX_FIELD_CHARS].rsplit(" ", 1)[0] + " ..."
    # The closing tag of the block the words sit in cannot be forged.
    return said.replace("<", "\u2039").replace(">", "\u203a")


def spoken_words_hint(request: GenerationRequest) -> int:
    """About how many words to speak so the pauses have room to breathe."""
    pace = request.brief.pace or Pace.MEDIUM
    share = SPEECH_SHARE[request.depth]
    return max(20, round(request.target_seconds * share * WORDS_PER_SECOND * pace.speech_rate))


def _timing_hint(request: GenerationRequest) -> str:
    pace = request.brief.pace or Pace.MEDIUM
    rate = WORDS_PER_SECOND * pace.speech_rate
    if request.brief.content_type not in TIMED_TYPES:
        return (f"Length is estimated as words / {rate:.2f} per second plus every pause; "
                "choose the number of statements, repetitions and the pause to match.")
    words = spoken_words_hint(request)
    silence = max(0.0, request.target_seconds - words / rate)
    return (f"Length is estimated as spoken words / {rate:.2f} per second plus the sum of "
            f"pause_seconds, and must land within 25% of the target: write about {words} "
            f"spoken words and about {silence:.0f} s of pauses in total.")


def render_prompt(request: GenerationRequest, *,
                  history_token_budget: int = DEFAULT_HISTORY_TOKEN_BUDGET) -> Prompt:
    """The prompt for `request`: its type's current template, filled in."""
    brief = request.brief
    content_type = brief.content_type
    version = TEMPLATE_VERSIONS[content_type]
    system, user = load_template(content_type.value, version)
    history = truncate_history(request.history, history_token_budget)
    pace = brief.pace or Pace.MEDIUM
    tone = brief.tone or Tone.CALM
    name = " ".join(brief.name.split())[:60].replace("<", "").replace(">", "")
    values = {
        "structure": json.dumps(STRUCTURES[content_type], indent=1, ensure_ascii=False),
        "intent": _words(brief.intent),
        "situation": _words(brief.situation),
        "focus": _words(brief.focus),
        "time_of_day": brief.time_of_day.value if brief.time_of_day else "any",
        "time_guidance": (TIME_GUIDANCE[brief.time_of_day] if brief.time_of_day
                          else "Suitable for any time of day."),
        "tone": tone.value,
        "tone_guidance": TONE_GUIDANCE[tone],
        "pace": pace.value,
        "depth": request.depth.value,
        "depth_guidance": DEPTH_GUIDANCE[request.depth],
        "target_minutes": f"{request.target_seconds / 60:.1f}".removesuffix(".0"),
        "target_seconds": f"{request.target_seconds:.0f}",
        "timing_hint": _timing_hint(request),
        "name_line": (f"Address them by name once or twice, naturally: {name}." if name
                      else "Do not use a name."),
        "history": "\n".join(_history_line(t) for t in history) or "  (none yet)",
    }
    words = spoken_words_hint(request)
    return Prompt(
        template=content_type.value,
        version=version,
        messages=(Message("system", Template(system).substitute(values)),
                  Message("user", Template(user).substitute(values))),
        schema=schema_for(content_type),
        request=request,
        max_output_tokens=min(8192, max(1024, words * 2 + 800)),
    )
