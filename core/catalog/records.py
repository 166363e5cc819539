"""Packs and creators as plain dicts (JSON): what a cached search result
holds, so that a cache hit reads nothing of them from the database."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from core.catalog.model import Creator, Interval, Pack, PackItem, PackState, Price, PriceType
from core.shared.creation import ContentType


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def pack_record(pack: Pack) -> dict[str, Any]:
    return {
        "id": str(pack.id), "creator": str(pack.creator_id), "title": pack.title,
        "description": pack.description,
        "price": [pack.price.type.value, pack.price.amount_minor, pack.price.currency,
                  pack.price.interval.value if pack.price.interval else None],
        "tags": list(pack.tags), "state": pack.state.value, "created": _time(pack.created_at),
        "updated": _time(pack.updated_at), "published": _time(pack.published_at),
        "archived": _time(pack.archived_at), "popularity": pack.popularity,
        "items": [[str(i.content_id), i.position, i.title, i.content_type.value, i.duration_ms]
                  for i in pack.items],
    }


def pack_from_record(record: dict[str, Any]) -> Pack:
    kind, amount, currency, interval = record["price"]
    return Pack(
        id=uuid.UUID(record["id"]), creator_id=uuid.UUID(record["creator"]),
        title=record["title"], description=record["description"],
        price=Price(PriceType(kind), amount, currency, Interval(interval) if interval else None),
        tags=tuple(record["tags"]),
        state=PackState(record["state"]), created_at=_parse(record["created"]),  # type: ignore[arg-type]
        updated_at=_parse(record["updated"]),  # type: ignore[arg-type]
        published_at=_parse(record["published"]), archived_at=_parse(record["archived"]),
        popularity=record["popularity"],
        items=[PackItem(uuid.UUID(c), position, title, ContentType(kind), ms)
               for c, position, title, kind, ms in record["items"]])


def creator_record(creator: Creator) -> dict[str, Any]:
    return {"id": str(creator.user_id), "name": creator.display_name, "bio": creator.bio,
            "links": list(creator.links), "created": _time(creator.created_at),
            "updated": _time(creator.updated_at)}


def creator_from_record(record: dict[str, Any]) -> Creator:
    return Creator(user_id=uuid.UUID(record["id"]), display_name=record["name"],
                   bio=record["bio"], links=tuple(record["links"]),
                   created_at=_parse(record["created"]),  # type: ignore[arg-type]
                   updated_at=_parse(record["updated"]))  # type: ignore[arg-type]
