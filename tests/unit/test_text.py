"""The text rule (core.shared.text)."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.shared.errors import InvalidArgument
from core.shared.text import (
    CONTROL_AND_FORMAT,
    SEPARATORS,
    check_text,
    clean_name,
    first_forbidden,
    single_line,
)


def _ranges(categories: set[str]) -> list[tuple[int, int]]:
    found: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)) in categories:
            if found and found[-1][1] == code - 1:
                found[-1][1] = code
            else:
                found.append([code, code])
    return [(a, b) for a, b in found]


def test_the_tables_are_this_pythons_unicode_categories() -> None:
    """If this fails after a Python upgrade, regenerate the tables from the
    ranges this test prints (a newer Unicode added characters)."""
    assert list(CONTROL_AND_FORMAT) == _ranges({"Cc", "Cf"}), _ranges({"Cc", "Cf"})
    assert list(SEPARATORS) == _ranges({"Zl", "Zp"})


@given(st.text())
def test_the_rule_is_exactly_cc_and_cf_but_tab_and_line_breaks(text: str) -> None:
    expected = next((i for i, c in enumerate(text)
                     if unicodedata.category(c) in ("Cc", "Cf") and c not in "\t\n\r"), -1)
    assert first_forbidden(text) == expected


@pytest.mark.parametrize("text", ["\x00", "a\x01", "\x7f", "\x9f", "a\u200bb", "\u202e",
                                  "\ufeff", "\u2066x", "\U000e0041"])
def test_refused_everywhere(text: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        check_text(text, "note")
    assert raised.value.reason == "INVALID_CHARACTERS"
    assert raised.value.metadata == {"field": "note"}


def test_multi_line_text_keeps_tabs_and_line_breaks_single_line_does_not() -> None:
    assert check_text("one\ttwo\r\nthree", "note") == "one\ttwo\r\nthree"
    for text in ("a\nb", "a\tb", "a\u2028b", "a\u2029b"):
        with pytest.raises(InvalidArgument):
            single_line(text, "title")


def test_clean_name() -> None:
    assert clean_name("  Ame\u0301lie ", "display_name", 10) == "Am\u00e9lie"
    assert clean_name("\u00c5ngstr\u00f6m \U0001f600", "display_name", 20) == (
        "\u00c5ngstr\u00f6m \U0001f600")
    with pytest.raises(InvalidArgument) as raised:
        clean_name("x" * 11, "display_name", 10)
    assert raised.value.reason == "INVALID_DISPLAY_NAME"
