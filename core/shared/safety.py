"""Safety rules for what people write and for what waQup writes back.

`detect_crisis` reads what a person wrote (a brief, a conversation turn) for
language of suicide, self-harm or abuse, so the caller can stop creating and
answer with `CRISIS_RESOURCES` instead. It errs on the side of showing help:
a negation ("I don't want to kill myself") is not trusted to mean safety, and
a kind message with resources costs little when shown needlessly. What it
avoids are the everyday idioms that only look alike ("killing it at work",
"dying to try", "the song really hits me", "I cut myself some slack").

`medical_claims` reads generated text for medical or curative promises
("cures anxiety", "heal your cancer", "replace your medication", "treat
depression", "diagnose"): a wellness product must never make them, so a piece
that contains one is refused by the validator and written again.

Both work on lower-cased text with typographic apostrophes and dashes folded,
and are pure functions (standard library only).
"""

from __future__ import annotations

import re

#: Shown instead of a creation when `detect_crisis` finds something.
CRISIS_RESOURCES = (
    "It sounds like you are carrying something very heavy right now, and you deserve "
    "support from a real person. If you are in danger or might act on these feelings, "
    "please contact your local emergency number (such as 911, 112 or 999) now.\n"
    "You can talk to someone, free and confidential, at any hour:\n"
    "- United States: call or text 988 (Suicide & Crisis Lifeline)\n"
    "- UK and Ireland: call Samaritans on 116 123\n"
    "- Anywhere else: findahelpline.com lists free helplines in your country\n"
    "If someone is hurting you, these lines can also help you find a safe place. "
    "You do not have to go through this alone."
)

CRISIS_CATEGORIES = ("suicide", "self_harm", "abuse")

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'",
                              "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-",
                              "\u2014": "-"})


def normalise(text: str) -> str:
    """Lower case, typographic apostrophes and dashes folded, whitespace collapsed."""
    return " ".join(text.translate(_APOSTROPHES).lower().split())


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


# "don't", "dont", "do not"; "i'm", "im", "i am".
_NOT = r"(?:don'?t|do not|didn'?t|did not|doesn'?t|does not|can'?t|cannot|won'?t)"
# Words that may sit between "want to"-like verbs and the act: "really", "just".
_ADV = r"(?:(?:really|just|honestly|sometimes|kind of|kinda|actually|literally) )*"

_SUICIDE = _any(
    # "kill myself", "killing myself" (but not "killing it")
    r"\bkill(?:ing|ed)? my ?self\b",
    r"\bend(?:ing)? (?:my|it|this) (?:own )?life\b",
    r"\b(?:take|taking|took) my (?:own )?life\b",
    r"\bend(?:ing)? it all\b",
    # "want to die" (but not "want to dye my hair" misspelt, "dying to try")
    rf"\b(?:want|wanna|wanted|wanting|ready|wish|plan|planning) (?:to )?{_ADV}die\b"
    r"(?! (?:my|your|her|his) hair)",
    r"\bwanna die\b",
    r"\bwish (?:i|that i) (?:was|were|had) (?:dead|never been born)\b",
    r"\b(?:better off|be better) dead\b",
    r"\bsuicid(?:e|al)\b(?! squad)",
    r"\bno (?:reason|point) (?:to|in) (?:live|living|go on|going on)\b",
    rf"\b{_NOT} want to (?:be alive|live|exist) any ?more\b",
    rf"\b{_NOT} want to (?:wake up|be here) any ?more\b",
    r"\bnot want to (?:be alive|live) any ?more\b",
    r"\b(?:overdose|od) on (?:my )?(?:pills|meds|medication)\b",
)

_SELF_HARM = _any(
    r"\bself[- ]?harm(?:ing|ed)?\b",
    r"\bself[- ]?injur(?:y|ing|e)\b",
    # "hurt myself" as an act, not a sports injury ("hurt myself at the gym")
    r"\b(?:hurt|hurting|harm|harming) my ?self\b"
    r"(?! (?:at|during|while \w+ing|playing|running|lifting|skiing|climbing|training|"
    r"exercising|in (?:a|an|the))\b)",
    # "cut myself" (but not "cut myself a slice", "some slack", "off from")
    r"\bcut(?:ting|s)? my ?self\b"
    r"(?! (?:a|an|some|off|short|free|loose|out|shaving|in the kitchen|while cooking)\b)",
    r"\b(?:burn|burning|starve|starving|punish|punishing) my ?self\b"
    r"(?! (?:in the sun|out)\b)",
    r"\bcutting (?:again|my (?:arms?|wrists?|legs?|thighs?|skin))\b",
)

_ABUSER = (r"(?:he|she|they|my (?:husband|wife|partner|boyfriend|girlfriend|ex|dad|father|"
           r"mom|mum|mother|stepdad|stepfather|stepmom|stepmother|parents?|brother|sister|"
           r"uncle|boss|fianc[eé]e?|spouse))")
_ABUSE = _any(
    # "he hits me", "my partner hit me" (but not "she hit me up", "it hits me")
    rf"\b{_ABUSER} (?:\w+ )?(?:hits|hit|hitting) me\b(?! (?:up|with)\b)",
    # "he beats me", "she beat me up" (but not "beat me at chess", "beat me to it")
    rf"\b{_ABUSER} (?:\w+ )?(?:beats|beat|beating) me\b(?! (?:at|in|to|on|by)\b)",
    rf"\b{_ABUSER} (?:\w+ )?(?:kicks|kicked|kicking|chokes|choked|choking|strangles|"
    r"strangled|slaps|slapped|slapping|punches|punched|punching|shoves|shoved|rapes|raped|"
    r"abuses|abused|abusing|molests|molested) me\b",
    r"\b(?:being|been|was|am|get|getting|got|is) (?:\w+ )?(?:abused|raped|molested|"
    r"sexually assaulted|assaulted by|beaten (?:up|by (?:my|him|her|them))|"
    r"hit by (?:my|him|her|them))\b",
    r"\b(?:is|are|was|were|keeps|kept) abusing me\b",
    r"\babusive (?:husband|wife|partner|boyfriend|girlfriend|relationship|marriage|"
    r"parents?|father|mother|home|household|ex)\b",
    r"\bdomestic (?:violence|abuse)\b",
    r"\b(?:afraid|scared|terrified) (?:of|for my life (?:with|around)) "
    r"(?:my )?(?:husband|wife|partner|boyfriend|girlfriend|dad|father|stepdad|him|her)\b"
    r"(?! (?:leaving|being|getting|finding|not|will|might|would|won'?t)\b)",
    r"\bthreaten(?:s|ed|ing)? to (?:kill|hurt|hit) me\b",
    r"\b(?:not|never|don'?t) feel safe (?:at home|in my (?:own )?(?:home|house|relationship))\b",
)

_CRISIS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("suicide", _SUICIDE), ("self_harm", _SELF_HARM), ("abuse", _ABUSE))


def detect_crisis(text: str) -> str | None:
    """The crisis category ("suicide", "self_harm", "abuse") of what a person
    wrote, the gravest first, or None when the text reads as none of them."""
    if not text:
        return None
    said = normalise(text)
    for category, pattern in _CRISIS:
        if pattern.search(said):
            return category
    return None


_CONDITIONS = (r"(?:cancer|tumou?rs?|diabetes|depression|anxiety disorders?|anxiety|"
               r"ptsd|adhd|ocd|bipolar(?: disorder)?|schizophrenia|insomnia|illness(?:es)?|"
               r"diseases?|infections?|migraines?|arthritis|asthma|high blood pressure|"
               r"hypertension|heart disease|addiction|alcoholism|autism|dementia|"
               r"alzheimer'?s|covid|the flu|disorders?|chronic pain|trauma)")
_MEDICATION = (r"(?:medication|medications|medicine|medicines|meds|pills|"
               r"antidepressants?|prescriptions?|insulin|chemo(?:therapy)?|therapy|"
               r"treatment|your doctor|a doctor|doctors)")

_MEDICAL = _any(
    r"\bcur(?:e|es|ed|ing)\b",
    r"\bcurative\b",
    rf"\bheal(?:s|ed|ing)? (?:your |my |the |all |any )?(?:\w+ )?{_CONDITIONS}\b",
    rf"\b(?:treat|treats|treated|treating|treatment for|treatment of|remed(?:y|ies) for|"
    rf"reverse|reverses|reversed|reversing|eliminate|eliminates|eradicate|eradicates|"
    rf"get rid of) (?:your |my |the |all |any )?(?:\w+ )?{_CONDITIONS}\b",
    rf"\b(?:replace|replaces|replacing|substitute for|instead of|no need for|stop taking|"
    rf"stop your|quit|quit your|come off|go off|throw away|don'?t need|do not need) "
    rf"(?:your |my |the |any )?{_MEDICATION}\b",
    r"\bdiagnos(?:e|es|ed|ing|is|tic)\b",
    r"\bprescri(?:be|bes|bed|bing|ption)\b",
    r"\bclinically (?:proven|tested)\b",
    r"\bmedically (?:proven|guaranteed)\b",
    r"\bguaranteed to (?:heal|fix|remove|end)\b",
)


def medical_claims(text: str) -> list[str]:
    """The medical or curative claims in `text`, as found (lower case), each
    once, in order of appearance; empty when there is none."""
    if not text:
        return []
    found: list[str] = []
    for match in _MEDICAL.finditer(normalise(text)):
        claim = match.group(0)
        if claim not in found:
            found.append(claim)
    return found
