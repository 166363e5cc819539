"""JSON logs: one line per event, with request_id, user_id and context."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from services.api.context import request_var

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, context: str = "") -> None:
        super().__init__()
        self._context = context

    def format(self, record: logging.LogRecord) -> str:
        info = request_var.get()
        principal = info.principal if info is not None else None
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or (info.request_id if info
                                                                 else ""),
            "user_id": getattr(record, "user_id", None) or (principal.subject if principal
                                                             else ""),
            "context": getattr(record, "context", self._context),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def configure_logging(level: str = "INFO", context: str = "embedded") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(context))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
