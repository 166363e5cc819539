"""The edge's limits in front of the real server: body sizes, content types,
slow clients, the per-address limit of the credential methods whatever the
request's form, and request ids kept exactly. What the edge refuses must never
reach a worker: each test checks Envoy's upstream counters and the service's
own access log.

One app and one Envoy for the module, with small limits: 1 s to send a request,
1 s of idle connection, 2 Login/Register calls per minute per client address.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from services.edge.config import DEFAULT_MAX_REQUEST_BODY_BYTES
from services.gen.waqup.identity.v1 import identity_pb2
from tests.e2e.conftest import RealEdge, real_edge
from tests.e2e.rawhttp import chunked, edge_headers, raw_request

pytestmark = pytest.mark.envoy

CREDENTIAL_LIMIT = 2
LOGIN = "/waqup.identity.v1.AuthService/Login"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


@pytest.fixture(scope="module")
async def limited(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RealEdge]:
    tmp = tmp_path_factory.mktemp("limits")
    # A JWKS refetch goes through the identity cluster: none during the tests.
    async with real_edge(tmp, jwks_cache_seconds=600, credential_rate_limit=CREDENTIAL_LIMIT,
                         request_timeout_seconds=1, request_headers_timeout_seconds=1,
                         idle_timeout_seconds=1) as running:
        yield running


JWKS_FETCH = "/waqup.identity.v1.AuthService/GetJwks"


def upstream_requests(edge: RealEdge) -> int:
    """Requests Envoy sent to the services, but for its own JWKS fetches
    (health checks are not requests). At start the edge may fetch the JWKS
    more than once, the last fetch landing during a test: each one is logged,
    so it is taken off (the counter moves when a fetch starts, the line is
    written when it ends: use unchanged_upstream to compare)."""
    stats = edge.envoy.stats(r"^cluster\.(identity|credits)\.upstream_rq_total$")
    fetches = sum(1 for line in edge.log_lines() if line["grpc_path"] == JWKS_FETCH)
    return sum(stats.values()) - fetches


async def settled_upstream(edge: RealEdge, within: float = 5.0) -> int:
    """upstream_requests once no JWKS fetch is in flight: the same count
    read three times over 200 ms."""
    deadline = time.monotonic() + within
    reads = [upstream_requests(edge)]
    while len(reads) < 3 or len(set(reads[-3:])) > 1:
        assert time.monotonic() < deadline, reads
        await asyncio.sleep(0.1)
        reads.append(upstream_requests(edge))
    return reads[-1]


async def unchanged_upstream(edge: RealEdge, before: int, within: float = 2.0) -> None:
    """The services saw no request since `before` was read: the count comes
    back to it once a JWKS fetch in flight has ended and been logged. A
    request that did reach a worker keeps it above for good."""
    deadline = time.monotonic() + within
    while (now := upstream_requests(edge)) != before:
        assert time.monotonic() < deadline, (now, before)
        await asyncio.sleep(0.05)


def service_saw(edge: RealEdge, request_ids: set[str]) -> set[str]:
    return {line["request_id"] for line in edge.app.access_lines()} & request_ids


async def service_logged(edge: RealEdge, request_ids: set[str], within: float = 5) -> None:
    """Wait for the service's access lines of these requests (written once the
    call has ended, which may be just after the client has its answer)."""
    deadline = time.monotonic() + within
    while service_saw(edge, request_ids) != request_ids:
        assert time.monotonic() < deadline, request_ids - service_saw(edge, request_ids)
        await asyncio.sleep(0.05)


def error(body: dict) -> tuple[int, str, str]:
    [info] = body["details"]
    assert (info["@type"], info["domain"]) == (ERROR_INFO, "waqup.app")
    return body["code"], info["reason"], body["message"]


def head(method: str, path: str, *headers: str) -> bytes:
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: edge", *headers, "", ""]).encode()


TOO_LARGE = (3, "REQUEST_TOO_LARGE", "the request body is larger than this method accepts")


async def test_oversized_bodies_never_reach_a_worker(limited: RealEdge) -> None:
    port = limited.http_port
    before = await settled_upstream(limited)
    ids = {name: f"big-{name}-{uuid.uuid4().hex}" for name in ("rest", "chunked", "trickle")}
    # 5 MB of JSON, with a Content-Length: refused as soon as the limit is
    # passed (the rest is never read).
    big = json.dumps({"email": "a@example.com", "password": "x" * (5 << 20)}).encode()
    response = await raw_request(port, head(
        "POST", "/v1/auth:login", "Content-Type: application/json",
        f"Content-Length: {len(big)}", f"x-request-id: {ids['rest']}"),
        [big[i:i + 65536] for i in range(0, len(big), 65536)])
    assert response.status == 413, response
    assert error(response.json()) == TOO_LARGE
    assert response.headers["x-request-id"] == ids["rest"]
    assert response.elapsed < 5
    # Chunked, without a length: in one piece, and dribbled.
    body = json.dumps({"email": "a@example.com", "password": "x" * 300_000}).encode()
    for name, pause in (("chunked", 0.0), ("trickle", 0.001)):
        response = await raw_request(port, head(
            "POST", "/v1/auth:login", "Content-Type: application/json",
            "Transfer-Encoding: chunked", f"x-request-id: {ids[name]}"),
            chunked(body, 4096), pause=pause)
        assert response.status == 413, (name, response)
        assert error(response.json()) == TOO_LARGE
    # Native gRPC: the framed message counts.
    async with grpc.aio.insecure_channel(limited.grpc_target) as channel:
        login = channel.unary_unary(LOGIN)
        request = identity_pb2.LoginRequest(email="a@example.com", password="x" * 100_000)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await login(request.SerializeToString(), timeout=5)
        assert (caught.value.code(), caught.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT, TOO_LARGE[2])
    await unchanged_upstream(limited, before)
    assert not service_saw(limited, set(ids.values()))

    # Just under the limit: the service judges it (and refuses the token).
    fits = f"fits-{uuid.uuid4().hex}"
    response = await limited.client.post(
        "/v1/auth:refresh", headers={"x-request-id": fits},
        json={"refresh_token": "x" * (DEFAULT_MAX_REQUEST_BODY_BYTES - 64)})
    assert response.status_code == 400, response.text
    await service_logged(limited, {fits})


async def test_request_bodies_must_be_json(limited: RealEdge) -> None:
    before = await settled_upstream(limited)
    body = b'{"email": "a@example.com", "password": "correct horse"}'
    ids = set()
    for headers in ({"content-type": "text/plain"},
                    {"content-type": "application/x-www-form-urlencoded"},  # curl -d
                    {}):
        request_id = f"type-{uuid.uuid4().hex}"
        ids.add(request_id)
        response = await limited.client.post("/v1/auth:refresh", content=body,
                                             headers={**headers, "x-request-id": request_id})
        assert response.status_code == 415, (headers, response.text)
        assert error(response.json()) == (
            3, "UNSUPPORTED_MEDIA_TYPE",
            "a request body must be JSON: send Content-Type: application/json")
    await unchanged_upstream(limited, before)
    assert not service_saw(limited, ids)
    response = await limited.client.post("/v1/auth:refresh", content=b'{"refresh_token": "x"}',
                                         headers={"content-type": "application/json"})
    assert response.status_code == 401, response.text  # the service judged it


async def test_slow_clients_are_cut_off(limited: RealEdge) -> None:
    """A body that stops coming (100 bytes declared, 1 sent) or headers that do:
    408 after request_timeout_seconds, not Envoy's 300 s; an idle connection is
    closed after idle_timeout_seconds (and Envoy's drain of about 5 s)."""
    port = limited.http_port
    before = await settled_upstream(limited)
    request_id = f"slow-{uuid.uuid4().hex}"

    async def idle_connection_lifetime() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head("GET", "/healthz"))
        await reader.readuntil(b"\r\n\r\n")
        start = time.monotonic()
        try:
            while await asyncio.wait_for(reader.read(1024), 20):
                pass
        finally:
            writer.close()
        return time.monotonic() - start

    idle = asyncio.ensure_future(idle_connection_lifetime())
    slow_body, slow_headers = await asyncio.gather(
        raw_request(port, head("POST", "/v1/auth:login", "Content-Type: application/json",
                               "Content-Length: 100", f"x-request-id: {request_id}") + b"{"),
        raw_request(port, b"POST /v1/auth:login HTTP/1.1\r\nHost: edge\r\n"))
    for response in (slow_body, slow_headers):
        assert response.status == 408
        assert error(response.json()) == (4, "REQUEST_TIMEOUT",
                                          "the request was not received in time")
        assert 0.9 < response.elapsed < 3
    assert 1 <= await idle < 10
    await unchanged_upstream(limited, before)
    assert not service_saw(limited, {request_id})


async def test_the_credential_limit_belongs_to_the_route(limited: RealEdge) -> None:
    """A query string on the gRPC path (`.../Login?x`, which takes the Login
    route) or on the REST path takes from the same per-address bucket."""
    wrong = identity_pb2.LoginRequest(email="nobody@example.com", password="not-the-password")
    async with grpc.aio.insecure_channel(limited.grpc_target) as channel:
        codes = []
        for path in (f"{LOGIN}?x", f"{LOGIN}?y=1", f"{LOGIN}?x"):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await channel.unary_unary(path)(wrong.SerializeToString(), timeout=5)
            codes.append(caught.value.code())
    # The first two reach the service (which has no method by that name), then
    # the bucket is empty.
    assert codes == [grpc.StatusCode.UNIMPLEMENTED] * 2 + [grpc.StatusCode.RESOURCE_EXHAUSTED]
    async with limited.client_from("127.0.0.5") as client:
        statuses = [(await client.post(f"/v1/auth:login?x={i}", json={
            "email": "nobody@example.com", "password": "not-the-password"})).status_code
            for i in range(3)]
    assert statuses == [401, 401, 429]


async def test_request_ids_are_kept_exactly(limited: RealEdge) -> None:
    """A UUID-shaped id (Envoy's UUID extension would rewrite its 15th
    character to pack a trace reason) is kept as sent: in the response, the
    edge's access log and the service's."""
    user = await limited.app.register()
    auth = {"authorization": f"Bearer {user.access_token}"}
    rest_id = "123e4567-e89b-12d3-a456-426614174000"
    grpc_id = str(uuid.uuid4())
    response = await limited.client.get("/v1/users/me", headers={**auth, "x-request-id": rest_id})
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == rest_id
    assert not edge_headers(response.headers)
    async with grpc.aio.insecure_channel(limited.grpc_target) as channel:
        call = channel.unary_unary("/waqup.identity.v1.UserService/GetUser")(
            identity_pb2.GetUserRequest(name="users/me").SerializeToString(),
            metadata=(("x-request-id", grpc_id), *auth.items()), timeout=5)
        await call
        assert dict(await call.initial_metadata())["x-request-id"] == grpc_id
    lines = await limited.logged_ids((rest_id, grpc_id))
    assert set(lines) == {rest_id, grpc_id}
    await service_logged(limited, {rest_id, grpc_id})
