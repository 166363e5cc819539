"""The catalog context: creators, packs, search and access to what was bought."""

import uuid
from datetime import UTC

from core.catalog.model import (
    CreatorCreated,
    EntitlementSource,
    PackArchivedEvent,
    PackPublished,
    PlayAttributed,
)
from core.catalog.recommend import Completion
from services.api.creation import CONTENT_TYPE_FROM_PB, resource_id
from services.contexts.catalog import events, wiring
from services.contexts.declaration import (
    BuiltContext,
    Consumes,
    ContextDeclaration,
    HttpRoute,
    Publishes,
)
from services.gen.waqup.catalog.v1 import catalog_pb2, events_pb2
from services.gen.waqup.library.v1 import events_pb2 as library_events
from services.gen.waqup.payments.v1 import events_pb2 as payments_events


async def _index_published(built: BuiltContext, event_id: uuid.UUID,
                           message: events_pb2.PackPublished) -> None:
    await built.service.index_pack(event_id, resource_id(message.pack, "packs"))


async def _index_archived(built: BuiltContext, event_id: uuid.UUID,
                          message: events_pb2.PackArchived) -> None:
    await built.service.index_pack(event_id, resource_id(message.pack, "packs"))


async def _purchase_completed(built: BuiltContext, event_id: uuid.UUID,
                              message: payments_events.PurchaseCompleted) -> None:
    if message.pack:
        await built.service.grant_access(
            resource_id(message.user, "users"), resource_id(message.pack, "packs"),
            EntitlementSource.PURCHASE, message.purchase, event_id=event_id)


async def _membership_changed(built: BuiltContext, event_id: uuid.UUID,
                              message: payments_events.MembershipChanged) -> None:
    until = (message.active_until.ToDatetime(tzinfo=UTC)
             if message.HasField("active_until") else None)
    await built.service.set_membership(
        event_id, resource_id(message.user, "users"), message.subscription, until,
        resource_id(message.pack, "packs") if message.pack else None)


async def _practice_completed(built: BuiltContext, event_id: uuid.UUID,
                              message: library_events.PracticeCompleted) -> None:
    completion = Completion(
        user_id=resource_id(message.user, "users"),
        content_type=CONTENT_TYPE_FROM_PB[message.content_type].value,
        completed_at=message.complete_time.ToDatetime(tzinfo=UTC),
        local_hour=message.local_hour, pack_id=None, tags=tuple(message.tags),
        title=message.title, mood_before=message.mood_before or None,
        mood_after=message.mood_after or None)
    await built.service.record_play(event_id, completion,
                                    resource_id(message.content, "contents"))


async def _purchase_refunded(built: BuiltContext, event_id: uuid.UUID,
                             message: payments_events.PurchaseRefunded) -> None:
    if message.pack:
        await built.service.revoke_access(message.purchase, event_id=event_id)


DECLARATION = ContextDeclaration(
    name="catalog",
    proto=catalog_pb2.DESCRIPTOR,
    public=("CreatorService", "PackService"),
    internal=("AccessService",),
    publishes=(Publishes(CreatorCreated, events_pb2.CreatorCreated, events.encode_creator,
                         events.decode_creator),
               Publishes(PackPublished, events_pb2.PackPublished, events.encode_published,
                         events.decode_published),
               Publishes(PackArchivedEvent, events_pb2.PackArchived, events.encode_archived,
                         events.decode_archived),
               Publishes(PlayAttributed, events_pb2.PlayAttributed, events.encode_play,
                         events.decode_play)),
    consumes=(Consumes("waqup.catalog.pack.published.v1", events_pb2.PackPublished,
                       "catalog-index", _index_published),
              Consumes("waqup.catalog.pack.archived.v1", events_pb2.PackArchived,
                       "catalog-index", _index_archived),
              Consumes("waqup.payments.purchase.completed.v1", payments_events.PurchaseCompleted,
                       "catalog", _purchase_completed),
              Consumes("waqup.payments.purchase.refunded.v1", payments_events.PurchaseRefunded,
                       "catalog", _purchase_refunded),
              Consumes("waqup.payments.membership.changed.v1",
                       payments_events.MembershipChanged, "catalog", _membership_changed),
              Consumes("waqup.library.practice.completed.v1", library_events.PracticeCompleted,
                       "catalog", _practice_completed)),
    # Embedded mode's upload URLs (S3's are presigned PUTs to the bucket).
    http_routes=(HttpRoute("upload", r"/v1/uploads/[A-Za-z0-9._/-]+", token=False,
                           methods=("PUT",), stream_body=True, timeout_seconds=300.0),),
    build=wiring.build,
)
