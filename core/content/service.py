"""Text generation: one brief in, one validated piece out (the AI request flow).

`ContentGenerator.generate` decides the depth and length, renders the type's
prompt template, then asks the writer's models in turn, primary first:

- each model gets up to `max_attempts` calls; a retryable failure (429, 5xx,
  timeout) waits an exponential backoff with full jitter (a random share of
  `base_delay * 2**n`, at most `max_delay`), or the server's Retry-After when
  that is longer; an answer that is not JSON or breaks the type's rules
  (structures.validate) also uses up an attempt, and is asked again at once;
- a non-retryable failure (a 4xx other than 429, an unexpected error) moves on
  to the next model at once, as does a Retry-After beyond `max_retry_after`;
- every call, whatever its outcome, is one row of the AI history (model,
  template and version, tokens, latency, outcome; never the text).

When every model has failed, GenerationFailed (UNAVAILABLE,
TEXT_GENERATION_FAILED): nothing was written and nothing should be charged.

The first call is seeded with the request id, so the same request asks for the
same piece; later calls are seeded `<request_id>#<n>`, so a deterministic writer
(the offline composer) does not repeat an answer that was refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random as _random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from core.content.depth import assign_depth, target_seconds
from core.content.model import (
    OUTCOMES,
    AiCall,
    Completion,
    GenerationError,
    GenerationFailed,
    GenerationRequest,
    Prompt,
)
from core.content.prompts import DEFAULT_HISTORY_TOKEN_BUDGET, render_prompt
from core.content.structures import to_script, validate
from core.shared.creation import Brief, GeneratedText, Pace
from core.shared.ids import uuid7

if TYPE_CHECKING:
    from ports.common import Clock
    from ports.content import AiHistory, TextGenerator

log = logging.getLogger(__name__)

#: Earlier titles considered at most (for depth and for variety).
MAX_HISTORY_TITLES = 50


class InvalidOutput(Exception):
    """A model's answer that is not a valid piece (not shown to anyone)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:3]))
        self.problems = problems


class ContentGenerator:
    def __init__(self, writer: TextGenerator, history: AiHistory, clock: Clock, *,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 random: Callable[[], float] = _random.random,
                 max_attempts: int = 3, base_delay: float = 0.5, max_delay: float = 8.0,
                 max_retry_after: float = 30.0,
                 history_token_budget: int = DEFAULT_HISTORY_TOKEN_BUDGET) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not writer.models:
            raise ValueError("the writer offers no model")
        self._writer = writer
        self._history = history
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._max_retry_after = max_retry_after
        self._history_token_budget = history_token_budget

    @property
    def models(self) -> tuple[str, ...]:
        """The models asked, in order: the primary, then the fallback (if any)."""
        return tuple(self._writer.models[:2])

    def request_for(self, request_id: str, brief: Brief,
                    history_titles: list[str]) -> GenerationRequest:
        """What the writer is asked for: depth and length decided here."""
        titles = tuple(t for t in history_titles[:MAX_HISTORY_TITLES] if t.strip())
        seconds = target_seconds(brief)
        return GenerationRequest(brief=brief, depth=assign_depth(len(titles), seconds / 60),
                                 target_seconds=seconds, history=titles, seed=request_id)

    async def generate(self, user_id: uuid.UUID, request_id: str, brief: Brief,
                       history_titles: list[str]) -> GeneratedText:
        """A validated piece for `brief`; GenerationFailed when no model wrote one."""
        request = self.request_for(request_id, brief, history_titles)
        prompt = render_prompt(request, history_token_budget=self._history_token_budget)
        calls = 0
        last_outcome = "error"
        for model in self.models:
            for attempt in range(1, self._max_attempts + 1):
                seeded = prompt if calls == 0 else replace(
                    prompt, request=replace(request, seed=f"{request_id}#{calls}"))
                calls += 1
                outcome, result, delay = await self._call(user_id, request_id, seeded, model,
                                                          attempt)
                if result is not None:
                    return result
                last_outcome = outcome
                if delay is None or attempt == self._max_attempts:
                    break  # on to the next model
                if delay > 0:
                    await self._sleep(delay)
        log.warning("text generation failed", extra={
            "request_id": request_id, "calls": calls, "last_outcome": last_outcome})
        raise GenerationFailed(
            "the text could not be written; please try again later",
            metadata={"calls": str(calls), "last_outcome": last_outcome})

    async def _call(self, user_id: uuid.UUID, request_id: str, prompt: Prompt, model: str,
                    attempt: int) -> tuple[str, GeneratedText | None, float | None]:
        """One call: (outcome, the piece or None, the delay before a retry or None
        when this model should not be asked again)."""
        started = self._clock.now()
        completion: Completion | None = None
        piece: GeneratedText | None = None
        delay: float | None
        try:
            completion = await self._writer.generate(prompt, model)
            piece = self._piece(prompt, completion, model)
        except GenerationError as error:
            outcome = error.kind if error.kind in OUTCOMES and error.kind != "ok" else "error"
            delay = self._backoff(attempt, error.retry_after) if error.retryable else None
            if error.retry_after > self._max_retry_after:
                delay = None
            log.info("model call failed", extra={
                "request_id": request_id, "model": model, "outcome": outcome,
                "retryable": error.retryable})
        except InvalidOutput as error:
            outcome, delay = "invalid_output", 0.0
            log.info("model answer refused", extra={
                "request_id": request_id, "model": model, "problems": error.problems[:5]})
        except Exception:
            # A writer's bug or an error it did not map: not worth retrying the model.
            outcome, delay = "error", None
            log.exception("model call raised", extra={"request_id": request_id,
                                                      "model": model})
        else:
            outcome, delay = "ok", None
        await self._record(AiCall(
            user_id=user_id, request_id=request_id, template=prompt.template,
            template_version=prompt.version, model=completion.model if completion else model,
            input_tokens=completion.input_tokens if completion else 0,
            output_tokens=completion.output_tokens if completion else 0,
            latency_ms=max(0, round((self._clock.now() - started).total_seconds() * 1000)),
            outcome=outcome, created_at=started, id=uuid7()))
        return outcome, piece, delay

    def _piece(self, prompt: Prompt, completion: Completion, model: str) -> GeneratedText:
        request = prompt.request
        try:
            structure = json.loads(completion.text)
        except (TypeError, ValueError) as error:
            raise InvalidOutput([f"not JSON: {type(error).__name__}"]) from None
        content_type = request.brief.content_type
        pace = request.brief.pace or Pace.MEDIUM
        problems = validate(content_type, structure, target_seconds=request.target_seconds,
                            pace=pace)
        if problems:
            raise InvalidOutput(problems)
        return GeneratedText(
            title=" ".join(structure["title"].split()),
            depth=request.depth,
            structure=structure,
            script=to_script(content_type, structure, request.target_seconds),
            model=completion.model or model,
        )

    def _backoff(self, attempt: int, retry_after: float) -> float:
        """Full jitter: a random share of the exponential step, or the server's
        Retry-After when that is longer."""
        step = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
        return max(self._random() * step, max(0.0, retry_after))

    async def _record(self, call: AiCall) -> None:
        # The history counts cost; losing a row must not lose the person's piece.
        try:
            await self._history.add(call)
        except Exception:
            log.warning("could not record a model call", exc_info=True,
                        extra={"request_id": call.request_id})
