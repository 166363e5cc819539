"""gRPC servicers of the rewards context: protobuf <-> core."""

from __future__ import annotations

import grpc

from core.rewards.model import RewardTransaction, RewardType
from core.rewards.service import RewardsService
from services.api.context import current_principal
from services.api.convert import require_me, timestamp
from services.api.creation import resource_id
from services.api.pagination import PageTokens
from services.gen.waqup.rewards.v1 import rewards_pb2 as pb
from services.gen.waqup.rewards.v1 import rewards_pb2_grpc as rpc

_TYPE_TO_PB = {RewardType.ACCRUAL: pb.REWARD_TRANSACTION_TYPE_ACCRUAL,
               RewardType.REVERSAL: pb.REWARD_TRANSACTION_TYPE_REVERSAL,
               RewardType.MEMBERSHIP: pb.REWARD_TRANSACTION_TYPE_MEMBERSHIP}


def transaction_pb(entry: RewardTransaction) -> pb.RewardTransaction:
    return pb.RewardTransaction(
        name=f"creators/{entry.creator_id}/rewardTransactions/{entry.id}",
        type=_TYPE_TO_PB[entry.type], tokens=entry.tokens, balance_after=entry.balance_after,
        currency_code=entry.currency,
        purchase="" if entry.source else f"purchases/{entry.purchase_id}",
        sale_amount=entry.sale_amount, create_time=timestamp(entry.created_at),
        membership_payment=entry.source, plays=entry.plays, total_plays=entry.total_plays,
        share_percent=entry.share_percent)


class RewardAccountServicer(rpc.RewardAccountServiceServicer):
    def __init__(self, rewards: RewardsService, page_tokens: PageTokens) -> None:
        self._rewards = rewards
        self._pages = page_tokens

    async def GetRewardAccount(self, request: pb.GetRewardAccountRequest,
                               context: grpc.aio.ServicerContext) -> pb.RewardAccount:
        require_me(request.name, "creators/me/rewardAccount", "name")
        user_id = current_principal().user_id
        balances = await self._rewards.balances(user_id)
        return pb.RewardAccount(name=f"creators/{user_id}/rewardAccount", balances=[
            pb.RewardBalance(currency_code=c, tokens=t) for c, t in sorted(balances.items())])

    async def ListRewardTransactions(
            self, request: pb.ListRewardTransactionsRequest,
            context: grpc.aio.ServicerContext) -> pb.ListRewardTransactionsResponse:
        require_me(request.parent, "creators/me", "parent")
        user_id = current_principal().user_id
        listing = f"rewards.ListRewardTransactions:{user_id}"
        before = self._pages.read_uuid(listing, request.page_token, "before")
        page, after = await self._rewards.transactions(user_id, request.page_size, before)
        token = self._pages.issue(listing, {"before": str(after)}) if after else ""
        return pb.ListRewardTransactionsResponse(
            reward_transactions=[transaction_pb(e) for e in page], next_page_token=token)


class RewardLedgerServicer(rpc.RewardLedgerServiceServicer):
    """Internal. The auth interceptor admits only callers with the service role."""

    def __init__(self, rewards: RewardsService) -> None:
        self._rewards = rewards

    async def AccrueReward(self, request: pb.AccrueRewardRequest,
                           context: grpc.aio.ServicerContext) -> pb.RewardTransaction:
        entry = await self._rewards.accrue(
            resource_id(request.purchase, "purchases", "purchase"),
            resource_id(request.creator, "creators", "creator"), request.sale_amount,
            request.currency_code)
        return transaction_pb(entry)
