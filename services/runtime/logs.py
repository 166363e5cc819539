"""JSON logs: one line per event, with request_id, user_id, trace_id and context.

The request id, the caller and the trace id are those of the operation that
logged (a call, or an event being handled: services/runtime/tracing.py). A
record takes them when it is created (`capture_request_context`, a log record
factory), not when it is formatted, so a record formatted later or elsewhere
(a queue, a handler on another thread) still names the right request.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from services.api.context import request_var
from services.runtime.tracing import current_trace_id

#: Where a record keeps (request id, user id, trace id) from its creation.
CONTEXT_ATTRIBUTE = "waqup_context"
_NO_CONTEXT = ("", "", "")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", CONTEXT_ATTRIBUTE}


def _request_context() -> tuple[str, str, str]:
    info = request_var.get()
    if info is None:
        trace_id = current_trace_id()
        return ("", "", trace_id) if trace_id else _NO_CONTEXT
    principal = info.principal
    return (info.request_id, principal.subject if principal is not None else "",
            info.trace_id)


class _CapturingFactory:
    """Wraps the log record factory in place: every record gets the request
    context of the code that created it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        setattr(record, CONTEXT_ATTRIBUTE, _request_context())
        return record


def capture_request_context() -> None:
    """Install the record factory that captures the request context (once)."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _CapturingFactory):
        logging.setLogRecordFactory(_CapturingFactory(factory))


class JsonFormatter(logging.Formatter):
    def __init__(self, context: str = "") -> None:
        super().__init__()
        self._context = context

    def format(self, record: logging.LogRecord) -> str:
        request_id, user_id, trace_id = getattr(record, CONTEXT_ATTRIBUTE, _NO_CONTEXT)
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id,
            "user_id": getattr(record, "user_id", None) or user_id,
            "trace_id": getattr(record, "trace_id", None) or trace_id,
            "context": getattr(record, "context", self._context),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def configure_logging(level: str = "INFO", context: str = "embedded") -> None:
    capture_request_context()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(context))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
