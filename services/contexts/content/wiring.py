"""Wires content for one process: the writer (the offline composer, or an
OpenAI-compatible model), the AI history, text generation and its retention."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from core.content.model import Completion, GenerationError, Prompt
from core.content.service import ContentGenerator
from services.contexts.content.servicers import ContentGenerationServicer
from services.contexts.declaration import BuiltContext
from services.runtime.infrastructure import Infrastructure
from services.runtime.metrics import creation_metrics
from services.runtime.retention import retention_job

#: The seed's retention of AI history.
AI_HISTORY_DAYS = 30


class MeasuredWriter:
    """A TextGenerator whose calls are timed by model and outcome (metrics)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.models = inner.models
        self._llm = creation_metrics().llm

    async def generate(self, prompt: Prompt, model: str) -> Completion:
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await self._inner.generate(prompt, model)
        except GenerationError as error:
            outcome = error.kind
            raise
        except BaseException:
            outcome = "error"
            raise
        finally:
            self._llm.labels(model, outcome).observe(time.perf_counter() - started)

    async def close(self) -> None:
        await self._inner.close()


def writer_for(infra: Infrastructure) -> Any:
    settings = infra.settings
    if "writer" in infra.overrides:
        return infra.overrides["writer"]
    choice = settings.text_generator or ("openai" if settings.openai_api_key else "offline")
    if choice == "openai":
        from adapters.openai.generator import OpenAITextGenerator

        if not settings.openai_api_key:
            raise RuntimeError("WAQUP_TEXT_GENERATOR=openai needs WAQUP_OPENAI_API_KEY")
        return OpenAITextGenerator(settings.openai_api_key, base_url=settings.openai_base_url,
                                   model=settings.openai_model,
                                   fallback_model=settings.openai_fallback_model or None,
                                   timeout=settings.openai_timeout_seconds)
    from adapters.offline_llm.composer import OfflineComposer

    return OfflineComposer()


def build(infra: Infrastructure) -> BuiltContext:
    if infra.store is not None:
        from adapters.memory.ai_history import MemoryAiHistory

        history: Any = MemoryAiHistory()
    else:
        from adapters.sql.ai_history import SqlAiHistory

        history = SqlAiHistory(infra.engine)
    writer = MeasuredWriter(writer_for(infra))
    infra.closers.append(writer.close)
    generator = ContentGenerator(writer, history, infra.clock)
    settings = infra.settings
    jobs = []
    if settings.retention_interval_seconds:
        jobs.append(retention_job("retention.ai-history", "ai_history", history.delete_before,
                                  infra.clock, timedelta(days=AI_HISTORY_DAYS), settings))
    return BuiltContext(service=generator, jobs=jobs, servicers={
        "ContentGenerationService": ContentGenerationServicer(generator)})
