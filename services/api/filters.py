"""AIP-160 filters, the subset the list and search methods accept: terms
`field = value` joined by AND, each field at most once, where a value is a
quoted string (backslash escapes) or a bare word. `+` counts as a space
outside quotes: some clients encode spaces in the query string that way, and
the edge passes it on as it is."""

from __future__ import annotations

import re
from collections.abc import Collection

from core.shared.errors import InvalidArgument

_VALUE = r'("(?:[^"\\]|\\.)*"|[A-Za-z0-9_/-]+)'


def _plus_as_space(text: str) -> str:
    """`+` outside quoted strings read as a space."""
    parts = re.split(r'("(?:[^"\\]|\\.)*")', text)
    return "".join(p if p.startswith('"') else p.replace("+", " ") for p in parts)


def _unquote(value: str) -> str:
    if value.startswith('"'):
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def filter_terms(text: str, fields: Collection[str], help_text: str) -> dict[str, str]:
    """The filter's values by field ({} for an empty filter); INVALID_ARGUMENT,
    reason INVALID_FILTER, with `help_text` for anything else."""
    if not text.strip():
        return {}
    term = re.compile(rf"\s*({'|'.join(map(re.escape, fields))})\s*=\s*{_VALUE}\s*")
    found: dict[str, str] = {}
    for part in re.split(r"\s+AND\s+", _plus_as_space(text).strip()):
        match = term.fullmatch(part)
        if match is None or match.group(1) in found:
            raise InvalidArgument(help_text, reason="INVALID_FILTER",
                                  metadata={"field": "filter"})
        found[match.group(1)] = _unquote(match.group(2))
    return found
