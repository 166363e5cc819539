"""ports.content.AiHistory on SQL: the `ai_history` table (kept 30 days).

Each call is one short statement on the engine: an insert per model call, a
read of a user's latest calls (served by the index on user_id, created_at), and
the retention delete, a bounded batch of the oldest rows at a time (by the
index on created_at; FOR UPDATE SKIP LOCKED on PostgreSQL, as in retention.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.schema import ai_history
from adapters.sql.uow import READ_ONLY_OPTION
from core.content.model import AiCall


class SqlAiHistory:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, call: AiCall) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(ai_history.insert().values(
                id=call.id, user_id=call.user_id, request_id=call.request_id,
                template=call.template, template_version=call.template_version,
                model=call.model, input_tokens=call.input_tokens,
                output_tokens=call.output_tokens, latency_ms=call.latency_ms,
                outcome=call.outcome, created_at=call.created_at))

    async def list_for(self, user_id: uuid.UUID, limit: int) -> list[AiCall]:
        """The user's calls, newest first (ties: the larger id first)."""
        if limit <= 0:
            raise ValueError("limit must be positive")
        t = ai_history
        query = (select(t).where(t.c.user_id == user_id)
                 .order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit))
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(**{READ_ONLY_OPTION: True})
            rows = (await conn.execute(query)).all()
        return [AiCall(id=r.id, user_id=r.user_id, request_id=r.request_id,
                       template=r.template, template_version=r.template_version,
                       model=r.model, input_tokens=r.input_tokens,
                       output_tokens=r.output_tokens, latency_ms=r.latency_ms,
                       outcome=r.outcome, created_at=r.created_at) for r in rows]

    async def delete_before(self, created_before: datetime, limit: int) -> int:
        """Delete at most `limit` calls made before `created_before`, oldest first."""
        if limit <= 0:
            raise ValueError("limit must be positive")
        t = ai_history
        batch = (select(t.c.id).where(t.c.created_at < created_before)
                 .order_by(t.c.created_at, t.c.id).limit(limit))
        if self._engine.dialect.name == "postgresql":
            batch = batch.with_for_update(skip_locked=True)
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(t).where(t.c.id.in_(batch)))
        return int(result.rowcount)
