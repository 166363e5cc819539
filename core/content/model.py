"""Text generation's own types: the prompt sent to a model, what a model
answers, and the record kept of each call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from core.shared.creation import Brief, Depth
from core.shared.errors import Unavailable


@dataclass(frozen=True)
class GenerationRequest:
    """Everything a writer (a model or the offline composer) needs for one piece."""

    brief: Brief
    depth: Depth
    #: Target length of the spoken piece in seconds.
    target_seconds: float
    #: Titles of the person's earlier creations, newest first (for variety).
    history: tuple[str, ...] = ()
    #: Seeds anything varied (the offline composer): differs per request.
    seed: str = ""


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt template (templates are files, versioned)."""

    template: str
    version: str
    messages: tuple[Message, ...]
    #: JSON Schema the answer must follow (structured output).
    schema: dict[str, object]
    request: GenerationRequest
    max_output_tokens: int = 2048


@dataclass(frozen=True)
class Completion:
    """A model's answer: JSON text, by the schema asked for."""

    text: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0


class GenerationError(Exception):
    """A model call failed. `retryable` for 429, 5xx and timeouts."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float = 0.0,
                 kind: str = "error") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        #: Short outcome label for the AI history (`rate_limited`, `server_error`,
        #: `timeout`, `invalid_output`, `error`).
        self.kind = kind


@dataclass(frozen=True)
class AiCall:
    """One row of `ai_history`: a call to a model, without its text or secrets."""

    user_id: uuid.UUID
    request_id: str
    template: str
    template_version: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: int
    #: "ok", or the failure kind (GenerationError.kind, `invalid_output`).
    outcome: str
    created_at: datetime
    id: uuid.UUID = field(default_factory=uuid.uuid4)


#: Outcomes of a call as recorded in the AI history.
OUTCOMES = frozenset({"ok", "rate_limited", "server_error", "timeout", "invalid_output",
                      "error"})


class GenerationFailed(Unavailable):
    """Every attempt on every model failed: nothing was written (the caller
    releases the person's credits). Retrying later may succeed."""

    reason = "TEXT_GENERATION_FAILED"
