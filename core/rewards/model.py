"""Creators' rewards: a token ledger per creator and currency.

The rule (documented in README): each paid purchase of a creator's pack
accrues `share_percent` (70 by default) of the sale amount, rounded down, in
tokens of one minor unit of the sale's currency. A refund or a dispute
reverses that accrual, never taking the balance below zero (a creator who
has been paid out already owes nothing here: the loss is the platform's)."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime


class RewardType(enum.Enum):
    ACCRUAL = "accrual"
    REVERSAL = "reversal"


@dataclass(frozen=True)
class RewardTransaction:
    id: uuid.UUID
    creator_id: uuid.UUID
    type: RewardType
    #: Positive for an accrual, negative (or 0) for a reversal.
    tokens: int
    balance_after: int
    currency: str
    purchase_id: uuid.UUID
    sale_amount: int
    created_at: datetime


def creator_share(sale_amount: int, share_percent: int) -> int:
    """The creator's tokens for a sale, rounded down."""
    return sale_amount * share_percent // 100
