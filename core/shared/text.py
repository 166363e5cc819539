"""The one rule for text that people send.

Every string in every request is checked by the request path with
`first_forbidden(value)`: control characters (Unicode Cc: C0, DEL, C1) and
format characters (Unicode Cf: zero-width spaces and joiners, bidi overrides,
the BOM, soft hyphen, ...) are refused, except tab, line feed and carriage
return, which multi-line text (a message, a description) may hold. NUL never
reaches a database; `\\u202e` cannot flip how a name reads; `a\\u200bnn` cannot
pass for `ann`.

Single-line values (names, titles, emails) are stricter (`single_line`): no
tab, line or paragraph break either. Names are NFC-normalised (`clean_name`),
so one name has one spelling whatever the keyboard composed.
"""

from __future__ import annotations

import re
import unicodedata

from core.shared.errors import InvalidArgument

#: Code point ranges of Unicode categories Cc and Cf (Unicode 14, Python 3.11's
#: unicodedata; tests/unit/test_text.py checks them against the running Python).
CONTROL_AND_FORMAT: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)
#: Line and paragraph separators (Zl, Zp).
SEPARATORS: tuple[tuple[int, int], ...] = ((0x2028, 0x2029),)
_MULTI_LINE_OK = "\t\n\r"


def _character_class(ranges: tuple[tuple[int, int], ...], allowed: str = "") -> str:
    """A regex character class of the code points in `ranges` but `allowed`."""
    codes = {ord(c) for c in allowed}
    parts = []
    for first, last in ranges:
        start = first
        for code in range(first, last + 2):
            if code > last or code in codes:
                if start < code:
                    parts.append(f"\\U{start:08x}-\\U{code - 1:08x}")
                start = code + 1
    return "[" + "".join(parts) + "]"


_TEXT = re.compile(_character_class(CONTROL_AND_FORMAT, allowed=_MULTI_LINE_OK))
_LINE = re.compile(_character_class(CONTROL_AND_FORMAT + SEPARATORS))

REASON = "INVALID_CHARACTERS"


def first_forbidden(value: str) -> int:
    """Index of the first character the rule refuses in any text, or -1."""
    if value.isprintable():  # the usual case, in C: no Cc, Cf, Zl, Zp (nor Zs but space)
        return -1
    found = _TEXT.search(value)
    return found.start() if found else -1


def _refuse(field: str, value: str, index: int) -> InvalidArgument:
    return InvalidArgument(
        f"{field} contains a control or invisible character (U+{ord(value[index]):04X} "
        f"at position {index})", reason=REASON, metadata={"field": field})


def check_text(value: str, field: str) -> str:
    """`value` unchanged, or InvalidArgument (INVALID_CHARACTERS) naming `field`."""
    index = first_forbidden(value)
    if index >= 0:
        raise _refuse(field, value, index)
    return value


def single_line(value: str, field: str) -> str:
    """`value` unchanged if it holds no control, format, tab or line-break character."""
    found = _LINE.search(value)
    if found:
        raise _refuse(field, value, found.start())
    return value


def clean_name(value: str, field: str, max_length: int) -> str:
    """A name as stored: NFC-normalised, trimmed, single-line, at most `max_length`
    characters."""
    name = unicodedata.normalize("NFC", value).strip()
    single_line(name, field)
    if len(name) > max_length:
        raise InvalidArgument(f"{field} is longer than {max_length} characters",
                              reason="INVALID_" + field.upper(), metadata={"field": field})
    return name
