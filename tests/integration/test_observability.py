"""Metrics and traces of a real server, over real gRPC and HTTP: a scrape of
the metrics port moves when calls are served, and a registration's trace goes
through the outbox and the event bus to the credit grant."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
import pytest
import sqlalchemy as sa
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from adapters.jwt.keys import KeyRing
from adapters.memory.event_bus import InProcessEventBus
from adapters.sql.migrate import migrate
from ports.common import OutboxMessage
from services.api.access_log import AccessLog
from services.api.clients import IdentityJwksClient
from services.api.context import RequestInfo, request_var
from services.api.server import RunningServer, start_server
from services.gen.waqup.identity.v1 import identity_pb2 as id_pb
from services.gen.waqup.identity.v1 import identity_pb2_grpc
from services.runtime import metrics, tracing
from services.runtime.bootstrap import Container, build
from services.runtime.settings import Settings
from tests.backends import free_port
from tests.integration.conftest import bearer
from tests.spans import recording_spans, span_id_of, trace_id_of
from tests.unit.fakes import PlainHasher

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
REGISTER = "/waqup.identity.v1.AuthService/Register"
GET_USER = "/waqup.identity.v1.UserService/GetUser"
USER_REGISTERED = "waqup.identity.user.registered.v1"


@dataclass
class Served:
    container: Container
    server: RunningServer
    metrics: metrics.MetricsServer
    channel: grpc.aio.Channel
    access: AccessLog
    lines: list[str]

    @property
    def auth(self) -> identity_pb2_grpc.AuthServiceStub:
        return identity_pb2_grpc.AuthServiceStub(self.channel)

    @property
    def users(self) -> identity_pb2_grpc.UserServiceStub:
        return identity_pb2_grpc.UserServiceStub(self.channel)

    async def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of /metrics, as an HTTP client (Prometheus) reads it."""
        async with httpx.AsyncClient() as client:
            reply = await client.get(f"http://127.0.0.1:{self.metrics.port}/metrics")
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/plain")
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(reply.text)
                for s in family.samples}

    async def register(self, metadata: tuple[tuple[str, str], ...] = ()) -> id_pb.RegisterResponse:
        return await self.auth.Register(id_pb.RegisterRequest(
            email=f"obs-{uuid.uuid4().hex[:10]}@example.com", password="correct horse",
            display_name="Observed"), metadata=metadata)

    def traces_in_access_log(self, method: str) -> list[str]:
        self.access.flush()
        return [line["trace_id"] for line in map(json.loads, "".join(self.lines).splitlines())
                if line["method"] == method]


class _Lines:
    def __init__(self, lines: list[str]) -> None:
        self._lines = lines

    def write(self, text: str) -> None:
        self._lines.append(text)

    def flush(self) -> None:
        pass


async def serve(tmp_path: Path, **overrides) -> Served:
    url = f"sqlite+aiosqlite:///{tmp_path / 'obs.db'}"
    migrate(url)
    settings = Settings(database_url=url, data_dir=tmp_path, outbox_poll_seconds=0.1,
                        metrics_port=free_port())
    container = build(settings, keyring=KeyRing.load_or_create(tmp_path / "keys"),
                      hasher=PlainHasher(), **overrides)
    await container.start()
    observer, metrics_server = metrics.start(container, "127.0.0.1", settings.metrics_port,
                                             tracing.TracingObserver())
    lines: list[str] = []
    access = AccessLog("test", _Lines(lines))  # type: ignore[arg-type]
    server = await start_server(container, "127.0.0.1", 0, observer=observer,
                                access_log=access)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    return Served(container, server, metrics_server, channel, access, lines)


async def stop(served: Served) -> None:
    await served.channel.close()
    await served.server.stop(0)
    served.metrics.stop()
    await served.container.close()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    running = await serve(tmp_path)
    yield running
    await stop(running)


async def eventually(check, what: str, within: float = 10.0) -> None:
    """Until `check()` (a bool, or an awaitable of one) holds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await _value(check()):
        assert asyncio.get_running_loop().time() < deadline, f"not within {within}s: {what}"
        await asyncio.sleep(0.05)


async def _value(result):
    return await result if inspect.isawaitable(result) else result


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(pairs.items())


# -- metrics ------------------------------------------------------------------------------


async def test_a_scrape_of_the_metrics_port_moves_when_calls_are_served(
        served: Served) -> None:
    before = await served.scrape()
    ok = labels(method=REGISTER, code="OK")
    assert before[("waqup_rpc_requests_total", ok)] == 0  # declared methods start at 0
    assert before[("waqup_rpc_in_flight", labels())] == 0

    reply = await served.register()
    token = reply.access_token
    for _ in range(2):
        await served.users.GetUser(id_pb.GetUserRequest(name="users/me"),
                                   metadata=bearer(token))
    with pytest.raises(grpc.aio.AioRpcError):
        await served.auth.Login(id_pb.LoginRequest(email=reply.user.email, password="wrong!!"))

    consumer = labels(topic=USER_REGISTERED, consumer="credits")

    async def granted() -> bool:
        return (await served.scrape()).get(
            ("waqup_events_handled_total", consumer | labels(outcome="ok"))) == 1

    await eventually(granted, "the sign-up grant counted")
    after = await served.scrape()
    assert after[("waqup_rpc_requests_total", ok)] == 1
    assert after[("waqup_rpc_duration_seconds_count", ok)] == 1
    assert after[("waqup_rpc_duration_seconds_bucket", ok | labels(le="+Inf"))] == 1
    assert after[("waqup_rpc_requests_total", labels(method=GET_USER, code="OK"))] == 2
    login = "/waqup.identity.v1.AuthService/Login"
    assert after[("waqup_rpc_errors_total", labels(
        method=login, code="UNAUTHENTICATED", reason="INVALID_CREDENTIALS"))] == 1
    assert after[("waqup_rpc_in_flight", labels())] == 0
    # The first GetUser missed the profile cache, the second found it.
    assert after[("waqup_cache_hits_total", labels())] == 1
    assert after[("waqup_cache_misses_total", labels())] == 1
    # The event went through: nothing left in the outbox, nobody behind.
    assert after[("waqup_outbox_lag_seconds", labels())] == 0
    assert after[("waqup_outbox_published_total", labels())] == 1
    assert after[("waqup_event_consumer_pending", consumer)] == 0
    assert after[("waqup_event_delivery_delay_seconds_count", consumer)] == 1
    assert after[("waqup_event_redeliveries_total", consumer)] == 0
    # SQLite: the engine's pool, none left checked out once the calls are
    # over. The outbox relay and the scheduler poll in the background, so a
    # scrape may land during one of their queries: the gauge must come back
    # to 0, not be 0 at one instant.
    main = ("waqup_db_pool_checked_out", labels(pool="main"))

    async def pool_idle() -> bool:
        return (await served.scrape())[main] == 0

    await eventually(pool_idle, "every pooled connection returned")
    assert after[("waqup_db_pool_size", labels(pool="main"))] >= 1
    assert after[("process_cpu_seconds_total", labels())] > 0


class RefusingBus(InProcessEventBus):
    async def publish(self, message: OutboxMessage) -> None:
        raise ConnectionError("the broker is away")


async def test_events_stuck_in_the_outbox_show_as_lag(tmp_path: Path) -> None:
    served = await serve(tmp_path, bus=RefusingBus())
    try:
        await served.register()

        async def stuck() -> bool:
            samples = await served.scrape()
            return (samples[("waqup_outbox_publish_failures_total", labels())] >= 1
                    and samples[("waqup_outbox_lag_seconds", labels())] > 0.2)

        await eventually(stuck, "a growing outbox lag")
        assert (await served.scrape())[("waqup_outbox_published_total", labels())] == 0
    finally:
        await stop(served)


async def test_a_metrics_port_in_use_is_a_startup_error(served: Served) -> None:
    with pytest.raises(RuntimeError, match=r"cannot serve metrics on 127\.0\.0\.1"):
        metrics.MetricsServer(metrics.CollectorRegistry(), "127.0.0.1", served.metrics.port)


# -- traces -------------------------------------------------------------------------------


def outbox_traces(served: Served) -> list[str | None]:
    engine = sa.create_engine(str(served.container.engine.url).replace("+aiosqlite", ""))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT traceparent FROM outbox")).scalars())
    finally:
        engine.dispose()


async def test_off_the_incoming_trace_reaches_the_outbox_and_the_logs(served: Served) -> None:
    assert not tracing.enabled()
    await served.register(metadata=(("traceparent", INCOMING),))
    assert outbox_traces(served) == [INCOMING]  # passed on unchanged: nothing recorded here
    await served.register()
    [_, other] = outbox_traces(served)
    assert served.traces_in_access_log(REGISTER) == [TRACE_ID, other[3:35]]
    assert other[3:35] != TRACE_ID and other.endswith("-00")


async def test_on_a_registration_trace_reaches_the_credit_grant(tmp_path: Path) -> None:
    with recording_spans("waqup") as spans:
        served = await serve(tmp_path)
        try:
            reply = await served.register(metadata=(("traceparent", INCOMING),))
            user = reply.user.name.split("/")[1]

            async def granted() -> bool:
                account = await served.container.service("credits").get_account(
                    uuid.UUID(user))
                return account.balance == 1

            await eventually(granted, "the sign-up credit")
            await eventually(lambda: len(spans.finished()) >= 3, "three spans")
            server = spans.named("waqup.identity.v1.AuthService/Register")
            producer = spans.named(f"{USER_REGISTERED} publish")
            consumer = spans.named(f"{USER_REGISTERED} process")
            assert {trace_id_of(s) for s in (server, producer, consumer)} == {TRACE_ID}
            assert server.kind is SpanKind.SERVER
            assert producer.parent.span_id == server.context.span_id
            assert consumer.parent.span_id == producer.context.span_id
            # The row kept the context of the transaction that wrote it.
            assert outbox_traces(served) == [f"00-{TRACE_ID}-{span_id_of(server)}-01"]
            assert served.traces_in_access_log(REGISTER) == [TRACE_ID]
        finally:
            await stop(served)


@pytest.mark.parametrize("on", [False, True], ids=["off", "on"])
async def test_calls_to_another_context_carry_the_trace(tmp_path: Path, on: bool) -> None:
    """Mesh mode's client of identity (JWKS) sends the caller's context."""
    with recording_spans() if on else contextlib.nullcontext() as spans:
        served = await serve(tmp_path)
        client = IdentityJwksClient(f"127.0.0.1:{served.server.port}")
        try:
            token = request_var.set(RequestInfo("req-1", traceparent=INCOMING,
                                                trace_id=TRACE_ID))
            try:
                if on:  # as inside a traced call: the client span is its child
                    event = OutboxMessage(uuid.uuid4(), USER_REGISTERED, b"",
                                          datetime.now(UTC), traceparent=INCOMING)
                    with tracing.consuming(event, "credits"):
                        assert await client.fetch_jwks()
                else:
                    assert await client.fetch_jwks()
            finally:
                request_var.reset(token)
            assert await client.fetch_jwks()  # outside any operation: a trace of its own
            jwks = "/waqup.identity.v1.AuthService/GetJwks"
            first, second = served.traces_in_access_log(jwks)
            assert first == TRACE_ID and second != TRACE_ID
            if on:
                outgoing = spans.named("waqup.identity.v1.AuthService/GetJwks", SpanKind.CLIENT)
                served_span = [s for s in spans.finished()
                               if s.kind is SpanKind.SERVER and trace_id_of(s) == TRACE_ID]
                assert [s.parent.span_id for s in served_span] == [outgoing.context.span_id]
        finally:
            await client.close()
            await stop(served)
