"""Short-lived ES256 access tokens: issued by identity, verified on every request."""

from __future__ import annotations

import uuid
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
    once, when the ring is built."""

    def __init__(self, keyring: KeyRing, issuer: str, audience: str,
                 leeway_seconds: int = 30) -> None:
        self._ring = keyring
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, TypeError, ValueError):
            raise _invalid("access token is malformed") from None
        if header.get("alg") != ALGORITHM:
            raise _invalid("access token algorithm is not accepted")
        kid = header.get("kid")
        key = self._ring.public_key(kid) if isinstance(kid, str) else None
        if key is None:
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
        return Principal(subject=subject, roles=frozenset(roles), token_id=jti)
