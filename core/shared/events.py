"""Domain events: facts other contexts react to. Written to the outbox in the
same transaction as the change they describe."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from core.shared.ids import uuid7


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    #: Subject the event is published on, `waqup.<context>.<event>.v1`.
    topic: ClassVar[str]
    occurred_at: datetime
    event_id: uuid.UUID = field(default_factory=uuid7)
