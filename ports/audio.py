"""Ports of the audio context: its record of finished renders (with the
outbox in the same transaction)."""

from __future__ import annotations

import uuid
from typing import Protocol

from core.audio.model import Render
from ports.common import Outbox, UnitOfWork


class Renders(Protocol):
    async def get(self, content_id: uuid.UUID, version: int) -> Render | None: ...

    async def add(self, render: Render) -> bool:
        """Insert; False when (content, version) is already recorded."""
        ...


class AudioUnitOfWork(UnitOfWork, Protocol):
    renders: Renders
    outbox: Outbox


class AudioUnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> AudioUnitOfWork: ...
