from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from adapters.jwt import JwtTokenIssuer, JwtTokenVerifier, KeyRing
from core.shared.errors import Unauthenticated

ISS, AUD = "https://identity.waqup.test", "waqup"
SUBJECT = str(uuid.uuid4())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64json(obj: object) -> str:
    return _b64(json.dumps(obj).encode())


def _claims(**overrides: object) -> dict[str, object]:
    iat = int(datetime.now(UTC).timestamp())
    claims = {"iss": ISS, "aud": AUD, "sub": SUBJECT, "iat": iat, "nbf": iat,
              "exp": iat + 300, "jti": uuid.uuid4().hex, "roles": ["user"]}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def ring(key_dir: Path) -> KeyRing:
    return KeyRing.load_or_create(key_dir)


@pytest.fixture
def issuer(ring: KeyRing) -> JwtTokenIssuer:
    return JwtTokenIssuer(ring, ISS, AUD, ttl_seconds=900)


@pytest.fixture
def verifier(ring: KeyRing) -> JwtTokenVerifier:
    return JwtTokenVerifier(ring, ISS, AUD)


def _rejected(verifier: JwtTokenVerifier, token: str, reason: str = "INVALID_TOKEN") -> None:
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify(token)
    assert caught.value.reason == reason
    assert not token or token not in caught.value.message


def test_round_trip(issuer: JwtTokenIssuer, verifier: JwtTokenVerifier) -> None:
    access = issuer.issue(SUBJECT, ("user", "creator"), datetime.now(UTC))
    assert access.expires_in == 900
    principal = verifier.verify(access.token)
    assert principal.subject == SUBJECT
    assert principal.roles == frozenset({"user", "creator"})
    assert principal.token_id == access.token_id


def test_claims_and_header(issuer: JwtTokenIssuer, ring: KeyRing) -> None:
    access = issuer.issue(SUBJECT, ("user",), datetime.now(UTC))
    header = jwt.get_unverified_header(access.token)
    claims = jwt.decode(access.token, options={"verify_signature": False})
    assert header == {"alg": "ES256", "typ": "JWT", "kid": ring.kids()[0]}
    assert header["kid"] == issuer.jwks()[0]["kid"]
    assert {"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "roles"} <= claims.keys()
    assert claims["iss"] == ISS and claims["aud"] == AUD and claims["sub"] == SUBJECT
    assert 0 < claims["exp"] - claims["iat"] <= 900
    assert claims["jti"] == access.token_id and claims["roles"] == ["user"]


def test_ttl_is_capped(ring: KeyRing) -> None:
    with pytest.raises(ValueError):
        JwtTokenIssuer(ring, ISS, AUD, ttl_seconds=901)
    with pytest.raises(ValueError):
        JwtTokenIssuer(KeyRing.from_jwks(ring.public_jwks()), ISS, AUD)  # cannot sign


def test_jwks_shape(ring: KeyRing, key_dir: Path) -> None:
    (jwk,) = ring.public_jwks()
    assert set(jwk) == {"kty", "kid", "use", "alg", "crv", "x", "y"}
    assert (jwk["kty"], jwk["use"], jwk["alg"], jwk["crv"]) == ("EC", "sig", "ES256", "P-256")
    assert "=" not in jwk["x"] + jwk["y"] + jwk["kid"]
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")},
                           separators=(",", ":"))
    assert jwk["kid"] == _b64(hashlib.sha256(canonical.encode()).digest())  # RFC 7638
    (pem,) = key_dir.glob("*.pem")
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600


def test_rejects_alg_none(verifier: JwtTokenVerifier, ring: KeyRing) -> None:
    token = f"{_b64json({'alg': 'none', 'typ': 'JWT', 'kid': ring.kids()[0]})}." \
            f"{_b64json(_claims())}."
    _rejected(verifier, token)


def test_rejects_hs256_signed_with_public_key(verifier: JwtTokenVerifier,
                                              ring: KeyRing) -> None:
    secret = ring.current.public.public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{_b64json({'alg': 'HS256', 'typ': 'JWT', 'kid': ring.kids()[0]})}." \
                    f"{_b64json(_claims())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    _rejected(verifier, f"{signing_input}.{_b64(signature)}")


def test_rejects_tampered_payload(issuer: JwtTokenIssuer, verifier: JwtTokenVerifier) -> None:
    header, _, signature = issuer.issue(SUBJECT, ("user",), datetime.now(UTC)).token.split(".")
    forged = f"{header}.{_b64json(_claims(roles=['user', 'admin']))}.{signature}"
    _rejected(verifier, forged)


def test_rejects_garbage(verifier: JwtTokenVerifier) -> None:
    for token in ("", "abc", "a.b.c", "x" * 5000):
        _rejected(verifier, token)


def test_rejects_wrong_issuer_and_audience(ring: KeyRing, verifier: JwtTokenVerifier) -> None:
    now = datetime.now(UTC)
    _rejected(verifier, JwtTokenIssuer(ring, "https://evil.test", AUD).issue(
        SUBJECT, (), now).token)
    _rejected(verifier, JwtTokenIssuer(ring, ISS, "other").issue(SUBJECT, (), now).token)


def test_rejects_expired(issuer: JwtTokenIssuer, verifier: JwtTokenVerifier) -> None:
    old = datetime.now(UTC) - timedelta(hours=1)
    _rejected(verifier, issuer.issue(SUBJECT, (), old).token, reason="TOKEN_EXPIRED")


def test_rejects_unknown_kid(verifier: JwtTokenVerifier) -> None:
    stranger = JwtTokenIssuer(KeyRing.generate(), ISS, AUD)
    _rejected(verifier, stranger.issue(SUBJECT, (), datetime.now(UTC)).token)


def test_rejects_missing_jti(ring: KeyRing, verifier: JwtTokenVerifier) -> None:
    key = ring.current
    token = jwt.encode(_claims(jti=None), key.private, algorithm="ES256",
                       headers={"kid": key.kid})
    _rejected(verifier, token)


def test_rotation(key_dir: Path, ring: KeyRing, issuer: JwtTokenIssuer,
                  verifier: JwtTokenVerifier) -> None:
    old_kid = ring.kids()[0]
    old_token = issuer.issue(SUBJECT, ("user",), datetime.now(UTC)).token
    new_kid = ring.rotate(key_dir)
    assert new_kid != old_kid
    assert verifier.verify(old_token).subject == SUBJECT
    new_token = issuer.issue(SUBJECT, ("user",), datetime.now(UTC)).token
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    assert verifier.verify(new_token).subject == SUBJECT
    assert [k["kid"] for k in issuer.jwks()] == [new_kid, old_kid]
    # a restart sees the same ring, in the same order
    assert KeyRing.load_or_create(key_dir).kids() == [new_kid, old_kid]


def test_load_or_create_is_stable(key_dir: Path) -> None:
    first = KeyRing.load_or_create(key_dir)
    assert KeyRing.load_or_create(key_dir).kids() == first.kids()
    assert len(list(key_dir.glob("*.pem"))) == 1


def test_from_jwks_verifies(key_dir: Path, ring: KeyRing, issuer: JwtTokenIssuer) -> None:
    old_token = issuer.issue(SUBJECT, ("user",), datetime.now(UTC)).token
    ring.rotate(key_dir)
    new_token = issuer.issue(SUBJECT, ("user",), datetime.now(UTC)).token
    public = KeyRing.from_jwks(json.loads(json.dumps(ring.public_jwks())))
    assert public.kids() == ring.kids() and not public.can_sign
    remote = JwtTokenVerifier(public, ISS, AUD)
    assert remote.verify(old_token).subject == SUBJECT
    assert remote.verify(new_token).roles == frozenset({"user"})
    with pytest.raises(ValueError):
        KeyRing.from_jwks([{**ring.public_jwks()[0], "kid": "not-the-thumbprint"}])


# --- accepted tokens are remembered until they expire --------------------------


def test_cached_acceptance_expires_with_the_token(
        monkeypatch: pytest.MonkeyPatch, issuer: JwtTokenIssuer,
        verifier: JwtTokenVerifier) -> None:
    import adapters.jwt.tokens as tokens

    access = issuer.issue(SUBJECT, ("user",), datetime.now(UTC))
    first = verifier.verify(access.token)
    calls = []
    real_decode = tokens.jwt.decode
    monkeypatch.setattr(tokens.jwt, "decode",
                        lambda *a, **k: calls.append(1) or real_decode(*a, **k))
    assert verifier.verify(access.token) is first  # from the cache: no signature check
    assert calls == []
    # Past expiry plus leeway the cached entry is dropped: the token is checked
    # in full again (and PyJWT, on its own clock, would then reject it).
    later = datetime.now(UTC).timestamp() + access.expires_in + 31
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    verifier.verify(access.token)
    assert calls == [1]


def test_key_change_forgets_cached_acceptances(issuer: JwtTokenIssuer, ring: KeyRing) -> None:
    verifier = JwtTokenVerifier(ring, ISS, AUD)
    access = issuer.issue(SUBJECT, ("user",), datetime.now(UTC))
    verifier.verify(access.token)
    assert ring.replace(KeyRing.generate())  # the signing key is withdrawn
    _rejected(verifier, access.token)


def test_rejections_are_not_cached_and_unknown_keys_are_reported(ring: KeyRing) -> None:
    unknown: list[int] = []
    verifier = JwtTokenVerifier(ring, ISS, AUD, on_unknown_key=lambda: unknown.append(1))
    other = JwtTokenIssuer(KeyRing.generate(), ISS, AUD, ttl_seconds=900)
    token = other.issue(SUBJECT, ("user",), datetime.now(UTC)).token
    for _ in range(2):
        _rejected(verifier, token)
    assert unknown == [1, 1]


def test_cache_is_bounded(ring: KeyRing, issuer: JwtTokenIssuer) -> None:
    verifier = JwtTokenVerifier(ring, ISS, AUD, cache_size=3)
    tokens = [issuer.issue(SUBJECT, ("user",), datetime.now(UTC)).token for _ in range(5)]
    for token in tokens:
        verifier.verify(token)
    assert len(verifier._cache) == 3
    assert list(verifier._cache) == tokens[2:]


# --- rotation across processes: publish first, sign later --------------------------


def test_new_key_is_published_at_once_and_signs_after_the_activation_delay(
        key_dir: Path) -> None:
    import time

    ring = KeyRing.load_or_create(key_dir, activation=timedelta(seconds=0.3))
    first = ring.current.kid  # the only key signs at once
    new = ring.rotate(key_dir)
    assert ring.kids() == [new, first]  # both published, the new one first
    assert ring.current.kid == first  # too young to sign
    time.sleep(0.35)
    assert ring.current.kid == new


def test_reload_picks_up_a_key_another_process_added(key_dir: Path) -> None:
    worker = KeyRing.load_or_create(key_dir)
    verifier = JwtTokenVerifier(worker, ISS, AUD)
    other = KeyRing.load_or_create(key_dir)  # e.g. `waqup rotate-key`
    other.rotate(key_dir)
    token = JwtTokenIssuer(other, ISS, AUD, ttl_seconds=900).issue(
        SUBJECT, ("user",), datetime.now(UTC)).token
    _rejected(verifier, token)
    assert worker.reload(key_dir)
    assert not worker.reload(key_dir)  # nothing new
    assert verifier.verify(token).subject == SUBJECT
