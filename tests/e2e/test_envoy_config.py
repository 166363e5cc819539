"""The edge config, checked against the real Envoy binary.

Envoy runs in front of tiny in-test gRPC servers (one per context, as in mesh
mode) that implement grpc.health.v1 and a few RPCs with canned answers, so these
tests depend on services/edge.py, envoy/envoy.yaml.tmpl and the descriptor set
only: not on the real servicers.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from services import edge
from services.gen.waqup.credits.v1 import credits_pb2
from services.gen.waqup.identity.v1 import identity_pb2

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def test_public_services_are_the_ones_with_http_annotations() -> None:
    """CONTEXTS lists exactly the services that have google.api.http rules."""
    from google.api import annotations_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_path().read_bytes())
    annotated: dict[str, bool] = {}
    for file in fds.file:
        if not file.package.startswith("waqup."):
            continue
        for service in file.service:
            name = f"{file.package}.{service.name}"
            annotated[name] = any(
                method.options.HasExtension(annotations_pb2.http) for method in service.method)
    public = {s: ctx.name for ctx in edge.CONTEXTS.values() for s in ctx.public_services}
    assert {s for s, has_rules in annotated.items() if has_rules} == set(public)
    assert "waqup.credits.v1.CreditLedgerService" in annotated
    for service, context in public.items():
        assert service.startswith(f"waqup.{context}.v1."), service


@pytest.mark.envoy
@pytest.mark.parametrize("upstreams", [
    edge.embedded_upstreams("127.0.0.1", 50123),
    {"identity": ("localhost", 50124), "credits": ("127.0.0.1", 50125)},
], ids=["embedded", "mesh"])
def test_rendered_config_passes_envoy_validate(tmp_path: Path,
                                               upstreams: dict[str, tuple[str, int]]) -> None:
    config = edge.write_envoy_config(
        tmp_path / "envoy.yaml", listen_host="127.0.0.1", listen_port=free_port(),
        admin_port=free_port(), upstreams=upstreams, descriptor_path=descriptor_path())
    result = subprocess.run(
        [edge.envoy_binary(), "--mode", "validate", "-c", str(config), "--log-level", "warning",
         "--disable-hot-restart"],
        capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    text = config.read_text()
    for name in upstreams:
        assert f'"name": "{name}"' in text


# --- a running edge -------------------------------------------------------------


Handler = Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]


@dataclass
class Upstream:
    """A gRPC server standing in for one context."""

    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    calls: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def set_health(self, status: int) -> None:
        await self.health.set("", status)


async def start_upstream(services: dict[str, dict[str, Handler]]) -> Upstream:
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

    server.add_generic_rpc_handlers([
        grpc.method_handlers_generic_handler(
            service, {name: recording(f"/{service}/{name}", fn) for name, fn in methods.items()})
        for service, methods in services.items()
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

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.access_log.read_text().splitlines()
                if line.startswith("{")]


@pytest.fixture
async def running_edge(tmp_path: Path) -> AsyncIterator[Edge]:
    identity = await start_upstream({
        "waqup.identity.v1.AuthService": {"Login": login},
    })
    credits = await start_upstream({
        "waqup.credits.v1.CreditAccountService": {"GetCreditAccount": get_credit_account},
        "waqup.credits.v1.CreditLedgerService": {"ReserveCredits": reserve_credits},
    })
    listen_port, admin_port = free_port(), free_port()
    config = edge.write_envoy_config(
        tmp_path / "envoy.yaml", listen_port=listen_port, admin_port=admin_port,
        upstreams={"identity": ("127.0.0.1", identity.port),
                   "credits": ("127.0.0.1", credits.port)},
        descriptor_path=descriptor_path())
    envoy = edge.EnvoyProcess(admin_port=admin_port)
    access_log, envoy_log = tmp_path / "access.log", tmp_path / "envoy.log"
    try:
        with access_log.open("wb") as out, envoy_log.open("wb") as err:
            envoy.start(config, log_level="warning", concurrency=1, stdout=out, stderr=err)
        await envoy.wait_ready_async(timeout=10)
        yield Edge(f"http://127.0.0.1:{listen_port}", f"127.0.0.1:{listen_port}",
                   identity, credits, envoy, access_log)
    finally:
        envoy.stop(timeout=5)
        await identity.server.stop(0)
        await credits.server.stop(0)
        print(envoy_log.read_text())  # shown by pytest when the test failed


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
async def test_unknown_paths_get_a_json_404(running_edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=running_edge.url) as client:
        for method, path in [("GET", "/v1/nothing"), ("GET", "/"), ("DELETE", "/v1/auth:login"),
                             ("POST", "/waqup.credits.v1.CreditLedgerService/ReserveCredits")]:
            response = await client.request(method, path, json={} if method == "POST" else None)
            assert response.status_code == 404, (method, path)
            assert response.headers["content-type"] == "application/json"
            assert response.json() == {"code": 5, "message": "not found"}
            assert response.headers["x-request-id"]
    assert not running_edge.credits.calls


@pytest.mark.envoy
async def test_internal_service_is_not_routed_over_grpc(running_edge: Edge) -> None:
    request = credits_pb2.ReserveCreditsRequest(amount=1).SerializeToString()
    async with grpc.aio.insecure_channel(running_edge.grpc_target) as channel:
        call = channel.unary_unary("/waqup.credits.v1.CreditLedgerService/ReserveCredits")
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call(request, timeout=5)
        assert error.value.code() != grpc.StatusCode.OK
        # The upstream does implement it, so anything but a refusal means it got through.
        health_check = channel.unary_unary("/grpc.health.v1.Health/Check")
        with pytest.raises(grpc.aio.AioRpcError):
            await health_check(b"", timeout=5)
    assert not running_edge.credits.calls


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
        account = await client.get("/v1/users/me/creditAccount")
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
    assert running_edge.credits.calls[0][0] == (
        "/waqup.credits.v1.CreditAccountService/GetCreditAccount")

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
    deadline = time.monotonic() + 5  # Envoy flushes access logs about once a second
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
