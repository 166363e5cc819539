"""Conversation's use cases: start, send, confirm, cancel, get.

A conversation lives in the session store as a versioned document; every
change is a compare-and-set of `version + 1` (which also restarts its time to
live). Two turns at once in one process wait for each other (a lock per
conversation); across processes the loser of a compare-and-set reloads and
plays its turn again, up to SAVE_ATTEMPTS times, then gives up with
ConcurrentTurn. The archive keeps the conversation when it starts, when it is
confirmed and when it ends, so that a conversation whose session timed out is
told apart from one that never existed, and a finished one can still be read.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, TypeVar

from core.conversation import extraction
from core.conversation.model import GATHERING_STATES, Conversation, Details, State
from core.shared import safety
from core.shared.creation import ContentType, Pace, TimeOfDay, Tone
from core.shared.errors import FailedPrecondition, InvalidArgument, NotFound
from core.shared.ids import uuid7
from core.shared.text import check_text

if TYPE_CHECKING:
    from ports.common import Clock
    from ports.conversation import ConversationArchive, Creations, Preferences, SessionStore

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Enum)

MAX_MESSAGE_CHARS = 4000
#: A conversation that needs more turns than this is going nowhere.
MAX_USER_TURNS = 40
#: Compare-and-set attempts of one turn before ConcurrentTurn.
SAVE_ATTEMPTS = 5
#: What is kept of a message that spoke of a crisis (the words are not stored,
#: nor used to personalise anything later).
WITHHELD = "[not kept]"


class ConcurrentTurn(FailedPrecondition):
    """Other turns of the same conversation kept winning; try again."""

    reason = "CONCURRENT_TURN"


# --- what is asked, in order ----------------------------------------------------------

#: The stage in which each detail is asked about.
STAGE_OF = {
    "content_type": State.INTENT_DISCOVERY,
    "intent": State.CONTEXT_GATHERING,
    "situation": State.CONTEXT_GATHERING,
    "target_minutes": State.PRACTICE_DETAILS,
    "time_of_day": State.PRACTICE_DETAILS,
    "focus": State.PRACTICE_DETAILS,
    "name": State.PERSONALIZATION,
    "style": State.PERSONALIZATION,
}
DETAIL_ORDER = ("content_type", "intent", "situation", "target_minutes", "time_of_day", "focus")
#: How many times a detail is asked before the conversation goes on without it
#: (the kind of content is needed: it is asked until it is known).
ASK_LIMIT = {"intent": 2, "situation": 1, "target_minutes": 2, "time_of_day": 2, "focus": 1}
DESCRIPTIONS = {
    "content_type": "the kind of content (affirmations, a guided meditation or a ritual)",
    "intent": "what it should help with",
    "situation": "what is going on for you",
    "target_minutes": "how long it should be",
    "time_of_day": "when you will use it",
    "focus": "what it should focus on",
    "name": "how you would like to be addressed (or skip)",
    "style": "how the voice should sound (or skip)",
    "answer": "an answer to the last question",
}

_TIME_PHRASE = {TimeOfDay.MORNING: "the morning", TimeOfDay.MIDDAY: "the middle of the day",
                TimeOfDay.EVENING: "the evening", TimeOfDay.NIGHT: "bedtime"}
_OPENERS = ("Got it", "Lovely", "Thank you", "Noted", "Great")


def _label(kind: ContentType | None) -> str:
    return kind.label if kind else "piece"


def _a(phrase: str) -> str:
    """`phrase` with its indefinite article ("an energetic tone", "a ritual")."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _minutes(value: float) -> str:
    number = f"{value:g}"
    return f"{number} minute" if value == 1 else f"{number} minutes"


_YOU = (("I am", "you are"), ("I was", "you were"), ("I'm", "you're"), ("I've", "you've"),
        ("I'll", "you'll"), ("I'd", "you'd"), ("myself", "yourself"), ("mine", "yours"),
        ("my", "your"), ("me", "you"), ("I", "you"), ("im", "you're"))


def _you(text: str) -> str:
    """What a person said, said back to them ("my exams" → "your exams")."""
    words = text.split(" ")
    out: list[str] = []
    i = 0
    while i < len(words):
        pair = " ".join(words[i:i + 2]).lower()
        for mine, yours in _YOU:
            if " " in mine and pair == mine.lower():
                out.append(yours)
                i += 2
                break
        else:
            bare = words[i].strip(".,!?;:")
            swap = next((yours for mine, yours in _YOU
                         if " " not in mine and bare.lower() == mine.lower()), None)
            out.append(words[i].replace(bare, swap, 1) if swap and bare else words[i])
            i += 1
    return " ".join(out)


class ConversationService:
    def __init__(self, sessions: SessionStore, creations: Creations, preferences: Preferences,
                 archive: ConversationArchive, clock: Clock, *,
                 session_ttl_seconds: int = 3600) -> None:
        self._sessions = sessions
        self._creations = creations
        self._preferences = preferences
        self._archive = archive
        self._clock = clock
        self.session_ttl_seconds = session_ttl_seconds
        self._locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = (
            weakref.WeakValueDictionary())

    # --- use cases ------------------------------------------------------------------

    async def start(self, user_id: uuid.UUID,
                    content_type: ContentType | None = None) -> Conversation:
        """A new conversation, greeting the person and asking the first thing it
        does not know (preferences already set are never asked)."""
        known = await self._preferences.get(user_id)
        now = self._clock.now()
        first_name = known.display_name.split()[0] if known.display_name.split() else ""
        conversation = Conversation(
            id=uuid7(), user_id=user_id, state=State.INTENT_DISCOVERY,
            details=Details(content_type=content_type, voice=known.voice,
                            pace=_enum(Pace, known.pace), tone=_enum(Tone, known.tone)),
            messages=[], version=0, create_time=now, update_time=now,
            name=first_name[:extraction.MAX_NAME])
        hello = f"Hi {conversation.name}! " if conversation.name else "Hi! "
        if content_type is not None:
            hello += f"Let's create your {content_type.label} together. "
        else:
            hello += "I'm waQup, and I'd love to make something just for you. "
        self._advance(conversation, now, opening=hello)
        if not await self._save(conversation):
            raise ConcurrentTurn("the conversation could not be started; try again")
        await self._keep(conversation)
        return conversation

    async def send(self, user_id: uuid.UUID, conversation_id: uuid.UUID,
                   text: str) -> Conversation:
        """The person says `text`; the answer's last message is waQup's reply."""
        if len(text) > MAX_MESSAGE_CHARS:
            raise InvalidArgument(f"a message is at most {MAX_MESSAGE_CHARS} characters",
                                  reason="MESSAGE_TOO_LONG", metadata={"field": "text"})
        if not text.strip():
            raise InvalidArgument("the message is empty", reason="EMPTY_MESSAGE",
                                  metadata={"field": "text"})
        check_text(text, "text")
        crisis = safety.detect_crisis(text) is not None

        async def step(conversation: Conversation, live: bool) -> bool:
            now = self._clock.now()
            if conversation.state.final or not live:
                error = (FailedPrecondition(
                    "this conversation has ended; start a new one", reason="CONVERSATION_CLOSED",
                    metadata={"state": conversation.state.value})
                    if conversation.state.final else _expired(generating=True))
                if crisis:  # whatever else happens, the person sees where to find help
                    error.message = f"{error.message}\n\n{safety.CRISIS_RESOURCES}"
                    error.args = (error.message,)
                    error.metadata["crisis"] = "true"
                raise error
            if crisis:
                self._crisis(conversation, now)
                return True
            if conversation.state is State.GENERATING:
                conversation.hear(text, now)
                status = await self._status(conversation)
                if not self._follow(conversation, status, now):
                    conversation.say(
                        f"I'm still creating your {_label(conversation.details.content_type)}. "
                        "I'll let you know as soon as it's ready.", "progress", now)
                return True
            if conversation.user_turns >= MAX_USER_TURNS:
                raise FailedPrecondition(
                    "this conversation has gone on for long: confirm it, cancel it or start "
                    "a new one", reason="TOO_MANY_MESSAGES")
            self._gather(conversation, text, now)
            return True

        return await self._turn(user_id, conversation_id, step)

    async def confirm(self, user_id: uuid.UUID, conversation_id: uuid.UUID,
                      request_id: str = "") -> Conversation:
        """Starts the creation of what the summary describes. Idempotent: the
        creation's request id is the conversation's, so however many confirms
        run (at once, retried, in several processes) one item is made; once
        generating, confirming again changes nothing. `request_id` is only
        logged."""

        async def step(conversation: Conversation, live: bool) -> bool:
            state = conversation.state
            if state in (State.GENERATING, State.COMPLETED):
                return False
            if state.final:
                raise FailedPrecondition(
                    f"this conversation has ended ({state.value}); start a new one",
                    reason="CONVERSATION_CLOSED", metadata={"state": state.value})
            if state is not State.CONFIRMATION:
                missing = self._missing(conversation)
                raise FailedPrecondition(
                    "not ready to confirm yet: still to settle "
                    + "; ".join(DESCRIPTIONS[m] for m in missing),
                    reason="NOT_READY_TO_CONFIRM", metadata={"missing": ",".join(missing)})
            status = await self._creations.start(
                conversation.user_id, f"conversation:{conversation.id}", conversation.brief(),
                conversation.id)
            now = self._clock.now()
            conversation.content_id = status.content_id
            conversation.creation_state = status.state
            conversation.pending = ""
            conversation.move_to(State.GENERATING, now)
            conversation.say(
                f"Wonderful. I'm creating your {_label(conversation.details.content_type)} "
                "now; it will be in your library in a few moments.", "progress", now)
            log.info("conversation confirmed", extra={
                "conversation_id": str(conversation.id), "content_id": str(status.content_id),
                "request_id": request_id})
            return True

        return await self._turn(user_id, conversation_id, step)

    async def cancel(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> Conversation:
        """Ends the conversation without creating anything. Idempotent; refused
        once the creation has started."""

        async def step(conversation: Conversation, live: bool) -> bool:
            state = conversation.state
            if state is State.CANCELLED:
                await self._keep(conversation)  # heals an archive write that failed
                return False
            if state in (State.GENERATING, State.COMPLETED):
                raise FailedPrecondition(
                    "the creation has started and can no longer be cancelled",
                    reason="CREATION_STARTED", metadata={"state": state.value})
            if state.final:
                raise FailedPrecondition(f"this conversation has ended ({state.value})",
                                         reason="CONVERSATION_CLOSED",
                                         metadata={"state": state.value})
            now = self._clock.now()
            conversation.pending = ""
            conversation.move_to(State.CANCELLED, now)
            conversation.say("Okay, I've stopped here. Nothing was created and nothing was "
                             "charged. Come back whenever you like.", "text", now)
            return True

        return await self._turn(user_id, conversation_id, step)

    async def get(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> Conversation:
        """The conversation; while generating, with the creation's latest news
        (and COMPLETED or FAILED once it has finished)."""

        async def step(conversation: Conversation, live: bool) -> bool:
            if conversation.state is not State.GENERATING:
                return False
            now = self._clock.now()
            status = await self._status(conversation)
            if not self._follow(conversation, status, now):
                return False
            if live:
                return True
            # The session timed out while the creation ran: the archive is the record.
            await self._keep(conversation)
            return False

        return await self._turn(user_id, conversation_id, step)

    def expire_time(self, conversation: Conversation) -> datetime:
        """When the session of `conversation` expires without further activity."""
        return conversation.update_time + timedelta(seconds=self.session_ttl_seconds)

    # --- turns ----------------------------------------------------------------------

    async def _turn(self, user_id: uuid.UUID, conversation_id: uuid.UUID,
                    step: Callable[[Conversation, bool], Awaitable[bool]]) -> Conversation:
        """Load, let `step` change the conversation (True: save it), save by
        compare-and-set; on a lost race, again with what won."""
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        async with lock:
            for _ in range(SAVE_ATTEMPTS):
                conversation, live = await self._load(user_id, conversation_id)
                before = conversation.state
                if not await step(conversation, live):
                    return conversation
                if await self._save(conversation):
                    if conversation.state is not before and conversation.state in (
                            State.GENERATING, State.COMPLETED, State.FAILED, State.CANCELLED):
                        await self._keep(conversation)
                    return conversation
                await asyncio.sleep(0)
        raise ConcurrentTurn("the conversation changed too often at once; try again",
                             metadata={"conversation_id": str(conversation_id)})

    async def _load(self, user_id: uuid.UUID,
                    conversation_id: uuid.UUID) -> tuple[Conversation, bool]:
        """The conversation and whether it is live (in the session store). Not
        live: from the archive, ended or still generating. A session that timed
        out before the creation started: SESSION_EXPIRED."""
        missing = NotFound(f"conversation {conversation_id} not found",
                           metadata={"resource": f"conversations/{conversation_id}"})
        stored = await self._sessions.load(conversation_id)
        if stored is not None:
            version, document = stored
            conversation = Conversation.from_document(document)
            if conversation.user_id != user_id:
                raise missing
            conversation.version = version
            return conversation, True
        document = await self._archive.load(conversation_id)
        if document is None:
            raise missing
        conversation = Conversation.from_document(document)
        if conversation.user_id != user_id:
            raise missing
        if conversation.state.gathering:
            conversation.pending = ""
            conversation.move_to(State.EXPIRED, self._clock.now())
            await self._keep(conversation)
        if conversation.state is State.EXPIRED:
            raise _expired()
        return conversation, False

    async def _save(self, conversation: Conversation) -> bool:
        saved = replace(conversation, version=conversation.version + 1)
        if await self._sessions.save(conversation.id, saved.version, saved.to_document(),
                                     self.session_ttl_seconds):
            conversation.version = saved.version
            return True
        return False

    async def _keep(self, conversation: Conversation) -> None:
        await self._archive.save(conversation.id, conversation.user_id,
                                 conversation.to_document(), conversation.state.value,
                                 conversation.content_id)

    # --- gathering ------------------------------------------------------------------

    def _gather(self, conversation: Conversation, text: str, now: datetime) -> None:
        """One turn before the creation: read the text, go as far as what is
        known allows, and reply with one question or the summary."""
        expecting = conversation.pending
        before = conversation.details
        conversation.hear(text, now)
        details = extraction.extract(text, before, expecting=expecting)
        if (expecting == "content_type" and details.content_type is None
                and conversation.asked.get("content_type", 0) >= 3
                and extraction.is_affirmative(text)):
            # They accepted the suggestion the third question makes.
            details = replace(details, content_type=ContentType.GUIDED_MEDITATION)
        changed = details.changed_fields(before)
        name = extraction.extract_name(text, expecting=expecting == "name")
        if name and name != conversation.name:
            conversation.name = name
            changed.append("name")
        conversation.details = details
        if (expecting and expecting != "content_type" and expecting not in changed
                and extraction.is_skip(text)):
            conversation.skipped = conversation.skipped | {expecting}
        ack = self._acknowledge(conversation, changed, before)
        if conversation.state is State.CONFIRMATION:
            self._reconfirm(conversation, text, changed, ack, now)
            return
        if (not changed and expecting not in ("", "name", "style")
                and expecting not in conversation.skipped):
            ack = "Sorry, I didn't quite catch that."
        self._advance(conversation, now, opening=ack + (" " if ack else ""))

    def _advance(self, conversation: Conversation, now: datetime, *, opening: str) -> None:
        """Move to the stage of the first thing still to ask (or CONFIRMATION)
        and say `opening` followed by that question (or the summary)."""
        todo = self._next(conversation)
        target = STAGE_OF[todo] if todo else State.CONFIRMATION
        if GATHERING_STATES.index(target) > GATHERING_STATES.index(conversation.state):
            conversation.move_to(target, now)
        if todo is None:
            conversation.pending = ""
            conversation.say(opening + self._summary(conversation), "summary", now)
            return
        conversation.say(opening + self._question(conversation, todo, echoed=bool(opening)),
                         "question", now)
        conversation.pending = todo
        conversation.asked = {**conversation.asked, todo: conversation.asked.get(todo, 0) + 1}

    def _reconfirm(self, conversation: Conversation, text: str, changed: list[str], ack: str,
                   now: datetime) -> None:
        if changed:
            conversation.say(f"{ack}\n{self._summary(conversation)}".lstrip(), "summary", now)
        elif extraction.is_affirmative(text):
            conversation.say(
                f"Lovely. Confirm when you're ready and I'll start creating your "
                f"{_label(conversation.details.content_type)}.", "question", now)
        elif extraction.is_skip(text):
            conversation.say(
                "What would you like to change? For example the length, the focus, the time "
                "of day or how the voice sounds.", "question", now)
        else:
            conversation.say(
                "I didn't catch a change there. You can say things like \"make it 15 "
                "minutes\" or \"focus on gratitude\".\n" + self._summary(conversation),
                "summary", now)

    def _personal(self, conversation: Conversation) -> str | None:
        """The one optional question of personalisation, if any is worth asking."""
        if conversation.asked.get("name") or conversation.asked.get("style"):
            return None
        if not conversation.name:
            return "name"
        details = conversation.details
        if details.pace is None and details.tone is None and not details.voice:
            return "style"
        return None

    def _done(self, conversation: Conversation, detail: str) -> bool:
        if getattr(conversation.details, detail) not in (None, ""):
            return True
        if detail == "content_type":
            return False
        return (detail in conversation.skipped
                or conversation.asked.get(detail, 0) >= ASK_LIMIT[detail])

    def _next(self, conversation: Conversation) -> str | None:
        for detail in DETAIL_ORDER:
            if not self._done(conversation, detail):
                return detail
        return self._personal(conversation)

    def _missing(self, conversation: Conversation) -> list[str]:
        """What stands between the conversation and its summary."""
        missing = [d for d in DETAIL_ORDER if not self._done(conversation, d)]
        personal = self._personal(conversation)
        if personal:
            missing.append(personal)
        return missing or [conversation.pending if conversation.pending in DESCRIPTIONS
                           else "answer"]

    # --- what waQup says ------------------------------------------------------------

    def _acknowledge(self, conversation: Conversation, changed: list[str],
                     before: Details) -> str:
        """A short echo of what this turn told waQup ("Got it: a ritual, 10 minutes.")."""
        details = conversation.details
        parts: list[str] = []
        for detail in changed:
            if detail == "content_type" and details.content_type:
                parts.append(_a(details.content_type.label))
            elif detail == "intent" and details.intent:
                parts.append(f"to help you {_you(details.intent)}")
            elif detail == "target_minutes" and details.target_minutes:
                parts.append(_minutes(details.target_minutes))
            elif detail == "time_of_day" and details.time_of_day:
                parts.append(f"for {_TIME_PHRASE[details.time_of_day]}")
            elif detail == "focus":
                parts.append(f"focusing on {_you(details.focus)}" if details.focus
                             else "no particular focus")
            elif detail == "pace" and details.pace:
                parts.append(_a(f"{details.pace.value} pace"))
            elif detail == "tone" and details.tone:
                parts.append(_a(f"{details.tone.value} tone"))
            elif detail == "voice" and details.voice:
                parts.append(f"the {details.voice} voice")
        opener = _OPENERS[conversation.user_turns % len(_OPENERS)]
        text = f"{opener}: {', '.join(parts)}." if parts else ""
        if "situation" in changed and details.situation != before.situation:
            text = (text + " " if text else "") + "Thank you for telling me what's going on."
        if "name" in changed:
            text = (text + " " if text else "") + f"Nice to meet you, {conversation.name}."
        return text

    def _question(self, conversation: Conversation, detail: str, *, echoed: bool) -> str:
        """One question about `detail`, phrased differently each time it is asked,
        and tied to what the person has said (unless `echoed` just now)."""
        details = conversation.details
        label = _label(details.content_type)
        goal = f" to help you {_you(details.intent)}" if details.intent and not echoed else ""
        asked = conversation.asked.get(detail, 0)
        if detail == "content_type":
            if asked >= 2:  # suggest something; "yes" then takes it
                return ("If you're not sure, a guided meditation is a gentle place to start. "
                        "Shall we go with that, or would you prefer affirmations or a ritual?"
                        if asked % 2 == 0 else
                        "Shall I make you a guided meditation? Or, if you'd rather, "
                        "affirmations (short positive statements) or a ritual (a practice "
                        "for a moment of your day).")
            variants = [
                f"What would you like to create{goal or ' today'}: an affirmation set, a "
                "guided meditation or a ritual?",
                f"Which would suit you best{goal}: affirmations, a guided meditation or a "
                "ritual?"]
        elif detail == "intent":
            variants = [f"What would you like this {label} to help you with?",
                        f"What feeling or change are you hoping this {label} brings you?"]
        elif detail == "situation":
            variants = [
                f"Is something going on right now that makes you want {_a(label)}{goal}, like "
                "an event coming up or a tough stretch? You can also say skip.",
                f"What's happening in your life around this at the moment? Anything you "
                f"share helps me shape the {label}. Or just say skip."]
        elif detail == "target_minutes":
            variants = [f"How long would you like the {label} to be? For example 5, 10 or 20 "
                        "minutes.",
                        "And how much time would you like to give it: a few minutes, or "
                        "more like a quarter of an hour?"]
        elif detail == "time_of_day":
            variants = [f"When will you usually listen to your {label}: in the morning, "
                        "during the day, in the evening or before bed?",
                        "Is it for a particular time of day, say first thing in the morning "
                        "or winding down at night?"]
        elif detail == "focus":
            variants = ["Is there anything you'd like it to focus on, such as your breathing, "
                        "gratitude or self-worth? If not, just say no.",
                        f"Anything in particular the {label} should centre on? Or say no "
                        "and I'll choose."]
        elif detail == "name":
            variants = ["One last, optional thing: how would you like me to address you? "
                        "Say skip if you'd rather not."]
        else:  # style
            variants = ["Last, optional question: how should the voice sound: slow and "
                        "calm, warm, or energetic? Or say skip and I'll choose."]
        return variants[(asked + _offset(conversation)) % len(variants)]

    def _summary(self, conversation: Conversation) -> str:
        details = conversation.details
        lines = ["Here's what I'll create:",
                 f"- {_a(_label(details.content_type)).capitalize()}"
                 + (f" of about {_minutes(details.target_minutes)}"
                    if details.target_minutes else ", of a length that suits it"),
                 f"- To help you {_you(details.intent)}" if details.intent
                 else "- For your general wellbeing"]
        if details.situation:
            lines.append(f"- Keeping in mind: {_you(details.situation)}")
        lines.append(f"- Focusing on {_you(details.focus)}" if details.focus
                     else "- With whatever focus fits best")
        lines.append(f"- For {_TIME_PHRASE[details.time_of_day]}" if details.time_of_day
                     else "- For any time of day")
        voice = [f"{details.pace.value} pace" if details.pace else "",
                 f"{details.tone.value} tone" if details.tone else "",
                 f"{details.voice} voice" if details.voice else ""]
        voice = [v for v in voice if v]
        lines.append("- Voice: " + (", ".join(voice) if voice else "I'll choose what suits it"))
        if conversation.name:
            lines.append(f"- Calling you {conversation.name}")
        lines.append("Shall I create it? Or tell me what to change.")
        return "\n".join(lines)

    # --- crisis and the creation ----------------------------------------------------

    def _crisis(self, conversation: Conversation, now: datetime) -> None:
        """Stop creating and answer with support. The words are not kept."""
        conversation.hear(WITHHELD, now)
        conversation.crisis = True
        conversation.pending = ""
        if conversation.state.gathering:
            conversation.failure_reason = "CRISIS_SUPPORT"
            conversation.move_to(State.CANCELLED, now)
            opening = ("Thank you for telling me. I'm going to stop creating here; nothing "
                       "has been charged.")
        else:
            opening = "Thank you for telling me."
        conversation.say(f"{opening}\n\n{safety.CRISIS_RESOURCES}", "refusal", now)
        log.info("crisis support shown", extra={"conversation_id": str(conversation.id)})

    async def _status(self, conversation: Conversation) -> _News:
        assert conversation.content_id is not None
        try:
            status = await self._creations.status(conversation.user_id,
                                                  conversation.content_id)
        except NotFound:  # the item was deleted meanwhile
            return _News("failed", "CONTENT_NOT_FOUND", "")
        return _News(status.state, status.failure_reason, status.title)

    def _follow(self, conversation: Conversation, status: _News, now: datetime) -> bool:
        """Take the creation's news into the conversation; False when there is none."""
        label = _label(conversation.details.content_type)
        if status.state == "ready":
            conversation.creation_state = status.state
            conversation.move_to(State.COMPLETED, now)
            title = f" \u201c{status.title}\u201d" if status.title else ""
            conversation.say(f"Your {label}{title} is ready. You'll find it in your library "
                             "whenever you want to listen.", "progress", now)
            return True
        if status.state == "failed":
            conversation.creation_state = status.state
            conversation.failure_reason = status.failure_reason or "CREATION_FAILED"
            conversation.move_to(State.FAILED, now)
            conversation.say(f"I'm sorry, something went wrong while creating your {label}. "
                             "Nothing was charged; you're welcome to try again.", "progress", now)
            return True
        if status.state != conversation.creation_state:
            conversation.creation_state = status.state
            if status.state == "rendering_audio":
                conversation.say(f"The words of your {label} are written; now I'm recording "
                                 "the voice.", "progress", now)
            return True
        return False


@dataclass(frozen=True)
class _News:
    """Where the creation stands (CreationStatus, or a deleted item)."""

    state: str
    failure_reason: str
    title: str


def _offset(conversation: Conversation) -> int:
    return conversation.id.int % 7


def _enum(kind: type[E], value: str) -> E | None:
    try:
        return kind(value) if value else None
    except ValueError:
        return None


def _expired(*, generating: bool = False) -> FailedPrecondition:
    if generating:
        return FailedPrecondition(
            "this conversation's session expired; its creation goes on and will appear in "
            "your library", reason="SESSION_EXPIRED")
    return FailedPrecondition(
        "this conversation expired after a while without activity; start a new one",
        reason="SESSION_EXPIRED")
