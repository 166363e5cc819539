"""The marketplace's catalog: creators, packs of their items, and who may play
what (entitlements)."""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from core.shared.creation import ContentType
from core.shared.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from core.shared.events import DomainEvent

#: Most items one pack holds.
MAX_PACK_ITEMS = 100
#: Most tags of a pack.
MAX_PACK_TAGS = 10
#: Highest price accepted, in minor units (10,000.00).
MAX_PRICE_MINOR = 1_000_000
#: Currencies packs are sold in (Stripe's two-decimal currencies we accept).
CURRENCIES = frozenset({"EUR", "USD", "GBP", "CHF", "CAD", "AUD", "SEK", "NOK", "DKK"})
ROLE_CREATOR = "creator"
#: The pack id of a membership's entitlement: it stands for every listed
#: members-only pack (PriceType.SUBSCRIPTION), so one row per subscription
#: gives them all, and its expiry follows the period paid.
MEMBERSHIP = uuid.UUID(int=0)
ROLE_ADMIN = "admin"
_CURRENCY = re.compile(r"[A-Z]{3}")


class PriceType(enum.Enum):
    FREE = "free"
    ONE_TIME = "one_time"
    SUBSCRIPTION = "subscription"


class Interval(enum.Enum):
    MONTHLY = "month"
    ANNUAL = "year"


class PackState(enum.Enum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


@dataclass(frozen=True)
class Price:
    """What a pack costs: integer minor units of an ISO 4217 currency, once
    (one-time) or per `interval` (a subscription to the pack). A free pack
    has none; so has a members-only one (a subscription without a price: it
    comes with the waQup membership, whose plans payments sells)."""

    type: PriceType
    amount_minor: int = 0
    currency: str = ""
    interval: Interval | None = None

    @property
    def members_only(self) -> bool:
        return self.type is PriceType.SUBSCRIPTION and not self.amount_minor

    @property
    def sold(self) -> bool:
        """Paid for through a checkout (once, or by subscription)."""
        return self.type is PriceType.ONE_TIME or (self.type is PriceType.SUBSCRIPTION
                                                  and bool(self.amount_minor))

    def problem(self) -> str | None:
        """Why this price cannot be sold, or None."""
        if self.type is PriceType.FREE or (self.type is PriceType.SUBSCRIPTION
                                           and not self.amount_minor and not self.currency):
            return None if self.interval is None and not self.amount_minor else \
                "a free or members-only pack has no price or interval"
        if (self.type is PriceType.SUBSCRIPTION) != (self.interval is not None):
            return "a subscription's price needs an interval, and only it has one"
        if not _CURRENCY.fullmatch(self.currency) or self.currency not in CURRENCIES:
            return f"currency must be one of {sorted(CURRENCIES)}"
        if not 50 <= self.amount_minor <= MAX_PRICE_MINOR:
            return "price must be between 0.50 and 10000.00"
        return None


@dataclass
class Creator:
    user_id: uuid.UUID
    display_name: str
    bio: str
    links: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


@dataclass
class PackItem:
    content_id: uuid.UUID
    position: int
    #: Copied from the library item when added (a catalog read needs no peer).
    title: str
    content_type: ContentType
    duration_ms: int


@dataclass
class Pack:
    id: uuid.UUID
    creator_id: uuid.UUID
    title: str
    description: str
    price: Price
    tags: tuple[str, ...]
    state: PackState
    created_at: datetime
    updated_at: datetime
    request_id: str = ""
    published_at: datetime | None = None
    archived_at: datetime | None = None
    items: list[PackItem] = field(default_factory=list)
    #: Purchases plus completed plays.
    popularity: int = 0
    #: The popularity the search index last got (a job sends it the new one
    #: now and then: one re-index per play would empty the search cache).
    indexed_popularity: int = 0

    @property
    def listed(self) -> bool:
        return self.state is PackState.PUBLISHED

    @property
    def content_types(self) -> tuple[ContentType, ...]:
        seen: dict[ContentType, None] = {}
        for item in self.items:
            seen.setdefault(item.content_type)
        return tuple(seen)

    def missing_for_publish(self) -> str | None:
        """The first field a publish still needs, or None."""
        if not self.title.strip():
            return "title"
        if not self.description.strip():
            return "description"
        if not self.items:
            return "items"
        if self.price.problem() is not None:
            return "price"
        return None

    def add_item(self, item: PackItem) -> None:
        if self.state is PackState.ARCHIVED:
            raise PackArchived("an archived pack cannot change")
        if any(i.content_id == item.content_id for i in self.items):
            raise ItemInPack("this item is in the pack already")
        if len(self.items) >= MAX_PACK_ITEMS:
            raise FailedPrecondition(f"a pack holds at most {MAX_PACK_ITEMS} items",
                                     reason="PACK_FULL")
        item.position = len(self.items)
        self.items.append(item)

    def remove_item(self, content_id: uuid.UUID) -> bool:
        if self.state is not PackState.DRAFT:
            raise FailedPrecondition("a published pack keeps its items",
                                     reason="PACK_PUBLISHED")
        kept = [i for i in self.items if i.content_id != content_id]
        if len(kept) == len(self.items):
            return False
        for position, item in enumerate(kept):
            item.position = position
        self.items = kept
        return True


@dataclass
class Upload:
    """A recording a creator uploads into a pack: the file goes to
    `object_key`, then AddPackItem makes it an item of their library."""

    id: uuid.UUID
    pack_id: uuid.UUID
    creator_id: uuid.UUID
    title: str
    content_type: ContentType
    object_key: str
    created_at: datetime
    expires_at: datetime
    #: The library item it became.
    content_id: uuid.UUID | None = None


class EntitlementSource(enum.Enum):
    PURCHASE = "purchase"
    SUBSCRIPTION = "subscription"
    GRANT = "grant"


@dataclass
class Entitlement:
    """A person's right to play a pack's items: for good (a purchase), until a
    time (a subscription's paid period), or no more (revoked)."""

    user_id: uuid.UUID
    pack_id: uuid.UUID
    source: EntitlementSource
    #: What gave it: a purchase id, a subscription id, a request id.
    reference: str
    granted_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class Access(enum.Enum):
    NOT_LISTED = "not_listed"
    NOT_OWNED = "not_owned"
    FREE = "free"
    ENTITLED = "entitled"
    OWNER = "owner"


@dataclass(frozen=True)
class AccessDecision:
    access: Access
    #: The pack that gives (or would give) access.
    pack_id: uuid.UUID | None = None

    @property
    def allowed(self) -> bool:
        return self.access in (Access.FREE, Access.ENTITLED, Access.OWNER)


class NotACreator(FailedPrecondition):
    reason = "NOT_A_CREATOR"


class CreatorExists(AlreadyExists):
    reason = "CREATOR_EXISTS"


class PackArchived(FailedPrecondition):
    reason = "PACK_ARCHIVED"


class ItemInPack(AlreadyExists):
    reason = "ITEM_IN_PACK"


class InvalidPrice(InvalidArgument):
    reason = "INVALID_PRICE"


@dataclass(frozen=True, kw_only=True)
class CreatorCreated(DomainEvent):
    topic: ClassVar[str] = "waqup.catalog.creator.created.v1"
    user_id: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class PackPublished(DomainEvent):
    """A pack became listed, or a listed pack changed."""

    topic: ClassVar[str] = "waqup.catalog.pack.published.v1"
    pack_id: uuid.UUID
    creator_id: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class PackArchivedEvent(DomainEvent):
    topic: ClassVar[str] = "waqup.catalog.pack.archived.v1"
    pack_id: uuid.UUID
    creator_id: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class PlayAttributed(DomainEvent):
    """A member completed an item of a members-only pack: it counts toward
    the pack's creator's share of that member's fees."""

    topic: ClassVar[str] = "waqup.catalog.play.attributed.v1"
    user_id: uuid.UUID
    creator_id: uuid.UUID
    pack_id: uuid.UUID
    content_id: uuid.UUID
