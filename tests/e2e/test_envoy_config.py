"""The edge config, checked against the real Envoy binary.

Envoy runs in front of tiny in-test gRPC servers (one per context, as in mesh
mode) that implement grpc.health.v1 and a few RPCs with canned answers, so these
tests depend on services/edge/config.py, envoy/envoy.yaml.tmpl and the descriptor set
only: not on the real servicers. The fake identity publishes the JWKS of a key
ring made here, so that the edge can verify tokens signed with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from adapters.jwt.keys import KeyRing
from adapters.jwt.tokens import JwtTokenIssuer
from services import edge
from services.edge.config import SELF_CLUSTER
from services.gen.waqup.credits.v1 import credits_pb2
from services.gen.waqup.identity.v1 import identity_pb2
from tests.e2e.conftest import free_port
from tests.e2e.rawhttp import chunked, edge_headers, raw_request

SERVING = health_pb2.HealthCheckResponse.SERVING
LOGIN = "/waqup.identity.v1.AuthService/Login"
SLOW_EMAIL = "slow@example.com"
LEDGER_RESERVE = "/waqup.credits.v1.CreditLedgerService/ReserveCredits"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    """The google.rpc.Status JSON body of every error the edge answers itself."""
    return {"code": code, "message": message,
            "details": [{"@type": ERROR_INFO, "reason": reason, "domain": "waqup.app"}]}


def descriptor_path() -> Path:
    path = edge.DESCRIPTOR_PATH
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `python -m services.codegen`", pytrace=False)
    return path


# --- rendering ------------------------------------------------------------------


def test_render_rejects_unknown_contexts() -> None:
    with pytest.raises(ValueError, match="unknown contexts"):
        edge.render_envoy_config(upstreams={"billing": ("127.0.0.1", 1)},
                                 descriptor_path=Path("x.pb"))
    with pytest.raises(ValueError):
        edge.render_envoy_config(upstreams={}, descriptor_path=Path("x.pb"))


def test_upstreams_take_one_endpoint_or_several() -> None:
    assert edge.embedded_upstreams("10.0.0.1", 7000) == {
        name: [("10.0.0.1", 7000)] for name in edge.CONTEXTS}
    assert edge.embedded_http_upstreams("10.0.0.1", 8000, workers=2) == {
        name: [("10.0.0.1", 8000), ("10.0.0.1", 8001)]
        for name in ("conversation", "library", "catalog", "payments")}
    assert edge.embedded_upstreams("10.0.0.1", 7000, workers=3)["credits"] == [
        ("10.0.0.1", 7000), ("10.0.0.1", 7001), ("10.0.0.1", 7002)]
    with pytest.raises(ValueError):
        edge.embedded_upstreams(workers=0)

    def clusters(upstreams: dict[str, Any]) -> dict[str, Any]:
        text = edge.render_envoy_config(upstreams=upstreams, descriptor_path=Path("x.pb"))
        start = text.index("clusters: ") + len("clusters: ")
        return {c["name"]: c for c in json.loads(text[start:].split("\n", 1)[0])}

    single = clusters({"identity": ("127.0.0.1", 1), "credits": ("127.0.0.1", 2)})
    listed = clusters({"identity": [("127.0.0.1", 1)], "credits": [("127.0.0.1", 2)]})
    assert single == listed
    several = clusters({"identity": [("127.0.0.1", 1), ("localhost", 2)]})
    endpoints = several["identity"]["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert [e["endpoint"]["address"]["socket_address"]["port_value"] for e in endpoints] == [1, 2]
    assert several["identity"]["type"] == "STRICT_DNS"
    assert several["identity"]["lb_policy"] == "ROUND_ROBIN"
    assert several["identity"]["circuit_breakers"]["thresholds"][0]["max_requests"] > 1024
    assert set(several) == {"identity", SELF_CLUSTER}
    with pytest.raises(ValueError):
        clusters({"identity": []})


@pytest.mark.parametrize("bad", [{"jwks_cache_seconds": 0}, {"jwks_cache_seconds": 1.5},
                                 {"global_rate_limit": 0},
                                 {"credential_rate_limit_interval_seconds": 0},
                                 {"max_request_body_bytes": 0},
                                 {"route_body_limits": {"/waqup.nothing.v1.X/Y": 10}},
                                 {"route_body_limits": {LEDGER_RESERVE: 10}},
                                 {"route_body_limits": {LOGIN: 0}},
                                 {"request_timeout_seconds": 0},
                                 {"request_headers_timeout_seconds": -1},
                                 {"stream_idle_timeout_seconds": 0},
                                 {"idle_timeout_seconds": 0}])
def test_render_rejects_bad_parameters(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        edge.render_envoy_config(upstreams=edge.embedded_upstreams(), descriptor_path=Path("x"),
                                 **bad)


@pytest.mark.envoy
@pytest.mark.parametrize(("upstreams", "options"), [
    (edge.embedded_upstreams("127.0.0.1", 50123), {}),
    ({"identity": ("localhost", 50124), "credits": ("127.0.0.1", 50125)},
     {"listen_host": "0.0.0.0", "cors_origins": ["*"], "global_rate_limit": None,
      "credential_rate_limit": None}),
    (edge.embedded_upstreams("127.0.0.1", 50130, workers=4),
     {"cors_origins": ["https://app.example", "http://localhost:3000"],
      "xff_num_trusted_hops": 1, "jwks_cache_seconds": 300,
      "max_request_body_bytes": 16 * 1024, "request_timeout_seconds": 5.5,
      "request_headers_timeout_seconds": 2, "stream_idle_timeout_seconds": 20,
      "idle_timeout_seconds": 30,
      "route_body_limits": {"waqup.identity.v1.UserService": 1024, LOGIN: 1 << 20}}),
], ids=["embedded", "mesh", "workers"])
def test_rendered_config_passes_envoy_validate(tmp_path: Path, upstreams: dict[str, Any],
                                               options: dict[str, Any]) -> None:
    config = edge.write_envoy_config(
        tmp_path / "envoy.yaml", listen_port=free_port(), admin_port=free_port(),
        upstreams=upstreams, descriptor_path=descriptor_path(), **options)
    result = subprocess.run(
        [edge.envoy_binary(), "--mode", "validate", "-c", str(config), "--log-level", "warning",
         "--disable-hot-restart"],
        capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # Nothing deprecated or ignored (the JWKS fetch cannot work in validate mode).
    warnings = [line for line in result.stderr.splitlines()
                if "][warning]" in line and "jwks" not in line.lower()]
    assert not warnings, warnings
    text = config.read_text()
    for name in upstreams:
        assert f'"name": "{name}"' in text


# --- a running edge -------------------------------------------------------------


Handler = Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]


@dataclass
class Upstream:
    """A gRPC server standing in for one context (or one worker of it)."""

    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    calls: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def set_health(self, status: int) -> None:
        await self.health.set("", status)


async def start_upstream(services: dict[str, dict[str, Handler]],
                         unrecorded: dict[str, dict[str, Handler]] | None = None) -> Upstream:
    """`services` record their calls in Upstream.calls; `unrecorded` ones do not
    (the edge's own JWKS fetches)."""
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    upstream = Upstream(server, servicer, port)

    def recording(method: str, handler: Handler) -> grpc.RpcMethodHandler:
        async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
            upstream.calls.append((method, metadata, request))
            return await handler(request, context)
        return grpc.unary_unary_rpc_method_handler(call)

    handlers = {}
    for service, methods in services.items():
        handlers[service] = {name: recording(f"/{service}/{name}", fn)
                             for name, fn in methods.items()}
    for service, methods in (unrecorded or {}).items():
        handlers.setdefault(service, {}).update(
            {name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in methods.items()})
    server.add_generic_rpc_handlers([
        grpc.method_handlers_generic_handler(service, methods)
        for service, methods in handlers.items()
    ])
    await server.start()
    await upstream.set_health(SERVING)
    return upstream


async def login(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    req = identity_pb2.LoginRequest.FromString(request)
    if req.email == SLOW_EMAIL:  # an upstream that does not answer in time
        await asyncio.sleep(3)
    if req.password != "secret":
        status = status_pb2.Status(code=code_pb2.UNAUTHENTICATED, message="invalid credentials")
        status.details.add().Pack(error_details_pb2.ErrorInfo(
            reason="INVALID_CREDENTIALS", domain="waqup.app"))
        await context.abort_with_status(rpc_status.to_status(status))
    user = identity_pb2.User(name="users/u1", email=req.email,
                             preferences=identity_pb2.Preferences(pace=identity_pb2.PACE_SLOW))
    return identity_pb2.LoginResponse(access_token="token", expires_in=900,
                                      token_type="Bearer", user=user).SerializeToString()


def jwks_handler(keyring: KeyRing) -> Handler:
    async def get_jwks(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        keys = [identity_pb2.Jwk(**jwk) for jwk in keyring.public_jwks()]
        return identity_pb2.Jwks(keys=keys).SerializeToString()
    return get_jwks


async def get_credit_account(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    req = credits_pb2.GetCreditAccountRequest.FromString(request)
    return credits_pb2.CreditAccount(name=req.name, balance=3, held=1,
                                     available=2).SerializeToString()


async def reserve_credits(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return credits_pb2.Reservation(amount=1).SerializeToString()


@dataclass
class Edge:
    url: str
    grpc_target: str
    identity: Upstream
    credits: Upstream
    envoy: edge.EnvoyProcess
    access_log: Path
    keyring: KeyRing

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.access_log.read_text().splitlines()
                if line.startswith("{")]

    def token(self, audience: str = "waqup-api") -> str:
        issuer = JwtTokenIssuer(self.keyring, "waqup-identity", audience, 300)
        return issuer.issue("u1", ("user",), datetime.now(UTC)).token

    def bearer(self, audience: str = "waqup-api") -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(audience)}"}


async def start_fakes(keyring: KeyRing, credits_workers: int = 1,
                      ) -> tuple[Upstream, list[Upstream]]:
    identity = await start_upstream({"waqup.identity.v1.AuthService": {"Login": login}},
                                    {"waqup.identity.v1.AuthService":
                                     {"GetJwks": jwks_handler(keyring)}})
    credits = [await start_upstream({
        "waqup.credits.v1.CreditAccountService": {"GetCreditAccount": get_credit_account},
        "waqup.credits.v1.CreditLedgerService": {"ReserveCredits": reserve_credits},
    }) for _ in range(credits_workers)]
    return identity, credits


@contextlib.asynccontextmanager
async def envoy_in_front(tmp_path: Path, upstreams: dict[str, Sequence[tuple[str, int]]],
                         **options: Any) -> AsyncIterator[tuple[edge.EnvoyProcess, int, Path]]:
    listen_port, admin_port = free_port(), free_port()
    config = edge.write_envoy_config(
        tmp_path / "envoy.yaml", listen_port=listen_port, admin_port=admin_port,
        upstreams=upstreams, descriptor_path=descriptor_path(), **options)
    envoy = edge.EnvoyProcess(admin_port=admin_port)
    access_log, envoy_log = tmp_path / "access.log", tmp_path / "envoy.log"
    try:
        with access_log.open("wb") as out, envoy_log.open("wb") as err:
            envoy.start(config, log_level="warning", concurrency=1, stdout=out, stderr=err)
        await envoy.wait_ready_async(timeout=10)
        yield envoy, listen_port, access_log
    finally:
        envoy.stop(timeout=5)
        print(envoy_log.read_text())  # shown by pytest when the test failed


@pytest.fixture
async def running_edge(tmp_path: Path) -> AsyncIterator[Edge]:
    keyring = KeyRing.generate()
    identity, [credits] = await start_fakes(keyring)
    try:
        async with envoy_in_front(tmp_path, {"identity": [("127.0.0.1", identity.port)],
                                             "credits": ("127.0.0.1", credits.port)},
                                  jwks_cache_seconds=1, request_timeout_seconds=1,
                                  request_headers_timeout_seconds=1,
                                  route_timeout_seconds=1) as (envoy, port, access_log):
            await envoy.wait_jwks_async(timeout=10)
            yield Edge(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", identity, credits,
                       envoy, access_log, keyring)
    finally:
        await identity.server.stop(0)
        await credits.server.stop(0)


async def wait_for_healthz(client: httpx.AsyncClient, status: int, within: float = 6) -> float:
    """Poll /healthz until it answers `status`; returns the seconds it took."""
    start = time.monotonic()
    while True:
        response = await client.get("/healthz")
        if response.status_code == status:
            return time.monotonic() - start
        if time.monotonic() - start > within:
            raise AssertionError(f"/healthz still {response.status_code} after {within} s, "
                                 f"expected {status}")
        await asyncio.sleep(0.05)


@pytest.mark.envoy
async def test_healthz_follows_upstream_health(running_edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=running_edge.url) as client:
        await wait_for_healthz(client, 200, within=3)
        # Any one context unhealthy makes the edge unhealthy.
        await running_edge.credits.set_health(NOT_SERVING)
        await wait_for_healthz(client, 503)
        await running_edge.credits.set_health(SERVING)
        await wait_for_healthz(client, 200)
        await running_edge.identity.server.stop(0)
        await wait_for_healthz(client, 503)
    # Health checks are active gRPC checks, never forwarded /healthz requests.
    assert not running_edge.identity.calls and not running_edge.credits.calls


@pytest.mark.envoy
async def test_several_workers_per_context(tmp_path: Path) -> None:
    """Mesh mode: a context served by several processes, one port each. Round robin
    over them; each is health-checked; /healthz stays 200 while one is left."""
    keyring = KeyRing.generate()
    identity, workers = await start_fakes(keyring, credits_workers=2)
    upstreams = {"identity": ("127.0.0.1", identity.port),
                 "credits": [("127.0.0.1", worker.port) for worker in workers]}
    try:
        async with envoy_in_front(tmp_path, upstreams) as (envoy, port, _), \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await envoy.wait_jwks_async(timeout=10)
            token = JwtTokenIssuer(keyring, "waqup-identity", "waqup-api", 300).issue(
                "u1", (), datetime.now(UTC)).token
            auth = {"authorization": f"Bearer {token}"}

            async def spread(n: int) -> list[int]:
                before = [len(worker.calls) for worker in workers]
                for _ in range(n):
                    response = await client.get("/v1/users/me/creditAccount", headers=auth)
                    assert response.status_code == 200, response.text
                return [len(worker.calls) - was for worker, was in zip(workers, before,
                                                                        strict=True)]

            assert await spread(6) == [3, 3]
            await workers[0].set_health(NOT_SERVING)
            for _ in range(60):  # until its health checks have failed twice
                if not (await spread(2))[0]:
                    break
                await asyncio.sleep(0.1)
            assert await spread(4) == [0, 4]
            assert (await client.get("/healthz")).status_code == 200  # one worker is enough
    finally:
        for upstream in (identity, *workers):
            await upstream.server.stop(0)


@pytest.mark.envoy
async def test_unknown_paths_get_a_json_404(running_edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=running_edge.url) as client:
        for method, path in [("GET", "/v1/nothing"), ("GET", "/"), ("DELETE", "/v1/auth:login"),
                             ("POST", "/waqup.credits.v1.CreditLedgerService/ReserveCredits"),
                             # auto_mapping maps only methods without HTTP rules of the
                             # listed services: none of ours, not Health/Watch.
                             ("POST", "/waqup.identity.v1.AuthService/Login"),
                             ("POST", "/waqup.credits.v1.CreditAccountService/GetCreditAccount"),
                             ("POST", "/grpc.health.v1.Health/Watch")]:
            for headers in ({}, running_edge.bearer()):  # no token needed to learn it is 404
                response = await client.request(method, path, headers=headers,
                                                json={} if method == "POST" else None)
                assert response.status_code == 404, (method, path, response.text)
                assert response.headers["content-type"] == "application/json"
                assert response.json() == status_body(5, "NOT_FOUND", "not found")
                assert response.headers["x-request-id"]
    assert not running_edge.credits.calls
    assert not running_edge.identity.calls


@pytest.mark.envoy
async def test_internal_service_is_not_routed_over_grpc(running_edge: Edge) -> None:
    request = credits_pb2.ReserveCreditsRequest(amount=1).SerializeToString()
    service = JwtTokenIssuer(running_edge.keyring, "waqup-identity", "waqup-api", 300).issue(
        "service:tests", ("service",), datetime.now(UTC)).token
    async with grpc.aio.insecure_channel(running_edge.grpc_target) as channel:
        call = channel.unary_unary("/waqup.credits.v1.CreditLedgerService/ReserveCredits")
        for metadata in ((), (("authorization", f"Bearer {service}"),)):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call(request, metadata=metadata, timeout=5)
            assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
        # The health check is routed (public, to the first context): the no-op
        # baseline of the benchmark and a probe for load balancers.
        check = channel.unary_unary(
            edge.HEALTH_CHECK_METHOD,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString)
        reply = await check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == SERVING
        watch = channel.unary_stream("/grpc.health.v1.Health/Watch")
        with pytest.raises(grpc.aio.AioRpcError) as error:
            async for _ in watch(b"", timeout=5):
                pass
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # The upstream does implement it, so anything but a refusal means it got through.
    assert not running_edge.credits.calls
    async with httpx.AsyncClient(base_url=running_edge.url) as client:
        health_check = await client.post(edge.HEALTH_CHECK_METHOD, json={})
    assert health_check.status_code == 200, health_check.text
    assert health_check.json() == {"status": "SERVING"}


@pytest.mark.envoy
async def test_rest_and_grpc_share_the_port(running_edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=running_edge.url) as client:
        response = await client.post("/v1/auth:login", headers={"x-request-id": "req-123"},
                                     json={"email": "a@example.com", "password": "secret"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["access_token"] == "token"
        assert body["token_type"] == "Bearer"
        assert body["user"]["preferences"]["pace"] == "PACE_SLOW"   # enums as names
        assert body["user"]["display_name"] == ""                    # proto names, defaults printed
        assert response.headers["x-request-id"] == "req-123"

        # Each context has its own cluster: this one reaches the credits server.
        # It needs a token, which the edge checks and forwards.
        token = running_edge.token()
        account = await client.get("/v1/users/me/creditAccount",
                                   headers={"authorization": f"Bearer {token}"})
        assert account.status_code == 200, account.text
        assert account.json() == {"name": "users/me/creditAccount", "balance": 3,
                                  "held": 1, "available": 2}   # int32: JSON numbers

        # google.rpc.Status with ErrorInfo -> HTTP status + JSON body.
        denied = await client.post("/v1/auth:login",
                                   json={"email": "a@example.com", "password": "wrong"})
        assert denied.status_code == 401
        assert denied.headers["content-type"] == "application/json"
        assert denied.json() == {
            "code": 16, "message": "invalid credentials",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                         "reason": "INVALID_CREDENTIALS", "domain": "waqup.app",
                         "metadata": {}}],
        }

        # Envoy's own errors are JSON too.
        bad = await client.post("/v1/auth:login", content=b"{not json",
                                headers={"content-type": "application/json"})
        assert bad.status_code == 400
        assert bad.json()["code"] == 3

    method, metadata, _ = running_edge.identity.calls[0]
    assert method == "/waqup.identity.v1.AuthService/Login"
    assert metadata["x-request-id"] == "req-123"              # request id reaches the service
    assert metadata["x-envoy-original-path"] == "/v1/auth:login"
    method, metadata, _ = running_edge.credits.calls[0]
    assert method == "/waqup.credits.v1.CreditAccountService/GetCreditAccount"
    assert metadata["authorization"] == f"Bearer {token}"  # forwarded for defence in depth

    request = identity_pb2.LoginRequest(email="a@example.com", password="secret")
    async with grpc.aio.insecure_channel(running_edge.grpc_target) as channel:
        call = channel.unary_unary("/waqup.identity.v1.AuthService/Login",
                                   request_serializer=identity_pb2.LoginRequest.SerializeToString,
                                   response_deserializer=identity_pb2.LoginResponse.FromString)
        reply = await call(request, metadata=[("x-request-id", "req-456")], timeout=5)
        assert reply.user.email == "a@example.com"
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call(identity_pb2.LoginRequest(email="a@example.com", password="x"), timeout=5)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        status = rpc_status.from_call(error.value)
        assert status is not None and status.details[0].Is(error_details_pb2.ErrorInfo.DESCRIPTOR)
    assert running_edge.identity.calls[-2][1]["x-request-id"] == "req-456"

    # Access log: one JSON line per request, REST calls under their REST path.
    expected = {("POST", "/v1/auth:login", 200, "req-123", "identity"),
                ("POST", "/waqup.identity.v1.AuthService/Login", 200, "req-456", "identity")}
    deadline = time.monotonic() + 5  # Envoy flushes access logs every 250 ms
    while True:
        logged = {(line["method"], line["path"], line["response_code"], line["request_id"],
                   line["upstream_cluster"]) for line in running_edge.log_lines()}
        if expected <= logged or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert expected <= logged


@pytest.mark.envoy
async def test_upstream_down_gives_json_503(running_edge: Edge) -> None:
    await running_edge.identity.server.stop(0)
    async with httpx.AsyncClient(base_url=running_edge.url) as client:
        response = await client.post("/v1/auth:login", json={"email": "a@b.c", "password": "x"})
    assert response.status_code == 503
    # Not Envoy's "upstream connect error or disconnect/reset before headers...".
    assert response.json() == status_body(14, "UNAVAILABLE",
                                          "the service is unavailable: retry later")
    async with grpc.aio.insecure_channel(running_edge.grpc_target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await channel.unary_unary("/waqup.identity.v1.AuthService/Login")(b"", timeout=5)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.envoy
def test_envoy_process_stop_is_idempotent(tmp_path: Path) -> None:
    admin_port = free_port()
    config = edge.write_envoy_config(
        tmp_path / "envoy.yaml", listen_port=free_port(), admin_port=admin_port,
        upstreams=edge.embedded_upstreams("127.0.0.1", free_port()),
        descriptor_path=descriptor_path())
    with edge.EnvoyProcess(admin_port=admin_port) as envoy:
        envoy.start(config, concurrency=1, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        envoy.wait_ready(timeout=10)
        assert envoy.running
        assert envoy.stop() == 0
        assert not envoy.running
        assert envoy.stop() == 0


# --- the edge's own errors, limits and headers ---------------------------------------


TOO_LARGE = "the request body is larger than this method accepts"


def http_head(method: str, path: str, *headers: str, version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: edge", *headers, "", ""]
    return "\r\n".join(lines).encode()


@pytest.mark.envoy
async def test_every_edge_error_has_the_status_shape(running_edge: Edge) -> None:
    """Each error Envoy answers itself: a google.rpc.Status JSON body with an
    ErrorInfo (domain waqup.app), a fixed message that echoes nothing of the
    request (no input, no proto type names, no upstream addresses)."""
    port = int(running_edge.url.rsplit(":", 1)[1])
    expired = JwtTokenIssuer(running_edge.keyring, "waqup-identity", "waqup-api", 1).issue(
        "u1", (), datetime(2020, 1, 1, tzinfo=UTC)).token
    token_message = edge.config.TOKEN_MESSAGE
    json_type = {"content-type": "application/json"}
    cases: list[tuple[str, dict[str, Any], int, int, str, str]] = [
        # (case, httpx request, status, google.rpc.Code, reason, message)
        ("body not JSON", {"method": "POST", "url": "/v1/auth:login", "headers": json_type,
                           "content": b'{"email": "leak@example.com", "pass'},
         400, 3, "MALFORMED_REQUEST", "the request body is not valid JSON for this method"),
        ("wrong JSON type", {"method": "POST", "url": "/v1/auth:login", "headers": json_type,
                             "content": b'{"email": {"leak": 1}}'},
         400, 3, "MALFORMED_REQUEST", "the request body is not valid JSON for this method"),
        ("bad query value", {"method": "GET",
                             "url": "/v1/users/me/creditTransactions?page_size=leak"},
         400, 3, "MALFORMED_REQUEST", "the path or query string is not valid for this method"),
        ("no token", {"method": "GET", "url": "/v1/users/me/creditAccount"},
         401, 16, "TOKEN_MISSING", token_message),
        ("expired token", {"method": "GET", "url": "/v1/users/me/creditAccount",
                           "headers": {"authorization": f"Bearer {expired}"}},
         401, 16, "TOKEN_EXPIRED", token_message),
        ("other audience", {"method": "GET", "url": "/v1/users/me/creditAccount",
                            "headers": running_edge.bearer("other-api")},
         401, 16, "INVALID_TOKEN", token_message),
        ("garbage token", {"method": "GET", "url": "/v1/users/me/creditAccount",
                           "headers": {"authorization": "Bearer leak.leak.leak"}},
         401, 16, "INVALID_TOKEN", token_message),
        ("unknown path", {"method": "GET", "url": "/v1/leak"}, 404, 5, "NOT_FOUND", "not found"),
        ("body too large", {"method": "POST", "url": "/v1/auth:login", "headers": json_type,
                            "json": {"email": "a@example.com", "password": "x" * 100_000}},
         413, 3, "REQUEST_TOO_LARGE", TOO_LARGE),
        ("not JSON", {"method": "POST", "url": "/v1/auth:login",
                      "headers": {"content-type": "text/plain"}, "content": b"{}"},
         415, 3, "UNSUPPORTED_MEDIA_TYPE",
         "a request body must be JSON: send Content-Type: application/json"),
        ("header too large", {"method": "GET", "url": "/v1/users/me",
                              "headers": {"x-leak": "x" * 70_000}},
         431, 3, "REQUEST_HEADERS_TOO_LARGE", "the request headers are too large"),
        # The route timeout is 1 s here; the fake takes 3 s.
        ("upstream too slow", {"method": "POST", "url": "/v1/auth:login",
                               "json": {"email": SLOW_EMAIL, "password": "x"}},
         504, 4, "DEADLINE_EXCEEDED", "the service did not answer in time"),
    ]
    async with httpx.AsyncClient(base_url=running_edge.url, timeout=10) as client:
        for case, request, status, code, reason, message in cases:
            response = await client.request(**request)
            assert response.status_code == status, (case, response.text)
            assert response.headers["content-type"] == "application/json", case
            assert response.json() == status_body(code, reason, message), case
            assert "leak" not in response.text and "waqup." not in response.json()["message"]
            assert not edge_headers(response.headers), (case, response.headers)

    # What httpx will not send: HTTP/1.0, a body that stops coming, headers that do.
    raw = {
        "HTTP/1.0": (await raw_request(port, http_head("GET", "/v1/users/me", version="1.0")),
                     426, 3, "HTTP_VERSION_NOT_SUPPORTED",
                     "HTTP/1.0 is not supported: use HTTP/1.1 or HTTP/2"),
        "slow body": (await raw_request(port, http_head(
            "POST", "/v1/auth:login", "Content-Type: application/json", "Content-Length: 100")
            + b"{"), 408, 4, "REQUEST_TIMEOUT", "the request was not received in time"),
        "slow headers": (await raw_request(port, b"GET /v1/users/me HTTP/1.1\r\nHost: e\r\n"),
                         408, 4, "REQUEST_TIMEOUT", "the request was not received in time"),
    }
    for case, (response, status, code, reason, message) in raw.items():
        assert response.status == status, (case, response)
        assert response.headers["content-type"] == "application/json", case
        assert response.json() == status_body(code, reason, message), case
        assert not edge_headers(response.headers), case
    assert raw["slow body"][0].elapsed < 3  # request_timeout_seconds=1, not 300 s
    assert not [call for call in running_edge.identity.calls if call[1].get(
        "x-envoy-original-path") != "/v1/auth:login" or b"leak" in call[2]]

    # Native gRPC callers get grpc-status (and the same fixed message).
    async with grpc.aio.insecure_channel(running_edge.grpc_target) as channel:
        grpc_cases = [
            (LOGIN, identity_pb2.LoginRequest(password="x" * 100_000).SerializeToString(), (),
             grpc.StatusCode.INVALID_ARGUMENT, TOO_LARGE),
            ("/waqup.credits.v1.CreditAccountService/GetCreditAccount", b"", (),
             grpc.StatusCode.UNAUTHENTICATED, token_message),
            ("/waqup.credits.v1.CreditAccountService/GetCreditAccount", b"",
             (("authorization", f"Bearer {expired}"),),
             grpc.StatusCode.UNAUTHENTICATED, token_message),
            ("/waqup.leak.v1.Nothing/Leak", b"", (), grpc.StatusCode.UNIMPLEMENTED, "not found"),
            # The route timeout (1 s) is shorter than the client's deadline (5 s).
            (LOGIN, identity_pb2.LoginRequest(email=SLOW_EMAIL).SerializeToString(), (),
             grpc.StatusCode.DEADLINE_EXCEEDED, "the service did not answer in time"),
        ]
        for path, request, metadata, code, message in grpc_cases:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await channel.unary_unary(path)(request, metadata=metadata, timeout=5)
            assert (caught.value.code(), caught.value.details()) == (code, message), path


@pytest.mark.envoy
async def test_body_limits_per_route(tmp_path: Path) -> None:
    """The default limit for every route; a route given its own (an upload method)
    takes more, REST and native gRPC alike. Refused bodies never reach a worker."""
    keyring = KeyRing.generate()
    identity, [credits] = await start_fakes(keyring)
    upstreams = {"identity": ("127.0.0.1", identity.port),
                 "credits": ("127.0.0.1", credits.port)}
    try:
        async with envoy_in_front(tmp_path, upstreams, max_request_body_bytes=2048,
                                  route_body_limits={LOGIN: 16384}) as (envoy, port, _), \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await envoy.wait_jwks_async(timeout=10)
            token = JwtTokenIssuer(keyring, "waqup-identity", "waqup-api", 300).issue(
                "u1", (), datetime.now(UTC)).token
            auth = {"authorization": f"Bearer {token}"}

            async def login_with(password_bytes: int) -> int:
                response = await client.post("/v1/auth:login", json={
                    "email": "a@example.com", "password": "x" * password_bytes})
                return response.status_code

            assert await login_with(8000) == 401          # its own limit: reached the fake
            assert len(identity.calls) == 1
            assert await login_with(20_000) == 413        # over its own limit
            # Refresh keeps the default (the fake does not implement it: the 413
            # proves the edge refused it first).
            refresh = await client.post("/v1/auth:refresh", json={"refresh_token": "x" * 4000})
            assert refresh.status_code == 413, refresh.text
            small = await client.post("/v1/auth:refresh", json={"refresh_token": "x"})
            assert small.status_code == 501  # reached the fake: UNIMPLEMENTED

            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                login = channel.unary_unary(LOGIN)
                request = identity_pb2.LoginRequest(email="a@example.com", password="x" * 8000)
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await login(request.SerializeToString(), timeout=5)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED  # the fake's
                get = channel.unary_unary(
                    "/waqup.credits.v1.CreditAccountService/GetCreditAccount")
                big = credits_pb2.GetCreditAccountRequest(name="x" * 4000)
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await get(big.SerializeToString(), metadata=tuple(auth.items()), timeout=5)
                assert (caught.value.code(), caught.value.details()) == (
                    grpc.StatusCode.INVALID_ARGUMENT, TOO_LARGE)
            assert len(identity.calls) == 2 and not credits.calls
            assert (await client.get("/v1/users/me/creditAccount", headers=auth)).status_code == 200
    finally:
        await identity.server.stop(0)
        await credits.server.stop(0)


@pytest.mark.envoy
async def test_unknown_fields_are_ignored(running_edge: Edge) -> None:
    """One rule for the body and the query string: unknown fields are dropped
    (the transcoder cannot refuse unknown body fields)."""
    async with httpx.AsyncClient(base_url=running_edge.url) as client:
        login = await client.post("/v1/auth:login?utm_source=leak", json={
            "email": "a@example.com", "password": "secret", "remember_me": True})
        assert login.status_code == 200, login.text
        account = await client.get("/v1/users/me/creditAccount?pageSize=1",
                                   headers=running_edge.bearer())
        assert account.status_code == 200, account.text
    _, _, request = running_edge.identity.calls[-1]
    assert identity_pb2.LoginRequest.FromString(request) == identity_pb2.LoginRequest(
        email="a@example.com", password="secret")


@pytest.mark.envoy
async def test_content_types(running_edge: Edge) -> None:
    port = int(running_edge.url.rsplit(":", 1)[1])
    body = b'{"email": "a@example.com", "password": "secret"}'
    async with httpx.AsyncClient(base_url=running_edge.url) as client:
        for content_type in ("application/json", "application/json; charset=utf-8",
                             "Application/JSON"):
            response = await client.post("/v1/auth:login", content=body,
                                         headers={"content-type": content_type})
            assert response.status_code == 200, (content_type, response.text)
        accepted = len(running_edge.identity.calls)
        for headers in ({"content-type": "text/plain"},
                        {"content-type": "application/x-www-form-urlencoded"},  # curl -d
                        {"content-type": "application/jsonp"},
                        {"content-type": "application/grpc-web"},
                        {}):
            response = await client.post("/v1/auth:login", content=body, headers=headers)
            assert response.status_code == 415, (headers, response.text)
            assert response.json()["details"][0]["reason"] == "UNSUPPORTED_MEDIA_TYPE"
        # Without a body, no content type is needed.
        empty = await client.post(edge.HEALTH_CHECK_METHOD)
        assert empty.status_code == 200, empty.text
    # Chunked, without a content type.
    response = await raw_request(port, http_head("POST", "/v1/auth:login",
                                                 "Transfer-Encoding: chunked"),
                                 chunked(body, 10))
    assert response.status == 415
    assert len(running_edge.identity.calls) == accepted
    # Native gRPC content types pass (application/grpc, +proto).
    async with grpc.aio.insecure_channel(running_edge.grpc_target) as channel:
        reply = await channel.unary_unary(edge.HEALTH_CHECK_METHOD)(b"", timeout=5)
        assert reply == health_pb2.HealthCheckResponse(status=SERVING).SerializeToString()


@pytest.mark.envoy
async def test_no_envoy_headers_in_or_out(running_edge: Edge) -> None:
    """No server or x-envoy-* header leaves the edge, whatever the answer; the
    x-envoy-* headers a client sends reach no service."""
    sent = {"x-envoy-original-path": "/forged", "x-envoy-original-method": "DELETE",
            "x-envoy-upstream-rq-timeout-ms": "1", "x-envoy-retry-on": "5xx",
            "x-envoy-external-address": "203.0.113.9", "x-envoy-leak": "1"}
    async with httpx.AsyncClient(base_url=running_edge.url) as client:
        responses = [
            await client.post("/v1/auth:login", headers=sent,
                              json={"email": "a@example.com", "password": "secret"}),
            await client.get("/v1/users/me/creditAccount", headers=running_edge.bearer()),
            await client.get("/v1/users/me/creditAccount"),
            await client.get("/v1/nothing"),
            await client.get("/healthz"),
            await client.options("/v1/users/me", headers={
                "origin": "https://elsewhere.example", "access-control-request-method": "GET"}),
        ]
        for response in responses:
            assert not edge_headers(response.headers), (response.url, response.headers)
        assert [r.status_code for r in responses] == [200, 200, 401, 404, 200, 200]
    async with grpc.aio.insecure_channel(running_edge.grpc_target) as channel:
        call = channel.unary_unary(LOGIN)(
            identity_pb2.LoginRequest(email="a@example.com", password="secret")
            .SerializeToString(), metadata=tuple(sent.items()), timeout=5)
        await call
        assert not edge_headers(dict(await call.initial_metadata()))
        assert not edge_headers(dict(await call.trailing_metadata()))
    (_, rest, _), (_, native, _) = running_edge.identity.calls[-2:]
    # Only Envoy's own: the transcoder's (the REST path and method), and the
    # client address Envoy determined.
    assert {k: v for k, v in rest.items() if k.startswith("x-envoy-")} == {
        "x-envoy-original-path": "/v1/auth:login", "x-envoy-original-method": "POST",
        "x-envoy-external-address": "127.0.0.1"}
    assert {k: v for k, v in native.items() if k.startswith("x-envoy-")} == {
        "x-envoy-external-address": "127.0.0.1"}


@pytest.mark.envoy
async def test_prometheus_metrics(running_edge: Edge) -> None:
    """Envoy's own metrics, for Prometheus, on the admin port (127.0.0.1 only)."""
    async with httpx.AsyncClient() as client:
        await client.get(f"{running_edge.url}/v1/users/me/creditAccount",
                         headers=running_edge.bearer())
        response = await client.get(running_edge.envoy.metrics_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE envoy_http_downstream_rq_total counter" in text
    assert 'envoy_cluster_upstream_rq_total{envoy_cluster_name="credits"} 1' in text
    assert 'envoy_http_local_rate_limit_ok{envoy_local_http_ratelimit_prefix="edge_rate_limit"}' \
        in text
    assert running_edge.envoy.metrics_url.startswith("http://127.0.0.1:")
