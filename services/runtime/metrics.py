"""Prometheus metrics of one process, served on WAQUP_METRICS_PORT (`/metrics`).

What is measured, and where (README "Metrics" lists every name):

- calls: `RequestMetrics`, the request path's Observer (services/api/handlers.py).
  It runs on every call, so it does the least it can: the histogram child of
  each (method, code) is made once and kept in a dict per method, in-flight
  calls are a plain int read at scrape time, and the request counter is
  derived from the histogram's counts at scrape time instead of being
  incremented per call. Measured: tests/unit/test_metrics.py.
- events: `EventMetrics`, around each consumer's handler (bootstrap): handled
  and failed deliveries, redeliveries (a message's `attempts`: JetStream's
  delivery count, or the outbox relay's failed publications in-process) and
  the delay from the event's writing to its handling.
- the cache: `CountingCache`, a wrapper of the Cache port (hits, misses,
  errors).
- state read when Prometheus scrapes (`StateCollector`): the outbox lag (age of
  the oldest unpublished event), each consumer's pending messages (the bus's
  `consumer_status`), database pool use, the relay's counts. The async reads
  run on the process's event loop, from the scrape's thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ports.common import Cache, OutboxMessage
from services.api.context import RequestInfo
from services.api.handlers import Observer

log = logging.getLogger(__name__)

#: Call durations: gRPC calls here take from tens of microseconds to seconds.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0)
#: From an event's writing to its handling: milliseconds to minutes (an outage).
DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                 300.0, 1800.0)


# -- calls ----------------------------------------------------------------------------


class RequestMetrics(Observer):
    """Calls by method and status code (count and duration histogram), calls
    in flight, and failed calls by ErrorInfo reason. Wraps `inner` (tracing),
    which it calls first on begin and last on end."""

    def __init__(self, registry: CollectorRegistry, inner: Observer | None = None,
                 methods: Iterable[str] = ()) -> None:
        self._inner = inner or Observer()
        self._inner_begin = self._inner.begin
        self._inner_end = self._inner.end
        self._duration = Histogram(
            "waqup_rpc_duration_seconds", "Time spent serving each call, by gRPC method "
            "and status code, from the request path's start to its end",
            ["method", "code"], buckets=DURATION_BUCKETS, registry=registry)
        self._errors = Counter(
            "waqup_rpc_errors", "Failed calls by method, status code and ErrorInfo reason",
            ["method", "code", "reason"], registry=registry)
        self._in_flight = 0
        Gauge("waqup_rpc_in_flight", "Calls being served now",
              registry=registry).set_function(lambda: self._in_flight)
        registry.register(_RequestCount(self._duration))
        self._children: dict[str, dict[grpc.StatusCode, Any]] = {}
        for method in methods:
            self._add(method)

    def _add(self, method: str) -> dict[grpc.StatusCode, Any]:
        """The children of `method`: OK made at once (so that the series exist
        before the first call), other codes on first use."""
        children = self._children.get(method)
        if children is None:
            children = self._children[method] = {
                grpc.StatusCode.OK: self._duration.labels(method, "OK")}
        return children

    def begin(self, method: str, info: RequestInfo) -> Any:
        self._in_flight += 1
        return self._inner_begin(method, info)

    def end(self, method: str, token: Any, code: grpc.StatusCode, reason: str,
            seconds: float) -> None:
        self._in_flight -= 1
        children = self._children.get(method) or self._add(method)
        child = children.get(code)
        if child is None:
            child = children[code] = self._duration.labels(method, code.name)
        child.observe(seconds)
        if reason:
            self._errors.labels(method, code.name, reason).inc()
        self._inner_end(method, token, code, reason, seconds)


class _RequestCount(Collector):
    """`waqup_rpc_requests_total`, read off the duration histogram's counts at
    scrape time: the same number without a second increment per call."""

    def __init__(self, duration: Histogram) -> None:
        self._duration = duration

    def describe(self) -> list[Metric]:
        return [CounterMetricFamily("waqup_rpc_requests", "", labels=["method", "code"])]

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("waqup_rpc_requests",
                                     "Calls served, by gRPC method and status code",
                                     labels=["method", "code"])
        for metric in self._duration.collect():
            for sample in metric.samples:
                if sample.name.endswith("_count"):
                    family.add_metric([sample.labels["method"], sample.labels["code"]],
                                      sample.value)
        yield family


def served_methods(container: Any) -> list[str]:
    """Every gRPC method a server of `container` serves (`/pkg.Service/Method`)."""
    from services.api.server import HEALTH_SERVICE  # the server imports the composition root

    services = [declaration.service(short) for declaration in container.declarations
                for short in (*declaration.public, *declaration.internal)]
    return [f"/{service.full_name}/{method.name}"
            for service in (*services, HEALTH_SERVICE) for method in service.methods]


# -- events ---------------------------------------------------------------------------


class EventMetrics:
    """Deliveries to each consumer: handled or failed, redeliveries and the
    delay from an event's writing to its handling. Made by the composition
    root (whether or not metrics are served: a few operations per event) and
    registered by `serve()`."""

    def __init__(self) -> None:
        labels = ["topic", "consumer"]
        self.handled = Counter("waqup_events_handled", "Event deliveries handled, by topic, "
                               "consumer and outcome (ok, error: redelivered later)",
                               [*labels, "outcome"], registry=None)
        self.redeliveries = Counter(
            "waqup_event_redeliveries", "Deliveries of an event the consumer had been "
            "given before without finishing it", labels, registry=None)
        self.delay = Histogram(
            "waqup_event_delivery_delay_seconds", "From an event's writing (its outbox "
            "row) to the start of its handling by the consumer", labels,
            buckets=DELAY_BUCKETS, registry=None)

    def collectors(self) -> list[Collector]:
        return [self.handled, self.redeliveries, self.delay]

    def consumer(self, topic: str, consumer: str) -> ConsumerMetrics:
        return ConsumerMetrics(self.handled.labels(topic, consumer, "ok"),
                               self.handled.labels(topic, consumer, "error"),
                               self.redeliveries.labels(topic, consumer),
                               self.delay.labels(topic, consumer))


@dataclass(frozen=True)
class ConsumerMetrics:
    ok: Any
    error: Any
    redeliveries: Any
    delay: Any

    def delivered(self, message: OutboxMessage) -> None:
        if message.attempts:
            self.redeliveries.inc()
        self.delay.observe(max(0.0, time.time() - message.created_at.timestamp()))


# -- the cache ------------------------------------------------------------------------


class CountingCache:
    """A Cache (ports.common) that counts hits, misses and failed reads of the
    cache it wraps; the counters are read at scrape time."""

    def __init__(self, inner: Cache) -> None:
        self._inner = inner
        self.hits = 0
        self.misses = 0
        self.errors = 0

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._inner.get(key)
        except Exception:
            self.errors += 1
            raise
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self._inner.set(key, value, ttl_seconds)

    async def delete(self, key: str) -> None:
        await self._inner.delete(key)

    async def close(self) -> None:
        await self._inner.close()

    def __getattr__(self, name: str) -> Any:  # ping() and the like of the real cache
        return getattr(self._inner, name)


# -- creation ----------------------------------------------------------------------------

#: Model calls and renders: a fraction of a second to minutes.
SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


class CreationMetrics:
    """The creation pipeline (seed's monitoring list): text model calls (latency
    by model and outcome), renders (time by outcome, audio produced) and the
    playback metadata cache (hits, misses)."""

    def __init__(self) -> None:
        self.llm = Histogram("waqup_llm_call_seconds", "Calls to a text model (or the "
                             "offline composer), by model and outcome", ["model", "outcome"],
                             buckets=SLOW_BUCKETS, registry=None)
        self.renders = Histogram("waqup_audio_render_seconds", "Render jobs from start to "
                                 "stored audio, by outcome (ok, retry, failed)", ["outcome"],
                                 buckets=SLOW_BUCKETS, registry=None)
        self.audio = Counter("waqup_audio_rendered_seconds", "Seconds of audio rendered",
                             registry=None)
        self.playback_cache: CountingCache | None = None

    def render(self, seconds: float, outcome: str, audio_seconds: float = 0.0) -> None:
        self.renders.labels(outcome).observe(seconds)
        if audio_seconds:
            self.audio.inc(audio_seconds)

    def counting(self, cache: Cache) -> CountingCache:
        """The playback cache, counted."""
        self.playback_cache = CountingCache(cache)
        return self.playback_cache

    def collectors(self) -> list[Collector]:
        return [self.llm, self.renders, self.audio, _PlaybackCache(self)]


class _PlaybackCache(Collector):
    def __init__(self, metrics: CreationMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        cache = self._metrics.playback_cache
        family = CounterMetricFamily("waqup_playback_cache", "Reads of the playback "
                                     "metadata cache (ritual:{id}:metadata) by result",
                                     labels=["result"])
        family.add_metric(["hit"], cache.hits if cache else 0)
        family.add_metric(["miss"], cache.misses if cache else 0)
        yield family


_CREATION: CreationMetrics | None = None


def creation_metrics() -> CreationMetrics:
    """The process's creation metrics (one set per process)."""
    global _CREATION
    if _CREATION is None:
        _CREATION = CreationMetrics()
    return _CREATION


# -- state read at scrape time -----------------------------------------------------------


class StateCollector(Collector):
    """Outbox lag, consumers' pending messages, database pools, cache and relay
    counts of one container, read when Prometheus scrapes.

    The outbox and the bus are read on the container's event loop (`loop`),
    waited for at most `timeout` seconds from the scrape's thread; a read that
    fails or takes longer leaves its metric out of that scrape.
    """

    def __init__(self, container: Any, loop: asyncio.AbstractEventLoop, *,
                 timeout: float = 2.0) -> None:
        self._container = container
        self._loop = loop
        self._timeout = timeout

    def describe(self) -> list[Metric]:
        return []  # dynamic: not checked against other collectors' names

    async def sample(self) -> tuple[float | None, list[Any] | None]:
        """(outbox lag in seconds, consumer statuses); None for what could not
        be read (or is not there: a process without a relay has no outbox lag)."""
        lag = statuses = None
        relay = self._container.relay
        if relay is not None:
            try:
                oldest = await relay.store.oldest_unpublished()
                lag = 0.0 if oldest is None else max(
                    0.0, (datetime.now(UTC) - oldest).total_seconds())
            except Exception as error:
                log.debug("outbox lag not read", extra={"error": repr(error)})
        try:
            statuses = await self._container.bus.consumer_status()
        except Exception as error:
            log.debug("consumer status not read", extra={"error": repr(error)})
        return lag, statuses

    def _sampled(self) -> tuple[float | None, list[Any] | None]:
        if not self._loop.is_running() or _on_loop_thread(self._loop):
            return None, None  # a scrape from the loop itself cannot wait for it
        future = asyncio.run_coroutine_threadsafe(self.sample(), self._loop)
        try:
            return future.result(self._timeout)
        except Exception as error:
            future.cancel()
            log.debug("state not sampled", extra={"error": repr(error)})
            return None, None

    def collect(self) -> Iterator[Metric]:
        lag, statuses = self._sampled()
        yield from self.families(lag, statuses)

    def families(self, lag: float | None, statuses: list[Any] | None) -> Iterator[Metric]:
        container = self._container
        if lag is not None:
            yield GaugeMetricFamily(
                "waqup_outbox_lag_seconds", "Age of the oldest outbox event not yet "
                "published (0: none waiting)", value=lag)
        relay = container.relay
        if relay is not None:
            yield CounterMetricFamily("waqup_outbox_published", "Events the relay handed "
                                      "to the event bus", value=relay.published)
            yield CounterMetricFamily("waqup_outbox_publish_failures", "Failed attempts to "
                                      "hand an event to the bus (retried later)",
                                      value=relay.failures)
        if statuses is not None:
            pending = GaugeMetricFamily(
                "waqup_event_consumer_pending", "Messages published to the bus that the "
                "consumer has not finished handling (NATS: JetStream's pending + ack "
                "pending; in-process: being handled now)", labels=["topic", "consumer"])
            for status in statuses:
                pending.add_metric([status.topic, status.consumer], status.pending)
            yield pending
        pools = database_pools(getattr(container, "engine", None))
        if pools:
            out = GaugeMetricFamily("waqup_db_pool_checked_out", "Database connections in "
                                    "use, by pool", labels=["pool"])
            size = GaugeMetricFamily("waqup_db_pool_size", "Connections a pool keeps open "
                                     "(it may open up to its overflow more)", labels=["pool"])
            limit = GaugeMetricFamily("waqup_db_pool_max", "Most connections a pool opens "
                                      "at once", labels=["pool"])
            for name, (checked_out, kept, most) in pools.items():
                out.add_metric([name], checked_out)
                size.add_metric([name], kept)
                limit.add_metric([name], most)
            yield out
            yield size
            yield limit
        cache = container.cache
        if isinstance(cache, CountingCache):
            for name, value, text in (
                    ("waqup_cache_hits", cache.hits, "Cache reads that found the key"),
                    ("waqup_cache_misses", cache.misses, "Cache reads that did not"),
                    ("waqup_cache_errors", cache.errors,
                     "Cache reads that failed (the database answered instead)")):
                yield CounterMetricFamily(name, text, value=value)


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def database_pools(engine: Any) -> dict[str, tuple[int, int, int]]:
    """(checked out, size, max) of each connection pool of `engine` that exists."""
    if engine is None:
        return {}
    from adapters.sql.engine import pool_usage

    return pool_usage(engine)


# -- serving ------------------------------------------------------------------------------


class MetricsServer:
    """`/metrics` over HTTP on its own thread (prometheus-client's server)."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        from prometheus_client import start_http_server

        try:
            self._httpd, self._thread = start_http_server(port, addr=host, registry=registry)
        except OSError as error:
            raise RuntimeError(f"cannot serve metrics on {host}:{port} "
                               f"(WAQUP_METRICS_PORT): {error}") from error
        self.port: int = self._httpd.server_port
        log.info("metrics listening", extra={"address": f"{host}:{self.port}"})

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def register_process(registry: CollectorRegistry, container: Any,
                     loop: asyncio.AbstractEventLoop) -> None:
    """Add to `registry` the process's own metrics (CPU, memory, GC), the event
    metrics of `container` and its state (read on `loop`)."""
    from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR

    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR,
                      *container.events.collectors(), *creation_metrics().collectors(),
                      StateCollector(container, loop)):
        registry.register(collector)


def start(container: Any, host: str, port: int,
          inner: Observer | None = None) -> tuple[RequestMetrics, MetricsServer]:
    """Serve the metrics of this process on host:port; returns the request
    path's observer (wrapping `inner`) and the server, to stop at exit."""
    from prometheus_client import disable_created_metrics

    disable_created_metrics()  # no `_created` series beside every counter and histogram
    registry = CollectorRegistry()
    requests = RequestMetrics(registry, inner, served_methods(container))
    register_process(registry, container, asyncio.get_running_loop())
    return requests, MetricsServer(registry, host, port)
