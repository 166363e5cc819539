"""Creators' rewards: a token ledger per creator and currency.

The rule (documented in README): each paid purchase of a creator's pack
accrues `share_percent` (70 by default) of the sale amount, rounded down, in
tokens of one minor unit of the sale's currency. A refund or a dispute
reverses that accrual, never taking the balance below zero (a creator who
has been paid out already owes nothing here: the loss is the platform's).

A membership fee is shared the same way: `share_percent` of it is split
among the creators whose members-only items the member completed in the
MEMBERSHIP_LOOKBACK before the payment, in proportion to those plays
(rounded down per creator; what rounding leaves, and a fee with no plays
before it, stays with the platform)."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

#: The plays a membership fee is shared by: those of this long before it.
MEMBERSHIP_LOOKBACK = timedelta(days=31)


class RewardType(enum.Enum):
    ACCRUAL = "accrual"
    REVERSAL = "reversal"
    #: A share of a membership fee, weighted by plays.
    MEMBERSHIP = "membership"


@dataclass(frozen=True)
class RewardTransaction:
    id: uuid.UUID
    creator_id: uuid.UUID
    type: RewardType
    #: Positive for an accrual, negative (or 0) for a reversal.
    tokens: int
    balance_after: int
    currency: str
    #: The purchase (accrual, reversal); for a membership share, a key
    #: derived from the payment and the creator.
    purchase_id: uuid.UUID
    sale_amount: int
    created_at: datetime
    #: The provider's payment of a membership share ("" otherwise).
    source: str = ""
    plays: int = 0
    total_plays: int = 0
    share_percent: int = 0


def creator_share(sale_amount: int, share_percent: int) -> int:
    """The creator's tokens for a sale, rounded down."""
    return sale_amount * share_percent // 100


@dataclass(frozen=True)
class MemberPlay:
    """A member completed an item of a creator's members-only pack."""

    id: uuid.UUID
    user_id: uuid.UUID
    creator_id: uuid.UUID
    played_at: datetime


def membership_shares(amount: int, share_percent: int,
                      plays: dict[uuid.UUID, int]) -> dict[uuid.UUID, int]:
    """Tokens per creator of one membership fee, by their plays."""
    total = sum(plays.values())
    if total <= 0:
        return {}
    pool = creator_share(amount, share_percent)
    return {creator: pool * count // total for creator, count in sorted(plays.items())
            if pool * count // total > 0}


def membership_key(payment: str, creator_id: uuid.UUID) -> uuid.UUID:
    """The ledger key of one creator's share of one payment (idempotency)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"waqup:membership:{payment}:{creator_id}")
