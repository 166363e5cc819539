"""A hostile client against the whole system: the real Envoy in front of the real
server on PostgreSQL, every request through the edge's one port. Whatever it
sends, the answer is a 4xx google.rpc.Status JSON body with an ErrorInfo reason
(or the gRPC status of the same meaning), the message echoes nothing it sent,
and nothing reaches the database that would fail there.

One app and one Envoy for the module (credential rate limit raised: the tests
register and log in many times from one address).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest

from services.gen.waqup.identity.v1 import identity_pb2
from tests.e2e.conftest import RealEdge, real_edge
from tests.e2e.rawhttp import raw_request

pytestmark = pytest.mark.envoy

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
PASSWORD = "correct horse battery staple"
USER_ROUTES = (("GET", "/v1/users/me", None),
               ("GET", "/v1/users/me/creditAccount", None),
               ("GET", "/v1/users/me/creditTransactions", None),
               ("PATCH", "/v1/users/me/preferences", {"voice": "calm"}))


@pytest.fixture(scope="module")
async def edge(tmp_path_factory: pytest.TempPathFactory, pg_url: str,
               ) -> AsyncIterator[RealEdge]:
    tmp = tmp_path_factory.mktemp("hostile")
    async with real_edge(tmp, pg_url, credential_rate_limit=10_000) as running:
        yield running


def status_of(response: httpx.Response) -> tuple[int, str]:
    """(HTTP status, ErrorInfo reason) of an error reply; fails unless the body is
    a google.rpc.Status JSON object with exactly one ErrorInfo."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert isinstance(body.get("code"), int) and isinstance(body.get("message"), str), body
    [info] = [d for d in body.get("details", []) if d.get("@type") == ERROR_INFO]
    assert info["domain"] == "waqup.app"
    return response.status_code, info["reason"]


async def register(client: httpx.AsyncClient, email: str | None = None) -> dict:
    email = email or f"u-{uuid.uuid4().hex[:12]}@example.com"
    response = await client.post("/v1/auth:register", json={
        "email": email, "password": PASSWORD, "display_name": "Hostile Test"})
    assert response.status_code == 200, response.text
    response = await client.post("/v1/auth:login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"email": email, **response.json()}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_the_four_named_attacks_get_4xx_status_json(edge: RealEdge) -> None:
    client = edge.client
    user = await register(client)
    # 1. A 5 MB body.
    # (Raw: Envoy answers and closes as soon as the limit is passed, while an
    # HTTP client library is still sending and reports a broken connection.)
    big = json.dumps({"email": "a@example.com", "password": "x" * (5 << 20)}).encode()
    head = ("POST /v1/auth:login HTTP/1.1\r\nHost: edge\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(big)}\r\n\r\n").encode()
    raw = await raw_request(edge.http_port, head,
                            [big[i:i + 65536] for i in range(0, len(big), 65536)])
    assert raw.status == 413, raw
    assert raw.headers["content-type"].startswith("application/json")
    [info] = [d for d in raw.json()["details"] if d["@type"] == ERROR_INFO]
    assert info["reason"] == "REQUEST_TOO_LARGE"
    # 2. A NUL in a login email (PostgreSQL behind): refused before any query.
    response = await client.post("/v1/auth:login",
                                 json={"email": "a\x00@example.com", "password": PASSWORD})
    assert status_of(response) == (400, "INVALID_CHARACTERS")
    assert "\x00" not in response.text and "\\u0000" not in response.text
    # 3. A forged page token.
    forged = base64.urlsafe_b64encode(json.dumps({"u": str(uuid.uuid4()), "b": 1}).encode())
    response = await client.get("/v1/users/me/creditTransactions",
                                params={"page_token": forged.decode()},
                                headers=bearer(user["access_token"]))
    assert status_of(response) == (400, "INVALID_PAGE_TOKEN")
    # 4. A service token on a user's own resources.
    service = edge.app.service_token()
    for method, path, body in USER_ROUTES:
        response = await client.request(method, path, json=body, headers=bearer(service))
        assert status_of(response) == (403, "USER_PRINCIPAL_REQUIRED"), (path, response.text)


async def test_control_and_invisible_characters_never_reach_the_database(
        edge: RealEdge) -> None:
    client = edge.client
    user = await register(client)
    for bad in ("\x00", "\x01", "\x7f", "\u200b", "\u202e", "\x85", "\ufeff"):
        response = await client.post("/v1/auth:register", json={
            "email": f"evil{bad}{uuid.uuid4().hex[:6]}@example.com", "password": PASSWORD,
            "display_name": "x"})
        assert status_of(response)[0] == 400, (repr(bad), response.text)
        response = await client.post("/v1/auth:register", json={
            "email": f"ok-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD,
            "display_name": f"Eve{bad}"})
        assert status_of(response) == (400, "INVALID_CHARACTERS"), (repr(bad), response.text)
        response = await client.patch("/v1/users/me/preferences",
                                      json={"voice": f"a{bad}b"},
                                      headers=bearer(user["access_token"]))
        assert status_of(response) == (400, "INVALID_CHARACTERS"), (repr(bad), response.text)
    me = await client.get("/v1/users/me", headers=bearer(user["access_token"]))
    assert me.status_code == 200 and me.json()["display_name"] == "Hostile Test"


async def test_malformed_json_gets_400_without_echo(edge: RealEdge) -> None:
    client = edge.client
    secret = "SECRET-" + uuid.uuid4().hex
    bodies = [
        b'{"email": ',  # truncated
        f'{{"email": "{secret}@example.com", "password": {secret}}}'.encode(),  # bare word
        f'["{secret}"]'.encode(),  # not an object
        f'{{"email": 5, "password": ["{secret}"]}}'.encode(),  # wrong types
        b"[" * 20_000 + b"]" * 20_000,  # deep nesting, within the body limit
        b"[" * 100_000 + b"]" * 100_000,  # deep nesting, over it
        b'{"email": "\\ud800@example.com", "password": "x"}',  # lone surrogate
        b'\xff\xfe{"email": 1}',  # not UTF-8
        f'{{"email": "{secret}@example.com", "password": "x", "password": "y"}}'.encode(),
    ]
    for body in bodies:
        response = await client.post("/v1/auth:login", content=body,
                                     headers={"content-type": "application/json"})
        code, _ = status_of(response)
        assert code in (400, 401, 413), (body[:60], response.status_code, response.text)
        assert secret not in response.text
        assert "proto" not in response.text.lower() or code == 413, response.text


async def test_forged_tokens_are_one_401(edge: RealEdge) -> None:
    client = edge.client
    user = await register(client)
    good = user["access_token"]
    head, payload, signature = good.split(".")

    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = [
        f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{payload}.{signature}",
        f"{head}.{b64({**claims, 'sub': str(uuid.uuid4())})}.{signature}",
        f"{head}.{b64({**claims, 'roles': ['service']})}.{signature}",
        f"{b64({'alg': 'ES256', 'kid': '../../etc/passwd'})}.{payload}.{signature}",
        "not-a-jwt", "a.b.c", good[:-4] + "AAAA", "",
    ]
    messages = set()
    for token in forged:
        value = f"Bearer {token}" if token else "Bearer"
        response = await client.get("/v1/users/me", headers={"authorization": value})
        code, _ = status_of(response)
        assert code == 401, (token[:40], response.text)
        messages.add(response.json()["message"])
    assert len(messages) <= 2, messages  # missing vs. refused, never which check failed


async def test_headers_and_paths_an_attacker_controls(edge: RealEdge) -> None:
    client = edge.client
    user = await register(client)
    # Oversized headers: 431 as JSON.
    response = await client.get("/v1/users/me", headers={
        **bearer(user["access_token"]), "x-junk": "j" * 100_000})
    assert status_of(response)[0] == 431, response.text
    # Unknown paths and methods: 404 / 405-ish JSON, no internals.
    for method, path in (("GET", "/v1/users/someone-else"), ("DELETE", "/v1/users/me"),
                         ("GET", "/../../etc/passwd"), ("GET", "/v1/users/me%00"),
                         ("POST", "/waqup.credits.v1.CreditLedgerService/GrantCredits")):
        response = await client.request(method, path, headers=bearer(user["access_token"]),
                                        content=b"{}" if method == "POST" else None)
        code, _ = status_of(response)
        assert 400 <= code < 500, (method, path, response.status_code, response.text)
    # A client's x-envoy-* header is dropped, and none leave the edge.
    response = await client.get("/v1/users/me", headers={
        **bearer(user["access_token"]), "x-envoy-original-path": "/admin"})
    assert response.status_code == 200
    assert "server" not in response.headers
    assert not [h for h in response.headers if h.startswith("x-envoy-")]


async def test_native_grpc_garbage_is_invalid_argument(edge: RealEdge) -> None:
    async with grpc.aio.insecure_channel(edge.grpc_target) as channel:
        login = channel.unary_unary("/waqup.identity.v1.AuthService/Login")
        for raw in (b"\xff\xff\xff\xff", b"\x0a\x05\xff\xfe\xfd\xfc\xfb",  # bad UTF-8
                    identity_pb2.LoginRequest(email="a\x00@b.example",
                                              password="x").SerializeToString()):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await login(raw, timeout=5)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raw
            assert "Error" not in caught.value.details(), caught.value.details()


async def test_racing_registrations_of_one_email_make_one_account(edge: RealEdge) -> None:
    email = f"race-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": PASSWORD, "display_name": "Racer"}
    responses = await asyncio.gather(*(edge.client.post("/v1/auth:register", json=body)
                                       for _ in range(20)))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 1, codes
    for response in responses:
        if response.status_code != 200:
            assert status_of(response) == (409, "EMAIL_TAKEN"), response.text
    # Logins in parallel, then the one account's balance: its single sign-up credit.
    logins = await asyncio.gather(*(edge.client.post(
        "/v1/auth:login", json={"email": email, "password": PASSWORD}) for _ in range(8)))
    assert {r.status_code for r in logins} == {200}
    token = logins[0].json()["access_token"]
    for _ in range(100):
        account = (await edge.client.get("/v1/users/me/creditAccount",
                                         headers=bearer(token))).json()
        if account.get("balance") == 1:
            break
        await asyncio.sleep(0.05)
    assert account["balance"] == 1, account
    transactions = (await edge.client.get("/v1/users/me/creditTransactions",
                                          headers=bearer(token))).json()
    assert len(transactions["credit_transactions"]) == 1, transactions


async def test_another_users_resources_are_refused_like_missing_ones(edge: RealEdge) -> None:
    """Native gRPC can name any user; only the caller's own name is served, and
    naming another user gets exactly the answer naming nobody gets (AIP-211:
    PERMISSION_DENIED whether or not the resource exists), so ids leak nothing."""
    from services.gen.waqup.credits.v1 import credits_pb2

    alice, bob = await register(edge.client), await register(edge.client)
    bob_name = (await edge.client.get("/v1/users/me",
                                      headers=bearer(bob["access_token"]))).json()["name"]
    nobody = f"users/{uuid.uuid4()}"
    calls = (
        ("/waqup.identity.v1.UserService/GetUser",
         lambda user: identity_pb2.GetUserRequest(name=user)),
        ("/waqup.identity.v1.UserService/UpdatePreferences",
         lambda user: identity_pb2.UpdatePreferencesRequest(
             preferences=identity_pb2.Preferences(name=f"{user}/preferences", voice="calm"))),
        ("/waqup.credits.v1.CreditAccountService/GetCreditAccount",
         lambda user: credits_pb2.GetCreditAccountRequest(name=f"{user}/creditAccount")),
        ("/waqup.credits.v1.CreditAccountService/ListCreditTransactions",
         lambda user: credits_pb2.ListCreditTransactionsRequest(parent=user)),
    )
    async with grpc.aio.insecure_channel(edge.grpc_target) as channel:
        metadata = tuple(bearer(alice["access_token"]).items())
        for method, request in calls:
            outcomes = []
            for user in (bob_name, nobody):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await channel.unary_unary(method)(request(user).SerializeToString(),
                                                      metadata=metadata, timeout=5)
                outcomes.append((caught.value.code(), caught.value.details()))
            assert outcomes[0] == outcomes[1], (method, outcomes)
            assert outcomes[0][0] == grpc.StatusCode.PERMISSION_DENIED, (method, outcomes)
    me = await edge.client.get("/v1/users/me", headers=bearer(bob["access_token"]))
    assert me.json()["preferences"].get("voice", "") != "calm"
