"""An in-memory database for tests and single-process development.

One asyncio.Lock guards everything: a unit of work holds it for its whole life and
works on a deep copy of the tables, swapped in on commit. So units of work are
serialised (like SQLite's BEGIN IMMEDIATE) and leaving without commit really rolls back.
Nesting two units of work of one store in one task deadlocks, as on SQLite.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from core.credits.model import CreditAccount, Hold, IdempotencyRecord, LedgerEntry
from core.identity.model import AuditEntry, RefreshToken, User

T = TypeVar("T")


def utc(value: datetime) -> datetime:
    """A timestamp as SQL stores it: timezone-aware UTC (naive ones are refused)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC time")
    return value.astimezone(UTC)


def stored(record: T) -> T:
    """A private copy of a dataclass record, its timestamps normalised like SQL's."""
    changes: dict[str, Any] = {
        f.name: utc(value) for f in fields(record)  # type: ignore[arg-type]
        if isinstance(value := getattr(record, f.name), datetime)}
    return replace(record, **changes)  # type: ignore[type-var]


@dataclass
class OutboxRow:
    event_id: uuid.UUID
    topic: str
    payload: bytes
    created_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    published_at: datetime | None = None
    last_error: str | None = None
    traceparent: str = ""


@dataclass
class Tables:
    users: dict[uuid.UUID, User] = field(default_factory=dict)
    refresh_tokens: dict[uuid.UUID, RefreshToken] = field(default_factory=dict)
    audit_logs: list[AuditEntry] = field(default_factory=list)
    outbox: dict[uuid.UUID, OutboxRow] = field(default_factory=dict)
    credit_accounts: dict[uuid.UUID, CreditAccount] = field(default_factory=dict)
    credit_holds: dict[uuid.UUID, Hold] = field(default_factory=dict)
    credit_transactions: dict[uuid.UUID, LedgerEntry] = field(default_factory=dict)
    idempotency_keys: dict[str, IdempotencyRecord] = field(default_factory=dict)
    #: When each idempotency key was claimed (its SQL row's created_at).
    idempotency_created_at: dict[str, datetime] = field(default_factory=dict)
    processed_events: dict[tuple[str, uuid.UUID], datetime] = field(default_factory=dict)
    content_items: dict[uuid.UUID, Any] = field(default_factory=dict)
    audio_renders: dict[tuple[uuid.UUID, int], Any] = field(default_factory=dict)
    content_audio: dict[uuid.UUID, Any] = field(default_factory=dict)
    practices: dict[uuid.UUID, Any] = field(default_factory=dict)
    folders: dict[uuid.UUID, Any] = field(default_factory=dict)
    shares: dict[uuid.UUID, Any] = field(default_factory=dict)
    listening_preferences: dict[uuid.UUID, Any] = field(default_factory=dict)
    #: conversation id -> (user id, state, document, resulting content id)
    conversations: dict[uuid.UUID, Any] = field(default_factory=dict)
    creators: dict[uuid.UUID, Any] = field(default_factory=dict)
    packs: dict[uuid.UUID, Any] = field(default_factory=dict)
    entitlements: list[Any] = field(default_factory=list)
    pack_uploads: dict[uuid.UUID, Any] = field(default_factory=dict)
    #: id -> (content id, completion) of catalog's read model
    catalog_completions: dict[uuid.UUID, Any] = field(default_factory=dict)
    #: The search index's generation (catalog's SearchState), in a list to be mutable.
    search_generation: list[int] = field(default_factory=lambda: [0])
    checkout_sessions: dict[uuid.UUID, Any] = field(default_factory=dict)
    purchases: dict[uuid.UUID, Any] = field(default_factory=dict)
    subscriptions: dict[uuid.UUID, Any] = field(default_factory=dict)
    #: Stripe event id -> (received at, fact kind)
    stripe_events: dict[str, Any] = field(default_factory=dict)
    reward_transactions: dict[uuid.UUID, Any] = field(default_factory=dict)
    member_plays: dict[uuid.UUID, Any] = field(default_factory=dict)


class MemoryStore:
    def __init__(self) -> None:
        self.tables = Tables()
        self.lock = asyncio.Lock()


class MemoryUnitOfWork:
    """Holds the store's lock from entry to exit and works on a copy of the tables."""

    def __init__(self, store: MemoryStore, *, read_only: bool = False) -> None:
        self._store = store
        self._read_only = read_only
        self._tables: Tables | None = None
        self._entered = False

    @property
    def tables(self) -> Tables:
        if self._tables is None:
            raise RuntimeError("the unit of work is used outside its `async with` block")
        return self._tables

    def _open(self, tables: Tables) -> None:
        """Set up the repositories on the working copy."""

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a unit of work can be entered only once")
        self._entered = True
        if self._read_only:
            # Writers replace store.tables wholesale on commit and never mutate a
            # published snapshot, so a reader may use the current one as it is.
            self._tables = self._store.tables
            self._open(self._tables)
            return self
        await self._store.lock.acquire()
        self._tables = copy.deepcopy(self._store.tables)
        self._open(self._tables)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._tables = None
        if not self._read_only:
            self._store.lock.release()

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        self._store.tables = copy.deepcopy(self.tables)
