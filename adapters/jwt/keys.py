"""EC P-256 signing keys kept as PEM files, published as a JWK set.

Each key is one `<UTC timestamp>.pem` file (PKCS#8, mode 0600). The newest file signs;
older ones only verify, so tokens signed before a rotation stay valid until they expire.
Retire a key by deleting its file once every token it signed has expired.

With an activation delay, a new key is published (JWKS) at once but signs only
once it is that old, so that every verifier caching the JWKS (the edge, other
contexts) has fetched it before the first token signed with it arrives.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_STAMP = "%Y%m%dT%H%M%S%fZ"
_COORD_BYTES = 32  # P-256


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Key:
    """One key: `private` is None in a verification-only ring."""

    kid: str
    public: ec.EllipticCurvePublicKey
    private: ec.EllipticCurvePrivateKey | None
    jwk: Mapping[str, str]
    #: When the key was made (from its file name); None when unknown.
    created: datetime | None = None

    @classmethod
    def from_public(cls, public: ec.EllipticCurvePublicKey,
                    private: ec.EllipticCurvePrivateKey | None = None) -> Key:
        if not isinstance(public.curve, ec.SECP256R1):
            raise ValueError(f"ES256 needs a P-256 key, not {public.curve.name}")
        numbers = public.public_numbers()
        coords = {"crv": "P-256", "kty": "EC",
                  "x": _b64url(numbers.x.to_bytes(_COORD_BYTES, "big")),
                  "y": _b64url(numbers.y.to_bytes(_COORD_BYTES, "big"))}
        # RFC 7638: SHA-256 of the required members, sorted, without whitespace.
        canonical = json.dumps(coords, sort_keys=True, separators=(",", ":"))
        kid = _b64url(hashlib.sha256(canonical.encode()).digest())
        jwk = {"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256",
               "crv": "P-256", "x": coords["x"], "y": coords["y"]}
        return cls(kid=kid, public=public, private=private, jwk=jwk)


class KeyRing:
    """Signing keys, current (newest) first. Thread-safe for readers: rotate()
    swaps whole immutable snapshots."""

    def __init__(self, keys: Iterable[Key], *, activation: timedelta = timedelta(0)) -> None:
        self._activation = activation
        self._set(list(keys))

    def _set(self, keys: list[Key]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self._keys = tuple(keys)
        self._by_kid = {key.kid: key for key in keys}
        #: Bumped whenever the keys change, so verifiers can drop cached results.
        self.generation = getattr(self, "generation", 0) + 1

    # --- construction ----------------------------------------------------------

    @classmethod
    def load_or_create(cls, directory: Path, *,
                       activation: timedelta = timedelta(0)) -> KeyRing:
        """Every `*.pem` in `directory`; creates the directory and a first key when
        empty. A key signs once it is `activation` old (the only key at once)."""
        directory = Path(directory)
        if not sorted(directory.glob("*.pem")):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_new_key(directory)
        return cls(_load_dir(directory), activation=activation)

    def reload(self, directory: Path) -> bool:
        """Pick up keys added to or removed from `directory` (by `waqup rotate-key`
        or another process); True if the ring changed."""
        keys = _load_dir(Path(directory))
        if [key.kid for key in keys] == self.kids():
            return False
        self._set(keys)
        return True

    @classmethod
    def generate(cls) -> KeyRing:
        """A ring with one fresh key held in memory only (tests, throwaway processes)."""
        private = ec.generate_private_key(ec.SECP256R1())
        return cls([Key.from_public(private.public_key(), private)])

    @classmethod
    def from_jwks(cls, jwks: Iterable[Mapping[str, str]]) -> KeyRing:
        """A verification-only ring from public JWKs (e.g. another service's JWKS)."""
        keys = []
        for jwk in jwks:
            if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
                raise ValueError("only EC P-256 JWKs are supported")
            if jwk.get("alg", "ES256") != "ES256":
                raise ValueError(f"unsupported JWK alg {jwk.get('alg')!r}")
            public = ec.EllipticCurvePublicNumbers(
                int.from_bytes(_b64url_decode(jwk["x"]), "big"),
                int.from_bytes(_b64url_decode(jwk["y"]), "big"),
                ec.SECP256R1()).public_key()
            key = Key.from_public(public)
            if jwk.get("kid", key.kid) != key.kid:
                raise ValueError("JWK kid is not its RFC 7638 thumbprint")
            keys.append(key)
        return cls(keys)

    def rotate(self, directory: Path) -> str:
        """Write a new signing key to `directory`, reload the ring from it, and
        return the new kid. Older keys keep verifying."""
        directory = Path(directory)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_new_key(directory)
        self._set(_load_dir(directory))
        return self._keys[0].kid

    def replace(self, other: KeyRing) -> bool:
        """Take over the keys of `other` (e.g. a freshly fetched JWKS); True if
        they differ from the current ones."""
        if [key.kid for key in other._keys] == self.kids():
            return False
        self._set(list(other._keys))
        return True

    # --- use -------------------------------------------------------------------

    @property
    def current(self) -> Key:
        """The signing key: the newest one old enough to be active (the oldest key
        if none is yet). Raises ValueError on a verification-only ring."""
        key = self._keys[0]
        if self._activation and len(self._keys) > 1:
            cutoff = datetime.now(UTC) - self._activation
            key = next((k for k in self._keys if k.created is None or k.created <= cutoff),
                       self._keys[-1])
        if key.private is None:
            raise ValueError("this key ring can only verify")
        return key

    @property
    def can_sign(self) -> bool:
        return self._keys[0].private is not None

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        key = self._by_kid.get(kid)
        return key.public if key else None

    def kids(self) -> list[str]:
        return [key.kid for key in self._keys]

    def public_jwks(self) -> list[dict[str, str]]:
        return [dict(key.jwk) for key in self._keys]


def _load_dir(directory: Path) -> list[Key]:
    keys = []
    for path in sorted(directory.glob("*.pem"), reverse=True):  # newest first
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path} is not an EC private key")
        key = Key.from_public(private.public_key(), private)
        try:
            created = datetime.strptime(path.stem, _STAMP).replace(tzinfo=UTC)
        except ValueError:
            created = None  # a file not named by us: active at once
        keys.append(dataclasses.replace(key, created=created))
    if not keys:
        raise ValueError(f"no *.pem keys in {directory}")
    return keys


def _write_new_key(directory: Path) -> Path:
    """A new P-256 key in a file named after the current UTC time, always sorting
    after the existing ones; appears atomically (written aside, then linked)."""
    stamp = datetime.now(UTC)
    existing = sorted(directory.glob("*.pem"))
    if existing:
        try:
            newest = datetime.strptime(existing[-1].stem, _STAMP).replace(tzinfo=UTC)
            stamp = max(stamp, newest + timedelta(microseconds=1))
        except ValueError:
            pass  # a file not named by us: the timestamp is the best we can do
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path = directory / f"{stamp.strftime(_STAMP)}.pem"
    tmp = directory / f".{path.name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # fails rather than overwrite a key
    finally:
        tmp.unlink(missing_ok=True)
    return path
