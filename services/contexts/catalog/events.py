"""Wire format of the catalog's events (proto/waqup/catalog/v1/events.proto)."""

from __future__ import annotations

import uuid
from datetime import UTC

from core.catalog.model import CreatorCreated, PackArchivedEvent, PackPublished, PlayAttributed
from services.api.convert import timestamp
from services.api.creation import resource_id
from services.gen.waqup.catalog.v1 import events_pb2


def encode_creator(event: CreatorCreated) -> events_pb2.CreatorCreated:
    return events_pb2.CreatorCreated(event_id=str(event.event_id), user=f"users/{event.user_id}",
                                     create_time=timestamp(event.occurred_at))


def decode_creator(message: events_pb2.CreatorCreated, event_id: uuid.UUID) -> CreatorCreated:
    return CreatorCreated(event_id=event_id,
                          occurred_at=message.create_time.ToDatetime(tzinfo=UTC),
                          user_id=resource_id(message.user, "users"))


def encode_published(event: PackPublished) -> events_pb2.PackPublished:
    return events_pb2.PackPublished(event_id=str(event.event_id), pack=f"packs/{event.pack_id}",
                                    creator=f"creators/{event.creator_id}",
                                    publish_time=timestamp(event.occurred_at))


def decode_published(message: events_pb2.PackPublished, event_id: uuid.UUID) -> PackPublished:
    return PackPublished(event_id=event_id,
                         occurred_at=message.publish_time.ToDatetime(tzinfo=UTC),
                         pack_id=resource_id(message.pack, "packs"),
                         creator_id=resource_id(message.creator, "creators"))


def encode_archived(event: PackArchivedEvent) -> events_pb2.PackArchived:
    return events_pb2.PackArchived(event_id=str(event.event_id), pack=f"packs/{event.pack_id}",
                                   creator=f"creators/{event.creator_id}",
                                   archive_time=timestamp(event.occurred_at))


def decode_archived(message: events_pb2.PackArchived, event_id: uuid.UUID) -> PackArchivedEvent:
    return PackArchivedEvent(event_id=event_id,
                             occurred_at=message.archive_time.ToDatetime(tzinfo=UTC),
                             pack_id=resource_id(message.pack, "packs"),
                             creator_id=resource_id(message.creator, "creators"))


def encode_play(event: PlayAttributed) -> events_pb2.PlayAttributed:
    return events_pb2.PlayAttributed(
        event_id=str(event.event_id), user=f"users/{event.user_id}",
        creator=f"creators/{event.creator_id}", pack=f"packs/{event.pack_id}",
        content=f"contents/{event.content_id}", play_time=timestamp(event.occurred_at))


def decode_play(message: events_pb2.PlayAttributed, event_id: uuid.UUID) -> PlayAttributed:
    return PlayAttributed(event_id=event_id, occurred_at=message.play_time.ToDatetime(tzinfo=UTC),
                          user_id=resource_id(message.user, "users"),
                          creator_id=resource_id(message.creator, "creators"),
                          pack_id=resource_id(message.pack, "packs"),
                          content_id=resource_id(message.content, "contents"))
