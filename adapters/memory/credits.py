"""Credits' repositories in memory, held to the same contract as the SQL ones
(including the CHECK constraints of the schema)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from adapters.memory.store import MemoryStore, MemoryUnitOfWork, Tables, stored, utc
from core.credits.model import CreditAccount, Hold, HoldState, IdempotencyRecord, LedgerEntry


class ConstraintViolation(ValueError):
    """What a CHECK constraint would reject in SQL."""


class MemoryCreditAccountRepository:
    def __init__(self, tables: Tables) -> None:
        self._accounts = tables.credit_accounts

    async def get(self, user_id: uuid.UUID) -> CreditAccount | None:
        account = self._accounts.get(user_id)
        return replace(account) if account else None

    async def get_for_update(self, user_id: uuid.UUID) -> CreditAccount:
        account = self._accounts.setdefault(user_id, CreditAccount(user_id=user_id))
        return replace(account)

    async def save(self, account: CreditAccount) -> None:
        if not 0 <= account.held <= account.balance:
            raise ConstraintViolation(
                f"account {account.user_id}: balance {account.balance}, held {account.held}")
        self._accounts[account.user_id] = replace(account)


class MemoryHoldRepository:
    def __init__(self, tables: Tables) -> None:
        self._holds = tables.credit_holds

    async def add(self, hold: Hold) -> None:
        if hold.amount <= 0:
            raise ConstraintViolation(f"hold amount {hold.amount} is not positive")
        if hold.id in self._holds:
            raise ValueError(f"duplicate hold {hold.id}")
        self._holds[hold.id] = stored(hold)

    async def get(self, hold_id: uuid.UUID) -> Hold | None:
        hold = self._holds.get(hold_id)
        return replace(hold) if hold else None

    async def save(self, hold: Hold) -> None:
        if hold.id in self._holds:
            self._holds[hold.id] = stored(hold)

    async def sum_active(self, user_id: uuid.UUID) -> int:
        return sum(h.amount for h in self._holds.values()
                   if h.user_id == user_id and h.state is HoldState.ACTIVE)

    async def list_active_created_before(self, cutoff: datetime, *, after: uuid.UUID | None,
                                         limit: int) -> list[Hold]:
        cutoff = utc(cutoff)
        found = sorted((h for h in self._holds.values()
                        if h.state is HoldState.ACTIVE and h.created_at < cutoff
                        and (after is None or h.id > after)), key=lambda h: h.id)
        return [replace(h) for h in found[:limit]]


class MemoryLedger:
    def __init__(self, tables: Tables) -> None:
        self._entries = tables.credit_transactions
        self._holds = tables.credit_holds

    async def append(self, entry: LedgerEntry) -> None:
        if entry.balance_after < 0:
            raise ConstraintViolation(f"balance_after {entry.balance_after} is negative")
        if entry.hold_id is not None and entry.hold_id not in self._holds:
            raise ValueError(f"ledger entry for unknown hold {entry.hold_id}")
        if entry.id in self._entries:
            raise ValueError(f"duplicate ledger entry {entry.id}")
        self._entries[entry.id] = stored(entry)

    async def list(self, user_id: uuid.UUID, *, before: uuid.UUID | None,
                   limit: int) -> list[LedgerEntry]:
        mine = sorted((e for e in self._entries.values()
                       if e.user_id == user_id and (before is None or e.id < before)),
                      key=lambda e: e.id, reverse=True)
        return mine[:limit]


class MemoryIdempotencyStore:
    def __init__(self, tables: Tables) -> None:
        self._records = tables.idempotency_keys
        self._created_at = tables.idempotency_created_at

    async def claim(self, key: str, fingerprint: str, at: datetime) -> IdempotencyRecord | None:
        prior = self._records.get(key)
        if prior is not None:
            return prior
        self._created_at[key] = utc(at)  # refuses a naive time, as SQL does
        self._records[key] = IdempotencyRecord(key=key, fingerprint=fingerprint, result=None)
        return None

    async def complete(self, key: str, result: dict[str, object]) -> None:
        record = self._records.get(key)
        if record is not None:
            self._records[key] = replace(record, result=dict(result))


class MemoryProcessedEvents:
    def __init__(self, tables: Tables) -> None:
        self._seen = tables.processed_events

    async def add(self, consumer: str, event_id: uuid.UUID, at: datetime) -> bool:
        if (consumer, event_id) in self._seen:
            return False
        self._seen[(consumer, event_id)] = utc(at)
        return True


class MemoryCreditsUnitOfWork(MemoryUnitOfWork):
    accounts: MemoryCreditAccountRepository
    holds: MemoryHoldRepository
    ledger: MemoryLedger
    idempotency: MemoryIdempotencyStore
    processed_events: MemoryProcessedEvents

    def _open(self, tables: Tables) -> None:
        self.accounts = MemoryCreditAccountRepository(tables)
        self.holds = MemoryHoldRepository(tables)
        self.ledger = MemoryLedger(tables)
        self.idempotency = MemoryIdempotencyStore(tables)
        self.processed_events = MemoryProcessedEvents(tables)


def memory_credits_uow(store: MemoryStore) -> Callable[..., MemoryCreditsUnitOfWork]:
    return lambda read_only=False: MemoryCreditsUnitOfWork(store, read_only=read_only)
