"""Stripe's webhook signature scheme, in the standard library only.

A webhook carries `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`
where each `v1` is HMAC-SHA256, keyed with the endpoint's secret, of
`"<t>." + raw body`. Several `v1` entries appear while a secret is being
rolled (one per secret still valid), so any one of them matching is enough;
`v0` (a test-mode scheme) and unknown schemes are ignored. The timestamp is
signed too, which is what makes the tolerance check meaningful: a captured
request cannot be replayed outside the window.

It lives in the core because both sides need it without a third-party
library: the webhook endpoint verifies, the embedded simulator signs.
"""

from __future__ import annotations

import hashlib
import hmac

from core.payments.facts import InvalidSignature

#: Seconds a signature stays acceptable either side of now (Stripe's default).
DEFAULT_TOLERANCE = 300
#: More digits than any plausible Unix time: refused before int() sees them
#: (int() of thousands of digits raises ValueError, and costs time).
_MAX_TIMESTAMP_DIGITS = 12


def _mac(payload: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + payload,
                    hashlib.sha256).hexdigest()


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header value Stripe would send for `payload`."""
    return f"t={timestamp},v1={_mac(payload, secret, timestamp)}"


def _timestamp(value: str) -> int:
    # str.isdigit() alone accepts non-ASCII digits that int() would take too.
    if not (value.isascii() and value.isdigit() and len(value) <= _MAX_TIMESTAMP_DIGITS):
        raise InvalidSignature("malformed timestamp")
    return int(value)


def verify(payload: bytes, header: str | None, secret: str, now: int,
           tolerance: int = DEFAULT_TOLERANCE) -> int:
    """The signed timestamp of `payload` if `header` carries a valid `v1`
    signature of it made with `secret` within `tolerance` seconds of `now`;
    InvalidSignature otherwise (and for any malformed header)."""
    if not secret:
        # An unset secret must not turn into "anything signed with '' passes".
        raise InvalidSignature("no webhook secret configured")
    if not header:
        raise InvalidSignature("missing signature header")
    timestamp: int | None = None
    candidates: list[bytes] = []
    for item in header.split(","):
        scheme, sep, value = item.strip().partition("=")
        if not sep:
            raise InvalidSignature("malformed signature header")
        if scheme == "t":
            if timestamp is not None:
                raise InvalidSignature("more than one timestamp")
            timestamp = _timestamp(value)
        elif scheme == "v1":
            candidates.append(value.encode("utf-8", "surrogatepass"))
    if timestamp is None:
        raise InvalidSignature("no timestamp")
    if not candidates:
        raise InvalidSignature("no v1 signature")
    expected = _mac(payload, secret, timestamp).encode()
    # Every candidate is compared (no early exit), each in constant time.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise InvalidSignature("no matching signature")
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature("timestamp outside the tolerance")
    return timestamp
