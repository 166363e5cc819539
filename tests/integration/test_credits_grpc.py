"""Credits over a real gRPC channel, on the in-memory store, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from services.gen.waqup.credits.v1 import credits_pb2 as pb
from tests.integration.conftest import App, bearer, start_app, stop_app
from tests.integration.status import details


async def wait_for_balance(app: App, token: str, balance: int, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        account = await app.accounts.GetCreditAccount(
            pb.GetCreditAccountRequest(name="users/me/creditAccount"), metadata=bearer(token))
        if account.balance == balance or asyncio.get_running_loop().time() > deadline:
            assert account.balance == balance
            return
        await asyncio.sleep(0.05)


def user_of(name: str) -> str:
    return name.removeprefix("users/")


async def grant(app: App, user: str, amount: int,
                request_id: str | None = None) -> pb.CreditTransaction:
    return await app.ledger.GrantCredits(pb.GrantCreditsRequest(
        request_id=request_id or str(uuid.uuid4()), parent=f"users/{user}", amount=amount,
        type=pb.TRANSACTION_TYPE_PURCHASE, reason="bundle:test"),
        metadata=bearer(app.service_token()))


async def test_new_user_gets_one_free_credit(app: App) -> None:
    user = await app.register()
    await wait_for_balance(app, user.access_token, 1)
    account = await app.accounts.GetCreditAccount(
        pb.GetCreditAccountRequest(name="users/me/creditAccount"),
        metadata=bearer(user.access_token))
    assert (account.held, account.available) == (0, 1)
    assert account.name == f"{user.user.name}/creditAccount"
    listing = await app.accounts.ListCreditTransactions(
        pb.ListCreditTransactionsRequest(parent="users/me"), metadata=bearer(user.access_token))
    [entry] = listing.credit_transactions
    assert (entry.type, entry.amount, entry.balance_after) == (pb.TRANSACTION_TYPE_GRANT, 1, 1)


async def test_reserve_commit_release_flow(app: App) -> None:
    user = await app.register()
    uid = user_of(user.user.name)
    await wait_for_balance(app, user.access_token, 1)
    await grant(app, uid, 4)
    service = bearer(app.service_token())

    hold = await app.ledger.ReserveCredits(pb.ReserveCreditsRequest(
        request_id=str(uuid.uuid4()), parent=f"users/{uid}", amount=3,
        reason="creation:ritual"), metadata=service)
    assert hold.state == pb.RESERVATION_STATE_ACTIVE
    account = await app.accounts.GetCreditAccount(
        pb.GetCreditAccountRequest(name="users/me/creditAccount"),
        metadata=bearer(user.access_token))
    assert (account.balance, account.held, account.available) == (5, 3, 2)

    spent = await app.ledger.CommitReservation(pb.CommitReservationRequest(
        request_id=str(uuid.uuid4()), name=hold.name), metadata=service)
    assert (spent.type, spent.amount, spent.balance_after) == (
        pb.TRANSACTION_TYPE_CONSUMPTION, -3, 2)
    assert spent.reservation == hold.name

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await app.ledger.ReleaseReservation(pb.ReleaseReservationRequest(
            request_id=str(uuid.uuid4()), name=hold.name), metadata=service)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(caught.value)[0] == "RESERVATION_NOT_ACTIVE"

    second = await app.ledger.ReserveCredits(pb.ReserveCreditsRequest(
        request_id=str(uuid.uuid4()), parent=f"users/{uid}", amount=2), metadata=service)
    released = await app.ledger.ReleaseReservation(pb.ReleaseReservationRequest(
        request_id=str(uuid.uuid4()), name=second.name), metadata=service)
    assert released.state == pb.RESERVATION_STATE_RELEASED
    account = await app.accounts.GetCreditAccount(
        pb.GetCreditAccountRequest(name="users/me/creditAccount"),
        metadata=bearer(user.access_token))
    assert (account.balance, account.held, account.available) == (2, 0, 2)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await app.ledger.ReserveCredits(pb.ReserveCreditsRequest(
            request_id=str(uuid.uuid4()), parent=f"users/{uid}", amount=3), metadata=service)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    reason, metadata, _ = details(caught.value)
    assert reason == "INSUFFICIENT_CREDITS" and metadata["available"] == "2"

    refund = await app.ledger.RefundCredits(pb.RefundCreditsRequest(
        request_id=str(uuid.uuid4()), parent=f"users/{uid}", amount=3, reason="bad audio"),
        metadata=service)
    assert (refund.type, refund.amount, refund.balance_after) == (pb.TRANSACTION_TYPE_REFUND, 3, 5)


async def test_internal_methods_refuse_user_tokens(app: App) -> None:
    user = await app.register()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await app.ledger.GrantCredits(pb.GrantCreditsRequest(
            request_id=str(uuid.uuid4()), parent=user.user.name, amount=100,
            type=pb.TRANSACTION_TYPE_GRANT), metadata=bearer(user.access_token))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert details(caught.value)[0] == "INTERNAL_METHOD"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await app.ledger.GrantCredits(pb.GrantCreditsRequest(
            request_id=str(uuid.uuid4()), parent=user.user.name, amount=100,
            type=pb.TRANSACTION_TYPE_GRANT))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_request_id_makes_writes_idempotent(app: App) -> None:
    user = await app.register()
    uid = user_of(user.user.name)
    await wait_for_balance(app, user.access_token, 1)
    request_id = str(uuid.uuid4())
    first = await grant(app, uid, 5, request_id)
    again = await grant(app, uid, 5, request_id)
    assert again == first
    await wait_for_balance(app, user.access_token, 6)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await grant(app, uid, 7, request_id)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value)[0] == "REQUEST_ID_REUSED"
    await wait_for_balance(app, user.access_token, 6)


async def test_transactions_paginate_newest_first(app: App) -> None:
    user = await app.register()
    uid = user_of(user.user.name)
    await wait_for_balance(app, user.access_token, 1)
    for amount in range(1, 8):
        await grant(app, uid, amount)
    seen: list[pb.CreditTransaction] = []
    token = ""
    while True:
        page = await app.accounts.ListCreditTransactions(pb.ListCreditTransactionsRequest(
            parent="users/me", page_size=3, page_token=token), metadata=bearer(user.access_token))
        assert len(page.credit_transactions) <= 3
        seen += page.credit_transactions
        token = page.next_page_token
        if not token:
            break
    assert [t.amount for t in seen] == [7, 6, 5, 4, 3, 2, 1, 1]
    assert len({t.name for t in seen}) == 8

    first_page = await app.accounts.ListCreditTransactions(pb.ListCreditTransactionsRequest(
        parent="users/me", page_size=3), metadata=bearer(user.access_token))
    other = await app.register()
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # a token of someone else's listing
        await app.accounts.ListCreditTransactions(pb.ListCreditTransactionsRequest(
            parent="users/me", page_size=3, page_token=first_page.next_page_token),
            metadata=bearer(other.access_token))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value)[0] == "INVALID_PAGE_TOKEN"

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await app.accounts.ListCreditTransactions(pb.ListCreditTransactionsRequest(
            parent="users/me", page_size=101), metadata=bearer(user.access_token))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- concurrency on real databases --------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def db_app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
    else:
        from adapters.sql.migrate import migrate

        url = f"sqlite+aiosqlite:///{tmp_path / 'waqup.db'}"
        migrate(url)
    running = await start_app(tmp_path, url)
    yield running
    await stop_app(running)


async def user_with_ten_credits(app: App):
    user = await app.register()
    uid = user_of(user.user.name)
    await wait_for_balance(app, user.access_token, 1)  # the free credit
    await grant(app, uid, 9)
    return user, uid


async def test_fifty_clients_reserve_against_ten_credits(db_app: App) -> None:
    app = db_app
    user, uid = await user_with_ten_credits(app)
    service = bearer(app.service_token())

    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{app.server.port}") for _ in range(10)]
    try:
        from services.gen.waqup.credits.v1 import credits_pb2_grpc

        stubs = [credits_pb2_grpc.CreditLedgerServiceStub(c) for c in channels]
        results = await asyncio.gather(*(
            stubs[i % len(stubs)].ReserveCredits(pb.ReserveCreditsRequest(
                request_id=str(uuid.uuid4()), parent=f"users/{uid}", amount=1),
                metadata=service) for i in range(50)), return_exceptions=True)
    finally:
        for channel in channels:
            await channel.close()

    won = [r for r in results if isinstance(r, pb.Reservation)]
    lost = [r for r in results if not isinstance(r, pb.Reservation)]
    assert len(won) == 10
    assert len(lost) == 40
    for error in lost:
        assert isinstance(error, grpc.aio.AioRpcError), error
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert details(error)[0] == "INSUFFICIENT_CREDITS"

    account = await app.accounts.GetCreditAccount(
        pb.GetCreditAccountRequest(name="users/me/creditAccount"),
        metadata=bearer(user.access_token))
    assert (account.balance, account.held, account.available) == (10, 10, 0)
    async with app.container.uow("credits")() as uow:
        assert await uow.holds.sum_active(uuid.UUID(uid)) == 10
        entries = await uow.ledger.list(uuid.UUID(uid), before=None, limit=100)
    assert sum(e.amount for e in entries) == account.balance
    assert entries[0].balance_after == account.balance


async def test_a_retried_request_id_has_one_effect_under_concurrency(db_app: App) -> None:
    app = db_app
    user, uid = await user_with_ten_credits(app)
    service = bearer(app.service_token())
    request_id = str(uuid.uuid4())
    results = await asyncio.gather(*(
        app.ledger.ReserveCredits(pb.ReserveCreditsRequest(
            request_id=request_id, parent=f"users/{uid}", amount=4), metadata=service)
        for _ in range(20)))
    assert len({r.name for r in results}) == 1
    account = await app.accounts.GetCreditAccount(
        pb.GetCreditAccountRequest(name="users/me/creditAccount"),
        metadata=bearer(user.access_token))
    assert (account.balance, account.held) == (10, 4)
