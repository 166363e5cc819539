"""Conversions every servicer shares."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import money_pb2

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


#: Nanos in one minor unit of a two-decimal currency.
_NANOS_PER_MINOR = 10_000_000


def money(amount_minor: int, currency: str) -> money_pb2.Money:
    """Integer minor units (cents) as google.type.Money."""
    units, minor = divmod(amount_minor, 100)
    if amount_minor < 0 and minor:
        units, minor = units + 1, minor - 100
    return money_pb2.Money(currency_code=currency, units=units, nanos=minor * _NANOS_PER_MINOR)


def minor_units(value: money_pb2.Money, field: str) -> tuple[int, str]:
    """google.type.Money as (minor units, upper-case currency); INVALID_ARGUMENT,
    reason INVALID_PRICE, for a fraction of a minor unit or mixed signs."""
    if value.nanos % _NANOS_PER_MINOR or (value.units > 0 > value.nanos) or (
            value.units < 0 < value.nanos) or abs(value.units) > 10**12:
        raise InvalidArgument(f"{field} must be a whole number of cents",
                              reason="INVALID_PRICE", metadata={"field": field})
    return value.units * 100 + value.nanos // _NANOS_PER_MINOR, value.currency_code.upper()


def update_paths(paths: Iterable[str], allowed: set[str], given: dict[str, bool]) -> set[str]:
    """AIP-134: the mask's paths (each allowed), or without one the fields
    that were given a value."""
    chosen = set(paths)
    unknown = chosen - allowed
    if unknown:
        raise InvalidArgument(f"update_mask may name {', '.join(sorted(allowed))}, "
                              f"not {sorted(unknown)}", reason="INVALID_UPDATE_MASK",
                              metadata={"field": "update_mask"})
    return chosen or {name for name, value in given.items() if value}


def require_me(name: str, expected: str, field: str) -> None:
    """`name` must be exactly `expected` (a `.../me...` name of the caller's
    own resource); INVALID_NAME otherwise."""
    if name != expected:
        raise InvalidArgument(f"{field} must be {expected}", reason="INVALID_NAME",
                              metadata={"field": field})
