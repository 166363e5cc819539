"""Observability in mesh mode, as real processes: identity and credits apart
(PostgreSQL, NATS), Envoy in front, spans exported over OTLP to a receiver run
by the test, metrics scraped from each process's port.

A registration's trace (the client's `traceparent`, passed through by the
edge) shows up in spans from the identity process (the call, the event's
publication) and from the credits process (the event's handling: the sign-up
credit), one trace across two processes and NATS.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2
from prometheus_client.parser import text_string_to_metric_families

from adapters.jwt.keys import KeyRing
from services.edge import EnvoyProcess, write_envoy_config
from services.runtime.supervisor import Worker, wait_healthy
from tests.backends import create_pg_database, drop_pg_database, free_port
from tests.natsserver import NatsServer

pytestmark = [pytest.mark.postgres, pytest.mark.nats, pytest.mark.envoy]

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
USER_REGISTERED = "waqup.identity.user.registered.v1"


@dataclass
class Received:
    service: str
    span: trace_pb2.Span

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()


@dataclass
class OtlpReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver: keeps every span exported to it."""

    spans: list[Received] = field(default_factory=list)

    async def Export(self, request: trace_service_pb2.ExportTraceServiceRequest,
                     context: grpc.aio.ServicerContext,
                     ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = next((a.value.string_value for a in resource_spans.resource.attributes
                            if a.key == "service.name"), "")
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(Received(service, span) for span in scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def of_trace(self, trace_id: str) -> list[Received]:
        return [r for r in self.spans if r.trace_id == trace_id]


@dataclass
class ObservedMesh:
    tmp: Path
    receiver: OtlpReceiver
    identity: Worker
    credits: Worker
    metrics: dict[str, int]

    async def scrape(self, context: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        async with httpx.AsyncClient(timeout=10) as client:
            reply = await client.get(f"http://127.0.0.1:{self.metrics[context]}/metrics")
        assert reply.status_code == 200, reply.text
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(reply.text)
                for s in family.samples}


async def eventually(check: Callable[[], Awaitable[bool]], what: str,
                     within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"not within {within}s: {what}"
        await asyncio.sleep(0.1)


@pytest.fixture
async def observed(tmp_path: Path) -> AsyncIterator[ObservedMesh]:
    from adapters.sql.migrate import migrate

    receiver = OtlpReceiver()
    otlp = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, otlp)
    otlp_port = otlp.add_insecure_port("127.0.0.1:0")
    await otlp.start()
    url = create_pg_database()
    migrate(url)
    nats = NatsServer(store_dir=tmp_path / "nats")
    nats.start()
    KeyRing.load_or_create(tmp_path / "keys")
    metrics = {"identity": free_port(), "credits": free_port()}
    env = {"WAQUP_DATABASE_URL": url, "WAQUP_NATS_URL": nats.url,
           "WAQUP_DATA_DIR": str(tmp_path), "WAQUP_OUTBOX_POLL_SECONDS": "0.2",
           "WAQUP_LOG_LEVEL": "WARNING",
           "WAQUP_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
           "OTEL_BSP_SCHEDULE_DELAY": "100"}  # ms: spans leave soon after they end
    identity = Worker("identity", "127.0.0.1", free_port(), env={
        **env, "WAQUP_METRICS_PORT": str(metrics["identity"])})
    credits = Worker("credits", "127.0.0.1", free_port(), env={
        **env, "WAQUP_METRICS_PORT": str(metrics["credits"]),
        "WAQUP_IDENTITY_TARGET": f"127.0.0.1:{identity.port}"})
    try:
        for worker in (identity, credits):
            worker.spawn()
            await wait_healthy(worker.host, worker.port, 30, worker.process)
        yield ObservedMesh(tmp_path, receiver, identity, credits, metrics)
    finally:
        for worker in (identity, credits):
            if worker.alive:
                assert worker.process is not None
                worker.process.send_signal(signal.SIGTERM)
                await asyncio.to_thread(worker.process.wait, 15)
        nats.stop()
        drop_pg_database(url)
        await otlp.stop(0)


async def test_a_registration_trace_crosses_both_processes_and_metrics_move(
        observed: ObservedMesh) -> None:
    http_port, admin_port = free_port(), free_port()
    config = write_envoy_config(
        observed.tmp / "envoy.yaml", listen_port=http_port, admin_port=admin_port,
        upstreams={"identity": [("127.0.0.1", observed.identity.port)],
                   "credits": [("127.0.0.1", observed.credits.port)]})
    register = "/waqup.identity.v1.AuthService/Register"
    before = await observed.scrape("identity")
    assert before[("waqup_rpc_requests_total", frozenset({
        ("method", register), ("code", "OK")}))] == 0

    with EnvoyProcess(admin_port=admin_port) as envoy:
        envoy.start(config, stdout=subprocess.DEVNULL)
        await envoy.wait_ready_async(timeout=20)
        await envoy.wait_jwks_async(timeout=20)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}",
                                     timeout=10) as client:
            reply = await client.post("/v1/auth:register", json={
                "email": f"traced-{uuid.uuid4().hex[:10]}@example.com",
                "password": "correct horse", "display_name": "Traced"},
                headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"})
            assert reply.status_code == 200, reply.text
            headers = {"authorization": f"Bearer {reply.json()['access_token']}"}

            async def has_credit() -> bool:
                account = await client.get("/v1/users/me/creditAccount", headers=headers)
                return account.status_code == 200 and account.json()["balance"] == 1

            await eventually(has_credit, "the sign-up credit through NATS")

    # One trace, from the client's context through both processes.
    def kinds(service: str) -> set[tuple[str, int]]:
        return {(r.span.name, r.span.kind) for r in observed.receiver.of_trace(TRACE_ID)
                if r.service == service}

    server, producer, consumer = (trace_pb2.Span.SPAN_KIND_SERVER,
                                  trace_pb2.Span.SPAN_KIND_PRODUCER,
                                  trace_pb2.Span.SPAN_KIND_CONSUMER)
    wanted_identity = {("waqup.identity.v1.AuthService/Register", server),
                       (f"{USER_REGISTERED} publish", producer)}
    wanted_credits = {(f"{USER_REGISTERED} process", consumer)}

    async def exported() -> bool:
        return (wanted_identity <= kinds("waqup-identity")
                and wanted_credits <= kinds("waqup-credits"))

    await eventually(exported, "the spans of both processes at the OTLP receiver", 15)
    by_name = {r.span.name: r.span for r in observed.receiver.of_trace(TRACE_ID)}
    call = by_name["waqup.identity.v1.AuthService/Register"]
    assert call.parent_span_id.hex() == CLIENT_SPAN  # the edge passed the header through
    assert by_name[f"{USER_REGISTERED} publish"].parent_span_id == call.span_id
    assert by_name[f"{USER_REGISTERED} process"].parent_span_id == \
        by_name[f"{USER_REGISTERED} publish"].span_id

    # Each process's own metrics port moved.
    identity = await observed.scrape("identity")
    assert identity[("waqup_rpc_requests_total", frozenset({
        ("method", register), ("code", "OK")}))] == 1
    assert identity[("waqup_outbox_published_total", frozenset())] == 1
    assert identity[("waqup_db_pool_size", frozenset({("pool", "main")}))] >= 1
    credits = await observed.scrape("credits")
    consumer_labels = {("topic", USER_REGISTERED), ("consumer", "credits")}
    assert credits[("waqup_events_handled_total", frozenset(
        {*consumer_labels, ("outcome", "ok")}))] == 1
    assert credits[("waqup_event_consumer_pending", frozenset(consumer_labels))] == 0
    assert credits[("waqup_rpc_requests_total", frozenset({
        ("method", "/waqup.credits.v1.CreditAccountService/GetCreditAccount"),
        ("code", "OK")}))] >= 1
    # The balance read goes through the asyncpg readers.
    assert ("waqup_db_pool_checked_out", frozenset({("pool", "asyncpg")})) in credits
