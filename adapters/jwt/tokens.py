"""Short-lived ES256 access tokens: issued by identity, verified on every request."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime

import jwt

from adapters.jwt.keys import KeyRing
from core.shared.auth import Principal
from core.shared.errors import Unauthenticated
from ports.identity import AccessToken

ALGORITHM = "ES256"
MAX_TTL_SECONDS = 15 * 60
_REQUIRED = ["exp", "iat", "sub", "jti", "iss", "aud"]


class JwtTokenIssuer:
    """ports.identity.TokenIssuer. Signs with the ring's current key, so a rotation
    takes effect for the next token."""

    def __init__(self, keyring: KeyRing, issuer: str, audience: str,
                 ttl_seconds: int = MAX_TTL_SECONDS) -> None:
        if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
            raise ValueError(f"access token ttl must be 1..{MAX_TTL_SECONDS} seconds")
        if not keyring.can_sign:
            raise ValueError("the token issuer needs a key ring with private keys")
        self._ring = keyring
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl_seconds

    def issue(self, subject: str, roles: tuple[str, ...], now: datetime) -> AccessToken:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        key = self._ring.current
        iat = int(now.timestamp())
        jti = uuid.uuid4().hex
        claims = {"iss": self._issuer, "aud": self._audience, "sub": subject,
                  "iat": iat, "nbf": iat, "exp": iat + self._ttl, "jti": jti,
                  "roles": list(roles)}
        token = jwt.encode(claims, key.private, algorithm=ALGORITHM,
                           headers={"kid": key.kid, "typ": "JWT"})
        return AccessToken(token=token, expires_in=self._ttl, token_id=jti)

    def jwks(self) -> list[dict[str, str]]:
        return self._ring.public_jwks()


def _invalid(message: str) -> Unauthenticated:
    return Unauthenticated(message, reason="INVALID_TOKEN")


class JwtTokenVerifier:
    """ports.identity.TokenVerifier. Only ES256 with a key of the ring is accepted;
    the algorithm is pinned, never taken from the token. Key objects are parsed
    once, when the ring is built.

    Accepted tokens are remembered until they expire (a bounded map keyed by the
    token itself): a client sends the same token for up to 15 minutes, and an
    ES256 check costs about 0.3 ms of CPU, as much as the rest of a cheap read.
    A change of the key ring forgets them all. Rejections are never cached.
    """

    def __init__(self, keyring: KeyRing, issuer: str, audience: str,
                 leeway_seconds: int = 30, *, cache_size: int = 4096,
                 on_unknown_key: Callable[[], None] | None = None) -> None:
        self._ring = keyring
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._cache_size = cache_size
        self._cache: dict[str, tuple[Principal, float, int]] = {}
        self._on_unknown_key = on_unknown_key

    def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None:
            principal, expires_at, generation = cached
            if generation == self._ring.generation and time.time() < expires_at:
                return principal
            del self._cache[token]
        principal, expires_at = self._verify(token)
        if self._cache_size > 0:
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))  # the oldest entry
            self._cache[token] = (principal, expires_at, self._ring.generation)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, TypeError, ValueError):
            raise _invalid("access token is malformed") from None
        if header.get("alg") != ALGORITHM:
            raise _invalid("access token algorithm is not accepted")
        kid = header.get("kid")
        key = self._ring.public_key(kid) if isinstance(kid, str) else None
        if key is None:
            if self._on_unknown_key is not None:
                self._on_unknown_key()
            raise _invalid("access token is signed by an unknown key")
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], issuer=self._issuer,
                                audience=self._audience, leeway=self._leeway,
                                options={"require": _REQUIRED})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("access token has expired", reason="TOKEN_EXPIRED") from None
        except (jwt.PyJWTError, TypeError, ValueError):
            raise _invalid("access token is not valid") from None
        subject, jti, roles = claims["sub"], claims["jti"], claims.get("roles", [])
        if not (isinstance(subject, str) and subject and isinstance(jti, str) and jti
                and isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
            raise _invalid("access token claims are malformed")
        expires_at = float(claims["exp"]) + self._leeway
        return Principal.parse(subject, frozenset(roles), jti), expires_at
