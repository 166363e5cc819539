"""Wire format of the payments' events (proto/waqup/payments/v1/events.proto)."""

from __future__ import annotations

import uuid
from datetime import UTC

from core.payments.model import (
    MembershipChanged,
    MembershipPaid,
    PurchaseCompleted,
    PurchaseRefunded,
    StripeEventReceived,
)
from services.api.convert import minor_units, money, timestamp
from services.api.creation import resource_id
from services.gen.waqup.payments.v1 import events_pb2


def _optional_id(name: str, collection: str) -> uuid.UUID | None:
    return resource_id(name, collection) if name else None


def _bundle(name: str) -> str | None:
    return name.removeprefix("creditBundles/") if name else None


def encode_received(event: StripeEventReceived) -> events_pb2.StripeEventReceived:
    return events_pb2.StripeEventReceived(event_id=str(event.event_id),
                                          stripe_event=event.stripe_event_id,
                                          payload=event.payload,
                                          receive_time=timestamp(event.occurred_at))


def decode_received(message: events_pb2.StripeEventReceived,
                    event_id: uuid.UUID) -> StripeEventReceived:
    return StripeEventReceived(event_id=event_id,
                               occurred_at=message.receive_time.ToDatetime(tzinfo=UTC),
                               stripe_event_id=message.stripe_event, payload=message.payload)


def encode_completed(event: PurchaseCompleted) -> events_pb2.PurchaseCompleted:
    return events_pb2.PurchaseCompleted(
        event_id=str(event.event_id), purchase=f"purchases/{event.purchase_id}",
        user=f"users/{event.user_id}",
        pack=f"packs/{event.pack_id}" if event.pack_id else "",
        creator=f"creators/{event.creator_id}" if event.creator_id else "",
        credit_bundle=f"creditBundles/{event.bundle_id}" if event.bundle_id else "",
        credits=event.credits, amount=money(event.amount_minor, event.currency),
        complete_time=timestamp(event.occurred_at))


def decode_completed(message: events_pb2.PurchaseCompleted,
                     event_id: uuid.UUID) -> PurchaseCompleted:
    amount, currency = minor_units(message.amount, "amount")
    return PurchaseCompleted(
        event_id=event_id, occurred_at=message.complete_time.ToDatetime(tzinfo=UTC),
        purchase_id=resource_id(message.purchase, "purchases"),
        user_id=resource_id(message.user, "users"),
        pack_id=_optional_id(message.pack, "packs"),
        creator_id=_optional_id(message.creator, "creators"),
        bundle_id=_bundle(message.credit_bundle), credits=message.credits,
        amount_minor=amount, currency=currency)


def encode_refunded(event: PurchaseRefunded) -> events_pb2.PurchaseRefunded:
    return events_pb2.PurchaseRefunded(
        event_id=str(event.event_id), purchase=f"purchases/{event.purchase_id}",
        user=f"users/{event.user_id}",
        pack=f"packs/{event.pack_id}" if event.pack_id else "",
        creator=f"creators/{event.creator_id}" if event.creator_id else "",
        credit_bundle=f"creditBundles/{event.bundle_id}" if event.bundle_id else "",
        credits=event.credits, cause=event.cause, refund_time=timestamp(event.occurred_at))


def decode_refunded(message: events_pb2.PurchaseRefunded,
                    event_id: uuid.UUID) -> PurchaseRefunded:
    return PurchaseRefunded(
        event_id=event_id, occurred_at=message.refund_time.ToDatetime(tzinfo=UTC),
        purchase_id=resource_id(message.purchase, "purchases"),
        user_id=resource_id(message.user, "users"),
        pack_id=_optional_id(message.pack, "packs"),
        creator_id=_optional_id(message.creator, "creators"),
        bundle_id=_bundle(message.credit_bundle), credits=message.credits, cause=message.cause)


def encode_membership(event: MembershipChanged) -> events_pb2.MembershipChanged:
    message = events_pb2.MembershipChanged(
        event_id=str(event.event_id), user=f"users/{event.user_id}",
        subscription=event.subscription, change_time=timestamp(event.occurred_at),
        pack=f"packs/{event.pack_id}" if event.pack_id else "")
    if event.active_until is not None:
        message.active_until.CopyFrom(timestamp(event.active_until))
    return message


def decode_membership(message: events_pb2.MembershipChanged,
                      event_id: uuid.UUID) -> MembershipChanged:
    return MembershipChanged(
        event_id=event_id, occurred_at=message.change_time.ToDatetime(tzinfo=UTC),
        user_id=resource_id(message.user, "users"), subscription=message.subscription,
        active_until=message.active_until.ToDatetime(tzinfo=UTC)
        if message.HasField("active_until") else None,
        pack_id=_optional_id(message.pack, "packs"))


def encode_membership_paid(event: MembershipPaid) -> events_pb2.MembershipPaid:
    return events_pb2.MembershipPaid(
        event_id=str(event.event_id), user=f"users/{event.user_id}",
        subscription=event.subscription, payment=event.payment,
        amount=money(event.amount_minor, event.currency), pay_time=timestamp(event.occurred_at),
        creator=f"creators/{event.creator_id}" if event.creator_id else "")


def decode_membership_paid(message: events_pb2.MembershipPaid,
                           event_id: uuid.UUID) -> MembershipPaid:
    amount, currency = minor_units(message.amount, "amount")
    return MembershipPaid(
        event_id=event_id, occurred_at=message.pay_time.ToDatetime(tzinfo=UTC),
        user_id=resource_id(message.user, "users"), subscription=message.subscription,
        payment=message.payment, amount_minor=amount, currency=currency,
        creator_id=_optional_id(message.creator, "creators"))
