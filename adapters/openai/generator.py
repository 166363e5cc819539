"""ports.content.TextGenerator on OpenAI's chat completions, with structured output.

One call per `generate` (the SDK's own retries are off: `max_retries=0`), so the
content core alone decides on retries and fallbacks, and the AI history sees
every call. The answer is constrained by `response_format` json_schema (strict),
built from the prompt's schema reduced to what strict mode accepts (types,
properties, required, items, enum; length and range limits are checked by the
core's validator instead).

Failures become GenerationError: 429 -> retryable "rate_limited" (with the
Retry-After delay), 5xx, 408 and 409 -> retryable "server_error" / "timeout",
timeouts and connection errors -> retryable "timeout", a refusal or a cut-off
answer -> retryable "invalid_output", any other 4xx -> not retryable "error".
Messages name the model and the status only: never the key, the request or the
response body.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import Any

import openai
from openai import AsyncOpenAI

from core.content.model import Completion, GenerationError, Prompt

#: JSON Schema keywords strict structured output accepts (everything else is dropped).
_STRICT_KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties",
                              "items", "enum", "description", "anyOf"})
#: Longest Retry-After honoured as given (seconds); longer ones are capped.
MAX_RETRY_AFTER = 3600.0


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """`schema` as strict mode wants it: only supported keywords, every object
    closed (additionalProperties false) with all of its properties required."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in _STRICT_KEYWORDS:
            continue
        if key == "properties":
            out[key] = {name: strict_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = strict_schema(value)
        elif key == "anyOf":
            out[key] = [strict_schema(sub) for sub in value]
        else:
            out[key] = value
    if out.get("type") == "object":
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties", {}))
    return out


def retry_after(headers: Mapping[str, str]) -> float:
    """Seconds the server asks to wait (retry-after-ms, Retry-After as seconds or
    as an HTTP date); 0 when it does not say."""
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            value = float(millis) / 1000
            return min(MAX_RETRY_AFTER, value) if math.isfinite(value) and value > 0 else 0.0
        said = headers.get("retry-after")
        if said is None:
            return 0.0
        try:
            value = float(said)
        except ValueError:
            when = email.utils.parsedate_to_datetime(said)
            value = when.timestamp() - time.time()
        return min(MAX_RETRY_AFTER, value) if math.isfinite(value) and value > 0 else 0.0
    except (TypeError, ValueError, OverflowError):
        return 0.0


class OpenAITextGenerator:
    """A writer on an OpenAI-compatible chat completions API."""

    def __init__(self, api_key: str, base_url: str | None = None, model: str = "gpt-4o-mini",
                 fallback_model: str | None = None, timeout: float = 60.0) -> None:
        self.models: tuple[str, ...] = (model, fallback_model) if fallback_model else (model,)
        self._client = AsyncOpenAI(api_key=api_key, base_url=base_url or None,
                                   timeout=timeout, max_retries=0)

    def __repr__(self) -> str:  # never the key
        return f"OpenAITextGenerator(models={self.models!r})"

    async def generate(self, prompt: Prompt, model: str) -> Completion:
        try:
            response = await self._client.chat.completions.create(
                model=model,
                messages=[{"role": m.role, "content": m.content}  # type: ignore[misc]
                          for m in prompt.messages],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": f"{prompt.template}_{prompt.version}",
                                    "schema": strict_schema(prompt.schema), "strict": True},
                },
                max_completion_tokens=prompt.max_output_tokens,
            )
        except openai.RateLimitError as error:
            raise GenerationError(f"{model}: rate limited (HTTP 429)", retryable=True,
                                  retry_after=retry_after(error.response.headers),
                                  kind="rate_limited") from None
        except openai.APITimeoutError:
            raise GenerationError(f"{model}: timed out", retryable=True,
                                  kind="timeout") from None
        except openai.APIConnectionError:
            raise GenerationError(f"{model}: connection failed", retryable=True,
                                  kind="timeout") from None
        except openai.APIStatusError as error:
            status = error.status_code
            if status == 408:
                raise GenerationError(f"{model}: timed out (HTTP 408)", retryable=True,
                                      kind="timeout") from None
            if status >= 500 or status == 409:
                raise GenerationError(f"{model}: server error (HTTP {status})", retryable=True,
                                      retry_after=retry_after(error.response.headers),
                                      kind="server_error") from None
            raise GenerationError(f"{model}: request refused (HTTP {status})",
                                  retryable=False, kind="error") from None
        except openai.APIResponseValidationError:
            raise GenerationError(f"{model}: malformed response", retryable=True,
                                  kind="server_error") from None
        except openai.OpenAIError as error:
            raise GenerationError(f"{model}: {type(error).__name__}", retryable=False,
                                  kind="error") from None
        if not response.choices:
            raise GenerationError(f"{model}: no answer", retryable=True, kind="invalid_output")
        choice = response.choices[0]
        message = choice.message
        if getattr(message, "refusal", None):
            raise GenerationError(f"{model}: refused to answer", retryable=True,
                                  kind="invalid_output")
        if choice.finish_reason == "length":
            raise GenerationError(f"{model}: answer cut off at the token limit", retryable=True,
                                  kind="invalid_output")
        if not message.content:
            raise GenerationError(f"{model}: empty answer", retryable=True,
                                  kind="invalid_output")
        usage = response.usage
        return Completion(
            text=message.content,
            model=response.model or model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
        )

    async def close(self) -> None:
        await self._client.close()
