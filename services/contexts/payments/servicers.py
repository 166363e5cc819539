"""gRPC servicers of the payments context: protobuf <-> core."""

from __future__ import annotations

import uuid

import grpc

from core.payments.model import (
    CheckoutSession,
    CheckoutState,
    CreditBundle,
    Purchase,
    PurchaseState,
    Subscription,
    SubscriptionPlan,
    SubscriptionState,
)
from core.payments.service import PaymentsService
from core.shared.auth import resolve_user
from core.shared.errors import InvalidArgument
from services.api.context import current_principal
from services.api.convert import money, require_me, timestamp, user_segment
from services.api.creation import resource_id
from services.api.pagination import PageTokens
from services.gen.waqup.payments.v1 import payments_pb2 as pb
from services.gen.waqup.payments.v1 import payments_pb2_grpc as rpc

_CHECKOUT_STATE_TO_PB = {CheckoutState.OPEN: pb.CHECKOUT_STATE_OPEN,
                         CheckoutState.COMPLETED: pb.CHECKOUT_STATE_COMPLETED,
                         CheckoutState.EXPIRED: pb.CHECKOUT_STATE_EXPIRED}
_SUBSCRIPTION_STATE_TO_PB = {SubscriptionState.ACTIVE: pb.SUBSCRIPTION_STATE_ACTIVE,
                             SubscriptionState.PAST_DUE: pb.SUBSCRIPTION_STATE_PAST_DUE,
                             SubscriptionState.ENDED: pb.SUBSCRIPTION_STATE_ENDED}
_PURCHASE_STATE_TO_PB = {PurchaseState.COMPLETED: pb.PURCHASE_STATE_COMPLETED,
                         PurchaseState.REFUNDED: pb.PURCHASE_STATE_REFUNDED,
                         PurchaseState.DISPUTED: pb.PURCHASE_STATE_DISPUTED}


def checkout_pb(session: CheckoutSession) -> pb.CheckoutSession:
    return pb.CheckoutSession(
        name=f"checkoutSessions/{session.id}",
        pack=f"packs/{session.pack_id}" if session.pack_id else "",
        credit_bundle=f"creditBundles/{session.bundle_id}" if session.bundle_id else "",
        subscription_plan=f"subscriptionPlans/{session.plan_id}" if session.plan_id else "",
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


def plan_pb(plan: SubscriptionPlan) -> pb.SubscriptionPlan:
    return pb.SubscriptionPlan(name=f"subscriptionPlans/{plan.id}",
                               display_name=plan.display_name,
                               price=money(plan.amount_minor, plan.currency),
                               interval=plan.interval)


def subscription_pb(subscription: Subscription) -> pb.Subscription:
    return pb.Subscription(
        name=f"users/{subscription.user_id}/subscription",
        plan=f"subscriptionPlans/{subscription.plan_id}" if subscription.plan_id else "",
        state=_SUBSCRIPTION_STATE_TO_PB[subscription.state],
        current_period_end=timestamp(subscription.current_period_end),
        cancel_at_period_end=subscription.cancel_at_period_end,
        create_time=timestamp(subscription.created_at),
        pack=f"packs/{subscription.pack_id}" if subscription.pack_id else "")


def _short(name: str, collection: str, field: str) -> str:
    """The id of `<collection>/{id}` (a short slug); INVALID_NAME otherwise."""
    short = name.removeprefix(f"{collection}/")
    if short == name or not short or len(short) > 32 or not short.replace("-", "").replace(
            "_", "").isalnum():
        raise InvalidArgument(f"{field} must be {collection}/{{id}}", reason="INVALID_NAME",
                              metadata={"field": field})
    return short


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
        bundle = (_short(given.credit_bundle, "creditBundles", "checkout_session.credit_bundle")
                  if given.credit_bundle else None)
        plan = (_short(given.subscription_plan, "subscriptionPlans",
                       "checkout_session.subscription_plan")
                if given.subscription_plan else None)
        session = await self._payments.create_checkout(user_id, request.request_id,
                                                       pack_id=pack, bundle_id=bundle,
                                                       plan_id=plan)
        return checkout_pb(session)

    async def GetCheckoutSession(self, request: pb.GetCheckoutSessionRequest,
                                 context: grpc.aio.ServicerContext) -> pb.CheckoutSession:
        return checkout_pb(await self._payments.get_checkout(
            current_principal().user_id, resource_id(request.name, "checkoutSessions")))

    async def ListCreditBundles(self, request: pb.ListCreditBundlesRequest,
                                context: grpc.aio.ServicerContext) -> pb.ListCreditBundlesResponse:
        return pb.ListCreditBundlesResponse(
            credit_bundles=[bundle_pb(b) for b in self._payments.bundles()])

    async def ListSubscriptionPlans(
            self, request: pb.ListSubscriptionPlansRequest,
            context: grpc.aio.ServicerContext) -> pb.ListSubscriptionPlansResponse:
        return pb.ListSubscriptionPlansResponse(
            subscription_plans=[plan_pb(p) for p in self._payments.plans()])

    async def ListPurchases(self, request: pb.ListPurchasesRequest,
                            context: grpc.aio.ServicerContext) -> pb.ListPurchasesResponse:
        user_id = resolve_user(current_principal(), user_segment(request.parent))
        listing = f"payments.ListPurchases:{user_id}"
        before = self._pages.read_uuid(listing, request.page_token, "before")
        page, after = await self._payments.list_purchases(user_id, request.page_size, before)
        token = self._pages.issue(listing, {"before": str(after)}) if after else ""
        return pb.ListPurchasesResponse(purchases=[purchase_pb(p) for p in page],
                                        next_page_token=token)


def _pack(name: str) -> uuid.UUID | None:
    return resource_id(name, "packs", "pack") if name else None


class SubscriptionServicer(rpc.SubscriptionServiceServicer):
    def __init__(self, payments: PaymentsService) -> None:
        self._payments = payments

    async def GetSubscription(self, request: pb.GetSubscriptionRequest,
                              context: grpc.aio.ServicerContext) -> pb.Subscription:
        require_me(request.name, "users/me/subscription", "name")
        return subscription_pb(await self._payments.get_subscription(
            current_principal().user_id, _pack(request.pack)))

    async def CreateSubscription(self, request: pb.CreateSubscriptionRequest,
                                 context: grpc.aio.ServicerContext) -> pb.CheckoutSession:
        require_me(request.parent, "users/me", "parent")
        session = await self._payments.create_checkout(
            current_principal().user_id, request.request_id,
            plan_id=_short(request.plan, "subscriptionPlans", "plan"))
        return checkout_pb(session)

    async def CancelSubscription(self, request: pb.CancelSubscriptionRequest,
                                 context: grpc.aio.ServicerContext) -> pb.Subscription:
        require_me(request.name, "users/me/subscription", "name")
        return subscription_pb(await self._payments.cancel_subscription(
            current_principal().user_id, _pack(request.pack)))
