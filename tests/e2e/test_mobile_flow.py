"""A mobile client's first minutes, through the real Envoy binary in front of the
real server: REST transcoded by Envoy, and native gRPC on the same port.

One app and one Envoy for the module (the tests use distinct accounts); the
per-address Login/Register limit is raised, since every call comes from
127.0.0.1 (tests/e2e/test_gateway.py tests the limit itself).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest

from services.gen.waqup.identity.v1 import identity_pb2, identity_pb2_grpc
from tests.e2e.conftest import RealEdge, real_edge
from tests.integration.conftest import App

pytestmark = pytest.mark.envoy


class Edge:
    def __init__(self, running: RealEdge) -> None:
        self.app: App = running.app
        self.http_port = running.http_port
        self.client: httpx.AsyncClient = running.client


@pytest.fixture(scope="module")
async def edge(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Edge]:
    from adapters.sql.migrate import migrate

    tmp = tmp_path_factory.mktemp("mobile")
    url = f"sqlite+aiosqlite:///{tmp / 'waqup.db'}"
    migrate(url)
    async with real_edge(tmp, url, credential_rate_limit=1000) as running:
        yield Edge(running)


def error_reason(body: dict) -> str:
    [info] = [d for d in body["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    return info["reason"]


async def test_register_login_me_and_the_free_credit(edge: Edge) -> None:
    client = edge.client
    assert (await client.get("/healthz")).status_code == 200

    registered = await client.post("/v1/auth:register", json={
        "email": " Mobile.User@Example.com", "password": "s3cret-pass",
        "display_name": "Mo"})
    assert registered.status_code == 200, registered.text
    body = registered.json()
    assert {"access_token", "refresh_token", "expires_in", "user"} <= body.keys()
    assert body["expires_in"] == 900
    assert body["user"]["email"] == "mobile.user@example.com"
    assert body["user"]["display_name"] == "Mo"
    assert registered.headers["x-request-id"]

    login = await client.post("/v1/auth:login", json={"email": "mobile.user@example.com",
                                                       "password": "s3cret-pass"})
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    auth = {"authorization": f"Bearer {token}"}

    me = await client.get("/v1/users/me", headers=auth)
    assert me.status_code == 200, me.text
    assert me.json()["name"] == body["user"]["name"]

    account = {}
    for _ in range(50):
        account = (await client.get("/v1/users/me/creditAccount", headers=auth)).json()
        if account.get("balance") == 1:
            break
        await asyncio.sleep(0.1)
    assert (account["balance"], account["held"], account["available"]) == (1, 0, 1)

    listing = await client.get("/v1/users/me/creditTransactions", params={"page_size": 10},
                               headers=auth)
    assert listing.status_code == 200, listing.text
    [entry] = listing.json()["credit_transactions"]
    assert (entry["type"], entry["amount"]) == ("TRANSACTION_TYPE_GRANT", 1)

    prefs = await client.patch("/v1/users/me/preferences", params={"update_mask": "pace"},
                               json={"pace": "PACE_SLOW", "tone": "TONE_WARM"}, headers=auth)
    assert prefs.status_code == 200, prefs.text
    assert (prefs.json()["pace"], prefs.json()["tone"]) == ("PACE_SLOW", "TONE_UNSPECIFIED")

    refreshed = await client.post("/v1/auth:refresh",
                                  json={"refresh_token": login.json()["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    reused = await client.post("/v1/auth:refresh",
                               json={"refresh_token": login.json()["refresh_token"]})
    assert reused.status_code == 401
    assert error_reason(reused.json()) == "REFRESH_TOKEN_REUSED"

    jwks = await client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert jwks.json()["keys"][0]["kty"] == "EC"


async def test_wrong_password_is_401_with_a_json_error(edge: Edge) -> None:
    await edge.client.post("/v1/auth:register", json={"email": "w@example.com",
                                                      "password": "right-password"})
    response = await edge.client.post("/v1/auth:login", json={"email": "w@example.com",
                                                              "password": "wrong-password"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == 16 and body["message"]
    assert error_reason(body) == "INVALID_CREDENTIALS"


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two@@example.com"])
async def test_malformed_email_is_400(edge: Edge, email: str) -> None:
    response = await edge.client.post("/v1/auth:register",
                                      json={"email": email, "password": "long-enough"})
    assert response.status_code == 400, response.text
    assert error_reason(response.json()) == "INVALID_EMAIL"


async def test_short_password_is_400_naming_the_field(edge: Edge) -> None:
    response = await edge.client.post("/v1/auth:register",
                                      json={"email": "p@example.com", "password": "short"})
    assert response.status_code == 400
    body = response.json()
    assert error_reason(body) == "INVALID_REQUEST"
    [bad] = [d for d in body["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    assert bad["field_violations"][0]["field"] == "password"


@pytest.mark.parametrize("path", ["/v1/users/me", "/v1/users/me/creditAccount",
                                  "/v1/users/me/creditTransactions"])
async def test_missing_token_is_401(edge: Edge, path: str) -> None:
    response = await edge.client.get(path)
    assert response.status_code == 401
    assert error_reason(response.json()) == "TOKEN_MISSING"


async def test_native_grpc_shares_the_port(edge: Edge) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{edge.http_port}") as channel:
        auth = identity_pb2_grpc.AuthServiceStub(channel)
        session = await auth.Register(identity_pb2.RegisterRequest(
            email="grpc@example.com", password="long-enough"))
        users = identity_pb2_grpc.UserServiceStub(channel)
        me = await users.GetUser(identity_pb2.GetUserRequest(name="users/me"),
                                 metadata=(("authorization", f"Bearer {session.access_token}"),))
        assert me.email == "grpc@example.com"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await users.GetUser(identity_pb2.GetUserRequest(name="users/me"))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
