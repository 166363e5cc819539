"""Traces: the W3C trace context from the edge through every process and event.

Every call has a trace id. It is the incoming `traceparent`'s (Envoy passes
the client's header through) or a new one, and it is in the call's log lines
(services/runtime/logs.py) and access log line. The trace context goes on
with everything the call causes:

- outgoing gRPC calls to other contexts (`client_interceptors()`, used by
  services/api/clients.py) carry a `traceparent` header;
- events: the outbox row keeps the `traceparent` of the transaction that
  wrote it (`current_traceparent`, handed to the outbox adapters), the relay
  publishes it with the event (a NATS message header), and the consumer
  continues the trace (`consuming()`), so a registration's trace reaches the
  credit grant in the credits process.

Two modes, chosen per process by `configure()` (WAQUP_OTLP_ENDPOINT):

- off (the default): no SDK and no spans. The context is passed on as it came
  (a `traceparent` that arrived is forwarded unchanged, as a proxy that does
  not trace would); a call without one gets a new trace id (flags 00: nothing
  was recorded) so that its logs and its events still share one id. Per call:
  one header parse or one random number (well under a microsecond).
- on: OpenTelemetry SDK spans, batched and exported over OTLP/gRPC: a SERVER
  span per call (`TracingObserver`, the request path's Observer hook; no grpc
  interceptor on the server side), a CLIENT span per outgoing call made inside
  a traced operation, a PRODUCER span per event the relay publishes and a
  CONSUMER span per event handled. Sampling follows the parent (the SDK's
  default, OTEL_TRACES_SAMPLER to change it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from ports.common import OutboxMessage
from services.api.context import RequestInfo, request_var
from services.api.handlers import Observer

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?",
                          re.DOTALL)
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
#: The empty OpenTelemetry context: the parent of a span that starts a trace.
_ROOT = otel_context.Context()
#: gRPC codes a server span reports as an error (OpenTelemetry's RPC conventions:
#: the others are the caller's doing, not the server's).
_SERVER_ERRORS = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED,
                            grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL,
                            grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS})


def parse_traceparent(value: str) -> tuple[str, str, str] | None:
    """(trace id, parent id, flags) of a valid W3C `traceparent`, else None.
    Versions after 00 are read by their first four fields, as the spec says."""
    match = _TRACEPARENT.fullmatch(value) if value else None
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if (version == "ff" or (version == "00" and rest is not None)
            or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN):
        return None
    return trace_id, parent_id, flags


def new_trace_id() -> str:
    """32 random hex digits, neither half zero (the low half doubles as a
    parent id when nothing is traced)."""
    while True:
        value = random.getrandbits(128)
        if value >> 64 and value & 0xFFFF_FFFF_FFFF_FFFF:
            return f"{value:032x}"


def _format(span_context: SpanContext) -> str:
    return (f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
            f"{span_context.trace_flags:02x}")


def _untraced_parent(info: RequestInfo) -> str:
    """What an untraced operation hands on: the context it came with, else its
    own trace id (flags 00: nothing recorded)."""
    trace_id = info.trace_id
    if not trace_id:
        return ""
    incoming = info.traceparent
    if incoming[3:35] == trace_id:
        return incoming[:55]
    return f"00-{trace_id}-{trace_id[16:]}-00"


class _State:
    tracer: trace.Tracer | None = None
    provider: Any = None


_state = _State()


def enabled() -> bool:
    """Whether this process records spans (WAQUP_OTLP_ENDPOINT set)."""
    return _state.tracer is not None


def current_traceparent() -> str:
    """The `traceparent` to hand on from the operation running now (a call, an
    event being handled), "" outside of one. What the outbox stores with an
    event and what outgoing calls carry."""
    if _state.tracer is not None:
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            return _format(span_context)
    info = request_var.get()
    return _untraced_parent(info) if info is not None else ""


def current_trace_id() -> str:
    """The trace id of the operation running now, "" outside of one."""
    info = request_var.get()
    if info is not None and info.trace_id:
        return info.trace_id
    if _state.tracer is not None:
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            return f"{span_context.trace_id:032x}"
    return ""


def _parent(parsed: tuple[str, str, str] | None) -> otel_context.Context:
    """The OpenTelemetry context whose span is the remote parent `parsed`."""
    if parsed is None:
        return _ROOT
    trace_id, parent_id, flags = parsed
    remote = SpanContext(int(trace_id, 16), int(parent_id, 16), is_remote=True,
                         trace_flags=TraceFlags(int(flags, 16) & TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(remote), _ROOT)


# -- the request path ---------------------------------------------------------------


#: Methods whose calls get a trace id but no span: health probes (the edge's
#: every second) would bury everything else.
UNTRACED = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})


class TracingObserver(Observer):
    """The request path's trace hook: sets each call's trace id (both modes)
    and, when tracing is on, wraps the call in a SERVER span that is current
    while the servicer runs (not for `untraced` methods)."""

    def __init__(self, untraced: frozenset[str] = UNTRACED) -> None:
        self._attributes: dict[str, dict[str, str]] = {}
        self._untraced = untraced

    def begin(self, method: str, info: RequestInfo) -> Any:
        tracer = _state.tracer
        parsed = parse_traceparent(info.traceparent) if info.traceparent else None
        if tracer is None or method in self._untraced:
            info.trace_id = parsed[0] if parsed is not None else new_trace_id()
            return None
        attributes = self._attributes.get(method)
        if attributes is None:
            attributes = self._attributes[method] = _rpc_attributes(method)
        span = tracer.start_span(method[1:], context=_parent(parsed), kind=SpanKind.SERVER,
                                 attributes=attributes)
        info.trace_id = f"{span.get_span_context().trace_id:032x}"
        return span, otel_context.attach(trace.set_span_in_context(span, _ROOT))

    def end(self, method: str, token: Any, code: grpc.StatusCode, reason: str,
            seconds: float) -> None:
        if token is None:
            return
        span, attached = token
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if reason:
            span.set_attribute("waqup.error.reason", reason)
            if code in _SERVER_ERRORS:
                span.set_status(Status(StatusCode.ERROR, reason))
        span.end()
        otel_context.detach(attached)


def _rpc_attributes(method: str) -> dict[str, str]:
    service, _, name = method[1:].rpartition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


# -- events ---------------------------------------------------------------------------


@contextlib.contextmanager
def publishing(message: OutboxMessage) -> Iterator[OutboxMessage]:
    """Around the relay's publication of `message`: yields the message to hand
    to the bus, carrying the context its consumers continue (on: a PRODUCER
    span's, child of the transaction that wrote the event)."""
    tracer = _state.tracer
    parsed = parse_traceparent(message.traceparent)
    if tracer is None or parsed is None:
        yield message
        return
    span = tracer.start_span(f"{message.topic} publish", context=_parent(parsed),
                             kind=SpanKind.PRODUCER, attributes=_messaging(message))
    try:
        yield replace(message, traceparent=_format(span.get_span_context()))
    except BaseException as error:
        span.set_status(Status(StatusCode.ERROR, repr(error)))
        raise
    finally:
        span.end()


@contextlib.contextmanager
def consuming(message: OutboxMessage, consumer: str) -> Iterator[RequestInfo]:
    """Around one consumer's handling of `message`: the trace the event carries
    goes on (on: a CONSUMER span, current meanwhile), and the handler's log
    lines and any event it writes have its trace id."""
    tracer = _state.tracer
    parsed = parse_traceparent(message.traceparent)
    info = RequestInfo(request_id="", traceparent=message.traceparent if parsed else "")
    span = attached = None
    if tracer is None:
        info.trace_id = parsed[0] if parsed is not None else new_trace_id()
    else:
        span = tracer.start_span(f"{message.topic} process", context=_parent(parsed),
                                 kind=SpanKind.CONSUMER,
                                 attributes={**_messaging(message),
                                             "messaging.consumer.group.name": consumer})
        info.trace_id = f"{span.get_span_context().trace_id:032x}"
        attached = otel_context.attach(trace.set_span_in_context(span, _ROOT))
    request = request_var.set(info)
    try:
        yield info
    except BaseException as error:
        if span is not None:
            span.set_status(Status(StatusCode.ERROR, repr(error)))
        raise
    finally:
        request_var.reset(request)
        if span is not None:
            span.end()
            otel_context.detach(attached)


def _messaging(message: OutboxMessage) -> dict[str, Any]:
    return {"messaging.destination.name": message.topic,
            "messaging.message.id": str(message.event_id)}


# -- outgoing calls ---------------------------------------------------------------------


class _PropagatingInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds the current `traceparent` to outgoing unary calls; when tracing is
    on and the call is made inside a traced operation, wraps it in a CLIENT
    span (background calls, such as the JWKS refresh, start no trace)."""

    async def intercept_unary_unary(self, continuation: Any, details: Any,
                                    request: Any) -> Any:
        tracer = _state.tracer
        if tracer is not None and trace.get_current_span().get_span_context().is_valid:
            method = details.method.decode() if isinstance(details.method, bytes) \
                else details.method
            span = tracer.start_span(method.lstrip("/"), kind=SpanKind.CLIENT,
                                     attributes=_rpc_attributes(method))
            try:
                call = await continuation(
                    _with_traceparent(details, _format(span.get_span_context())), request)
                code = await call.code()
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if code is not grpc.StatusCode.OK:
                    span.set_status(Status(StatusCode.ERROR, code.name))
                return call
            finally:
                span.end()
        traceparent = current_traceparent()
        if traceparent:
            details = _with_traceparent(details, traceparent)
        return await continuation(details, request)


def _with_traceparent(details: Any, traceparent: str) -> Any:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    metadata[TRACEPARENT] = traceparent
    return details._replace(metadata=metadata)


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Interceptors for channels to other contexts: they carry the trace on."""
    return [_PropagatingInterceptor()]


# -- set-up ----------------------------------------------------------------------------


def configure(endpoint: str | None, service_name: str, *, exporter: Any = None) -> None:
    """Tracing on (spans exported over OTLP/gRPC to `endpoint`, or to
    `exporter`, a SpanExporter, for tests) or off (`endpoint` None). A
    configured endpoint that does not accept connections is a startup error."""
    shutdown_now()
    if endpoint is None and exporter is None:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        check_endpoint(endpoint)  # type: ignore[arg-type]
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint, timeout=5)
    provider = TracerProvider(resource=Resource.create({
        "service.name": service_name, "service.namespace": "waqup"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _state.provider = provider
    _state.tracer = provider.get_tracer("waqup")
    log.info("tracing on", extra={"otlp_endpoint": endpoint, "service_name": service_name})


def check_endpoint(endpoint: str, timeout: float = 3.0) -> None:
    """Raise RuntimeError when nothing accepts connections at the OTLP endpoint
    (`http://host:port`, `https://host:port` or `host:port`)."""
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    host, port = parts.hostname, parts.port or 4317
    if not host:
        raise RuntimeError(f"WAQUP_OTLP_ENDPOINT {endpoint!r} names no host")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as error:
        raise RuntimeError(f"OTLP endpoint unreachable at {host}:{port}: {error}") from error


def flush(timeout_seconds: float = 5.0) -> bool:
    """Export the spans ended so far (tests; shutdown does it too)."""
    provider = _state.provider
    return provider.force_flush(int(timeout_seconds * 1000)) if provider is not None else True


def shutdown_now() -> None:
    """Export what is pending and turn tracing off (blocking: call it from a
    thread on a running loop, see `shutdown`)."""
    provider, _state.provider, _state.tracer = _state.provider, None, None
    if provider is not None:
        started = time.monotonic()
        provider.shutdown()
        log.debug("tracing shut down", extra={"seconds": round(time.monotonic() - started, 3)})


async def shutdown() -> None:
    """`shutdown_now` without blocking the event loop."""
    await asyncio.to_thread(shutdown_now)
