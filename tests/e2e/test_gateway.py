"""Envoy as the API gateway, in front of the real server: access tokens checked at
the edge (and JWKS rotation), internal RPCs unreachable, local rate limits, CORS,
request ids end to end, and the no-op health check the benchmark uses.

One app and one Envoy for the module, with small limits: a JWKS refresh every
second and 3 Login/Register calls per minute per client address. Client
addresses are kept apart: only the native gRPC part of the rate limit test calls
Login/Register from 127.0.0.1; REST callers of them bind 127.0.0.2 and up (all of
127.0.0.0/8 is loopback), and the other tests get their tokens from the service
port directly.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import jwt
import pytest

from adapters.jwt.keys import KeyRing
from adapters.jwt.tokens import JwtTokenIssuer
from services.edge import HEALTH_CHECK_METHOD
from services.gen.waqup.identity.v1 import identity_pb2, identity_pb2_grpc
from tests.e2e.conftest import RealEdge, real_edge

pytestmark = pytest.mark.envoy

ORIGIN = "https://app.example"
CREDENTIAL_LIMIT = 3
ISSUER, AUDIENCE = "waqup-identity", "waqup-api"  # the Settings defaults start_app uses
LEDGER = "waqup.credits.v1.CreditLedgerService"
LEDGER_METHODS = ("ReserveCredits", "CommitReservation", "ReleaseReservation", "GrantCredits",
                  "RefundCredits")


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RealEdge]:
    tmp = tmp_path_factory.mktemp("gateway")
    # Kept in a directory so that rotate() keeps the previous key (see the test).
    keyring = KeyRing.load_or_create(tmp / "keys")
    async with real_edge(tmp, keyring=keyring, jwks_cache_seconds=1, cors_origins=[ORIGIN],
                         credential_rate_limit=CREDENTIAL_LIMIT) as running:
        yield running


def issue(ring: KeyRing, subject: str, *, issuer: str = ISSUER, audience: str = AUDIENCE,
          roles: tuple[str, ...] = ("user",), age: timedelta = timedelta()) -> str:
    token_issuer = JwtTokenIssuer(ring, issuer, audience, 900)
    return token_issuer.issue(subject, roles, datetime.now(UTC) - age).token


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def reason(body: dict) -> str:
    [info] = [d for d in body["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    assert info["domain"] == "waqup.app"
    return info["reason"]


# --- access tokens ------------------------------------------------------------


async def test_requests_without_a_valid_token_are_refused_at_the_edge(gateway: RealEdge) -> None:
    user = await gateway.app.register()
    subject = jwt.decode(user.access_token, options={"verify_signature": False})["sub"]
    ring = gateway.app.keyring
    valid = user.access_token
    header, payload, signature = valid.split(".")
    flipped = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
    refused = {
        "missing": ({}, "TOKEN_MISSING"),
        "not bearer": ({"authorization": f"Basic {valid}"}, "TOKEN_MISSING"),
        "garbage": (bearer("not.a.token"), "INVALID_TOKEN"),
        "bad signature": (bearer(f"{header}.{payload}.{flipped}"), "INVALID_TOKEN"),
        "unknown key": (bearer(issue(KeyRing.generate(), subject)), "INVALID_TOKEN"),
        "expired": (bearer(issue(ring, subject, age=timedelta(minutes=20))), "TOKEN_EXPIRED"),
        "wrong audience": (bearer(issue(ring, subject, audience="other-api")), "INVALID_TOKEN"),
        "wrong issuer": (bearer(issue(ring, subject, issuer="someone-else")), "INVALID_TOKEN"),
    }
    request_ids = []
    for case, (headers, expected) in refused.items():
        for path in ("/v1/users/me", "/v1/users/me/creditAccount"):
            request_ids.append(f"refused-{uuid.uuid4().hex}")
            response = await gateway.client.get(path, headers={**headers,
                                                                "x-request-id": request_ids[-1]})
            assert response.status_code == 401, (case, path, response.text)
            assert response.headers["content-type"] == "application/json"
            assert response.headers["www-authenticate"].startswith("Bearer")
            body = response.json()
            assert body["code"] == 16 and body["message"], case
            assert reason(body) == expected, (case, body)
    # Refused by Envoy itself: the services never saw them.
    for line in (await gateway.logged_ids(request_ids)).values():
        assert line["response_code_details"].startswith("jwt_authn_access_denied"), line
        assert line["response_code"] == 401

    me = await gateway.client.get("/v1/users/me", headers=bearer(valid))
    assert me.status_code == 200, me.text
    assert me.json()["name"] == f"users/{subject}"

    # Native gRPC through the same port gets the same check.
    async with grpc.aio.insecure_channel(gateway.grpc_target) as channel:
        users = identity_pb2_grpc.UserServiceStub(channel)
        request = identity_pb2.GetUserRequest(name="users/me")
        assert (await users.GetUser(request, metadata=tuple(bearer(valid).items()))).name
        for case in ("missing", "expired", "wrong audience", "bad signature"):
            headers, _ = refused[case]
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await users.GetUser(request, metadata=tuple(headers.items()), timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, case


async def test_token_less_methods_pass_without_a_token(gateway: RealEdge) -> None:
    jwks = await gateway.client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert [key["kid"] for key in jwks.json()["keys"]] == gateway.app.keyring.kids()
    assert (await gateway.client.get("/healthz")).status_code == 200
    health = await gateway.client.post(HEALTH_CHECK_METHOD, json={})
    assert health.json() == {"status": "SERVING"}
    # Refresh and Logout reach identity, which judges the (bogus) refresh token.
    request_ids = {}
    for path in ("/v1/auth:refresh", "/v1/auth:logout"):
        request_id = request_ids[path] = f"public-{uuid.uuid4().hex}"
        await gateway.client.post(path, json={"refresh_token": "bogus"},
                                  headers={"x-request-id": request_id})
    lines = await gateway.logged_ids(request_ids.values())
    for path, request_id in request_ids.items():
        assert lines[request_id]["response_code_details"] == "via_upstream", path
        assert lines[request_id]["upstream_cluster"] == "identity"


async def test_signing_key_rotation(gateway: RealEdge, tmp_path: Path) -> None:
    """identity rotates its key: new tokens are accepted once the edge has refetched
    the JWKS, and tokens signed with the previous key until they expire."""
    app, ring = gateway.app, gateway.app.keyring
    user = await app.register()
    token_a = user.access_token
    kid_a = jwt.get_unverified_header(token_a)["kid"]
    assert (await gateway.client.get("/v1/users/me", headers=bearer(token_a))).status_code == 200

    fetches = gateway.envoy.jwks_fetches()
    keys = app.container.settings.key_dir
    kid_b = ring.rotate(keys)
    assert ring.kids()[:2] == [kid_b, kid_a]  # B signs, A still verifies (and is published)
    login = await app.auth.Login(identity_pb2.LoginRequest(email=user.user.email,
                                                           password="correct horse"))
    token_b = login.access_token
    assert jwt.get_unverified_header(token_b)["kid"] == kid_b

    # A fetch that started before the rotation may still answer: wait for two more.
    await gateway.envoy.wait_jwks_async(timeout=10, after=fetches + 1)
    published = (await gateway.client.get("/.well-known/jwks.json")).json()["keys"]
    assert [key["kid"] for key in published][:2] == [kid_b, kid_a]
    for token in (token_b, token_a):
        me = await gateway.client.get("/v1/users/me", headers=bearer(token))
        assert me.status_code == 200, me.text
    # ... until they expire.
    [oldest, *_] = sorted(keys.glob("*.pem"))
    (tmp_path / "a").mkdir()
    shutil.copy(oldest, tmp_path / "a" / oldest.name)
    ring_a = KeyRing.load_or_create(tmp_path / "a")
    assert ring_a.kids() == [kid_a]
    expired_a = issue(ring_a, user.user.name.removeprefix("users/"), age=timedelta(minutes=20))
    response = await gateway.client.get("/v1/users/me", headers=bearer(expired_a))
    assert response.status_code == 401 and reason(response.json()) == "TOKEN_EXPIRED"


# --- internal RPCs --------------------------------------------------------------


async def test_internal_rpcs_are_unreachable_even_with_a_service_token(
        gateway: RealEdge) -> None:
    token = gateway.app.service_token()
    metadata = tuple(bearer(token).items())
    # The token is good: on the service port the call gets past authentication and
    # is refused for its (empty) content only.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.app.channel.unary_unary(f"/{LEDGER}/GrantCredits")(
            b"", metadata=metadata, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    async with grpc.aio.insecure_channel(gateway.grpc_target) as channel:
        for method in LEDGER_METHODS:
            for call_metadata in (metadata, ()):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await channel.unary_unary(f"/{LEDGER}/{method}")(
                        b"", metadata=call_metadata, timeout=5)
                assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED, method
    for method in LEDGER_METHODS:
        response = await gateway.client.post(f"/{LEDGER}/{method}", json={},
                                             headers=bearer(token))
        assert response.status_code == 404, (method, response.text)
        assert response.json()["message"] == "not found"
        assert reason(response.json()) == "NOT_FOUND"
    # An OPTIONS that is not a real preflight (empty request method) is no way in.
    for headers in ({"origin": ORIGIN, "access-control-request-method": ""},
                    {"origin": "", "access-control-request-method": "POST"}):
        response = await gateway.client.options(f"/{LEDGER}/GrantCredits", headers=headers)
        assert response.status_code == 404, (headers, response.text)


# --- rate limits ----------------------------------------------------------------


def ratelimit_headers(response) -> tuple[str, str, str]:
    return (response.headers["x-ratelimit-limit"], response.headers["x-ratelimit-remaining"],
            response.headers["x-ratelimit-reset"])


async def test_login_and_register_are_limited_per_client_address(gateway: RealEdge) -> None:
    wrong = {"email": "nobody@example.com", "password": "not-the-password"}
    async with gateway.client_from("127.0.0.2") as client, \
            gateway.client_from("127.0.0.3") as other:
        for remaining in range(CREDENTIAL_LIMIT - 1, -1, -1):
            response = await client.post("/v1/auth:login", json=wrong)
            assert response.status_code == 401, response.text  # the service said no
            assert reason(response.json()) == "INVALID_CREDENTIALS"
            assert ratelimit_headers(response)[:2] == (str(CREDENTIAL_LIMIT), str(remaining))

        for path, body in (("/v1/auth:login", wrong),
                           ("/v1/auth:register", {"email": "new@example.com",
                                                  "password": "long-enough"})):
            limited = await client.post(path, json=body)
            assert limited.status_code == 429, limited.text
            assert limited.headers["content-type"] == "application/json"
            assert limited.json()["code"] == 8
            assert reason(limited.json()) == "RATE_LIMITED"
            limit, remaining, reset = ratelimit_headers(limited)
            assert (limit, remaining) == (str(CREDENTIAL_LIMIT), "0") and int(reset) > 0

        # The client address is the TCP peer: a made-up X-Forwarded-For changes nothing.
        spoofed = await client.post("/v1/auth:login", json=wrong,
                                    headers={"x-forwarded-for": "198.51.100.7"})
        assert spoofed.status_code == 429

        # Another address has its own bucket; other methods use only the global one.
        assert (await other.post("/v1/auth:login", json=wrong)).status_code == 401
        user = await gateway.app.register()
        me = await client.get("/v1/users/me", headers=bearer(user.access_token))
        assert me.status_code == 200, me.text
        assert int(ratelimit_headers(me)[0]) > CREDENTIAL_LIMIT

    # Native gRPC hits the same rule (matched on the gRPC path) and bucket kind.
    async with grpc.aio.insecure_channel(gateway.grpc_target) as channel:
        auth = identity_pb2_grpc.AuthServiceStub(channel)
        request = identity_pb2.LoginRequest(**wrong)
        for _ in range(CREDENTIAL_LIMIT):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await auth.Login(request, timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await auth.Login(request, timeout=5)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # A trailers-only reply: its headers arrive as trailing metadata.
        metadata = dict(caught.value.trailing_metadata() or ())
        assert metadata.get("x-ratelimit-limit") == str(CREDENTIAL_LIMIT)


async def test_global_rate_limit(gateway: RealEdge, tmp_path: Path) -> None:
    """A second Envoy in front of the same app, with a global bucket of 5 a minute."""
    async with real_edge(tmp_path, app=gateway.app, global_rate_limit=5,
                         global_rate_limit_interval_seconds=60, jwks_cache_seconds=60) as small:
        statuses = []
        for _ in range(8):  # the JWKS fetch took a token too
            response = await small.client.post(HEALTH_CHECK_METHOD, json={})
            statuses.append(response.status_code)
        assert 1 <= statuses.count(200) <= 4 and statuses.count(429) >= 4, statuses
        assert statuses == sorted(statuses)  # once empty, it stays empty
        assert response.json()["code"] == 8 and reason(response.json()) == "RATE_LIMITED"
        assert ratelimit_headers(response)[:2] == ("5", "0")
        assert (await small.client.get("/healthz")).status_code == 200  # never limited
        # The credential methods take a token from the global bucket too: this
        # address has its whole Login bucket, and is refused all the same.
        async with small.client_from("127.0.0.9") as client:
            login = await client.post("/v1/auth:login", json={
                "email": "nobody@example.com", "password": "not-the-password"})
        assert login.status_code == 429 and reason(login.json()) == "RATE_LIMITED"
        async with grpc.aio.insecure_channel(small.grpc_target) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await channel.unary_unary(HEALTH_CHECK_METHOD)(b"", timeout=5)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# --- CORS -----------------------------------------------------------------------


async def test_cors(gateway: RealEdge) -> None:
    preflight = {"access-control-request-method": "PATCH",
                 "access-control-request-headers": "authorization, content-type"}
    allowed = await gateway.client.options("/v1/users/me/preferences",
                                           headers={"origin": ORIGIN, **preflight})
    assert allowed.status_code in (200, 204)
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "PATCH" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"]
    assert int(allowed.headers["access-control-max-age"]) > 0

    other = await gateway.client.options("/v1/users/me",
                                         headers={"origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers

    user = await gateway.app.register()
    for headers, status in ((bearer(user.access_token), 200), ({}, 401)):
        response = await gateway.client.get("/v1/users/me", headers={"origin": ORIGIN, **headers})
        assert response.status_code == status
        assert response.headers["access-control-allow-origin"] == ORIGIN
        exposed = response.headers["access-control-expose-headers"]
        assert "x-request-id" in exposed and "x-ratelimit-remaining" in exposed
    elsewhere = await gateway.client.get("/v1/users/me", headers={
        "origin": "https://evil.example", **bearer(user.access_token)})
    assert "access-control-allow-origin" not in elsewhere.headers


# --- request ids and the baseline -----------------------------------------------


async def test_request_id_reaches_envoy_and_service_logs(gateway: RealEdge) -> None:
    user = await gateway.app.register()
    subject = jwt.decode(user.access_token, options={"verify_signature": False})["sub"]
    rest_id, grpc_id = f"rest-{uuid.uuid4().hex}", f"grpc-{uuid.uuid4().hex}"
    response = await gateway.client.get("/v1/users/me", headers={
        "x-request-id": rest_id, **bearer(user.access_token)})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == rest_id
    async with grpc.aio.insecure_channel(gateway.grpc_target) as channel:
        await identity_pb2_grpc.UserServiceStub(channel).GetUser(
            identity_pb2.GetUserRequest(name="users/me"),
            metadata=(("x-request-id", grpc_id), *bearer(user.access_token).items()))

    lines = await gateway.logged_ids((rest_id, grpc_id))
    service_lines = {line["request_id"]: line for line in gateway.app.access_lines()}
    for request_id, path in ((rest_id, "/v1/users/me"),
                             (grpc_id, "/waqup.identity.v1.UserService/GetUser")):
        record = service_lines[request_id]
        assert record["method"] == "/waqup.identity.v1.UserService/GetUser"
        assert (record["code"], record["user_id"]) == ("OK", subject)
        line = lines[request_id]
        assert (line["path"], line["grpc_path"], line["response_code"]) == (
            path, "/waqup.identity.v1.UserService/GetUser", 200)


async def test_health_check_is_the_benchmark_baseline(gateway: RealEdge) -> None:
    """The benchmark's no-op request: through Envoy and the transcoder to the Python
    service, no token, no work."""
    request_id = f"baseline-{uuid.uuid4().hex}"
    response = await gateway.client.post(HEALTH_CHECK_METHOD, json={},
                                         headers={"x-request-id": request_id})
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "SERVING"}
    line = (await gateway.logged_ids([request_id]))[request_id]
    assert (line["method"], line["grpc_path"], line["upstream_cluster"]) == (
        "POST", HEALTH_CHECK_METHOD, "identity")
    assert line["response_code_details"] == "via_upstream"
