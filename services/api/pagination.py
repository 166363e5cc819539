"""Page tokens (AIP-158): opaque, tamper-evident, one implementation for every
list method.

A token is `base64url(version || nonce || AES-256-GCM(cursor))`, with the
listing it belongs to (method, parent, filter, order) as associated data. A
client cannot read, forge or alter one, nor use one from another listing,
another user or another key: each of these fails authentication and is
answered INVALID_ARGUMENT, reason INVALID_PAGE_TOKEN, like any malformed token.
The cursor inside is whatever the list method needs to resume (string values).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.shared.errors import InvalidArgument

VERSION = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32
#: Longer tokens are refused before any decoding (the request rules cap the
#: field lower still).
MAX_TOKEN_LENGTH = 1024


def invalid_page_token() -> InvalidArgument:
    return InvalidArgument("page_token is not a token this listing issued",
                           reason="INVALID_PAGE_TOKEN", metadata={"field": "page_token"})


class PageTokens:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a page token key has {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def issue(self, listing: str, cursor: Mapping[str, str]) -> str:
        """A token that resumes `listing` at `cursor`."""
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(dict(cursor), separators=(",", ":"), sort_keys=True).encode()
        sealed = self._aead.encrypt(nonce, plain, listing.encode())
        return base64.urlsafe_b64encode(VERSION + nonce + sealed).decode().rstrip("=")

    def read(self, listing: str, token: str) -> dict[str, str]:
        """The cursor of a token issued for `listing`; {} for the empty token (the
        first page). Anything else raises INVALID_PAGE_TOKEN."""
        if not token:
            return {}
        if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise invalid_page_token()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise invalid_page_token() from None
        if len(raw) < 1 + NONCE_BYTES + 16 or raw[:1] != VERSION:
            raise invalid_page_token()
        nonce, sealed = raw[1:1 + NONCE_BYTES], raw[1 + NONCE_BYTES:]
        try:
            cursor = json.loads(self._aead.decrypt(nonce, sealed, listing.encode()))
        except (InvalidTag, ValueError):
            raise invalid_page_token() from None
        if not isinstance(cursor, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in cursor.items()):
            raise invalid_page_token()
        return cursor

    def read_uuid(self, listing: str, token: str, field: str) -> uuid.UUID | None:
        """The UUID `field` of the cursor, or None on the first page."""
        cursor = self.read(listing, token)
        if not cursor:
            return None
        try:
            return uuid.UUID(cursor[field])
        except (KeyError, ValueError):
            raise invalid_page_token() from None


def load_or_create_key(path: Path) -> bytes:
    """The key stored at `path`, created (mode 0600) when missing. Several
    workers may start at once: the key is written to a private file first and
    linked into place, so a reader never sees a half-written key, and the first
    link wins."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode() + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return decode_key(path.read_text().strip())


def decode_key(text: str) -> bytes:
    """A base64url-encoded key (as in WAQUP_PAGE_TOKEN_KEY or the key file)."""
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("the page token key is not base64url") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"the page token key must be {KEY_BYTES} bytes (base64url)")
    return key
