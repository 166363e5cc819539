"""Trace context: parsing, the request path's hook, events, outgoing calls;
with tracing off (no SDK, ids only) and on (spans)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from core.shared.auth import Principal
from ports.common import OutboxMessage
from services.api.context import RequestInfo, request_var
from services.runtime import tracing
from services.runtime.tracing import (
    TracingObserver,
    consuming,
    current_trace_id,
    current_traceparent,
    parse_traceparent,
    publishing,
)
from tests.spans import recording_spans, span_id_of, trace_id_of

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
INCOMING = f"00-{TRACE_ID}-{PARENT_ID}-01"
METHOD = "/waqup.identity.v1.AuthService/Register"
HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(autouse=True)
def no_request_left_behind() -> Iterator[None]:
    token = request_var.set(None)
    yield
    request_var.reset(token)


@pytest.mark.parametrize(("value", "parsed"), [
    (INCOMING, (TRACE_ID, PARENT_ID, "01")),
    (f"00-{TRACE_ID}-{PARENT_ID}-00", (TRACE_ID, PARENT_ID, "00")),
    (f"01-{TRACE_ID}-{PARENT_ID}-01-future", (TRACE_ID, PARENT_ID, "01")),  # later version
    (f"00-{TRACE_ID}-{PARENT_ID}-01-extra", None),  # version 00 has exactly four fields
    (f"ff-{TRACE_ID}-{PARENT_ID}-01", None),
    (f"00-{'0' * 32}-{PARENT_ID}-01", None),
    (f"00-{TRACE_ID}-{'0' * 16}-01", None),
    (f"00-{TRACE_ID.upper()}-{PARENT_ID}-01", None),
    (f"00-{TRACE_ID}-{PARENT_ID}", None),
    ("garbage", None),
    ("", None),
])
def test_parse_traceparent(value: str, parsed: tuple[str, str, str] | None) -> None:
    assert parse_traceparent(value) == parsed


def call(observer: TracingObserver, traceparent: str = "") -> tuple[RequestInfo, object]:
    info = RequestInfo("req-1", traceparent=traceparent)
    request_var.set(info)
    return info, observer.begin(METHOD, info)


# -- off --------------------------------------------------------------------------------


def test_off_a_call_continues_the_incoming_trace_and_passes_it_on_unchanged() -> None:
    assert not tracing.enabled()
    observer = TracingObserver()
    info, token = call(observer, INCOMING)
    assert info.trace_id == TRACE_ID
    assert current_traceparent() == INCOMING  # what the outbox and outgoing calls get
    assert current_trace_id() == TRACE_ID
    observer.end(METHOD, token, grpc.StatusCode.OK, "", 0.001)


@pytest.mark.parametrize("incoming", ["", "not-a-traceparent", f"00-{'0' * 32}-{PARENT_ID}-01"])
def test_off_a_call_without_a_valid_traceparent_starts_a_trace(incoming: str) -> None:
    observer = TracingObserver()
    info, _ = call(observer, incoming)
    assert HEX32.fullmatch(info.trace_id)
    handed_on = parse_traceparent(current_traceparent())
    assert handed_on is not None
    # The same trace id downstream; flags 00: nothing was recorded.
    assert (handed_on[0], handed_on[2]) == (info.trace_id, "00")
    other, _ = call(observer, incoming)
    assert other.trace_id != info.trace_id


def test_off_outside_any_operation_there_is_no_trace() -> None:
    request_var.set(None)
    assert current_traceparent() == "" and current_trace_id() == ""


def message(traceparent: str = "") -> OutboxMessage:
    return OutboxMessage(event_id=uuid.uuid4(), topic="waqup.identity.user.registered.v1",
                         payload=b"", created_at=datetime.now(UTC), traceparent=traceparent)


def test_off_events_carry_the_trace_unchanged_and_the_consumer_continues_it() -> None:
    sent = message(INCOMING)
    with publishing(sent) as outgoing:
        assert outgoing is sent
    request_var.set(None)
    with consuming(sent, "credits") as info:
        assert request_var.get() is info
        assert info.trace_id == TRACE_ID
        assert current_traceparent() == INCOMING  # an event written here stays in the trace
    assert request_var.get() is None
    with consuming(message(), "credits") as info:
        assert HEX32.fullmatch(info.trace_id)


# -- on ---------------------------------------------------------------------------------


def test_on_a_call_is_a_server_span_child_of_the_incoming_context() -> None:
    with recording_spans() as spans:
        observer = TracingObserver()
        info, token = call(observer, INCOMING)
        assert info.trace_id == TRACE_ID
        inside = parse_traceparent(current_traceparent())
        observer.end(METHOD, token, grpc.StatusCode.OK, "", 0.001)

        span = spans.named("waqup.identity.v1.AuthService/Register")
        assert span.kind is SpanKind.SERVER
        assert trace_id_of(span) == TRACE_ID
        assert span.parent is not None and f"{span.parent.span_id:016x}" == PARENT_ID
        assert span.parent.is_remote
        assert inside == (TRACE_ID, span_id_of(span), "01")  # the server span is current
        assert dict(span.attributes or {}) == {
            "rpc.system": "grpc", "rpc.service": "waqup.identity.v1.AuthService",
            "rpc.method": "Register", "rpc.grpc.status_code": 0}
        assert current_traceparent() == INCOMING  # detached: back to the request's context


def test_on_a_call_without_traceparent_is_a_root_span_and_errors_are_recorded() -> None:
    with recording_spans() as spans:
        observer = TracingObserver()
        info, token = call(observer)
        observer.end(METHOD, token, grpc.StatusCode.INTERNAL, "INTERNAL", 0.001)
        info2, token2 = call(observer)
        observer.end(METHOD, token2, grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN", 0.001)
        failed, refused = spans.finished()
        assert failed.parent is None and trace_id_of(failed) == info.trace_id
        assert failed.status.status_code is StatusCode.ERROR
        assert failed.attributes["waqup.error.reason"] == "INTERNAL"
        # The caller's mistake is not the server's error.
        assert refused.status.status_code is StatusCode.UNSET
        assert refused.attributes["rpc.grpc.status_code"] == grpc.StatusCode.ALREADY_EXISTS.value[0]
        assert trace_id_of(refused) == info2.trace_id != info.trace_id


def test_on_health_probes_get_a_trace_id_but_no_span() -> None:
    with recording_spans() as spans:
        observer = TracingObserver()
        info = RequestInfo("r")
        token = observer.begin("/grpc.health.v1.Health/Check", info)
        observer.end("/grpc.health.v1.Health/Check", token, grpc.StatusCode.OK, "", 0.0001)
        assert HEX32.fullmatch(info.trace_id)
        assert spans.finished() == []


def test_on_an_unsampled_incoming_context_records_nothing_but_keeps_the_trace_id() -> None:
    with recording_spans() as spans:
        observer = TracingObserver()
        info, token = call(observer, f"00-{TRACE_ID}-{PARENT_ID}-00")
        assert info.trace_id == TRACE_ID
        assert parse_traceparent(current_traceparent())[::2] == (TRACE_ID, "00")
        observer.end(METHOD, token, grpc.StatusCode.OK, "", 0.001)
        assert spans.finished() == []


def test_on_an_event_is_published_and_consumed_in_the_trace_that_wrote_it() -> None:
    with recording_spans() as spans:
        written = message(INCOMING)  # the outbox row, written in a call of this trace
        with publishing(written) as outgoing:
            assert outgoing.event_id == written.event_id
        producer = spans.named("waqup.identity.user.registered.v1 publish")
        assert outgoing.traceparent == f"00-{TRACE_ID}-{span_id_of(producer)}-01"

        request_var.set(None)
        with consuming(outgoing, "credits") as info:
            assert info.trace_id == TRACE_ID
            inside = current_traceparent()
        consumer = spans.named("waqup.identity.user.registered.v1 process")
        assert (producer.kind, consumer.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
        assert trace_id_of(producer) == trace_id_of(consumer) == TRACE_ID
        assert f"{producer.parent.span_id:016x}" == PARENT_ID
        assert consumer.parent.span_id == producer.context.span_id
        assert inside == f"00-{TRACE_ID}-{span_id_of(consumer)}-01"
        assert consumer.attributes["messaging.consumer.group.name"] == "credits"
        assert consumer.attributes["messaging.message.id"] == str(written.event_id)


def test_on_a_failed_handling_is_an_error_span() -> None:
    with recording_spans() as spans:
        with pytest.raises(RuntimeError), consuming(message(INCOMING), "credits"):
            raise RuntimeError("boom")
        [span] = spans.finished()
        assert span.status.status_code is StatusCode.ERROR


def test_logs_get_the_trace_id_of_the_current_span_outside_a_call() -> None:
    with recording_spans():
        request_var.set(None)
        with consuming(message(INCOMING), "credits"):
            request_var.set(None)  # a log line from a task that has no request info
            assert current_trace_id() == TRACE_ID


def test_the_principal_is_not_needed_to_trace() -> None:
    info = RequestInfo("r", principal=Principal("u", ()), traceparent=INCOMING)
    request_var.set(info)
    TracingObserver().begin(METHOD, info)
    assert info.trace_id == TRACE_ID


def test_an_unreachable_otlp_endpoint_is_a_startup_error() -> None:
    from tests.backends import free_port

    port = free_port()
    with pytest.raises(RuntimeError, match=f"OTLP endpoint unreachable at 127.0.0.1:{port}"):
        tracing.configure(f"http://127.0.0.1:{port}", "waqup-test")
    assert not tracing.enabled()
