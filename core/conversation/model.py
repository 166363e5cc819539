"""The conversation's domain model: its states and the only moves between them,
what has been gathered so far, the messages exchanged, and the document a
session store and the archive keep.

A conversation moves forward only: INTENT_DISCOVERY (which kind of content) →
CONTEXT_GATHERING (what for, and what is going on) → PRACTICE_DETAILS (length,
time of day, focus) → PERSONALIZATION (one optional question) → CONFIRMATION
(a summary to confirm or correct) → GENERATING → COMPLETED or FAILED. Stages
whose details are already known are skipped. Before GENERATING a conversation
can be CANCELLED (by the person, or by waQup when it reads crisis language) or
EXPIRED (its session timed out); once generating it can only finish.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from core.shared.creation import Background, Brief, ContentType, Pace, TimeOfDay, Tone
from core.shared.errors import FailedPrecondition


class State(StrEnum):
    INTENT_DISCOVERY = "intent_discovery"
    CONTEXT_GATHERING = "context_gathering"
    PRACTICE_DETAILS = "practice_details"
    PERSONALIZATION = "personalization"
    CONFIRMATION = "confirmation"
    GENERATING = "generating"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES

    @property
    def gathering(self) -> bool:
        """Still talking: the person may send text that changes the details."""
        return self in GATHERING_STATES


#: The stages that gather details, in order.
GATHERING_STATES: tuple[State, ...] = (
    State.INTENT_DISCOVERY, State.CONTEXT_GATHERING, State.PRACTICE_DETAILS,
    State.PERSONALIZATION, State.CONFIRMATION)
FINAL_STATES = frozenset({State.COMPLETED, State.FAILED, State.CANCELLED, State.EXPIRED})


def _forward_from(state: State) -> frozenset[State]:
    later = GATHERING_STATES[GATHERING_STATES.index(state) + 1:]
    return frozenset(later) | {State.CANCELLED, State.EXPIRED}


#: Every move a conversation may make; anything else is a bug (`transition` raises).
ALLOWED: dict[State, frozenset[State]] = {
    State.INTENT_DISCOVERY: _forward_from(State.INTENT_DISCOVERY),
    State.CONTEXT_GATHERING: _forward_from(State.CONTEXT_GATHERING),
    State.PRACTICE_DETAILS: _forward_from(State.PRACTICE_DETAILS),
    State.PERSONALIZATION: _forward_from(State.PERSONALIZATION),
    State.CONFIRMATION: frozenset({State.GENERATING, State.CANCELLED, State.EXPIRED}),
    State.GENERATING: frozenset({State.COMPLETED, State.FAILED}),
    State.COMPLETED: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
    State.EXPIRED: frozenset(),
}


class InvalidTransition(FailedPrecondition):
    reason = "INVALID_STATE_TRANSITION"


def transition(current: State, target: State) -> State:
    """`target`, if a conversation in `current` may move there; else InvalidTransition."""
    if target not in ALLOWED[current]:
        raise InvalidTransition(
            f"a conversation cannot move from {current.value} to {target.value}",
            metadata={"from": current.value, "to": target.value})
    return target


@dataclass(frozen=True)
class Details:
    """What the conversation has gathered; None / "" means not said (yet)."""

    content_type: ContentType | None = None
    intent: str = ""
    situation: str = ""
    time_of_day: TimeOfDay | None = None
    target_minutes: float | None = None
    focus: str = ""
    voice: str = ""
    pace: Pace | None = None
    tone: Tone | None = None
    background: Background | None = None

    def to_brief(self, name: str = "") -> Brief:
        """The brief for the content context; FailedPrecondition without a type."""
        if self.content_type is None:
            raise FailedPrecondition("the kind of content is not known yet",
                                     reason="NOT_READY_TO_CONFIRM",
                                     metadata={"missing": "content_type"})
        return Brief(content_type=self.content_type, intent=self.intent,
                     situation=self.situation, time_of_day=self.time_of_day,
                     target_minutes=float(self.target_minutes or 0.0), focus=self.focus,
                     voice=self.voice, pace=self.pace, tone=self.tone, name=name,
                     background=self.background)

    def changed_fields(self, before: Details) -> list[str]:
        """Names of the fields whose value differs from `before`, in field order."""
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(before, f.name)]

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Details:
        def enum(kind: type[StrEnum], value: object) -> Any:
            return kind(value) if value else None

        minutes = data.get("target_minutes")
        return cls(content_type=enum(ContentType, data.get("content_type")),
                   intent=str(data.get("intent") or ""),
                   situation=str(data.get("situation") or ""),
                   time_of_day=enum(TimeOfDay, data.get("time_of_day")),
                   target_minutes=float(minutes) if minutes else None,
                   focus=str(data.get("focus") or ""), voice=str(data.get("voice") or ""),
                   pace=enum(Pace, data.get("pace")), tone=enum(Tone, data.get("tone")),
                   background=enum(Background, data.get("background")))


#: Kinds of message: a question, the summary to confirm, a refusal to go on
#: (crisis support), news about the creation, or anything else (what people write).
MESSAGE_KINDS = frozenset({"question", "summary", "refusal", "progress", "text"})
ROLES = frozenset({"user", "assistant"})


@dataclass(frozen=True)
class Message:
    """One turn of the conversation."""

    role: str
    text: str
    kind: str
    time: datetime

    def __post_init__(self) -> None:
        if self.role not in ROLES or self.kind not in MESSAGE_KINDS:
            raise ValueError(f"bad message role/kind: {self.role}/{self.kind}")


Turn = Message

#: The version of the document layout (`to_document`). A reader refuses a newer one.
SCHEMA_VERSION = 1


class DocumentError(ValueError):
    """A stored conversation document that cannot be read (corrupt or newer layout)."""


@dataclass
class Conversation:
    """A conversation, as kept in the session store and (once started and once
    finished) in the archive. Mutable: the service changes a loaded copy and
    saves it with `version + 1`."""

    id: uuid.UUID
    user_id: uuid.UUID
    state: State
    details: Details
    messages: list[Message]
    version: int
    create_time: datetime
    update_time: datetime
    content_id: uuid.UUID | None = None
    failure_reason: str = ""
    crisis: bool = False
    #: How the person likes to be addressed ("" = not used).
    name: str = ""
    #: The detail the last question asked about ("" = none).
    pending: str = ""
    #: How many times each detail was asked about.
    asked: dict[str, int] = field(default_factory=dict)
    #: Details the person chose not to give ("skip", "no preference").
    skipped: frozenset[str] = frozenset()
    #: The last creation state seen while generating (CreationStatus.state).
    creation_state: str = ""

    # --- behaviour ----------------------------------------------------------------

    def move_to(self, target: State, now: datetime) -> None:
        """Change state through `transition` (which refuses any move not ALLOWED)."""
        self.state = transition(self.state, target)
        self.update_time = now

    def say(self, text: str, kind: str, now: datetime) -> Message:
        message = Message(role="assistant", text=text, kind=kind, time=now)
        self.messages.append(message)
        self.update_time = now
        return message

    def hear(self, text: str, now: datetime) -> Message:
        message = Message(role="user", text=text, kind="text", time=now)
        self.messages.append(message)
        self.update_time = now
        return message

    @property
    def user_turns(self) -> int:
        return sum(1 for m in self.messages if m.role == "user")

    @property
    def last_reply(self) -> Message | None:
        return next((m for m in reversed(self.messages) if m.role == "assistant"), None)

    def brief(self) -> Brief:
        return self.details.to_brief(self.name)

    # --- the document -------------------------------------------------------------

    def to_document(self) -> bytes:
        """JSON, UTF-8, keys sorted: one conversation always gives the same bytes."""
        data = {
            "schema": SCHEMA_VERSION,
            "id": str(self.id),
            "user_id": str(self.user_id),
            "state": self.state.value,
            "details": self.details.to_json(),
            "messages": [{"role": m.role, "text": m.text, "kind": m.kind,
                          "time": m.time.isoformat()} for m in self.messages],
            "version": self.version,
            "create_time": self.create_time.isoformat(),
            "update_time": self.update_time.isoformat(),
            "content_id": str(self.content_id) if self.content_id else None,
            "failure_reason": self.failure_reason,
            "crisis": self.crisis,
            "name": self.name,
            "pending": self.pending,
            "asked": dict(sorted(self.asked.items())),
            "skipped": sorted(self.skipped),
            "creation_state": self.creation_state,
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_document(cls, document: bytes) -> Conversation:
        """The conversation `to_document` wrote; DocumentError when unreadable."""
        try:
            data = json.loads(document)
            if not isinstance(data, dict):
                raise DocumentError("a conversation document is a JSON object")
            schema = data.get("schema")
            if schema != SCHEMA_VERSION:
                raise DocumentError(f"unknown conversation document schema {schema!r}")
            content_id = data.get("content_id")
            return cls(
                id=uuid.UUID(data["id"]),
                user_id=uuid.UUID(data["user_id"]),
                state=State(data["state"]),
                details=Details.from_json(data.get("details") or {}),
                messages=[Message(role=m["role"], text=m["text"], kind=m["kind"],
                                  time=datetime.fromisoformat(m["time"]))
                          for m in data.get("messages") or []],
                version=int(data["version"]),
                create_time=datetime.fromisoformat(data["create_time"]),
                update_time=datetime.fromisoformat(data["update_time"]),
                content_id=uuid.UUID(content_id) if content_id else None,
                failure_reason=str(data.get("failure_reason") or ""),
                crisis=bool(data.get("crisis", False)),
                name=str(data.get("name") or ""),
                pending=str(data.get("pending") or ""),
                asked={str(k): int(v) for k, v in (data.get("asked") or {}).items()},
                skipped=frozenset(str(s) for s in data.get("skipped") or ()),
                creation_state=str(data.get("creation_state") or ""),
            )
        except DocumentError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise DocumentError(f"unreadable conversation document: {e}") from e
