"""JSON log lines name the request, the caller and the trace of the code that
logged, as it was when the record was made."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from core.shared.auth import Principal
from services.api.context import RequestInfo, request_var
from services.runtime.logs import JsonFormatter, capture_request_context

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, list[logging.LogRecord]]]:
    """A logger whose records are kept, unformatted, for formatting later."""
    previous = logging.getLogRecordFactory()
    capture_request_context()
    capture_request_context()  # twice: installed once
    kept: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record)

    log = logging.getLogger("waqup.test.logs")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = Keep()
    log.addHandler(handler)
    token = request_var.set(None)
    yield log, kept
    request_var.reset(token)
    log.removeHandler(handler)
    logging.setLogRecordFactory(previous)


def format_line(record: logging.LogRecord) -> dict[str, object]:
    return json.loads(JsonFormatter("identity").format(record))


def test_a_line_carries_the_request_context_of_its_creation(logger) -> None:
    log, kept = logger
    info = RequestInfo("req-42", principal=Principal("user-7", ()), trace_id=TRACE_ID)
    request_var.set(info)
    log.info("inside", extra={"event_id": "e-1"})
    request_var.set(RequestInfo("req-other", trace_id="f" * 32))
    log.info("another request")
    request_var.set(None)
    log.warning("outside")

    inside, other, outside = (format_line(r) for r in kept)  # formatted after the fact
    assert {k: inside[k] for k in ("request_id", "user_id", "trace_id", "context", "msg",
                                   "event_id", "level")} == {
        "request_id": "req-42", "user_id": "user-7", "trace_id": TRACE_ID,
        "context": "identity", "msg": "inside", "event_id": "e-1", "level": "info"}
    assert (other["request_id"], other["trace_id"]) == ("req-other", "f" * 32)
    assert (outside["request_id"], outside["user_id"], outside["trace_id"]) == ("", "", "")
    assert "waqup_context" not in inside


def test_explicit_fields_win(logger) -> None:
    log, kept = logger
    request_var.set(RequestInfo("req-1", trace_id=TRACE_ID))
    log.info("relayed", extra={"request_id": "given", "trace_id": "t" * 32})
    line = format_line(kept[0])
    assert (line["request_id"], line["trace_id"]) == ("given", "t" * 32)


def test_configured_logging_writes_one_json_line(logger, monkeypatch) -> None:
    from services.runtime import logs

    stream = io.StringIO()
    monkeypatch.setattr(logs.sys, "stderr", stream)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure_logging("INFO", context="credits")
        request_var.set(RequestInfo("req-9", trace_id=TRACE_ID))
        logging.getLogger("waqup.test.root").info("hello")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    line = json.loads(stream.getvalue())
    assert (line["request_id"], line["trace_id"], line["context"]) == ("req-9", TRACE_ID,
                                                                       "credits")
