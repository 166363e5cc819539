"""Page tokens: opaque, tamper-evident, bound to their listing (AIP-158)."""

from __future__ import annotations

import base64
import json
import os
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.shared.errors import InvalidArgument
from services.api.pagination import KEY_BYTES, PageTokens, decode_key, load_or_create_key

TOKENS = PageTokens(os.urandom(KEY_BYTES))
LISTING = f"credits.ListCreditTransactions:{uuid.uuid4()}"


def refused(tokens: PageTokens, listing: str, token: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        tokens.read(listing, token)
    assert raised.value.reason == "INVALID_PAGE_TOKEN"
    assert raised.value.metadata == {"field": "page_token"}


def test_a_token_resumes_its_listing() -> None:
    token = TOKENS.issue(LISTING, {"before": "0190-abc"})
    assert TOKENS.read(LISTING, token) == {"before": "0190-abc"}
    assert TOKENS.read(LISTING, "") == {}
    assert token.isascii() and "=" not in token and "0190" not in token  # opaque


def test_tokens_of_another_listing_key_or_user_are_refused() -> None:
    token = TOKENS.issue(LISTING, {"before": "x"})
    refused(TOKENS, f"credits.ListCreditTransactions:{uuid.uuid4()}", token)
    refused(PageTokens(os.urandom(KEY_BYTES)), LISTING, token)


def test_the_forgeries_of_the_old_format_are_refused() -> None:
    """Page tokens used to be base64 JSON; crafted ones gave 500s."""
    for forged in ({"u": str(uuid.uuid4()), "b": 1}, [1, 2], {"u": {}}, "x", None):
        raw = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
        refused(TOKENS, LISTING, raw)


def test_every_flipped_bit_is_refused() -> None:
    token = TOKENS.issue(LISTING, {"before": str(uuid.uuid4())})
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for index in range(len(raw)):
        for bit in range(8):
            changed = bytearray(raw)
            changed[index] ^= 1 << bit
            forged = base64.urlsafe_b64encode(bytes(changed)).decode().rstrip("=")
            refused(TOKENS, LISTING, forged)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=600))
def test_no_text_is_anything_but_a_refusal(text: str) -> None:
    if text:
        refused(TOKENS, LISTING, text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_no_bytes_are_anything_but_a_refusal(data: bytes) -> None:
    token = base64.urlsafe_b64encode(data).decode().rstrip("=")
    if token:
        refused(TOKENS, LISTING, token)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=4),
       st.text(max_size=60))
def test_any_cursor_round_trips(cursor: dict[str, str], listing: str) -> None:
    assert TOKENS.read(listing, TOKENS.issue(listing, cursor)) == cursor


def test_read_uuid() -> None:
    before = uuid.uuid4()
    assert TOKENS.read_uuid(LISTING, TOKENS.issue(LISTING, {"before": str(before)}),
                            "before") == before
    assert TOKENS.read_uuid(LISTING, "", "before") is None
    with pytest.raises(InvalidArgument):
        TOKENS.read_uuid(LISTING, TOKENS.issue(LISTING, {"before": "nope"}), "before")
    with pytest.raises(InvalidArgument):
        TOKENS.read_uuid(LISTING, TOKENS.issue(LISTING, {"after": str(before)}), "before")


def test_the_key_file_is_created_once(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "page-token.key"
    first = load_or_create_key(path)
    assert len(first) == KEY_BYTES and load_or_create_key(path) == first
    assert path.stat().st_mode & 0o777 == 0o600
    assert list(path.parent.iterdir()) == [path]  # no draft left behind
    with pytest.raises(ValueError):
        decode_key("c2hvcnQ")
