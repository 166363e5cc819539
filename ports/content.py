"""Ports of the content context (text generation)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from core.content.model import AiCall, Completion, Prompt


class TextGenerator(Protocol):
    """A writer: a language model behind an API, or the offline composer."""

    #: The models this writer offers, primary first, then the fallback.
    models: tuple[str, ...]

    async def generate(self, prompt: Prompt, model: str) -> Completion:
        """The model's answer to `prompt`, as JSON text following
        `prompt.schema`. Raises core.content.model.GenerationError."""
        ...

    async def close(self) -> None: ...


class AiHistory(Protocol):
    """The `ai_history` table (kept 30 days)."""

    async def add(self, call: AiCall) -> None: ...

    async def list_for(self, user_id: uuid.UUID, limit: int) -> list[AiCall]: ...

    async def delete_before(self, created_before: datetime, limit: int) -> int: ...
