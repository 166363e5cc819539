"""Stripe's webhook signature scheme (core.payments.signature), checked
against the official SDK in both directions, and against every kind of bad
header: whatever the header, `verify` returns a timestamp or raises
InvalidSignature, never anything else."""

from __future__ import annotations

import re
import time

import pytest
import stripe
from hypothesis import given
from hypothesis import strategies as st

from core.payments.facts import InvalidSignature
from core.payments.signature import DEFAULT_TOLERANCE, sign, verify

SECRET = "whsec_test_4eC39HqLyjWDarjtT1zdp7dc"
PAYLOAD = '{"id": "evt_1", "object": "event", "note": "déjà vu ✓"}'.encode()
NOW = 1_750_000_000


def test_sign_makes_a_stripe_signature_header() -> None:
    header = sign(PAYLOAD, SECRET, NOW)

    assert re.fullmatch(rf"t={NOW},v1=[0-9a-f]{{64}}", header)


def test_sign_is_what_the_sdk_generates() -> None:
    sdk = stripe.WebhookSignature.generate_signature_header(
        PAYLOAD.decode(), SECRET, timestamp=NOW)

    assert sign(PAYLOAD, SECRET, NOW) == sdk


def test_the_sdk_accepts_what_sign_makes() -> None:
    header = sign(PAYLOAD, SECRET, int(time.time()))

    assert stripe.WebhookSignature.verify_header(PAYLOAD, header, SECRET, tolerance=300)


def test_the_sdk_refuses_what_sign_makes_with_another_secret() -> None:
    header = sign(PAYLOAD, "whsec_other", int(time.time()))

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(PAYLOAD, header, SECRET, tolerance=300)


def test_verify_accepts_a_header_computed_as_the_sdk_computes_it() -> None:
    # What stripe.WebhookSignature.verify_header recomputes: HMAC-SHA256 of
    # "<t>.<payload as text>", keyed with the secret, in hex.
    signature = stripe.WebhookSignature._compute_signature(f"{NOW}.{PAYLOAD.decode()}", SECRET)
    header = f"t={NOW},v1={signature}"

    assert verify(PAYLOAD, header, SECRET, now=NOW) == NOW


def test_verify_returns_the_signed_timestamp() -> None:
    signed_at = NOW - 42

    assert verify(PAYLOAD, sign(PAYLOAD, SECRET, signed_at), SECRET, now=NOW) == signed_at


@pytest.mark.parametrize("position", [0, 1, 2])
def test_any_one_of_several_v1_signatures_may_match(position: int) -> None:
    good = sign(PAYLOAD, SECRET, NOW).split(",")[1]
    others = [sign(PAYLOAD, f"whsec_old_{i}", NOW).split(",")[1] for i in range(2)]
    signatures = [*others[:position], good, *others[position:]]
    header = ",".join([f"t={NOW}", *signatures])

    assert verify(PAYLOAD, header, SECRET, now=NOW) == NOW


def test_v0_and_unknown_schemes_are_ignored() -> None:
    good = sign(PAYLOAD, SECRET, NOW).split(",")[1]
    v0 = "v0=" + good.removeprefix("v1=")
    header = f"t={NOW},{v0},v2=abc,{good},x=y"

    assert verify(PAYLOAD, header, SECRET, now=NOW) == NOW
    # ...and a good signature under v0 alone is no signature at all.
    with pytest.raises(InvalidSignature):
        verify(PAYLOAD, f"t={NOW},{v0}", SECRET, now=NOW)


def test_a_tampered_payload_is_refused() -> None:
    header = sign(PAYLOAD, SECRET, NOW)

    with pytest.raises(InvalidSignature):
        verify(PAYLOAD.replace(b"evt_1", b"evt_2"), header, SECRET, now=NOW)
    with pytest.raises(InvalidSignature):
        verify(PAYLOAD + b" ", header, SECRET, now=NOW)


def test_another_secret_is_refused() -> None:
    header = sign(PAYLOAD, "whsec_someone_else", NOW)

    with pytest.raises(InvalidSignature):
        verify(PAYLOAD, header, SECRET, now=NOW)


def test_a_signed_timestamp_cannot_be_changed() -> None:
    signature = sign(PAYLOAD, SECRET, NOW - 3600).split(",")[1]

    with pytest.raises(InvalidSignature):
        verify(PAYLOAD, f"t={NOW},{signature}", SECRET, now=NOW)


@pytest.mark.parametrize("offset", [DEFAULT_TOLERANCE + 1, -(DEFAULT_TOLERANCE + 1), -86_400])
def test_old_and_future_timestamps_are_refused(offset: int) -> None:
    signed_at = NOW + offset

    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(PAYLOAD, sign(PAYLOAD, SECRET, signed_at), SECRET, now=NOW)


@pytest.mark.parametrize("offset", [DEFAULT_TOLERANCE, -DEFAULT_TOLERANCE])
def test_the_tolerance_edges_are_accepted(offset: int) -> None:
    signed_at = NOW + offset

    assert verify(PAYLOAD, sign(PAYLOAD, SECRET, signed_at), SECRET, now=NOW) == signed_at


def test_the_tolerance_is_a_parameter() -> None:
    header = sign(PAYLOAD, SECRET, NOW - 60)

    assert verify(PAYLOAD, header, SECRET, now=NOW, tolerance=60) == NOW - 60
    with pytest.raises(InvalidSignature):
        verify(PAYLOAD, header, SECRET, now=NOW, tolerance=59)


def test_an_empty_secret_verifies_nothing() -> None:
    with pytest.raises(InvalidSignature):
        verify(PAYLOAD, sign(PAYLOAD, "", NOW), "", now=NOW)


GOOD_V1 = sign(PAYLOAD, SECRET, NOW).split(",")[1]

GARBAGE = {
    "none": None,
    "empty": "",
    "spaces": "   ",
    "no comma": f"t={NOW}{GOOD_V1}",
    "no equals": "garbage",
    "only commas": ",,,",
    "only equals": "=",
    "t not a number": f"t=abc,{GOOD_V1}",
    "t empty": f"t=,{GOOD_V1}",
    "t negative": f"t=-{NOW},{GOOD_V1}",
    "t decimal": f"t={NOW}.0,{GOOD_V1}",
    "t with underscores": f"t=1_750_000_000,{GOOD_V1}",
    "t in arabic digits": f"t={''.join(chr(0x660 + int(d)) for d in str(NOW))},{GOOD_V1}",
    "t of 5000 digits": f"t={'9' * 5000},{GOOD_V1}",
    "two t": f"t={NOW},t={NOW},{GOOD_V1}",
    "no t": GOOD_V1,
    "no v1": f"t={NOW}",
    "v1 empty": f"t={NOW},v1=",
    "v1 not hex": f"t={NOW},v1=zz",
    "v1 unicode": f"t={NOW},v1=é✓",
    "v1 lone surrogate": f"t={NOW},v1=\udcff",
    "upper case v1": f"t={NOW},{GOOD_V1.upper()}",
    "v1 with a trailing char": f"t={NOW},{GOOD_V1}0",
    "NUL": f"t={NOW},{GOOD_V1}\x00",
    "whole header in fullwidth forms": "\uff54\uff1d\uff11\uff0c\uff56\uff11\uff1d\uff12",
}


@pytest.mark.parametrize("header", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_headers_are_invalid_signatures(header: str | None) -> None:
    with pytest.raises(InvalidSignature):
        verify(PAYLOAD, header, SECRET, now=NOW)


@given(st.text())
def test_any_header_text_is_a_timestamp_or_an_invalid_signature(header: str) -> None:
    try:
        assert verify(PAYLOAD, header, SECRET, now=NOW) == NOW
    except InvalidSignature:
        pass


@given(payload=st.binary(), offset=st.integers(-DEFAULT_TOLERANCE, DEFAULT_TOLERANCE))
def test_what_is_signed_verifies(payload: bytes, offset: int) -> None:
    assert verify(payload, sign(payload, SECRET, NOW + offset), SECRET, now=NOW) == NOW + offset
