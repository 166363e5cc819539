"""gRPC servicers of the credits context: protobuf <-> core."""

from __future__ import annotations

import uuid

import grpc

from core.credits.model import CreditAccount, Hold, HoldState, LedgerEntry, TransactionType
from core.credits.service import CreditsService
from core.shared.auth import resolve_user
from core.shared.errors import InvalidArgument
from services.api.context import current_principal
from services.api.convert import timestamp, user_segment
from services.api.pagination import PageTokens
from services.gen.waqup.credits.v1 import credits_pb2 as pb
from services.gen.waqup.credits.v1 import credits_pb2_grpc as rpc

_TYPE_TO_PB = {TransactionType.PURCHASE: pb.TRANSACTION_TYPE_PURCHASE,
               TransactionType.CONSUMPTION: pb.TRANSACTION_TYPE_CONSUMPTION,
               TransactionType.REFUND: pb.TRANSACTION_TYPE_REFUND,
               TransactionType.GRANT: pb.TRANSACTION_TYPE_GRANT,
               TransactionType.REVERSAL: pb.TRANSACTION_TYPE_REVERSAL}
_TYPE_FROM_PB = {v: k for k, v in _TYPE_TO_PB.items()}
_STATE_TO_PB = {HoldState.ACTIVE: pb.RESERVATION_STATE_ACTIVE,
                HoldState.COMMITTED: pb.RESERVATION_STATE_COMMITTED,
                HoldState.RELEASED: pb.RESERVATION_STATE_RELEASED}


def account_pb(account: CreditAccount) -> pb.CreditAccount:
    return pb.CreditAccount(name=f"users/{account.user_id}/creditAccount",
                            balance=account.balance, held=account.held,
                            available=account.available)


def transaction_pb(entry: LedgerEntry) -> pb.CreditTransaction:
    return pb.CreditTransaction(
        name=f"users/{entry.user_id}/creditTransactions/{entry.id}",
        type=_TYPE_TO_PB[entry.type], amount=entry.amount, balance_after=entry.balance_after,
        reason=entry.reason,
        reservation=f"users/{entry.user_id}/reservations/{entry.hold_id}" if entry.hold_id else "",
        create_time=timestamp(entry.created_at))


def reservation_pb(hold: Hold) -> pb.Reservation:
    return pb.Reservation(name=f"users/{hold.user_id}/reservations/{hold.id}",
                          amount=hold.amount, state=_STATE_TO_PB[hold.state],
                          reason=hold.reason, create_time=timestamp(hold.created_at))


def _uuid(text: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidArgument(f"{field} must name a UUID", reason="INVALID_NAME",
                              metadata={"field": field}) from None


def _parent_user(parent: str) -> uuid.UUID:
    return _uuid(user_segment(parent, "users/"), "parent")


def _reservation(name: str) -> tuple[uuid.UUID, uuid.UUID]:
    user, sep, hold = user_segment(name, "users/").partition("/reservations/")
    if not sep:
        raise InvalidArgument("name must be users/{user}/reservations/{reservation}",
                              reason="INVALID_NAME", metadata={"field": "name"})
    return _uuid(user, "name"), _uuid(hold, "name")


class CreditAccountServicer(rpc.CreditAccountServiceServicer):
    def __init__(self, credits: CreditsService, page_tokens: PageTokens) -> None:
        self._credits = credits
        self._pages = page_tokens

    async def GetCreditAccount(self, request: pb.GetCreditAccountRequest,
                               context: grpc.aio.ServicerContext) -> pb.CreditAccount:
        user_id = resolve_user(current_principal(),
                               user_segment(request.name, suffix="/creditAccount"))
        return account_pb(await self._credits.get_account(user_id))

    async def ListCreditTransactions(
            self, request: pb.ListCreditTransactionsRequest,
            context: grpc.aio.ServicerContext) -> pb.ListCreditTransactionsResponse:
        user_id = resolve_user(current_principal(), user_segment(request.parent))
        listing = f"credits.ListCreditTransactions:{user_id}"
        before = self._pages.read_uuid(listing, request.page_token, "before")
        entries, after = await self._credits.list_transactions(user_id, request.page_size,
                                                               before)
        token = self._pages.issue(listing, {"before": str(after)}) if after else ""
        return pb.ListCreditTransactionsResponse(
            credit_transactions=[transaction_pb(e) for e in entries], next_page_token=token)


class CreditLedgerServicer(rpc.CreditLedgerServiceServicer):
    """Internal. The auth interceptor admits only callers with the service role."""

    def __init__(self, credits: CreditsService) -> None:
        self._credits = credits

    async def ReserveCredits(self, request: pb.ReserveCreditsRequest,
                             context: grpc.aio.ServicerContext) -> pb.Reservation:
        hold = await self._credits.reserve(request.request_id, _parent_user(request.parent),
                                           request.amount, request.reason)
        return reservation_pb(hold)

    async def CommitReservation(self, request: pb.CommitReservationRequest,
                                context: grpc.aio.ServicerContext) -> pb.CreditTransaction:
        user_id, hold_id = _reservation(request.name)
        return transaction_pb(await self._credits.commit(request.request_id, user_id, hold_id))

    async def ReleaseReservation(self, request: pb.ReleaseReservationRequest,
                                 context: grpc.aio.ServicerContext) -> pb.Reservation:
        user_id, hold_id = _reservation(request.name)
        return reservation_pb(await self._credits.release(request.request_id, user_id, hold_id))

    async def GrantCredits(self, request: pb.GrantCreditsRequest,
                           context: grpc.aio.ServicerContext) -> pb.CreditTransaction:
        entry = await self._credits.grant(request.request_id, _parent_user(request.parent),
                                          request.amount, _TYPE_FROM_PB[request.type],
                                          request.reason)
        return transaction_pb(entry)

    async def RefundCredits(self, request: pb.RefundCreditsRequest,
                            context: grpc.aio.ServicerContext) -> pb.CreditTransaction:
        entry = await self._credits.refund(request.request_id, _parent_user(request.parent),
                                           request.amount, request.reason)
        return transaction_pb(entry)
