"""What the marketplace's search index holds and answers: one document per
published pack, queried by words (typos forgiven), filters and an order."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

#: Most hits one query returns in a page.
MAX_SEARCH_PAGE = 100
#: Longest query text accepted (characters).
MAX_QUERY_LENGTH = 200


class SearchOrder(enum.Enum):
    #: Best text match first (with no text: newest first).
    RELEVANCE = "relevance"
    NEWEST = "newest"
    POPULARITY = "popularity"


@dataclass(frozen=True)
class PackDocument:
    """A published pack as the index sees it."""

    pack_id: uuid.UUID
    title: str
    description: str
    creator_id: uuid.UUID
    creator_name: str
    #: Tags of the pack (lower case).
    tags: tuple[str, ...]
    #: The ContentType values of its items (`affirmation`, `guided_meditation`, `ritual`).
    content_types: tuple[str, ...]
    #: PriceType value: `free`, `one_time` or `subscription`.
    price_type: str
    published_at: datetime
    #: Purchases plus completed plays: what `popularity` orders by.
    popularity: int = 0


@dataclass(frozen=True)
class SearchQuery:
    #: Words to match (title weighs most, then tags and creator, then
    #: description); "" matches every document.
    text: str = ""
    content_type: str | None = None
    price_type: str | None = None
    creator_id: uuid.UUID | None = None
    tag: str | None = None
    order: SearchOrder = SearchOrder.RELEVANCE
    offset: int = 0
    limit: int = 20


@dataclass(frozen=True)
class SearchPage:
    #: The matching packs of this page, in order.
    pack_ids: list[uuid.UUID]
    #: Whether more match after this page.
    more: bool
