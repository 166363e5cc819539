"""Reading free text for the details of a creation: the kind of content, what it
is for, what is going on, when it is used, how long it lasts, what it focuses
on, and how the voice should sound.

Keyword and regular-expression rules, no model: predictable, fast, and safe on
any string (empty, huge, emoji, other languages). Each rule takes the *last*
mention that is not negated ("not a meditation, a ritual"), so corrections
("actually make it 15 minutes", "no, make it a ritual", "change the focus to
gratitude") simply override what was known. Anything unrecognised leaves the
known details as they are; the conversation then asks again.

`extract` may be told which detail the last question asked about
(`expecting`): a bare answer ("10", "breathing", "Sam") then fills it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import replace
from itertools import islice

from core.conversation.model import Details
from core.shared.creation import Background, ContentType, Pace, TimeOfDay, Tone

#: Only this much of a message is read (the service refuses longer messages anyway).
MAX_SCAN = 8000
MIN_MINUTES = 1.0
MAX_MINUTES = 60.0
MAX_INTENT = 200
MAX_SITUATION = 400
MAX_FOCUS = 120
MAX_NAME = 40

#: Details whose answer is free text: a bare answer to a question about one of
#: them is taken as said.
FREE_TEXT = ("intent", "situation", "focus")

_I = re.IGNORECASE
_FOLD = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'",
                       "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-",
                       "\u2014": "-", "\u201c": '"', "\u201d": '"'})


def _prepare(text: str) -> str:
    """NFKC (full-width digits become digits), typographic quotes and dashes
    folded, at most MAX_SCAN characters."""
    return unicodedata.normalize("NFKC", text[:MAX_SCAN]).translate(_FOLD)[:MAX_SCAN]


# --- negation -----------------------------------------------------------------------

_NEGATION = re.compile(
    r"(?:\bnot|n't|\bnever|\bno|\binstead\s+of|\brather\s+than|\bnothing\s+too|\bless"
    r"|\bwithout|\bno\s+longer|\banything\s+but)\s+(?:[\w']+\s+){0,2}$", _I)
_NOT_A_NEGATION = re.compile(r"(?:more|longer|less|fewer)\s+than\s+$|\bno\s+more\s+than\s+$",
                             _I)


#: Mentions of one kind read in one message at most (the others are repetition).
MAX_MATCHES = 64


def _matches(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    return islice(pattern.finditer(text), MAX_MATCHES)


def _negated(text: str, start: int) -> bool:
    """Whether the mention at `start` is denied ("not a meditation", "instead of
    affirmations", "less energetic")."""
    window = text[max(0, start - 40):start]
    if _NOT_A_NEGATION.search(window):
        return False
    return bool(_NEGATION.search(window))


def _last(text: str, pattern: re.Pattern[str]) -> re.Match[str] | None:
    """The last match of `pattern` in `text` that is not negated."""
    found = None
    for match in _matches(pattern, text):
        if not _negated(text, match.start()):
            found = match
    return found


# --- clauses ------------------------------------------------------------------------

#: Where a clause ends: sentence punctuation, or a joint that starts another thought.
_CLAUSE_END = re.compile(
    r"[.!?;:\n\r(]|\s-\s|,?\s+(?:and|but|so|because|though|although|while)\s+"
    r"(?:i|i'd|i'm|i'll|i've|it|its|it's|make|please|can|could|would|want|need|maybe|"
    r"about|around|for|in|with|focus|focusing|something|ideally|preferably)\b|,\s+(?:i|i'd|"
    r"i'm|i'll|it|it's|make|please|can|could|would|maybe|about|around|roughly|ideally|"
    r"preferably|something|focus|focusing|for|in|with|and|so|but|because|like|say)\b", _I)

_WORD_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90,
}
_TENS = r"(?:twenty|thirty|forty|fifty)"
_UNITS = r"(?:one|two|three|four|five|six|seven|eight|nine)"
_WORD_NUMBER = (rf"(?:{_TENS}[- ]{_UNITS}|" + "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True))
                + ")")
_NUMBER = rf"(?:[0-9]{{1,4}}(?:[.,][0-9]{{1,2}})?|{_WORD_NUMBER})"

#: Detail phrases that end a free-text detail: "feel calm, 10 minutes" → "feel calm".
_DETAIL_PHRASE = re.compile(
    rf"\b(?:(?:in|for|about|around|roughly|maybe|like|of|just|under|over)\s+)?(?:a\s+)?"
    rf"{_NUMBER}\s*-?\s*(?:minutes?|mins?|hours?|hrs?|seconds?|secs?)\b"
    r"|\b(?:half\s+an\s+hour|a\s+quarter\s+of\s+an\s+hour|an\s+hour)\b"
    r"|\b(?:in\s+the|every|each|for\s+the|for\s+my|at)\s+(?:morning|afternoon|evening|night)s?\b"
    r"|\b(?:before\s+bed|at\s+bed\s*time|at\s+night|tonight|when\s+i\s+wake\s+up)\b"
    r"|\b(?:with\s+(?:a|an)\s+)?(?:focus(?:ed|ing)?|centred|centered)\s+(?:on|around)\b"
    r"|\b(?:in|with)\s+(?:a|an)\s+(?:slow|calm|warm|soft|gentle|energetic|soothing|upbeat)"
    r"\s+(?:voice|tone|pace)\b", _I)
_TRAILING_JUNK = re.compile(
    r"(?:[\s,;:\-\"']|\b(?:and|or|with|for|in|a|an|the|to|please|maybe|like|so|but|just|"
    r"really|that|which|of|on|at|about|around|then)\b)+$", _I)
_LEADING_JUNK = re.compile(r"^(?:[\s,;:\-\"']|\b(?:um+|uh+|well|so|and|just|like)\b)+", _I)


def _clause(text: str, start: int, limit: int) -> str:
    """The clause of `text` from `start`, without trailing detail phrases or
    connectors, at most `limit` characters (cut at a word boundary)."""
    rest = text[start:start + limit * 3]
    end = _CLAUSE_END.search(rest)
    if end:
        rest = rest[:end.start()]
    phrase = _DETAIL_PHRASE.search(rest)
    if phrase:
        rest = rest[:phrase.start()]
    return _tidy(rest, limit)


def _tidy(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        cut = text[:limit]
        text = cut.rsplit(" ", 1)[0] if " " in cut else cut
    text = _LEADING_JUNK.sub("", text)
    text = _TRAILING_JUNK.sub("", text)
    return text.strip()


_MEANINGFUL = re.compile(r"[^\W\d_]{3,}")
_WEAK_WORDS = frozenset({"be", "is", "are", "the", "and", "it", "its", "that", "this", "get",
                         "have", "was", "were", "one", "thing", "something", "more", "some"})


def _meaningful(value: str) -> bool:
    """Whether a captured phrase says anything (a word of 3+ letters that is not filler)."""
    return any(w.lower() not in _WEAK_WORDS for w in _MEANINGFUL.findall(value))


# --- content type -------------------------------------------------------------------

_TYPE_WORDS: tuple[tuple[ContentType, str, str], ...] = (
    # (type, strong mention, weak mention). A strong mention may change a known
    # type; a weak one ("guided", "routine") only fills an unknown one.
    (ContentType.AFFIRMATION, r"affirmations?",
     r"mantras?|positive\s+(?:statements|self[- ]talk)|affirming\s+(?:words|statements)"),
    (ContentType.GUIDED_MEDITATION, r"meditations?",
     r"meditat(?:e|ing)|guided|visuali[sz]ations?|body\s+scan|breathing\s+exercise"),
    (ContentType.RITUAL, r"rituals?", r"routines?"),
)
_TYPE_PATTERNS = tuple(
    (kind, re.compile(rf"\b(?:{strong})\b", _I), re.compile(rf"\b(?:{weak})\b", _I))
    for kind, strong, weak in _TYPE_WORDS)
#: A request for a type, needed to change a known type ("make it a ritual"),
#: so that "I tried meditation once" does not.
_TYPE_REQUEST = re.compile(
    r"(?:\bmake\s+it|\bchange\s+it|\bswitch|\bturn\s+it|\bgo\s+(?:for|with)|\bprefer|\brather"
    r"|\binstead|\bactually|\blet's|\blets|\bi'd\s+like|\bi\s+would\s+like|\bi\s+want|"
    r"\bi'll\s+take|\bhow\s+about|\bwhat\s+about|\bmaybe|\bno\b|\bplease|\bcreate|\bmake|"
    r"\bdo|\bbetter|\bneed|\binto|\bto)\W+(?:[\w']+\s+){0,2}$", _I)
_TYPE_AFTER = re.compile(r"^\W*(?:instead|rather|please|would\s+be\s+better)\b", _I)
_ORDINALS = (
    (re.compile(r"\b(?:first|1st|one|1)\b", _I), ContentType.AFFIRMATION),
    (re.compile(r"\b(?:second|2nd|middle|two|2)\b", _I), ContentType.GUIDED_MEDITATION),
    (re.compile(r"\b(?:third|3rd|last|three|3)\b", _I), ContentType.RITUAL),
)


def _content_type(text: str, known: ContentType | None,
                  expecting: str) -> ContentType | None:
    best: tuple[int, ContentType] | None = None
    for kind, strong, weak in _TYPE_PATTERNS:
        patterns = (strong,) if known is not None else (strong, weak)
        for pattern in patterns:
            for match in _matches(pattern, text):
                if _negated(text, match.start()):
                    continue
                if known is not None and kind is not known:
                    before = text[max(0, match.start() - 40):match.start()]
                    if not (_TYPE_REQUEST.search(before) or _TYPE_AFTER.search(
                            text[match.end():match.end() + 30])):
                        continue
                if best is None or match.start() > best[0]:
                    best = (match.start(), kind)
    if best is not None:
        return best[1]
    if expecting == "content_type" and len(text) <= 40:
        ordinals = [(m.start(), kind) for pattern, kind in _ORDINALS
                    if (m := pattern.search(text))]
        if ordinals:
            return min(ordinals)[1]
    return known


# --- intent -------------------------------------------------------------------------

_INTENT_LEADS = re.compile(
    r"(?P<neg>\bi\s+(?:do\s+not|don't|dont|never)\s+(?:really\s+|just\s+)?(?:want|wish|"
    r"need)\s+to\s+)"
    r"|(?:\bi\s*(?:'d|would)\s+(?:really\s+|just\s+|also\s+)?(?:like|love)"
    r"|\bi\s+(?:really\s+|just\s+|also\s+|honestly\s+)?(?:want|need|hope|wish|plan|aim)"
    r"|\bi(?:'m|\s+am|m)\s+(?:trying|hoping|looking|aiming|wanting)"
    r"|(?:^|[,;]|\band|\bbut|\bjust)\s*(?:really\s+)?(?:want|need|would\s+like|'d\s+like))"
    r"\s+to\s+"
    r"|\bi\s+wanna\s+"
    r"|\bmy\s+(?:goal|aim|wish|hope|intention)\s+is\s+(?:to\s+)?"
    r"|\bso\s+(?:that\s+)?i\s+(?:(?:can|could|will|would|may)\s+|(?=feel\b))"
    r"|\b(?:affirmations?|meditations?|rituals?|routine|something|practice|session)\s+"
    r"(?:to|that\s+(?:will\s+|can\s+|would\s+|might\s+)?helps?\s+me(?:\s+to)?"
    r"|that\s+(?:makes?|lets?|gets?)\s+me)\s+"
    r"|\b(?:help|helps|helping)\s+(?:me\s+)?(?:to\s+)?(?!with\b|me\b|through\b)", _I)
_HELP_WITH = re.compile(r"\b(?:help|helps|helping)\s+(?:me\s+)?(?:with|through)\s+", _I)
_FOR_GOAL = re.compile(
    r"\b(?:affirmations?|meditations?|rituals?|routine|something|practice|session)\s+for\s+"
    r"(?![0-9])(?!(?:me|myself|us|you|him|her|them|the\s+(?:morning|evening|night|afternoon|"
    r"day)|tonight|bed\s*time|today|tomorrow|later|now|a\s+(?:few|couple)|about|around|"
    r"an?\s+(?:hour|quarter|minute)|half|" + _WORD_NUMBER + r")\b)", _I)
#: "I want to make a meditation ..." is a request, not an intent.
_REQUEST_VERB = re.compile(
    r"^(?:create|make|build|generate|get|have|do|try|record|write|hear|listen\s+to|start|"
    r"begin|set\s+up|work\s+on|go\s+with)\s+(?:[\w']+\s+){0,3}?(?:affirmations?|"
    r"meditations?|rituals?|routine|something|one|a\s+new)\b", _I)
#: Things said to waQup about the conversation itself, not goals.
_ABOUT_THE_TALK = re.compile(
    r"^(?:go\s+ahead|proceed|continue|confirm|change|correct|fix|edit|cancel|stop|switch|"
    r"start\s+(?:it|now|over|again)|create\s+it|make\s+(?:it|that|them)|do\s+(?:it|that|this)|"
    r"try\s+again|know|ask|say|tell|hear|listen|see|add|remove|use|keep|skip)\b", _I)


def _intent(text: str) -> str:
    """The goal said last ("I want to feel calmer before exams" → "feel calmer
    before exams"; "I don't want to feel anxious" → "not feel anxious"), or ""."""
    found = ""
    for match in _matches(_INTENT_LEADS, text):
        value = _clause(text, match.end(), MAX_INTENT)
        if not _meaningful(value) or _REQUEST_VERB.match(value) or _ABOUT_THE_TALK.match(value):
            continue
        found = _tidy("not " + value, MAX_INTENT) if match.group("neg") else value
    if found:
        return found
    for pattern in (_HELP_WITH, _FOR_GOAL):
        for match in _matches(pattern, text):
            value = _clause(text, match.end(), MAX_INTENT - 10)
            if not _meaningful(value):
                continue
            if pattern is _HELP_WITH:
                found = "deal with " + value
            elif re.match(r"\w+ing\b", value):
                found = value
            else:
                found = "work on " + value
    return found


# --- situation ----------------------------------------------------------------------

_SITUATION_LEADS = re.compile(
    r"\bi\s*(?:'ve|\s+have)\s+(?:got\s+)?(?:a|an|my|the|some|this|another|two|three|four|five|to|"
    r"[0-9]+|exams?|finals|tests?|interviews?|deadlines?|surgery|work|so\s+much|too\s+much|"
    r"lots|a\s+lot)\b"
    r"|\bi\s*(?:'ve|\s+have)\s+been\b"
    r"|\bi(?:'m|\s+am|m)\s+(?:going\s+through|dealing\s+with|facing|struggling|preparing|"
    r"recovering|about\s+to|starting|moving|grieving|pregnant|stressed|anxious|nervous|"
    r"worried|overwhelmed|exhausted|tired|burn(?:t|ed)\s+out|studying|working|having|"
    r"in\s+the\s+middle\s+of|new\s+to|feeling|so\s+\w+|really\s+\w+|quite\s+\w+|very\s+\w+|"
    r"a\s+bit\s+\w+|scared|afraid|sad|lonely|sick|unwell|recently|currently|always)\b"
    r"|\bi\s+(?:just|recently|finally)\s+[\w']+"
    r"|\bi\s+(?:lost|started|moved|broke\s+up|can't|cannot|couldn't|can\s+not|keep|feel|"
    r"felt|struggle|worry|get\s+(?:anxious|nervous|stressed|overwhelmed|tired))\b"
    r"|\bmy\s+[\w'-]+(?:\s+[\w'-]+)?\s+(?:is|are|was|were|has|have|had|keeps?|starts?|"
    r"passed|died|left|begins?)\b"
    r"|\bthere(?:'s|\s+is)\s+(?:a|an|this|my|so\s+much)\b"
    r"|\b(?:work|school|life|university|uni|college|home)\s+(?:is|has\s+been)\b", _I)
_BECAUSE = re.compile(r"\b(?:because|since|cause|as)\s+(?=(?:i|i'm|i've|my|there|work)\b)", _I)
#: Clauses that are requests, not circumstances.
_NOT_SITUATION = re.compile(
    r"\b(?:want|wanna|would\s+like|'d\s+like|looking\s+for|make\s+it|create|focus\s+on)\b", _I)


def _situation(text: str) -> str:
    """What is going on, as said ("I have a job interview tomorrow"): up to two
    clauses, or ""."""
    clauses: list[str] = []
    taken_until = -1
    for pattern in (_SITUATION_LEADS, _BECAUSE):
        for match in _matches(pattern, text):
            if len(clauses) == 2:
                break
            if match.start() < taken_until:
                continue
            start = match.end() if pattern is _BECAUSE else match.start()
            value = _clause(text, start, MAX_SITUATION)
            if not _meaningful(value) or _NOT_SITUATION.search(value):
                continue
            if any(value.lower() in c.lower() or c.lower() in value.lower() for c in clauses):
                continue
            clauses.append(value)
            taken_until = start + len(value)
    return _tidy("; ".join(clauses), MAX_SITUATION) if clauses else ""


# --- time of day --------------------------------------------------------------------

_TIMES = re.compile(
    r"(?P<morning>\b(?:mornings?|sunrise|dawn|wake\s+up|waking\s+up|wakeup"
    r"|start\s+(?:of\s+)?(?:my|the)\s+day|before\s+work|breakfast|first\s+thing|a\.m\.)(?!\w))"
    r"|(?P<midday>\b(?:midday|mid-day|noon|lunch(?:time|\s+break)?|afternoons?|"
    r"middle\s+of\s+the\s+day|during\s+the\s+day|daytime|day\s+time|work\s+break)\b)"
    r"|(?P<evening>\b(?:evenings?|after\s+work|sunset|dusk|dinner|wind\s+down|winding\s+down"
    r"|end\s+of\s+(?:my|the)\s+day|after\s+school)\b)"
    r"|(?P<night>\b(?:nights?|tonight|bed\s*time|before\s+bed|in\s+bed|go(?:ing)?\s+to\s+"
    r"(?:bed|sleep)|fall(?:ing)?\s+asleep|before\s+(?:i\s+)?sleep(?:ing)?|to\s+sleep|"
    r"nighttime|night-time|night\s+time)\b)", _I)
_NOT_TIME = re.compile(r"(?:\bgood|\blast|\byesterday|\bother|\bevery\s+other|\bsleepless)\s+$",
                       _I)
_TIME_ALONE = {"day": TimeOfDay.MIDDAY, "daytime": TimeOfDay.MIDDAY, "am": TimeOfDay.MORNING,
               "pm": TimeOfDay.EVENING, "late": TimeOfDay.NIGHT, "early": TimeOfDay.MORNING}


def _time_of_day(text: str, known: TimeOfDay | None, expecting: str) -> TimeOfDay | None:
    found = None
    for match in _matches(_TIMES, text):
        if _negated(text, match.start()) or _NOT_TIME.search(text[max(0, match.start() - 20):
                                                                    match.start()]):
            continue
        found = match
    if found is not None:
        return TimeOfDay(next(k for k, v in found.groupdict().items() if v))
    if expecting == "time_of_day":
        word = text.strip(" .!?,").lower()
        if word in _TIME_ALONE:
            return _TIME_ALONE[word]
    return known


# --- length -------------------------------------------------------------------------

_LENGTH = re.compile(
    rf"\b(?P<a>{_NUMBER})(?:\s*(?:-|to|or)\s*(?P<b>{_NUMBER}))?(?P<half>\s+and\s+a\s+half)?"
    r"(?:\s*-?\s*(?P<unit>minutes?|mins?|hours?|hrs?|seconds?|secs?)\b|(?P<short>m|h|min)\b)"
    r"|(?P<hour_half>\ban?\s+hour\s+and\s+a\s+half\b|\bone\s+and\s+a\s+half\s+hours?\b)"
    r"|(?P<three_quarters>\bthree\s+quarters\s+of\s+an\s+hour\b)"
    r"|(?P<half_hour>\bhalf\s+(?:an\s+)?-?\s*hour\b)"
    r"|(?P<quarter>\b(?:a\s+)?quarter\s+(?:of\s+an\s+)?-?\s*hour\b)"
    r"|(?P<hour>\b(?:an|a\s+full|one|full)\s+hour\b)"
    r"|(?P<couple>\b(?:a\s+)?couple\s+(?:of\s+)?minutes\b)"
    r"|(?P<few>\b(?:a\s+)?few\s+minutes\b)", _I)
_NOT_LENGTH_BEFORE = re.compile(r"(?:\bin|\bwithin|\bevery|\bafter|\bat|\bby)\s+$", _I)
_NOT_LENGTH_AFTER = re.compile(r"^\s*(?:ago|from\s+now|late|early|away|later)\b", _I)
_SHORT = re.compile(r"\b(?:keep\s+it|make\s+it|something|nice\s+and|really|very|fairly|"
                    r"quite|a|rather)\s+(?:short|quick|brief)\b|^\s*(?:short|quick|brief)\b", _I)
_SHORTER = re.compile(r"\bshorter\b", _I)
_LONGER = re.compile(r"\blonger\b(?!\s+(?:pauses?|silences?|breaks?|gaps?|than))", _I)
_LONG = re.compile(r"\b(?:a\s+)?long\s+(?:one|meditation|session|ritual|version|practice|set)\b",
                   _I)
_BARE_NUMBER = re.compile(
    rf"^\s*(?:about|around|maybe|roughly|like|say)?\s*({_NUMBER})\s*[.!]?\s*$", _I)


def _number(word: str) -> float:
    word = word.lower().replace(",", ".")
    if word[0].isdigit():
        return float(word)
    if word in _WORD_NUMBERS:
        return float(_WORD_NUMBERS[word])
    tens, units = re.split(r"[- ]", word, maxsplit=1)
    return float(_WORD_NUMBERS[tens] + _WORD_NUMBERS[units])


def _clamp_minutes(value: float) -> float:
    return min(MAX_MINUTES, max(MIN_MINUTES, round(value * 2) / 2))


def _length_of(match: re.Match[str]) -> float:
    groups = match.groupdict()
    fixed = {"hour_half": 90.0, "three_quarters": 45.0, "half_hour": 30.0, "quarter": 15.0,
             "hour": 60.0, "couple": 2.0, "few": 3.0}
    for name, minutes in fixed.items():
        if groups[name]:
            return minutes
    value = _number(groups["a"])
    if groups["b"]:
        value = (value + _number(groups["b"])) / 2
    if groups["half"]:
        value += 0.5
    unit = (groups["unit"] or groups["short"] or "m").lower()
    if unit.startswith("h"):
        value *= 60
    elif unit.startswith("s"):
        value /= 60
    return value


_INSTEAD = re.compile(
    rf"\s*(?:[,;:]|-|\bbut\b|\bmore\s+like\b)?\s*(?:make\s+it\s+|rather\s+|just\s+|maybe\s+)?"
    rf"(?P<a>{_NUMBER})\b(?!\s*(?:am|pm|a\.m|p\.m|o'clock|%|minutes?|mins?|hours?|hrs?|"
    rf"seconds?|secs?)\b)", _I)


def _target_minutes(text: str, known: float | None, expecting: str) -> float | None:
    found: re.Match[str] | float | None = None
    for match in _matches(_LENGTH, text):
        if _negated(text, match.start()):
            instead = _INSTEAD.match(text, match.end())
            if instead and not match.group("hour_half") and match.group("a"):
                # "not 20 minutes, 15": the bare number is in the denied one's unit.
                unit = (match.group("unit") or match.group("short") or "m").lower()
                scale = 60 if unit.startswith("h") else 1 / 60 if unit.startswith("s") else 1
                found = _number(instead.group("a")) * scale
            continue
        before = text[max(0, match.start() - 10):match.start()]
        if _NOT_LENGTH_BEFORE.search(before) or _NOT_LENGTH_AFTER.search(
                text[match.end():match.end() + 15]):
            continue
        found = match
    if isinstance(found, float):
        return _clamp_minutes(found)
    if found is not None:
        return _clamp_minutes(_length_of(found))
    if expecting == "target_minutes":
        bare = _BARE_NUMBER.match(text)
        if bare:
            return _clamp_minutes(_number(bare.group(1)))
    if _SHORTER.search(text):
        return _clamp_minutes(known * 0.6) if known else 5.0
    if _LONGER.search(text):
        return _clamp_minutes(known * 1.5) if known else 20.0
    if _last(text, _SHORT):
        return 5.0
    if _last(text, _LONG):
        return 20.0
    return known


# --- focus --------------------------------------------------------------------------

_FOCUS_LEADS = re.compile(
    r"\b(?:change|switch|set|make|move|shift)\s+(?:the\s+)?focus\s+(?:to|on|onto|over\s+to)\s+"
    r"|\b(?:the\s+)?focus\s+(?:should\s+be|is|will\s+be|could\s+be)\s+(?:on\s+)?"
    r"|\b(?:focus(?:ed|es|ing)?|cent(?:er|re)(?:d|ed|ing)?|concentrat(?:e|ed|ing))\s+"
    r"(?:it\s+|more\s+|mainly\s+|mostly\s+|only\s+|just\s+)?(?:on|around)\s+"
    r"|\bwith\s+(?:a|an|some)\s+(?:\w+\s+)?(?:focus|emphasis)\s+on\s+"
    r"|\b(?:themed?\s+(?:around|on)|on\s+the\s+(?:theme|topic)\s+of|the\s+(?:theme|topic)\s+"
    r"(?:is|of|should\s+be))\s+"
    r"|(?:\bmake\s+it|\bit\s+should\s+be|\bsomething|\bit's|\bits|\bmostly|\bthem|\bbe|\bis"
    r"|\baffirmations?|\bmeditations?|\brituals?|\bone|\band|^|[,;:.!?])\s*(?:all\s+|mostly\s+|mainly\s+"
    r"|just\s+|more\s+)?about\s+", _I)
_FOCUS_NOT_LENGTH = re.compile(
    rf"^(?:{_NUMBER}\b|an?\s+(?:few|couple|quarter|half|hour|minute)\b|half\b|the\s+same\b)", _I)
_NO_FOCUS = re.compile(
    r"\b(?:no|without\s+(?:a|any)|drop\s+the|remove\s+the|forget\s+the|skip\s+the)\s+"
    r"(?:particular\s+|specific\s+|special\s+)?focus\b", _I)


def _focus(text: str, known: str) -> str:
    found = None
    for match in _matches(_FOCUS_LEADS, text):
        rest = text[match.end():]
        if _FOCUS_NOT_LENGTH.match(rest):
            continue
        value = _clause(text, match.end(), MAX_FOCUS)
        if _meaningful(value) or (value and len(value) >= 3):
            found = value
    if found:
        return found
    if _NO_FOCUS.search(text):
        return ""
    return known


# --- voice, pace, tone --------------------------------------------------------------

_PACES = re.compile(
    r"(?P<slow>\bslower\b|\bslowly\b|\bslow(?:\s+and\s+\w+)?\s+(?:pace|voice|speed|tempo|"
    r"delivery|reading)\b|\bslow\s*-?\s*paced\b|\b(?:pace|speed|tempo)\b[^.!?\n]{0,20}\bslow\b"
    r"|\bnot\s+(?:too|so)\s+(?:fast|quick)\b|\bunhurried\b|\btake\s+(?:it|your)\s+time\b"
    r"|\bslow\s+it\s+down\b|\bless\s+rushed\b)"
    r"|(?P<fast>\bfaster\b|\bquicker\s+(?:pace|tempo)\b|\bfast\s*-?\s*paced\b|\bspeak\s+"
    r"(?:quickly|fast|faster)\b|\bfast\s+(?:pace|voice|tempo|speed)\b|\bup\s*-?\s*tempo\b"
    r"|\bnot\s+(?:too|so)\s+slow\b|\bspeed\s+(?:it\s+)?up\b|\bbrisk\b)"
    r"|(?P<medium>\b(?:normal|natural|medium|regular|moderate|average|steady)\s+"
    r"(?:pace|speed|tempo)\b)", _I)
_TONES = re.compile(
    r"(?P<calm>\bcalm(?:ing|er)?\s+(?:voice|tone|delivery|way)\b|\bsoothing\b|\bsoft(?:ly)?\b"
    r"|\bgentle\s+(?:voice|tone)\b|\bgently\b|\bquiet(?:ly)?\b|\bserene\b|\bpeaceful\s+"
    r"(?:voice|tone)\b|\brelaxed\s+(?:voice|tone)\b|\bwhisper(?:ing|y)?\b|\btranquil\b)"
    r"|(?P<energetic>\benerg(?:etic|ising|izing)\b|\bupbeat\b|\bmotivat(?:ing|ional)\b"
    r"|\blively\b|\bpump\s+me\s+up\b|\bpunchy\b|\bdynamic\b|\benthusiastic\b|\bpowerful\s+"
    r"(?:voice|tone)\b|\bhigh[- ]energy\b)"
    r"|(?P<warm>\bwarm(?:er|th|ly|-hearted)?\b(?!\s*up)|\bkind(?:er|ly)?\s+(?:voice|tone)\b"
    r"|\bcaring\b|\bfriendly\s+(?:voice|tone)\b|\bnurturing\b|\bcompassionate\b"
    r"|\btender\b|\bloving\s+(?:voice|tone)\b)", _I)
_PACE_ALONE = {"slow": Pace.SLOW, "slowly": Pace.SLOW, "fast": Pace.FAST, "quick": Pace.FAST,
               "normal": Pace.MEDIUM, "medium": Pace.MEDIUM}
_TONE_ALONE = {"calm": Tone.CALM, "gentle": Tone.CALM, "relaxed": Tone.CALM, "warm": Tone.WARM,
               "kind": Tone.WARM, "energetic": Tone.ENERGETIC, "upbeat": Tone.ENERGETIC}
_VOICES = re.compile(
    r"(?P<female>\b(?:female|woman'?s?|women'?s|feminine|lady'?s?|girl'?s?)\s+voice\b)"
    r"|(?P<male>\b(?:male|man'?s?|men'?s|masculine|guy'?s?)\s+voice\b)"
    r"|\bvoice\s+(?:called|named)\s+(?P<named>[a-z0-9][a-z0-9_-]{0,63})\b", _I)


_BACKGROUNDS = re.compile(
    r"(?P<rain>\b(?:rain(?:fall|drops?)?|raining)\s+(?:sounds?|noise|background|in\s+the\s+"
    r"background)\b|\b(?:sounds?|noise)\s+of\s+(?:the\s+)?rain\b|\bwith\s+(?:soft\s+|gentle\s+)?"
    r"rain\b)"
    r"|(?P<brown_noise>\bbrown(?:ian)?\s+noise\b|\b(?:white|pink)\s+noise\b)"
    r"|(?P<drone>\bdrone\b|\bhum(?:ming)?\s+(?:sound|background)\b|\bsinging\s+bowls?\b)"
    r"|(?P<none>\bno\s+(?:background|music|sounds?|noise)\b|\bjust\s+(?:the|your)\s+voice\b"
    r"|\b(?:in\s+)?silence\s+(?:behind|underneath|in\s+the\s+background)\b)", _I)


def _style(text: str, known: Details, expecting: str) -> Details:
    pace, tone, voice = known.pace, known.tone, known.voice
    match = _last(text, _BACKGROUNDS)
    background = (Background(next(k for k, v in match.groupdict().items() if v))
                  if match else known.background)
    match = _last(text, _PACES)
    if match:
        pace = Pace(next(k for k, v in match.groupdict().items() if v))
    match = _last(text, _TONES)
    if match:
        tone = Tone(next(k for k, v in match.groupdict().items() if v))
    match = _last(text, _VOICES)
    if match:
        voice = (match.group("named") or next(k for k, v in match.groupdict().items() if v)
                 ).lower()
    if expecting == "style":
        words = re.findall(r"[a-z]+", text[:200].lower())
        pace = pace if pace != known.pace else next(
            (_PACE_ALONE[w] for w in words if w in _PACE_ALONE), pace)
        tone = tone if tone != known.tone else next(
            (_TONE_ALONE[w] for w in words if w in _TONE_ALONE), tone)
    return replace(known, pace=pace, tone=tone, voice=voice, background=background)


# --- short answers ------------------------------------------------------------------

_WORDS = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_SKIP_PHRASES = frozenset({
    "no", "nope", "nah", "skip", "skip it", "skip that", "pass", "none", "nothing", "no thanks",
    "no thank you", "not really", "that's fine", "thats fine", "it's fine", "its fine", "fine",
    "that's ok", "that's okay", "it's ok", "it's okay", "ok", "okay", "doesn't matter",
    "does not matter", "don't mind", "i don't mind", "dont mind", "whatever", "anything",
    "any", "you choose", "you decide", "up to you", "your choice", "surprise me",
    "no preference", "no preferences", "not sure", "i'm not sure", "i don't know", "dunno",
    "idk", "nothing in particular", "nothing special", "nothing really", "no idea", "n a",
    "whenever", "any time", "anytime", "all good", "next", "move on", "let's move on",
    "you pick", "default", "the default", "as usual", "the usual", "not important",
    "it doesn't matter", "no particular", "nothing specific", "not particularly", "rather not",
    "i'd rather not", "no need", "leave it", "as you like", "as you wish", "no that's fine",
    "no it's fine", "no thats fine", "that's all", "thats all",
})
_SKIP_FILLER = frozenset({"thanks", "thank", "you", "really", "at", "all", "please", "just",
                          "honestly", "um", "uh", "well", "oh", "i", "think", "guess", "so",
                          "for", "now", "today", "either", "particular"})
_YES = frozenset({"yes", "yeah", "yep", "yup", "sure", "ok", "okay", "confirm", "confirmed",
                  "perfect", "great", "good", "sounds", "lovely", "correct", "right", "exactly",
                  "absolutely", "definitely", "go", "ahead", "do", "it", "that", "that's", "thats",
                  "please", "create", "make", "let's", "lets", "alright", "fine", "love",
                  "brilliant", "awesome", "nice", "wonderful", "all", "is", "looks", "ready",
                  "start", "the", "one", "thanks", "thank", "you", "ya", "yas", "aye", "y"})
_YES_STRONG = frozenset({"yes", "yeah", "yep", "yup", "sure", "ok", "okay", "confirm",
                         "confirmed", "perfect", "great", "lovely", "correct", "absolutely",
                         "definitely", "ahead", "alright", "brilliant", "awesome", "wonderful",
                         "ya", "aye", "y", "good", "fine", "ready", "right", "exactly"})


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(_prepare(text[:400]))]


def is_skip(text: str) -> bool:
    """A short "no / skip / that's fine / no preference" answer."""
    words = _words(text)
    if not words or len(words) > 8:
        return False
    phrase = " ".join(words)
    if phrase in _SKIP_PHRASES:
        return True
    core = [w for w in words if w not in _SKIP_FILLER]
    return bool(core) and " ".join(core) in _SKIP_PHRASES


def is_affirmative(text: str) -> bool:
    """A short "yes / go ahead / sounds good" answer."""
    words = _words(text)
    if not words or len(words) > 8:
        return False
    return all(w in _YES for w in words) and any(w in _YES_STRONG for w in words)


_NAME_LEAD = re.compile(
    r"\b(?:call\s+me|my\s+name\s+is|my\s+name's|name's|i'm\s+called|i\s+am\s+called|"
    r"address\s+me\s+as|it's)\s+", _I)
_NAME = re.compile(r"[^\W\d_][\w'.-]{0,29}(?:[ ][^\W\d_][\w'.-]{0,29})?")
_I_AM = re.compile(r"^\s*(?i:i'm|i\s+am|im)\s+(?=[A-Z])")
_NOT_NAMES = frozenset({
    "fine", "ok", "okay", "good", "great", "whatever", "anything", "nothing", "no", "yes",
    "sure", "skip", "please", "thanks", "not", "the", "a", "an", "i", "you", "me", "my", "it",
    "that", "this", "just", "so", "very", "really", "tired", "sad", "happy", "stressed",
    "anxious", "here", "ready", "well", "alright", "calm", "slow", "slower", "fast", "warm",
    "energetic", "nobody", "anyone", "someone", "sorry", "hello", "hi", "hey", "nah", "nope",
    "yeah", "yep", "dunno", "idk", "none", "thank", "morning", "evening", "night", "afternoon",
    "ritual", "meditation", "affirmations", "affirmation", "minutes", "call", "name", "use",
    "say", "make", "by", "as", "and", "or", "but", "if", "what", "why", "how", "who", "when",
    "want", "like", "would", "could", "should", "can", "do", "don't", "is", "are", "am", "be",
    "to", "of", "in", "on", "for", "with", "your", "friend", "buddy", "love", "dear",
})


def _name_case(name: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in name.split()) if name == name.lower() else name


def extract_name(text: str, *, expecting: bool = False) -> str:
    """How the person asks to be addressed ("call me Sam", "my name is Ana"), or
    "". With `expecting` (the question was just asked), a bare name ("sam",
    "Mary Ann", "it's Jo") or "I'm Jo" counts too."""
    prepared = _prepare(text[:400]).strip()
    candidates: list[str] = []
    for match in _matches(_NAME_LEAD, prepared):
        if match.group(0).lower().startswith("it's") and not expecting:
            continue
        candidates.append(prepared[match.end():])
    if expecting:
        i_am = _I_AM.match(prepared)
        if i_am:
            candidates.append(prepared[i_am.end():])
        bare = prepared.strip(" .!,")
        if 0 < len(bare.split()) <= 2 and not is_skip(bare) and not is_affirmative(bare):
            candidates.append(bare)
    for candidate in candidates:
        match = _NAME.match(candidate.strip())
        if not match:
            continue
        kept: list[str] = []
        for word in match.group(0).split():
            if word.lower().strip(".'-") in _NOT_NAMES:
                break
            kept.append(word)
        name = " ".join(kept).strip(" .'-")
        if name and len(name) <= MAX_NAME:
            return _name_case(name)
    return ""


# --- all together -------------------------------------------------------------------


def _fallback(text: str, limit: int) -> str:
    """A whole short answer as a free-text detail, or "" when it is no answer (a
    question back, a yes or no, nothing but symbols)."""
    value = _tidy(_prepare(text), limit)
    if (not value or value.endswith("?") or is_skip(value) or is_affirmative(value)
            or not re.search(r"[^\W\d_]", value)):
        return ""
    value = re.sub(r"^(?:on|about|around|maybe|probably|i\s+guess|i\s+think|mostly|just)\s+",
                   "", value, flags=_I)
    return value.strip() if _meaningful(value) or len(value) >= 3 else ""


def _append(known: str, new: str, limit: int) -> str:
    if not new or new.lower() in known.lower():
        return known
    if not known:
        return new
    return _tidy(known.rstrip(" .;") + "; " + new, limit)


def _read(prepared: str, known: Details, expecting: str) -> Details:
    details = _style(prepared, known, expecting)
    return replace(
        details,
        content_type=_content_type(prepared, known.content_type, expecting),
        intent=_intent(prepared) or known.intent,
        situation=_append(known.situation, _situation(prepared), MAX_SITUATION),
        time_of_day=_time_of_day(prepared, known.time_of_day, expecting),
        target_minutes=_target_minutes(prepared, known.target_minutes, expecting),
        focus=_focus(prepared, known.focus),
    )


def extract(text: str, known: Details, *, expecting: str = "") -> Details:
    """`known`, updated by what `text` says. Never raises on any string.

    `expecting` names the detail the last question asked about ("intent",
    "situation", "focus", "target_minutes", "time_of_day", "content_type",
    "style"; "" for none): a bare answer then counts for it. A free-text
    detail takes the whole answer when nothing else in it is recognised."""
    if not isinstance(text, str) or not text.strip():
        return known
    prepared = _prepare(text)
    details = _read(prepared, known, expecting)
    if (expecting in FREE_TEXT and details.changed_fields(known) in ([], [expecting])
            and _read(prepared, Details(), expecting) == Details()
            and not _NO_FOCUS.search(prepared)):
        value = _fallback(prepared, {"intent": MAX_INTENT, "situation": MAX_SITUATION,
                                     "focus": MAX_FOCUS}[expecting])
        if value:
            details = replace(details, **{expecting: value})
    return details
