"""Ports of the credits context."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from core.credits.model import CreditAccount, Hold, IdempotencyRecord, LedgerEntry
from ports.common import ProcessedEvents, UnitOfWork


class CreditAccountRepository(Protocol):
    async def get(self, user_id: uuid.UUID) -> CreditAccount | None: ...

    async def get_for_update(self, user_id: uuid.UUID) -> CreditAccount:
        """The account, locked until the unit of work ends; created empty if missing."""
        ...

    async def save(self, account: CreditAccount) -> None: ...


class HoldRepository(Protocol):
    async def add(self, hold: Hold) -> None: ...

    async def get(self, hold_id: uuid.UUID) -> Hold | None: ...

    async def save(self, hold: Hold) -> None: ...

    async def sum_active(self, user_id: uuid.UUID) -> int: ...

    async def list_active_created_before(self, cutoff: datetime, *, after: uuid.UUID | None,
                                         limit: int) -> list[Hold]:
        """Active holds created before `cutoff`, of every user, in id order,
        strictly after `after` when given: at most `limit` of them."""
        ...


class Ledger(Protocol):
    async def append(self, entry: LedgerEntry) -> None: ...

    async def list(self, user_id: uuid.UUID, *, before: uuid.UUID | None,
                   limit: int) -> list[LedgerEntry]:
        """Entries newest first, strictly older than `before` when given."""
        ...


class IdempotencyStore(Protocol):
    async def claim(self, key: str, fingerprint: str, at: datetime) -> IdempotencyRecord | None:
        """Claim `key` for this unit of work, or return the record of whoever has it.

        Concurrent claims of one key are serialised: the second waits for the
        first transaction and then sees its record."""
        ...

    async def complete(self, key: str, result: dict[str, object]) -> None: ...


class CreditsUnitOfWork(UnitOfWork, Protocol):
    accounts: CreditAccountRepository
    holds: HoldRepository
    ledger: Ledger
    idempotency: IdempotencyStore
    processed_events: ProcessedEvents


class CreditsUnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> CreditsUnitOfWork:
        """A new unit of work; `read_only` ones refuse commit() and take no write lock."""
        ...
