"""Ports of the rewards context."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from core.rewards.model import MemberPlay, RewardTransaction, RewardType
from ports.common import ProcessedEvents, UnitOfWork


class RewardAccounts(Protocol):
    async def balance_for_update(self, creator_id: uuid.UUID, currency: str) -> int:
        """The balance, its row locked until the unit of work ends (created
        at 0 when missing)."""
        ...

    async def set_balance(self, creator_id: uuid.UUID, currency: str, balance: int) -> None: ...

    async def balances(self, creator_id: uuid.UUID) -> dict[str, int]: ...


class RewardLedger(Protocol):
    async def add(self, transaction: RewardTransaction) -> None:
        """Insert; AlreadyExists when the purchase has one of that type."""
        ...

    async def find(self, purchase_id: uuid.UUID, type_: RewardType) -> RewardTransaction | None:
        ...

    async def list(self, creator_id: uuid.UUID, *, before: uuid.UUID | None,
                   limit: int) -> list[RewardTransaction]:
        """Newest first, strictly older than `before` when given."""
        ...


class MemberPlays(Protocol):
    async def add(self, play: MemberPlay) -> bool:
        """Record a play (once per id); False when it was recorded before."""
        ...

    async def counts(self, user_id: uuid.UUID, since: datetime, until: datetime,
                     ) -> dict[uuid.UUID, int]:
        """The member's plays per creator in [since, until)."""
        ...


class RewardsUnitOfWork(UnitOfWork, Protocol):
    accounts: RewardAccounts
    ledger: RewardLedger
    plays: MemberPlays
    processed_events: ProcessedEvents


class RewardsUnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> RewardsUnitOfWork: ...
