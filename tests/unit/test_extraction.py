"""Reading free text for creation details: each kind of detail, corrections and
negations, bare answers to a question, short answers (skip, yes, a name), and
robustness on any string."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.conversation.extraction import (
    MAX_FOCUS,
    MAX_INTENT,
    MAX_MINUTES,
    MAX_SITUATION,
    MIN_MINUTES,
    extract,
    extract_name,
    is_affirmative,
    is_skip,
)
from core.conversation.model import Details
from core.shared.creation import ContentType, Pace, TimeOfDay, Tone

A, M, R = ContentType.AFFIRMATION, ContentType.GUIDED_MEDITATION, ContentType.RITUAL


def found(text: str, known: Details | None = None, expecting: str = "") -> dict[str, Any]:
    """The fields `text` set or changed, as a dict."""
    known = known or Details()
    details = extract(text, known, expecting=expecting)
    return {name: getattr(details, name) for name in details.changed_fields(known)}


@pytest.mark.parametrize(("text", "expected"), [
    ("affirmations", {"content_type": A}),
    ("Some affirmations please", {"content_type": A}),
    ("a meditation", {"content_type": M}),
    ("something guided", {"content_type": M}),
    ("ritual", {"content_type": R}),
    ("a morning ritual", {"content_type": R, "time_of_day": TimeOfDay.MORNING}),
    ("I'd like a ritual, not a meditation", {"content_type": R}),
    ("a meditation rather than affirmations", {"content_type": M}),
    ("I don't want a meditation", {}),
])
def test_content_type(text: str, expected: dict[str, Any]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(("text", "intent"), [
    ("I want to feel calmer before exams", "feel calmer before exams"),
    ("I'd love to feel more confident, about 10 minutes", "feel more confident"),
    ("I need to relax after work.", "relax after work"),
    ("Help me sleep better", "sleep better"),
    ("a meditation to let go of stress", "let go of stress"),
    ("affirmations for building confidence", "building confidence"),
    ("can you help me with my anxiety", "deal with my anxiety"),
    ("a ritual for my mornings", "work on my mornings"),
    ("I don't want to feel anxious anymore", "not feel anxious anymore"),
    ("so I can focus at work", "focus at work"),
    ("I want to make a meditation to sleep better", "sleep better"),
])
def test_intent(text: str, intent: str) -> None:
    assert extract(text, Details()).intent == intent


def test_a_request_is_not_an_intent() -> None:
    assert extract("I want to create a meditation", Details()).intent == ""
    assert extract("I'd like to make some affirmations", Details()).intent == ""
    assert extract("yes, I want to go ahead", Details()).intent == ""
    assert extract("I'd like to make it 15 minutes", Details()).intent == ""
    assert extract("I want to change the focus to gratitude", Details()) == Details(
        focus="gratitude")


@pytest.mark.parametrize(("text", "situation"), [
    ("I have a job interview tomorrow", "I have a job interview tomorrow"),
    ("I've been sleeping badly for weeks", "I've been sleeping badly for weeks"),
    ("My exams start on Monday and I want to feel calm", "My exams start on Monday"),
    ("I'm going through a breakup", "I'm going through a breakup"),
])
def test_situation(text: str, situation: str) -> None:
    assert extract(text, Details()).situation == situation


def test_situation_accumulates() -> None:
    known = Details(situation="I have a job interview tomorrow")
    assert extract("I've been sleeping badly", known).situation == (
        "I have a job interview tomorrow; I've been sleeping badly")
    assert extract("I have a job interview tomorrow", known).situation == known.situation


@pytest.mark.parametrize(("text", "time"), [
    ("in the morning", TimeOfDay.MORNING),
    ("when I wake up", TimeOfDay.MORNING),
    ("at lunchtime", TimeOfDay.MIDDAY),
    ("in the afternoon", TimeOfDay.MIDDAY),
    ("after work in the evening", TimeOfDay.EVENING),
    ("before bed", TimeOfDay.NIGHT),
    ("to help me fall asleep", TimeOfDay.NIGHT),
    ("not in the morning, in the evening", TimeOfDay.EVENING),
    ("morning... actually no, at night", TimeOfDay.NIGHT),
])
def test_time_of_day(text: str, time: TimeOfDay) -> None:
    assert extract(text, Details()).time_of_day is time


@pytest.mark.parametrize("text", ["Good morning!", "I slept badly last night", "good night"])
def test_greetings_are_not_times(text: str) -> None:
    assert extract(text, Details()).time_of_day is None


@pytest.mark.parametrize(("text", "minutes"), [
    ("10 minutes", 10.0), ("5 min", 5.0), ("a 10-minute meditation", 10.0), ("20mins", 20.0),
    ("a quarter of an hour", 15.0), ("half an hour", 30.0), ("an hour", 60.0),
    ("three quarters of an hour", 45.0), ("ten minutes", 10.0), ("twenty-five minutes", 25.0),
    ("5-10 minutes", 7.5), ("90 seconds", 1.5), ("2 hours", MAX_MINUTES), ("0 minutes", 1.0),
    ("no more than 10 minutes", 10.0), ("a few minutes", 3.0), ("keep it short", 5.0),
    ("not 20 minutes, 15", 15.0), ("\uff11\uff10 minutes", 10.0),  # full-width digits
    ("actually make it 15 minutes", 15.0), ("not 20 minutes, make it 12 minutes", 12.0),
])
def test_target_length(text: str, minutes: float) -> None:
    assert extract(text, Details()).target_minutes == minutes


def test_length_that_is_not_a_length() -> None:
    assert extract("my interview is in 30 minutes", Details()).target_minutes is None
    assert extract("it ended 10 minutes ago", Details()).target_minutes is None


def test_relative_length_changes_what_is_known() -> None:
    assert extract("a bit shorter please", Details(target_minutes=10.0)).target_minutes == 6.0
    assert extract("make it longer", Details(target_minutes=10.0)).target_minutes == 15.0
    assert extract("longer pauses", Details(target_minutes=10.0)).target_minutes == 10.0


@pytest.mark.parametrize(("text", "focus"), [
    ("focus on breathing", "breathing"),
    ("about self-worth", "self-worth"),
    ("affirmations about self-love and kindness", "self-love and kindness"),
    ("with a gentle focus on my body", "my body"),
    ("change the focus to gratitude", "gratitude"),
    ("focusing on my breath, 10 minutes", "my breath"),
])
def test_focus(text: str, focus: str) -> None:
    assert extract(text, Details(focus="earlier")).focus == focus


def test_about_a_length_is_not_a_focus() -> None:
    assert found("about 10 minutes") == {"target_minutes": 10.0}
    assert extract("no particular focus", Details(focus="breath")).focus == ""


@pytest.mark.parametrize(("text", "expected"), [
    ("slower", {"pace": Pace.SLOW}),
    ("speak slowly", {"pace": Pace.SLOW}),
    ("a faster pace", {"pace": Pace.FAST}),
    ("energetic", {"tone": Tone.ENERGETIC}),
    ("calm voice", {"tone": Tone.CALM}),
    ("a warm tone", {"tone": Tone.WARM}),
    ("soothing and slow paced", {"pace": Pace.SLOW, "tone": Tone.CALM}),
    ("a female voice", {"voice": "female"}),
    ("less energetic please", {}),
])
def test_voice_pace_tone(text: str, expected: dict[str, Any]) -> None:
    assert found(text) == expected


def test_corrections_override_what_was_known() -> None:
    known = Details(content_type=M, target_minutes=10.0, focus="breathing",
                    time_of_day=TimeOfDay.NIGHT, tone=Tone.CALM)
    assert found("actually make it 15 minutes", known) == {"target_minutes": 15.0}
    assert found("no, make it a ritual", known) == {"content_type": R}
    assert found("change the focus to gratitude", known) == {"focus": "gratitude"}
    assert found("actually in the morning, and more energetic", known) == {
        "time_of_day": TimeOfDay.MORNING, "tone": Tone.ENERGETIC}
    # Mentioning another type in passing does not change a known one.
    assert found("I tried a ritual once but it didn't help", known) == {}


def test_a_whole_message_together() -> None:
    details = extract(
        "Hi! I have a job interview tomorrow and I want to feel confident. Could you make "
        "me a 10 minute morning meditation, focusing on my breath, in a calm voice?", Details())
    assert details == Details(
        content_type=M, intent="feel confident", situation="I have a job interview tomorrow",
        time_of_day=TimeOfDay.MORNING, target_minutes=10.0, focus="my breath", tone=Tone.CALM)


@pytest.mark.parametrize(("text", "expecting", "expected"), [
    ("10", "target_minutes", {"target_minutes": 10.0}),
    ("about twenty", "target_minutes", {"target_minutes": 20.0}),
    ("10", "", {}),
    ("breathing", "focus", {"focus": "breathing"}),
    ("on gratitude", "focus", {"focus": "gratitude"}),
    ("work has been crazy lately", "situation", {"situation": "work has been crazy lately"}),
    ("inner peace", "intent", {"intent": "inner peace"}),
    ("the second one", "content_type", {"content_type": M}),
    ("slow", "style", {"pace": Pace.SLOW}),
    ("warm please", "style", {"tone": Tone.WARM}),
    ("daytime", "time_of_day", {"time_of_day": TimeOfDay.MIDDAY}),
    # Not an answer: a question back, a yes, a no, symbols.
    ("what do you mean?", "focus", {}),
    ("no", "focus", {}),
    ("yes", "intent", {}),
    ("🙂🙂", "situation", {}),
    # A recognised detail is not taken as the free-text answer too.
    ("10 minutes", "focus", {"target_minutes": 10.0}),
    ("morning", "focus", {"time_of_day": TimeOfDay.MORNING}),
])
def test_bare_answers_to_a_question(text: str, expecting: str,
                                    expected: dict[str, Any]) -> None:
    assert found(text, expecting=expecting) == expected


def test_a_bare_answer_that_repeats_a_known_detail_is_no_focus() -> None:
    known = Details(time_of_day=TimeOfDay.MORNING)
    assert found("morning", known, expecting="focus") == {}


@pytest.mark.parametrize(("text", "skip", "yes"), [
    ("no", True, False), ("skip", True, False), ("that's fine", True, True),
    ("No thanks!", True, False), ("I don't mind", True, False), ("nothing in particular", True,
                                                                 False),
    ("yes", False, True), ("Yes please, go ahead", False, True), ("sounds good", False, True),
    ("perfect!", False, True), ("10 minutes", False, False), ("no, make it a ritual", False,
                                                              False),
    ("", False, False), ("🙂", False, False),
])
def test_short_answers(text: str, skip: bool, yes: bool) -> None:
    assert (is_skip(text), is_affirmative(text)) == (skip, yes)


@pytest.mark.parametrize(("text", "expecting", "name"), [
    ("call me Sam", False, "Sam"),
    ("my name is José please", False, "José"),
    ("I'm stressed", False, ""),
    ("sam", True, "Sam"),
    ("Mary Ann", True, "Mary Ann"),
    ("I'm Jo", True, "Jo"),
    ("it's Priya", True, "Priya"),
    ("it's fine", True, ""),
    ("skip", True, ""),
    ("just call me whatever", True, ""),
    ("I'd rather you didn't use my name at all", True, ""),
])
def test_names(text: str, expecting: bool, name: str) -> None:
    assert extract_name(text, expecting=expecting) == name


def test_other_languages_and_symbols_change_nothing_they_do_not_say() -> None:
    for text in ("Je voudrais me sentir plus calme", "想要放松一下", "🧘‍♀️✨🌙", "¿Qué?",
                 "\u0645\u0631\u062d\u0628\u0627", "   ", ""):
        assert extract(text, Details(focus="x")) == Details(focus="x")
    assert extract("Je voudrais une méditation de 10 minutes", Details()).target_minutes == 10.0


@pytest.mark.parametrize("text", [
    "I want to " * 2000, "a " * 20000, ", " * 10000, "1" * 50000, "about " * 3000,
    "not " * 5000 + "meditation", "focus on " * 2000, "i have a " * 3000, "-" * 30000,
    "\n" * 10000, "10 minutes " * 2000, "x" * 1_000_000,
])
def test_huge_and_repetitive_text_is_read(text: str) -> None:
    details = extract(text, Details())
    assert len(details.intent) <= MAX_INTENT and len(details.situation) <= MAX_SITUATION
    assert len(details.focus) <= MAX_FOCUS


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=300),
       expecting=st.sampled_from(["", "content_type", "intent", "situation", "target_minutes",
                                  "time_of_day", "focus", "style", "name"]))
def test_any_text_gives_details_within_bounds(text: str, expecting: str) -> None:
    details = extract(text, Details(), expecting=expecting)
    assert isinstance(details, Details)
    assert details.target_minutes is None or MIN_MINUTES <= details.target_minutes <= MAX_MINUTES
    assert len(details.intent) <= MAX_INTENT and len(details.situation) <= MAX_SITUATION
    assert len(details.focus) <= MAX_FOCUS
    assert extract(text, details, expecting=expecting).content_type == details.content_type or \
        details.content_type is not None
    is_skip(text), is_affirmative(text), extract_name(text, expecting=True)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.sampled_from([
    "a meditation", "ritual", "affirmations", "10 minutes", "half an hour", "before bed",
    "in the morning", "focus on breathing", "about gratitude", "I want to feel calm",
    "I have an exam", "slower", "energetic", "not", "no,", "actually", "🙂", "é", "?", ".",
]), max_size=12))
def test_any_mix_of_phrases_gives_details_within_bounds(parts: list[str]) -> None:
    details = extract(" ".join(parts), Details())
    assert details.target_minutes is None or MIN_MINUTES <= details.target_minutes <= MAX_MINUTES
