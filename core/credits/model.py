"""Credits' domain model. The rule of the context: available = balance - held,
and no operation may leave balance, held or available below zero."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from core.shared.errors import FailedPrecondition, InvalidArgument

SIGNUP_BONUS = 1


class InsufficientCredits(FailedPrecondition):
    reason = "INSUFFICIENT_CREDITS"


class ReservationNotActive(FailedPrecondition):
    reason = "RESERVATION_NOT_ACTIVE"


class TransactionType(StrEnum):
    PURCHASE = "purchase"
    CONSUMPTION = "consumption"
    REFUND = "refund"
    GRANT = "grant"
    #: Bought credits taken back (their payment was refunded): never more
    #: than are available.
    REVERSAL = "reversal"


class HoldState(StrEnum):
    ACTIVE = "active"
    COMMITTED = "committed"
    RELEASED = "released"


def _positive(amount: int) -> None:
    if amount <= 0:
        raise InvalidArgument("amount must be positive", reason="INVALID_AMOUNT",
                              metadata={"field": "amount"})


@dataclass
class CreditAccount:
    user_id: uuid.UUID
    balance: int = 0
    held: int = 0

    @property
    def available(self) -> int:
        return self.balance - self.held

    def hold(self, amount: int) -> None:
        _positive(amount)
        if amount > self.available:
            raise InsufficientCredits(
                f"{amount} credits needed, {self.available} available",
                metadata={"needed": str(amount), "available": str(self.available)})
        self.held += amount

    def release(self, amount: int) -> None:
        self.held -= amount
        assert self.held >= 0, "released more than was held"

    def settle(self, amount: int) -> None:
        """Spend held credits."""
        self.held -= amount
        self.balance -= amount
        assert self.held >= 0 and self.balance >= self.held, "settled more than was held"

    def take_back(self, amount: int) -> int:
        """Remove up to `amount` of the available credits (held ones stay
        with their creation); returns how many were removed."""
        taken = max(0, min(amount, self.available))
        self.balance -= taken
        return taken

    def add(self, amount: int) -> None:
        _positive(amount)
        self.balance += amount


@dataclass
class Hold:
    id: uuid.UUID
    user_id: uuid.UUID
    amount: int
    reason: str
    created_at: datetime
    state: HoldState = HoldState.ACTIVE
    resolved_at: datetime | None = None

    def to_record(self) -> dict[str, object]:
        return {"kind": "hold", "id": str(self.id), "user_id": str(self.user_id),
                "amount": self.amount, "reason": self.reason, "state": self.state.value,
                "created_at": self.created_at.isoformat(),
                "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None}

    @classmethod
    def from_record(cls, r: dict[str, object]) -> Hold:
        resolved = r.get("resolved_at")
        return cls(id=uuid.UUID(str(r["id"])), user_id=uuid.UUID(str(r["user_id"])),
                   amount=int(str(r["amount"])), reason=str(r["reason"]),
                   state=HoldState(str(r["state"])),
                   created_at=datetime.fromisoformat(str(r["created_at"])),
                   resolved_at=datetime.fromisoformat(str(resolved)) if resolved else None)


@dataclass(frozen=True)
class LedgerEntry:
    id: uuid.UUID
    user_id: uuid.UUID
    type: TransactionType
    amount: int
    balance_after: int
    reason: str
    created_at: datetime
    hold_id: uuid.UUID | None = None
    request_id: str = ""

    def to_record(self) -> dict[str, object]:
        return {"kind": "entry", "id": str(self.id), "user_id": str(self.user_id),
                "type": self.type.value, "amount": self.amount,
                "balance_after": self.balance_after, "reason": self.reason,
                "created_at": self.created_at.isoformat(),
                "hold_id": str(self.hold_id) if self.hold_id else None,
                "request_id": self.request_id}

    @classmethod
    def from_record(cls, r: dict[str, object]) -> LedgerEntry:
        hold = r.get("hold_id")
        return cls(id=uuid.UUID(str(r["id"])), user_id=uuid.UUID(str(r["user_id"])),
                   type=TransactionType(str(r["type"])), amount=int(str(r["amount"])),
                   balance_after=int(str(r["balance_after"])), reason=str(r["reason"]),
                   created_at=datetime.fromisoformat(str(r["created_at"])),
                   hold_id=uuid.UUID(str(hold)) if hold else None,
                   request_id=str(r.get("request_id") or ""))


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    fingerprint: str
    result: dict[str, object] | None
