"""Conversions every servicer shares."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from core.shared.errors import InvalidArgument


def duration(ms: int) -> Duration:
    """A Duration of `ms` milliseconds."""
    value = Duration()
    value.FromMilliseconds(ms)
    return value


def timestamp(dt: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts


def user_segment(name: str, prefix: str = "users/", suffix: str = "") -> str:
    """The `{user}` of a resource name `users/{user}<suffix>`."""
    if not name.startswith(prefix) or not name.endswith(suffix):
        raise InvalidArgument(f"name must look like {prefix}{{user}}{suffix}",
                              reason="INVALID_NAME", metadata={"field": "name"})
    return name[len(prefix):len(name) - len(suffix)]
