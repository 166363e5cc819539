"""Request, event and cache metrics, read back from their registry; and what
the request path's observer costs per call."""

from __future__ import annotations

import timeit
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from prometheus_client import CollectorRegistry

from adapters.memory.cache import MemoryCache
from ports.common import OutboxMessage
from services.api.context import RequestInfo, request_var
from services.api.handlers import Observer
from services.runtime.metrics import CountingCache, EventMetrics, RequestMetrics
from services.runtime.tracing import TracingObserver
from tests.spans import recording_spans

REGISTER = "/waqup.identity.v1.AuthService/Register"
LOGIN = "/waqup.identity.v1.AuthService/Login"


@pytest.fixture(autouse=True)
def no_request_left_behind() -> Iterator[None]:
    token = request_var.set(None)
    yield
    request_var.reset(token)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_calls_are_counted_and_timed_by_method_and_code() -> None:
    registry = CollectorRegistry()
    metrics = RequestMetrics(registry, methods=[REGISTER, LOGIN])
    # Declared methods have their OK series before the first call.
    assert value(registry, "waqup_rpc_requests_total", method=LOGIN, code="OK") == 0
    assert value(registry, "waqup_rpc_in_flight") == 0

    info = RequestInfo("r")
    token = metrics.begin(REGISTER, info)
    assert value(registry, "waqup_rpc_in_flight") == 1
    metrics.end(REGISTER, token, grpc.StatusCode.OK, "", 0.0007)
    for _ in range(2):
        metrics.end(REGISTER, metrics.begin(REGISTER, info), grpc.StatusCode.ALREADY_EXISTS,
                    "EMAIL_TAKEN", 0.02)
    metrics.end("/other.Svc/M", metrics.begin("/other.Svc/M", info), grpc.StatusCode.OK, "",
                0.1)

    assert value(registry, "waqup_rpc_in_flight") == 0
    assert value(registry, "waqup_rpc_requests_total", method=REGISTER, code="OK") == 1
    assert value(registry, "waqup_rpc_requests_total", method=REGISTER,
                 code="ALREADY_EXISTS") == 2
    assert value(registry, "waqup_rpc_requests_total", method="/other.Svc/M", code="OK") == 1
    assert value(registry, "waqup_rpc_duration_seconds_bucket", method=REGISTER, code="OK",
                 le="0.001") == 1
    assert value(registry, "waqup_rpc_duration_seconds_bucket", method=REGISTER,
                 code="ALREADY_EXISTS", le="0.01") == 0
    assert value(registry, "waqup_rpc_duration_seconds_sum", method=REGISTER,
                 code="ALREADY_EXISTS") == pytest.approx(0.04)
    assert value(registry, "waqup_rpc_errors_total", method=REGISTER, code="ALREADY_EXISTS",
                 reason="EMAIL_TAKEN") == 2


def test_the_inner_observer_sees_every_call() -> None:
    seen = []

    class Inner(Observer):
        def begin(self, method: str, info: RequestInfo) -> object:
            seen.append(("begin", method))
            return "token"

        def end(self, method, token, code, reason, seconds) -> None:  # type: ignore[override]
            seen.append(("end", token, code))

    metrics = RequestMetrics(CollectorRegistry(), Inner())
    metrics.end(REGISTER, metrics.begin(REGISTER, RequestInfo("r")), grpc.StatusCode.OK, "", 0)
    assert seen == [("begin", REGISTER), ("end", "token", grpc.StatusCode.OK)]


def test_event_deliveries_redeliveries_and_delay() -> None:
    events = EventMetrics()
    registry = CollectorRegistry()
    for collector in events.collectors():
        registry.register(collector)
    consumer = events.consumer("waqup.identity.user.registered.v1", "credits")
    written = datetime.now(UTC) - timedelta(seconds=3)
    first = OutboxMessage(uuid.uuid4(), "waqup.identity.user.registered.v1", b"", written)
    consumer.delivered(first)
    consumer.error.inc()
    consumer.delivered(OutboxMessage(first.event_id, first.topic, b"", written, attempts=1))
    consumer.ok.inc()

    labels = {"topic": "waqup.identity.user.registered.v1", "consumer": "credits"}
    assert value(registry, "waqup_events_handled_total", **labels, outcome="ok") == 1
    assert value(registry, "waqup_events_handled_total", **labels, outcome="error") == 1
    assert value(registry, "waqup_event_redeliveries_total", **labels) == 1
    assert value(registry, "waqup_event_delivery_delay_seconds_count", **labels) == 2
    assert value(registry, "waqup_event_delivery_delay_seconds_bucket", **labels,
                 le="2.5") == 0
    assert value(registry, "waqup_event_delivery_delay_seconds_bucket", **labels,
                 le="5.0") == 2


class BrokenCache(MemoryCache):
    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("down")


async def test_the_counting_cache_counts_hits_misses_and_errors() -> None:
    cache = CountingCache(MemoryCache())
    assert await cache.get("user:1:profile") is None
    await cache.set("user:1:profile", b"{}", 60)
    assert await cache.get("user:1:profile") == b"{}"
    assert await cache.get("user:1:profile") == b"{}"
    await cache.delete("user:1:profile")
    assert await cache.get("user:1:profile") is None
    assert (cache.hits, cache.misses, cache.errors) == (2, 2, 0)
    broken = CountingCache(BrokenCache())
    with pytest.raises(ConnectionError):
        await broken.get("k")
    assert (broken.hits, broken.misses, broken.errors) == (0, 0, 1)
    await cache.close()


def per_call_microseconds(observer: Observer, traceparent: str = "", number: int = 20000,
                          ) -> float:
    """begin + end of one call, as the request path makes them (best of 5)."""
    info = RequestInfo("r", traceparent=traceparent)
    begin, end, ok = observer.begin, observer.end, grpc.StatusCode.OK

    def one() -> None:
        end(REGISTER, begin(REGISTER, info), ok, "", 0.0004)

    return min(timeit.repeat(one, number=number, repeat=5)) / number * 1e6


def test_per_call_cost_of_the_observers() -> None:
    """Measured on the 2-core development machine (README "Metrics"): metrics
    + trace ids about 2 µs per call, tracing off; about 20 µs with spans.
    The bounds only catch a gross regression (say, labels() per call)."""
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    off = per_call_microseconds(RequestMetrics(CollectorRegistry(), TracingObserver(),
                                               [REGISTER]), incoming)
    ids_only = per_call_microseconds(TracingObserver(), incoming)
    with recording_spans():
        on = per_call_microseconds(RequestMetrics(CollectorRegistry(), TracingObserver(),
                                                  [REGISTER]), incoming, number=2000)
    print(f"\nobserver per call: trace ids {ids_only:.2f} µs, metrics + trace ids "
          f"{off:.2f} µs, metrics + spans {on:.2f} µs")
    assert off < 10
    assert on < 150
