"""ES256 access tokens (PyJWT + cryptography) and their key ring."""

from adapters.jwt.keys import KeyRing
from adapters.jwt.tokens import JwtTokenIssuer, JwtTokenVerifier

__all__ = ["JwtTokenIssuer", "JwtTokenVerifier", "KeyRing"]
