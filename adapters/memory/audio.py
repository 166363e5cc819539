"""Audio's record of renders in memory (same contract as the SQL one)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace

from adapters.memory.outbox import MemoryOutbox
from adapters.memory.store import MemoryStore, MemoryUnitOfWork, Tables, stored
from core.audio.model import Render
from ports.common import EventCodec, TraceContext, no_trace_context


class MemoryRenders:
    def __init__(self, tables: Tables) -> None:
        self._renders: dict[tuple[uuid.UUID, int], Render] = tables.audio_renders

    async def get(self, content_id: uuid.UUID, version: int) -> Render | None:
        render = self._renders.get((content_id, version))
        return replace(render) if render else None

    async def add(self, render: Render) -> bool:
        key = (render.content_id, render.version)
        if key in self._renders:
            return False
        self._renders[key] = stored(render)
        return True


class MemoryAudioUnitOfWork(MemoryUnitOfWork):
    renders: MemoryRenders
    outbox: MemoryOutbox

    def __init__(self, store: MemoryStore, codec: EventCodec, *, read_only: bool = False,
                 trace_context: TraceContext = no_trace_context) -> None:
        super().__init__(store, read_only=read_only)
        self._codec = codec
        self._trace_context = trace_context

    def _open(self, tables: Tables) -> None:
        self.renders = MemoryRenders(tables)
        self.outbox = MemoryOutbox(tables, self._codec, self._trace_context)


def memory_audio_uow(store: MemoryStore, codec: EventCodec,
                     trace_context: TraceContext = no_trace_context,
                     ) -> Callable[..., MemoryAudioUnitOfWork]:
    return lambda read_only=False: MemoryAudioUnitOfWork(
        store, codec, read_only=read_only, trace_context=trace_context)
