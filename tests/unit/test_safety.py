"""core.shared.safety: crisis language a person writes, medical claims in what
waQup writes. Both sides matter: missing a person in crisis is the worst
failure, and flagging everyday idioms would make the product unusable."""

from __future__ import annotations

import pytest

from core.shared.safety import CRISIS_RESOURCES, detect_crisis, medical_claims


@pytest.mark.parametrize("text", [
    "I want to kill myself",
    "sometimes I think about killing myself",
    "I just want to end my life",
    "I'm going to end it all tonight",
    "I want to die",
    "i really just want to die",
    "I wanna die",
    "I wish I was dead",
    "everyone would be better off dead without me... I mean I'd be better off dead",
    "I've been feeling suicidal lately",
    "thinking about suicide",
    "I don't want to be alive anymore",
    "I dont want to live any more",
    "there's no reason to live",
    "I want to take my own life",
    "I KILL MYSELF over and over in my head",
    "I want to kill my self",
])
def test_suicide_language(text: str) -> None:
    assert detect_crisis(text) == "suicide"


@pytest.mark.parametrize("text", [
    "I hurt myself when I feel like this",
    "I keep hurting myself",
    "I've started self-harming again",
    "self harm",
    "I self-harm",
    "I cut myself last night",
    "I've been cutting again",
    "I want to harm myself",
    "I burn myself sometimes",
    "I hurt myself.",
])
def test_self_harm_language(text: str) -> None:
    assert detect_crisis(text) == "self_harm"


@pytest.mark.parametrize("text", [
    "he hits me when he's drunk",
    "my husband hit me yesterday",
    "She beats me",
    "my partner always slaps me",
    "he beat me up last week",
    "I'm being abused",
    "I was abused as a child and it's still happening",
    "I'm in an abusive relationship",
    "there is domestic violence at home",
    "he threatened to kill me",
    "I'm afraid of my husband",
    "I don't feel safe at home",
    "my dad hits me",
    "my boyfriend choked me",
])
def test_abuse_language(text: str) -> None:
    assert detect_crisis(text) == "abuse"


@pytest.mark.parametrize("text", [
    "",
    "I'm killing it at work and want to keep the momentum",
    "I'm dying to try this new meditation",
    "this song really hits me",
    "it just hit me how tired I am",
    "she beat me at chess again",
    "he beat me to it",
    "hit me up later",
    "I cut myself some slack today",
    "I cut myself a slice of cake",
    "I hurt myself at the gym and want to relax",
    "I hurt myself running last week",
    "I want to dye my hair",
    "I'm dead tired",
    "that joke killed me",
    "I want to feel alive again",
    "I'm afraid of my husband leaving",
    "I got beaten in the final",
    "sleep better before my exam",
    "let go of my anger at my ex",
    "I love the Suicide Squad soundtrack",
    "my deadline is killing me",
    "I'd die for a holiday",
])
def test_everyday_language_is_not_a_crisis(text: str) -> None:
    assert detect_crisis(text) is None


def test_typographic_apostrophes_and_case() -> None:
    assert detect_crisis("I DON\u2019T want to live anymore") == "suicide"
    assert detect_crisis("Self\u2011Harm") == "self_harm"  # non-breaking hyphen


def test_gravest_category_wins() -> None:
    assert detect_crisis("he hits me and I want to die") == "suicide"
    assert detect_crisis("he hits me and I cut myself") == "self_harm"


def test_crisis_resources_are_kind_and_international() -> None:
    text = CRISIS_RESOURCES
    assert "988" in text
    assert "116 123" in text
    assert "findahelpline.com" in text
    assert "emergency" in text.lower()
    assert "alone" in text  # "you do not have to go through this alone"
    assert len(text) < 1000


@pytest.mark.parametrize(("text", "claim"), [
    ("This meditation will cure your anxiety.", "cure"),
    ("It cures everything.", "cures"),
    ("Let it heal your cancer.", "heal your cancer"),
    ("healing your depression with breath", "healing your depression"),
    ("You can replace your medication with this practice.", "replace your medication"),
    ("Stop taking your meds.", "stop taking your meds"),
    ("Use this instead of therapy.", "instead of therapy"),
    ("This practice treats depression.", "treats depression"),
    ("a treatment for insomnia", "treatment for insomnia"),
    ("I will diagnose what is wrong", "diagnose"),
    ("Your diagnosis does not matter", "diagnosis"),
    ("clinically proven to relax you", "clinically proven"),
    ("guaranteed to fix your back", "guaranteed to fix"),
    ("reverse your diabetes", "reverse your diabetes"),
    ("You don't need your doctor.", "don't need your doctor"),
])
def test_medical_claims_found(text: str, claim: str) -> None:
    assert claim in medical_claims(text)


@pytest.mark.parametrize("text", [
    "",
    "Breathe in calm, breathe out tension.",
    "Feel secure and supported.",
    "A manicure of the mind.",
    "Let your heart soften, healing light all around you.",
    "Let the warmth ease your shoulders.",
    "My heart is allowed to heal at its own pace.",
    "I am someone who treats sleep as a gift to myself.",
    "Notice any tension and let it go.",
    "You are curious about what comes next.",
])
def test_wellness_language_is_not_a_medical_claim(text: str) -> None:
    assert medical_claims(text) == []


def test_medical_claims_listed_once_in_order() -> None:
    assert medical_claims("Cure it. Then diagnose it. Cure it again.") == ["cure", "diagnose"]
