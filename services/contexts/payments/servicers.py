"""gRPC servicers of the payments context: protobuf <-> core."""

from __future__ import annotations

import grpc

from core.payments.model import (
    CheckoutSession,
    CheckoutState,
    CreditBundle,
    Purchase,
    PurchaseState,
)
from core.payments.service import PaymentsService
from core.shared.auth import resolve_user
from services.api.context import current_principal
from services.api.convert import money, timestamp, user_segment
from services.api.creation import resource_id
from services.api.pagination import PageTokens
from services.gen.waqup.payments.v1 import payments_pb2 as pb
from services.gen.waqup.payments.v1 import payments_pb2_grpc as rpc

_CHECKOUT_STATE_TO_PB = {CheckoutState.OPEN: pb.CHECKOUT_STATE_OPEN,
                         CheckoutState.COMPLETED: pb.CHECKOUT_STATE_COMPLETED,
                         CheckoutState.EXPIRED: pb.CHECKOUT_STATE_EXPIRED}
_PURCHASE_STATE_TO_PB = {PurchaseState.COMPLETED: pb.PURCHASE_STATE_COMPLETED,
                         PurchaseState.REFUNDED: pb.PURCHASE_STATE_REFUNDED,
                         PurchaseState.DISPUTED: pb.PURCHASE_STATE_DISPUTED}


def checkout_pb(session: CheckoutSession) -> pb.CheckoutSession:
    return pb.CheckoutSession(
        name=f"checkoutSessions/{session.id}",
        pack=f"packs/{session.pack_id}" if session.pack_id else "",
        credit_bundle=f"creditBundles/{session.bundle_id}" if session.bundle_id else "",
        url=session.url, state=_CHECKOUT_STATE_TO_PB[session.state],
        amount=money(session.amount_minor, session.currency),
        purchase=f"purchases/{session.purchase_id}" if session.purchase_id else "",
        create_time=timestamp(session.created_at), expire_time=timestamp(session.expires_at))


def purchase_pb(purchase: Purchase) -> pb.Purchase:
    message = pb.Purchase(
        name=f"purchases/{purchase.id}",
        pack=f"packs/{purchase.pack_id}" if purchase.pack_id else "",
        credit_bundle=f"creditBundles/{purchase.bundle_id}" if purchase.bundle_id else "",
        credits=purchase.credits, amount=money(purchase.amount_minor, purchase.currency),
        state=_PURCHASE_STATE_TO_PB[purchase.state], create_time=timestamp(purchase.created_at))
    if purchase.refunded_at is not None:
        message.refund_time.CopyFrom(timestamp(purchase.refunded_at))
    return message


def bundle_pb(bundle: CreditBundle) -> pb.CreditBundle:
    return pb.CreditBundle(name=f"creditBundles/{bundle.id}", display_name=bundle.display_name,
                           credits=bundle.credits,
                           price=money(bundle.amount_minor, bundle.currency))


class CheckoutServicer(rpc.CheckoutServiceServicer):
    def __init__(self, payments: PaymentsService, page_tokens: PageTokens) -> None:
        self._payments = payments
        self._pages = page_tokens

    async def CreateCheckoutSession(self, request: pb.CreateCheckoutSessionRequest,
                                    context: grpc.aio.ServicerContext) -> pb.CheckoutSession:
        user_id = current_principal().user_id
        given = request.checkout_session
        pack = resource_id(given.pack, "packs", "checkout_session.pack") if given.pack else None
        bundle = None
        if given.credit_bundle:
            bundle = given.credit_bundle.removeprefix("creditBundles/")
            if bundle == given.credit_bundle or not bundle:
                resource_id(given.credit_bundle, "creditBundles",
                            "checkout_session.credit_bundle")  # raises INVALID_NAME
        session = await self._payments.create_checkout(user_id, request.request_id,
                                                       pack_id=pack, bundle_id=bundle)
        return checkout_pb(session)

    async def GetCheckoutSession(self, request: pb.GetCheckoutSessionRequest,
                                 context: grpc.aio.ServicerContext) -> pb.CheckoutSession:
        return checkout_pb(await self._payments.get_checkout(
            current_principal().user_id, resource_id(request.name, "checkoutSessions")))

    async def ListCreditBundles(self, request: pb.ListCreditBundlesRequest,
                                context: grpc.aio.ServicerContext) -> pb.ListCreditBundlesResponse:
        return pb.ListCreditBundlesResponse(
            credit_bundles=[bundle_pb(b) for b in self._payments.bundles()])

    async def ListPurchases(self, request: pb.ListPurchasesRequest,
                            context: grpc.aio.ServicerContext) -> pb.ListPurchasesResponse:
        user_id = resolve_user(current_principal(), user_segment(request.parent))
        listing = f"payments.ListPurchases:{user_id}"
        before = self._pages.read_uuid(listing, request.page_token, "before")
        page, after = await self._payments.list_purchases(user_id, request.page_size, before)
        token = self._pages.issue(listing, {"before": str(after)}) if after else ""
        return pb.ListPurchasesResponse(purchases=[purchase_pb(p) for p in page],
                                        next_page_token=token)
