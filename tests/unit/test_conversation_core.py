"""The conversation core on in-memory fakes of its ports: the state machine and
its document, whole conversations for each kind of content, corrections,
idempotent and concurrent confirms, crisis support, ownership, expiry,
concurrent turns, and a property test over random sequences of operations."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.conversation.model import (
    ALLOWED,
    FINAL_STATES,
    Conversation,
    Details,
    DocumentError,
    InvalidTransition,
    State,
    transition,
)
from core.conversation.service import (
    MAX_MESSAGE_CHARS,
    SAVE_ATTEMPTS,
    WITHHELD,
    ConcurrentTurn,
    ConversationService,
)
from core.shared.creation import ContentType, Pace, TimeOfDay, Tone
from core.shared.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from core.shared.safety import CRISIS_RESOURCES
from ports.conversation import CreationStatus, KnownPreferences
from tests.unit.fakes import FakeClock

# --- fakes of the ports ---------------------------------------------------------------


class MemorySessions:
    """SessionStore: compare-and-set by version, expiry by the fake clock. Yields
    to the loop in load and save, so that concurrent turns interleave. Keeps
    every saved (version, state) to check the moves afterwards."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.data: dict[uuid.UUID, tuple[int, bytes, float]] = {}
        self.saved: dict[uuid.UUID, list[tuple[int, str]]] = {}
        self.lose_every_save = False

    def _live(self, session_id: uuid.UUID) -> tuple[int, bytes, float] | None:
        entry = self.data.get(session_id)
        if entry is not None and entry[2] <= self.clock.now().timestamp():
            del self.data[session_id]
            return None
        return entry

    async def load(self, session_id: uuid.UUID) -> tuple[int, bytes] | None:
        await asyncio.sleep(0)
        entry = self._live(session_id)
        return (entry[0], entry[1]) if entry else None

    async def save(self, session_id: uuid.UUID, version: int, document: bytes,
                   ttl_seconds: int) -> bool:
        await asyncio.sleep(0)
        if self.lose_every_save:
            return False
        entry = self._live(session_id)
        if (entry is None and version != 1) or (entry is not None and entry[0] != version - 1):
            return False
        self.data[session_id] = (version, document,
                                 self.clock.now().timestamp() + ttl_seconds)
        self.saved.setdefault(session_id, []).append(
            (version, json.loads(document)["state"]))
        return True

    async def delete(self, session_id: uuid.UUID) -> None:
        self.data.pop(session_id, None)

    async def close(self) -> None:
        pass


class FakeCreations:
    """Creations: idempotent by request id; `outcome` is what status answers."""

    def __init__(self) -> None:
        self.calls: list[tuple[uuid.UUID, str, object, uuid.UUID]] = []
        self.items: dict[str, uuid.UUID] = {}
        self.outcome = "generating_text"
        self.refuse: DomainError | None = None

    async def start(self, user_id: uuid.UUID, request_id: str, brief: object,
                    conversation_id: uuid.UUID) -> CreationStatus:
        self.calls.append((user_id, request_id, brief, conversation_id))
        await asyncio.sleep(0)
        if self.refuse is not None:
            raise self.refuse
        content_id = self.items.setdefault(request_id, uuid.uuid4())
        return CreationStatus(content_id=content_id, state="generating_text")

    async def status(self, user_id: uuid.UUID, content_id: uuid.UUID) -> CreationStatus:
        await asyncio.sleep(0)
        if content_id not in self.items.values():
            raise NotFound("no such content")
        if self.outcome == "failed":
            return CreationStatus(content_id, "failed", failure_reason="TEXT_GENERATION_FAILED")
        return CreationStatus(content_id, self.outcome, title="Calm Before Exams")

    async def history(self, user_id: uuid.UUID, limit: int) -> list[str]:
        return []


class FakePreferences:
    def __init__(self) -> None:
        self.known: dict[uuid.UUID, KnownPreferences] = {}

    async def get(self, user_id: uuid.UUID) -> KnownPreferences:
        return self.known.get(user_id, KnownPreferences())


class MemoryArchive:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, tuple[uuid.UUID, bytes, str, uuid.UUID | None]] = {}
        self.states: dict[uuid.UUID, list[str]] = {}

    async def save(self, conversation_id: uuid.UUID, user_id: uuid.UUID, document: bytes,
                   state: str, resulting_content_id: uuid.UUID | None) -> None:
        self.rows[conversation_id] = (user_id, document, state, resulting_content_id)
        self.states.setdefault(conversation_id, []).append(state)

    async def load(self, conversation_id: uuid.UUID) -> bytes | None:
        row = self.rows.get(conversation_id)
        return row[1] if row else None


class World:
    """The service and its fakes; `other()` is a second process on the same stores."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.sessions = MemorySessions(self.clock)
        self.creations = FakeCreations()
        self.preferences = FakePreferences()
        self.archive = MemoryArchive()
        self.service = self.other()

    def other(self) -> ConversationService:
        return ConversationService(self.sessions, self.creations, self.preferences,
                                   self.archive, self.clock, session_ttl_seconds=3600)


@pytest.fixture
def world() -> World:
    return World()


def reply(conversation: Conversation) -> str:
    last = conversation.last_reply
    assert last is not None
    return last.text


async def talk(world: World, user: uuid.UUID, *texts: str,
               content_type: ContentType | None = None) -> Conversation:
    conversation = await world.service.start(user, content_type)
    for text in texts:
        conversation = await world.service.send(user, conversation.id, text)
    return conversation


async def at_confirmation(world: World, user: uuid.UUID) -> Conversation:
    conversation = await talk(
        world, user, "I'd like a guided meditation to feel calmer before exams",
        "my finals start next week", "10 minutes before bed, focus on breathing", "skip")
    assert conversation.state is State.CONFIRMATION
    return conversation


# --- the model ------------------------------------------------------------------------


def test_transition_table_allows_only_forward_moves() -> None:
    assert set(ALLOWED) == set(State)
    for state in FINAL_STATES:
        assert ALLOWED[state] == frozenset()
    assert ALLOWED[State.GENERATING] == {State.COMPLETED, State.FAILED}
    assert transition(State.INTENT_DISCOVERY, State.CONFIRMATION) is State.CONFIRMATION
    for current, target in [(State.CONFIRMATION, State.INTENT_DISCOVERY),
                            (State.GENERATING, State.CANCELLED),
                            (State.COMPLETED, State.FAILED),
                            (State.INTENT_DISCOVERY, State.GENERATING),
                            (State.PERSONALIZATION, State.PERSONALIZATION)]:
        with pytest.raises(InvalidTransition):
            transition(current, target)


def test_document_round_trip_is_stable_and_versioned() -> None:
    clock = FakeClock()
    conversation = Conversation(
        id=uuid.uuid4(), user_id=uuid.uuid4(), state=State.PRACTICE_DETAILS,
        details=Details(content_type=ContentType.RITUAL, intent="feel grounded ✨",
                        time_of_day=TimeOfDay.MORNING, target_minutes=7.5, pace=Pace.SLOW,
                        tone=Tone.WARM),
        messages=[], version=3, create_time=clock.now(), update_time=clock.now(),
        content_id=uuid.uuid4(), name="Zoë", asked={"intent": 1},
        skipped=frozenset({"situation"}))
    conversation.hear("hi 👋", clock.now())
    conversation.say("hello", "question", clock.now())
    document = conversation.to_document()
    again = Conversation.from_document(document)
    assert again == conversation
    assert again.to_document() == document
    assert json.loads(document)["schema"] == 1
    newer = json.loads(document) | {"schema": 2}
    for bad in (json.dumps(newer).encode(), b"{", b"[]", b"\xff", b'{"schema": 1}'):
        with pytest.raises(DocumentError):
            Conversation.from_document(bad)


def test_details_to_brief() -> None:
    details = Details(content_type=ContentType.AFFIRMATION, intent="believe in myself",
                      target_minutes=5.0, tone=Tone.ENERGETIC)
    brief = details.to_brief("Sam")
    assert (brief.content_type, brief.intent, brief.target_minutes, brief.tone, brief.name) == (
        ContentType.AFFIRMATION, "believe in myself", 5.0, Tone.ENERGETIC, "Sam")
    assert Details(content_type=ContentType.RITUAL).to_brief().target_minutes == 0.0
    with pytest.raises(FailedPrecondition):
        Details().to_brief()


# --- whole conversations --------------------------------------------------------------


async def finish(world: World, user: uuid.UUID, conversation: Conversation) -> Conversation:
    """Confirm, check the creation started once with the conversation's request
    id, let it be ready, and follow it to COMPLETED."""
    confirmed = await world.service.confirm(user, conversation.id)
    assert confirmed.state is State.GENERATING
    assert confirmed.content_id is not None
    assert confirmed.messages[-1].kind == "progress"
    assert [c[1] for c in world.creations.calls] == [f"conversation:{conversation.id}"]
    assert (await world.service.get(user, conversation.id)).state is State.GENERATING
    world.creations.outcome = "ready"
    done = await world.service.get(user, conversation.id)
    assert done.state is State.COMPLETED
    assert "ready" in reply(done)
    row = world.archive.rows[conversation.id]
    assert (row[0], row[2], row[3]) == (user, "completed", confirmed.content_id)
    assert world.archive.states[conversation.id][-2:] == ["generating", "completed"]
    return done


async def test_meditation_in_four_turns(world: World) -> None:
    user = uuid.uuid4()
    conversation = await world.service.start(user, None)
    assert conversation.state is State.INTENT_DISCOVERY
    assert conversation.messages[0].kind == "question"
    assert "meditation" in reply(conversation) and "ritual" in reply(conversation)

    conversation = await world.service.send(
        user, conversation.id,
        "Hi! I'd like a guided meditation. I want to feel calmer before exams.")
    assert conversation.state is State.CONTEXT_GATHERING
    assert conversation.details.content_type is ContentType.GUIDED_MEDITATION
    assert conversation.details.intent == "feel calmer before exams"
    assert conversation.pending == "situation"
    assert "feel calmer before exams" in reply(conversation)  # refers to what was said

    conversation = await world.service.send(user, conversation.id,
                                            "My finals start next week and I can't sleep.")
    assert conversation.state is State.PRACTICE_DETAILS
    assert "finals start next week" in conversation.details.situation
    assert conversation.pending == "target_minutes"

    conversation = await world.service.send(
        user, conversation.id, "About 10 minutes, before bed, and focus on breathing please")
    assert conversation.state is State.PERSONALIZATION
    details = conversation.details
    assert (details.target_minutes, details.time_of_day, details.focus) == (
        10.0, TimeOfDay.NIGHT, "breathing")
    assert conversation.pending == "name"

    conversation = await world.service.send(user, conversation.id, "call me Sam")
    assert conversation.state is State.CONFIRMATION
    assert conversation.messages[-1].kind == "summary"
    summary = reply(conversation)
    for said in ("guided meditation", "10 minutes", "breathing", "bedtime", "Sam",
                 "feel calmer before exams"):
        assert said in summary
    brief = conversation.brief()
    assert brief.name == "Sam" and brief.content_type is ContentType.GUIDED_MEDITATION
    assert [m.role for m in conversation.messages] == ["assistant"] + ["user", "assistant"] * 4

    await finish(world, user, conversation)


async def test_affirmations_skip_what_preferences_already_say(world: World) -> None:
    user = uuid.uuid4()
    world.preferences.known[user] = KnownPreferences(voice="joe-us", pace="slow", tone="warm",
                                                     display_name="Ana Lima")
    conversation = await world.service.start(user, None)
    assert reply(conversation).startswith("Hi Ana!")
    conversation = await world.service.send(user, conversation.id, "affirmations please")
    assert (conversation.state, conversation.pending) == (State.CONTEXT_GATHERING, "intent")
    conversation = await world.service.send(user, conversation.id,
                                            "I want to believe in myself at work")
    assert conversation.pending == "situation"
    conversation = await world.service.send(user, conversation.id,
                                            "I have a big presentation on Friday")
    assert conversation.pending == "target_minutes"
    conversation = await world.service.send(user, conversation.id,
                                            "5 min in the morning, about self-worth")
    # Voice, pace, tone and name are known: no personalisation question at all.
    assert conversation.state is State.CONFIRMATION
    details = conversation.details
    assert (details.voice, details.pace, details.tone, conversation.name) == (
        "joe-us", Pace.SLOW, Tone.WARM, "Ana")
    assert (details.target_minutes, details.time_of_day, details.focus) == (
        5.0, TimeOfDay.MORNING, "self-worth")
    assert "slow pace, warm tone, joe-us voice" in reply(conversation)
    assert not any("voice should sound" in m.text or "address you" in m.text
                   for m in conversation.messages)
    await finish(world, user, conversation)


async def test_ritual_started_with_its_type(world: World) -> None:
    user = uuid.uuid4()
    world.preferences.known[user] = KnownPreferences(display_name="Jo")
    conversation = await world.service.start(user, ContentType.RITUAL)
    assert conversation.state is State.CONTEXT_GATHERING  # the type is known already
    assert "ritual" in reply(conversation) and conversation.pending == "intent"
    conversation = await world.service.send(user, conversation.id,
                                            "I want to start my day with more energy")
    assert conversation.details.intent == "start my day with more energy"
    conversation = await world.service.send(user, conversation.id, "skip")
    assert "situation" in conversation.skipped
    assert conversation.state is State.PRACTICE_DETAILS
    conversation = await world.service.send(
        user, conversation.id, "a quarter of an hour every morning, focusing on gratitude")
    assert (conversation.state, conversation.pending) == (State.PERSONALIZATION, "style")
    conversation = await world.service.send(user, conversation.id, "energetic and faster")
    assert conversation.state is State.CONFIRMATION
    details = conversation.details
    assert (details.content_type, details.target_minutes, details.time_of_day,
            details.focus, details.tone, details.pace) == (
        ContentType.RITUAL, 15.0, TimeOfDay.MORNING, "gratitude", Tone.ENERGETIC, Pace.FAST)
    await finish(world, user, conversation)


async def test_never_asks_for_what_the_first_message_said(world: World) -> None:
    user = uuid.uuid4()
    conversation = await talk(
        world, user, "I want a 10 minute morning ritual to feel grounded before work")
    details = conversation.details
    assert (details.content_type, details.target_minutes, details.time_of_day,
            details.intent) == (ContentType.RITUAL, 10.0, TimeOfDay.MORNING,
                                "feel grounded before work")
    assert conversation.pending == "situation"
    conversation = await world.service.send(user, conversation.id, "nothing in particular")
    assert conversation.pending == "focus"  # length and time of day are known: not asked
    asked = " ".join(m.text for m in conversation.messages if m.role == "assistant")
    assert "How long" not in asked and "time of day" not in asked


async def test_an_unclear_answer_is_asked_again_differently(world: World) -> None:
    user = uuid.uuid4()
    conversation = await world.service.start(user, None)
    questions = [reply(conversation)]
    for text in ("hmm", "🤷", "dunno"):
        conversation = await world.service.send(user, conversation.id, text)
        assert conversation.state is State.INTENT_DISCOVERY
        questions.append(reply(conversation))
    assert len(set(questions)) == len(questions)
    assert "guided meditation is a gentle place to start" in questions[-2]
    assert "Shall I make you a guided meditation?" in questions[-1]
    conversation = await world.service.send(user, conversation.id, "ok sure")
    assert conversation.details.content_type is ContentType.GUIDED_MEDITATION
    assert conversation.state is State.CONTEXT_GATHERING


async def test_corrections_at_confirmation_re_summarise(world: World) -> None:
    user = uuid.uuid4()
    conversation = await at_confirmation(world, user)
    conversation = await world.service.send(user, conversation.id,
                                            "actually make it 15 minutes")
    assert conversation.state is State.CONFIRMATION
    assert conversation.details.target_minutes == 15.0
    assert conversation.messages[-1].kind == "summary" and "15 minutes" in reply(conversation)
    conversation = await world.service.send(user, conversation.id, "no, make it a ritual")
    assert conversation.details.content_type is ContentType.RITUAL
    assert "A ritual" in reply(conversation)
    conversation = await world.service.send(user, conversation.id,
                                            "change the focus to gratitude")
    assert conversation.details.focus == "gratitude" and "gratitude" in reply(conversation)
    conversation = await world.service.send(user, conversation.id, "in the evening, slower")
    assert (conversation.details.time_of_day, conversation.details.pace) == (
        TimeOfDay.EVENING, Pace.SLOW)
    conversation = await world.service.send(user, conversation.id, "no")
    assert conversation.messages[-1].kind == "question" and "change" in reply(conversation)
    conversation = await world.service.send(user, conversation.id, "yes, sounds good")
    assert conversation.state is State.CONFIRMATION and "Confirm" in reply(conversation)
    brief = (await world.service.confirm(user, conversation.id)).brief()
    assert (brief.content_type, brief.target_minutes, brief.focus, brief.time_of_day) == (
        ContentType.RITUAL, 15.0, "gratitude", TimeOfDay.EVENING)


# --- confirm ----------------------------------------------------------------------------


async def test_confirm_before_the_summary_says_what_is_missing(world: World) -> None:
    user = uuid.uuid4()
    conversation = await talk(world, user, "a meditation please")
    with pytest.raises(FailedPrecondition) as refused:
        await world.service.confirm(user, conversation.id)
    assert refused.value.reason == "NOT_READY_TO_CONFIRM"
    assert refused.value.metadata["missing"].startswith("intent")
    assert "what it should help with" in refused.value.message
    assert world.creations.calls == []


async def test_confirm_is_idempotent(world: World) -> None:
    user = uuid.uuid4()
    conversation = await at_confirmation(world, user)
    first = await world.service.confirm(user, conversation.id, "req-1")
    again = await world.service.confirm(user, conversation.id, "req-2")
    assert again.to_document() == first.to_document()
    assert len(world.creations.calls) == 1
    world.creations.outcome = "ready"
    assert (await world.service.get(user, conversation.id)).state is State.COMPLETED
    assert (await world.service.confirm(user, conversation.id)).state is State.COMPLETED
    assert len(world.creations.calls) == 1


async def test_concurrent_confirms_create_one_item(world: World) -> None:
    user = uuid.uuid4()
    conversation = await at_confirmation(world, user)
    results = await asyncio.gather(*(world.service.confirm(user, conversation.id)
                                     for _ in range(3)))
    assert len(world.creations.calls) == 1  # one process: the turns wait for each other
    assert {r.content_id for r in results} == {results[0].content_id}

    other = await at_confirmation(world, user)
    processes = [world.other() for _ in range(3)]
    results = await asyncio.gather(*(p.confirm(user, other.id) for p in processes))
    # Several processes may each call start, always with the conversation's request id.
    calls = [c for c in world.creations.calls if c[3] == other.id]
    assert calls and {c[1] for c in calls} == {f"conversation:{other.id}"}
    assert {r.content_id for r in results} == {world.creations.items[f"conversation:{other.id}"]}
    assert all(r.state is State.GENERATING for r in results)
    states = [s for _, s in world.sessions.saved[other.id]]
    assert states.count("generating") == 1


@pytest.mark.parametrize("refusal", [
    FailedPrecondition("2 credits needed, 0 available", reason="INSUFFICIENT_CREDITS"),
    ResourceExhausted("too fast", reason="CREATION_RATE_LIMITED"),
])
async def test_a_refused_creation_leaves_the_summary_to_confirm_again(
        world: World, refusal: DomainError) -> None:
    user = uuid.uuid4()
    conversation = await at_confirmation(world, user)
    world.creations.refuse = refusal
    with pytest.raises(type(refusal)) as raised:
        await world.service.confirm(user, conversation.id)
    assert raised.value.reason == refusal.reason
    assert (await world.service.get(user, conversation.id)).state is State.CONFIRMATION
    world.creations.refuse = None  # credits bought
    assert (await world.service.confirm(user, conversation.id)).state is State.GENERATING
    assert {c[1] for c in world.creations.calls} == {f"conversation:{conversation.id}"}


async def test_a_failed_creation_ends_failed_with_its_reason(world: World) -> None:
    user = uuid.uuid4()
    conversation = await at_confirmation(world, user)
    await world.service.confirm(user, conversation.id)
    world.creations.outcome = "rendering_audio"
    progressed = await world.service.get(user, conversation.id)
    assert progressed.state is State.GENERATING and "recording" in reply(progressed)
    assert (await world.service.get(user, conversation.id)).version == progressed.version
    world.creations.outcome = "failed"
    failed = await world.service.get(user, conversation.id)
    assert (failed.state, failed.failure_reason) == (State.FAILED, "TEXT_GENERATION_FAILED")
    assert "Nothing was charged" in reply(failed)
    assert world.archive.rows[conversation.id][2] == "failed"
    with pytest.raises(FailedPrecondition) as closed:
        await world.service.send(user, conversation.id, "hello?")
    assert closed.value.reason == "CONVERSATION_CLOSED"


async def test_while_generating_a_message_gets_progress(world: World) -> None:
    user = uuid.uuid4()
    conversation = await at_confirmation(world, user)
    await world.service.confirm(user, conversation.id)
    answered = await world.service.send(user, conversation.id, "is it done yet?")
    assert answered.state is State.GENERATING and answered.messages[-1].kind == "progress"
    world.creations.outcome = "ready"
    assert (await world.service.send(user, conversation.id, "now?")).state is State.COMPLETED


# --- cancel, crisis -------------------------------------------------------------------


async def test_cancel_is_idempotent_and_refused_once_generating(world: World) -> None:
    user = uuid.uuid4()
    conversation = await talk(world, user, "a ritual")
    cancelled = await world.service.cancel(user, conversation.id)
    assert cancelled.state is State.CANCELLED and cancelled.failure_reason == ""
    assert (await world.service.cancel(user, conversation.id)).version == cancelled.version
    assert world.archive.rows[conversation.id][2] == "cancelled"
    with pytest.raises(FailedPrecondition) as closed:
        await world.service.confirm(user, conversation.id)
    assert closed.value.reason == "CONVERSATION_CLOSED"

    started = await at_confirmation(world, user)
    await world.service.confirm(user, started.id)
    with pytest.raises(FailedPrecondition) as refused:
        await world.service.cancel(user, started.id)
    assert refused.value.reason == "CREATION_STARTED"


async def test_crisis_language_stops_the_creation_with_resources(world: World) -> None:
    user = uuid.uuid4()
    conversation = await talk(world, user, "I'd like a meditation")
    stopped = await world.service.send(user, conversation.id,
                                       "honestly I just want to kill myself")
    assert stopped.state is State.CANCELLED
    assert (stopped.crisis, stopped.failure_reason) == (True, "CRISIS_SUPPORT")
    assert stopped.messages[-1].kind == "refusal" and CRISIS_RESOURCES in reply(stopped)
    assert stopped.messages[-2].text == WITHHELD  # the words are not kept
    assert world.creations.calls == []
    assert world.archive.rows[conversation.id][2] == "cancelled"
    with pytest.raises(FailedPrecondition) as closed:
        await world.service.confirm(user, conversation.id)
    assert closed.value.reason == "CONVERSATION_CLOSED"
    with pytest.raises(FailedPrecondition) as again:
        await world.service.send(user, conversation.id, "I want to end it all")
    assert again.value.reason == "CONVERSATION_CLOSED"
    assert CRISIS_RESOURCES in again.value.message  # help is shown even then


async def test_crisis_while_generating_answers_with_resources(world: World) -> None:
    user = uuid.uuid4()
    conversation = await at_confirmation(world, user)
    await world.service.confirm(user, conversation.id)
    answered = await world.service.send(user, conversation.id, "my partner hits me")
    assert answered.state is State.GENERATING and answered.crisis
    assert answered.messages[-1].kind == "refusal"


# --- ownership, expiry, input -----------------------------------------------------------


async def test_another_persons_conversation_is_not_found(world: World) -> None:
    owner, stranger = uuid.uuid4(), uuid.uuid4()
    conversation = await talk(world, owner, "affirmations")
    messages = set()
    for conversation_id, user in ((conversation.id, stranger), (uuid.uuid4(), owner)):
        for call in (world.service.get(user, conversation_id),
                     world.service.send(user, conversation_id, "hi"),
                     world.service.confirm(user, conversation_id),
                     world.service.cancel(user, conversation_id)):
            with pytest.raises(NotFound) as missing:
                await call
            messages.add(missing.value.message.replace(str(conversation_id), "ID"))
    assert messages == {"conversation ID not found"}
    world.clock.advance(timedelta(hours=2))  # expired: still NOT_FOUND for a stranger
    with pytest.raises(NotFound):
        await world.service.get(stranger, conversation.id)


async def test_an_expired_session_is_told_apart_from_a_missing_one(world: World) -> None:
    user = uuid.uuid4()
    conversation = await talk(world, user, "a meditation")
    world.clock.advance(timedelta(minutes=50))
    conversation = await world.service.send(user, conversation.id, "to sleep better")
    world.clock.advance(timedelta(minutes=50))  # activity restarted the hour
    assert (await world.service.get(user, conversation.id)).state is State.CONTEXT_GATHERING
    world.clock.advance(timedelta(minutes=61))
    for call in (world.service.get(user, conversation.id),
                 world.service.send(user, conversation.id, "hello"),
                 world.service.confirm(user, conversation.id),
                 world.service.cancel(user, conversation.id)):
        with pytest.raises(FailedPrecondition) as expired:
            await call
        assert expired.value.reason == "SESSION_EXPIRED"
        assert "expired" in expired.value.message
    assert world.archive.rows[conversation.id][2] == "expired"
    with pytest.raises(NotFound):
        await world.service.get(user, uuid.uuid4())


async def test_finished_conversations_outlive_their_session(world: World) -> None:
    user = uuid.uuid4()
    done = await finish(world, user, await at_confirmation(world, user))
    world.clock.advance(timedelta(hours=3))
    archived = await world.service.get(user, done.id)
    assert (archived.state, archived.content_id) == (State.COMPLETED, done.content_id)
    assert (await world.service.confirm(user, done.id)).state is State.COMPLETED
    with pytest.raises(FailedPrecondition) as closed:
        await world.service.send(user, done.id, "thanks")
    assert closed.value.reason == "CONVERSATION_CLOSED"


async def test_a_creation_is_followed_after_the_session_expired(world: World) -> None:
    user = uuid.uuid4()
    conversation = await at_confirmation(world, user)
    await world.service.confirm(user, conversation.id)
    world.clock.advance(timedelta(hours=2))
    assert (await world.service.get(user, conversation.id)).state is State.GENERATING
    world.creations.outcome = "ready"
    assert (await world.service.get(user, conversation.id)).state is State.COMPLETED
    assert world.archive.rows[conversation.id][2] == "completed"
    with pytest.raises(FailedPrecondition) as refused:
        await world.service.cancel(user, conversation.id)
    assert refused.value.reason == "CREATION_STARTED"


@pytest.mark.parametrize(("text", "reason"), [
    ("", "EMPTY_MESSAGE"), ("  \n\t ", "EMPTY_MESSAGE"),
    ("x" * (MAX_MESSAGE_CHARS + 1), "MESSAGE_TOO_LONG"),
    ("hi\x00there", "INVALID_CHARACTERS"), ("a\u202eb", "INVALID_CHARACTERS"),
])
async def test_bad_messages_are_refused(world: World, text: str, reason: str) -> None:
    user = uuid.uuid4()
    conversation = await world.service.start(user, None)
    with pytest.raises(InvalidArgument) as refused:
        await world.service.send(user, conversation.id, text)
    assert refused.value.reason == reason
    long = await world.service.send(user, conversation.id, "ritual " * 571 + "abc")
    assert len(long.messages[-2].text) == MAX_MESSAGE_CHARS
    assert long.details.content_type is ContentType.RITUAL


# --- concurrency ------------------------------------------------------------------------


async def test_concurrent_turns_lose_nothing(world: World) -> None:
    user = uuid.uuid4()
    conversation = await world.service.start(user, None)
    texts = ["a ritual", "I want to feel lighter", "10 minutes", "in the evening",
             "focus on my breath", "I have a new job"]
    processes = [world.other() for _ in range(3)]
    await asyncio.gather(*(processes[i % 3].send(user, conversation.id, t)
                           for i, t in enumerate(texts)), return_exceptions=False)
    final = await world.service.get(user, conversation.id)
    said = [m.text for m in final.messages if m.role == "user"]
    assert sorted(said) == sorted(texts)
    assert final.version == 1 + len(texts)
    versions = [v for v, _ in world.sessions.saved[conversation.id]]
    assert versions == list(range(1, len(texts) + 2))
    d = final.details
    assert (d.content_type, d.target_minutes, d.time_of_day) == (
        ContentType.RITUAL, 10.0, TimeOfDay.EVENING)


async def test_a_turn_that_keeps_losing_gives_up(world: World) -> None:
    user = uuid.uuid4()
    conversation = await world.service.start(user, None)
    world.sessions.lose_every_save = True
    with pytest.raises(ConcurrentTurn) as lost:
        await world.service.send(user, conversation.id, "a ritual")
    assert lost.value.reason == "CONCURRENT_TURN"
    assert SAVE_ATTEMPTS > 1


# --- property ---------------------------------------------------------------------------

PHRASES = [
    "a meditation", "affirmations please", "I'd like a morning ritual", "guided",
    "I want to feel calmer before exams", "I have a job interview tomorrow", "10 minutes",
    "a quarter of an hour", "half an hour", "before bed", "in the morning", "focus on breathing",
    "about self-worth", "slower", "energetic", "a warm tone", "call me Sam", "skip", "no",
    "yes", "that's fine", "actually make it 15 minutes", "no, make it a ritual",
    "change the focus to gratitude", "I want to kill myself", "nothing in particular", "?",
]
TEXT = st.one_of(
    st.sampled_from(PHRASES),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=60),
    st.lists(st.sampled_from(PHRASES), min_size=2, max_size=4).map(", ".join),
)
OPERATION = st.one_of(
    st.tuples(st.just("send"), TEXT),
    st.tuples(st.just("confirm"), st.none()),
    st.tuples(st.just("cancel"), st.none()),
    st.tuples(st.just("get"), st.none()),
    st.tuples(st.just("outcome"), st.sampled_from(["ready", "failed", "rendering_audio"])),
    st.tuples(st.just("refuse"), st.booleans()),
    st.tuples(st.just("wait"), st.sampled_from([10, 3700])),
    st.tuples(st.just("stranger"), st.none()),
)


def reachable(state: State) -> set[State]:
    """Every state a conversation in `state` can come to, in one move or more."""
    found: set[State] = set()
    todo = [state]
    while todo:
        for target in ALLOWED[todo.pop()] - found:
            found.add(target)
            todo.append(target)
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content_type=st.sampled_from([None, *ContentType]),
       operations=st.lists(OPERATION, max_size=25))
def test_any_sequence_of_operations_keeps_the_rules(
        content_type: ContentType | None, operations: list[tuple[str, object]]) -> None:
    """Whatever is done, in whatever order: only DomainErrors (and never an
    impossible move) come out, and every stored change of state is ALLOWED."""

    async def scenario() -> None:
        world = World()
        user = uuid.uuid4()
        conversation = await world.service.start(user, content_type)
        seen = conversation.state
        for operation, argument in operations:
            try:
                if operation == "send":
                    assert isinstance(argument, str)
                    result = await world.service.send(user, conversation.id, argument)
                elif operation == "confirm":
                    result = await world.service.confirm(user, conversation.id)
                elif operation == "cancel":
                    result = await world.service.cancel(user, conversation.id)
                elif operation == "get":
                    result = await world.service.get(user, conversation.id)
                elif operation == "stranger":
                    with pytest.raises(NotFound):
                        await world.service.get(uuid.uuid4(), conversation.id)
                    continue
                elif operation == "outcome":
                    world.creations.outcome = str(argument)
                    continue
                elif operation == "refuse":
                    world.creations.refuse = FailedPrecondition(
                        "no credits", reason="INSUFFICIENT_CREDITS") if argument else None
                    continue
                else:
                    assert isinstance(argument, int)
                    world.clock.advance(timedelta(seconds=argument))
                    continue
            except DomainError as error:
                assert not isinstance(error, InvalidTransition)
                assert not isinstance(error, ConcurrentTurn)
                continue
            assert result.id == conversation.id and result.user_id == user
            if result.state is not seen:
                assert result.state in ALLOWED[seen]
                seen = result.state
            assert result.last_reply is not None
        stored = world.sessions.saved[conversation.id]
        assert [v for v, _ in stored] == list(range(1, len(stored) + 1))
        for (_, before), (_, after) in itertools.pairwise(stored):
            assert after == before or State(after) in ALLOWED[State(before)]
        archived = [State(s) for s in world.archive.states[conversation.id]]
        for before, after in itertools.pairwise(archived):
            assert after is before or after in reachable(before)
        assert len({c[1] for c in world.creations.calls}) <= 1

    asyncio.run(scenario())
