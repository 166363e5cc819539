"""Signed media URLs for objects the backend serves itself (the fs store).

`sign` gives `{base_url}/v1/media/{key}?expires=<unix seconds>&signature=<sig>`
(and `&download=<file name>` for a download) where `sig` is the unpadded
base64url HMAC-SHA256 of `"{key}\\n{expires}\\n{download}"`. The media server
parses the URL (the key is the percent-decoded path after `/v1/media/`), calls
`verify(key, expires, signature, download)` and streams `store.path_for(key)`
when it answers None, as an attachment named `download` when there is one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from datetime import timedelta
from typing import Literal
from urllib.parse import quote, urlencode

from adapters.fs.object_store import check_key
from ports.common import Clock

#: Why `verify` refused a URL.
Refusal = Literal["expired", "bad_signature", "malformed"]

MEDIA_PATH = "/v1/media/"
#: Where upload URLs PUT (services/contexts/catalog/uploads.py serves it).
UPLOAD_PATH = "/v1/uploads/"

_EXPIRES = re.compile(r"[0-9]{1,12}")
#: 32 bytes of HMAC-SHA256, base64url without padding.
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")
#: A download's file name: safe in a Content-Disposition header as it is.
_DOWNLOAD = re.compile(r"[A-Za-z0-9._-]{1,100}")


class UrlSigner:
    def __init__(self, secret: bytes, base_url: str, clock: Clock) -> None:
        if len(secret) < 16:
            raise ValueError("the URL signing secret must be at least 16 bytes")
        self._secret = bytes(secret)
        self._base_url = base_url.rstrip("/")
        self._clock = clock

    def _signature(self, key: str, expires: str, download: str) -> str:
        message = f"{key}\n{expires}\n{download}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def sign(self, key: str, expires_in: timedelta, download: str = "") -> str:
        """A URL for `key` valid for `expires_in` (rounded up to whole seconds);
        with `download`, served as an attachment of that file name."""
        check_key(key)
        if expires_in <= timedelta(0):
            raise ValueError("expires_in must be positive")
        if download and not _DOWNLOAD.fullmatch(download):
            raise ValueError("a download name is letters, digits, '.', '_' and '-'")
        expires = str(math.ceil((self._clock.now() + expires_in).timestamp()))
        params = {"expires": expires, "signature": self._signature(key, expires, download)}
        if download:
            params["download"] = download
        query = urlencode(params)
        return f"{self._base_url}{MEDIA_PATH}{quote(key, safe='/')}?{query}"

    def _upload_signature(self, key: str, expires: str) -> str:
        # "PUT" first: a key never holds a newline, so no GET message (which
        # starts with its key) is ever this one.
        message = f"PUT\n{key}\n{expires}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def sign_upload(self, key: str, expires_in: timedelta) -> str:
        """A URL accepting a PUT of `key`'s bytes (UPLOAD_PATH) until it expires."""
        check_key(key)
        if expires_in <= timedelta(0):
            raise ValueError("expires_in must be positive")
        expires = str(math.ceil((self._clock.now() + expires_in).timestamp()))
        query = urlencode({"expires": expires,
                           "signature": self._upload_signature(key, expires)})
        return f"{self._base_url}{UPLOAD_PATH}{quote(key, safe='/')}?{query}"

    def verify_upload(self, key: str, expires: str, signature: str) -> Refusal | None:
        """As verify, for an upload URL."""
        try:
            check_key(key)
        except ValueError:
            return "malformed"
        if not isinstance(expires, str) or not _EXPIRES.fullmatch(expires):
            return "malformed"
        if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
            return "malformed"
        expected = self._upload_signature(key, expires)
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
            return "bad_signature"
        if self._clock.now().timestamp() >= int(expires):
            return "expired"
        return None

    def verify(self, key: str, expires: str, signature: str,
               download: str = "") -> Refusal | None:
        """None when the URL's parts are genuine and not expired, else why not.

        The signature is checked (in constant time) before the expiry, so an
        altered `expires` is `bad_signature`, not `expired`.
        """
        try:
            check_key(key)
        except ValueError:
            return "malformed"
        if not isinstance(expires, str) or not _EXPIRES.fullmatch(expires):
            return "malformed"
        if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
            return "malformed"
        if not isinstance(download, str) or (download and not _DOWNLOAD.fullmatch(download)):
            return "malformed"
        expected = self._signature(key, expires, download)
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
            return "bad_signature"
        if self._clock.now().timestamp() >= int(expires):
            return "expired"
        return None
