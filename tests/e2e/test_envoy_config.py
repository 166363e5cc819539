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

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


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
        "identity": [("10.0.0.1", 7000)], "credits": [("10.0.0.1", 7000)]}
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
                                 {"credential_rate_limit_interval_seconds": 0}])
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
      "xff_num_trusted_hops": 1, "jwks_cache_seconds": 300}),
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
                                  jwks_cache_seconds=1) as (envoy, port, access_log):
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
                assert response.json() == {"code": 5, "message": "not found"}
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

        # Envoy's own errors are JSON too; unknown query parameters are refused.
        bad = await client.post("/v1/auth:login", content=b"{not json",
                                headers={"content-type": "application/json"})
        assert bad.status_code == 400
        assert bad.json()["code"] == 3
        typo = await client.get("/v1/users/me/creditAccount?pageSize=1")
        assert typo.status_code == 400
        assert typo.json()["code"] == 3

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
    assert response.json()["code"] == 14
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
