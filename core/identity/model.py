"""Identity's domain model."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from core.shared.auth import ROLE_USER
from core.shared.errors import InvalidArgument
from core.shared.events import DomainEvent

# Printable ASCII without spaces; one @; a local part of 1-64 characters; a
# domain of two or more dot-separated labels.
_EMAIL = re.compile(r"[!-?A-~]{1,64}@[!-\-/-?A-~]+(\.[!-\-/-?A-~]+)+", re.ASCII)
_VOICE = re.compile(r"^[a-z0-9_-]{0,64}$")
PASSWORD_MIN = 8
PASSWORD_MAX = 128


def normalize_email(raw: str) -> str:
    """The canonical form of an email address: trimmed and lower-cased.

    The rule: at most 254 characters of printable ASCII without spaces (so no
    control, invisible or look-alike characters), exactly one `@`, a local part
    of 1 to 64 characters and a domain of at least two labels (`example.com`).
    Internationalised addresses are not accepted yet.
    """
    email = raw.strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise InvalidArgument("email is not a valid address", reason="INVALID_EMAIL",
                              metadata={"field": "email"})
    return email


def check_password(password: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidArgument(
            f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long",
            reason="INVALID_PASSWORD", metadata={"field": "password"})


class Pace(StrEnum):
    UNSPECIFIED = "unspecified"
    SLOW = "slow"
    MEDIUM = "medium"
    FAST = "fast"


class Tone(StrEnum):
    UNSPECIFIED = "unspecified"
    CALM = "calm"
    WARM = "warm"
    ENERGETIC = "energetic"
    NEUTRAL = "neutral"


PREFERENCE_FIELDS = frozenset({"voice", "pace", "tone"})


@dataclass(frozen=True)
class Preferences:
    voice: str = ""
    pace: Pace = Pace.UNSPECIFIED
    tone: Tone = Tone.UNSPECIFIED

    def merged(self, changes: Preferences, fields: frozenset[str]) -> Preferences:
        """These preferences with `fields` taken from `changes`, validated."""
        unknown = fields - PREFERENCE_FIELDS
        if unknown:
            raise InvalidArgument(
                f"update_mask names unknown fields: {', '.join(sorted(unknown))}",
                reason="INVALID_UPDATE_MASK", metadata={"field": "update_mask"})
        if "voice" in fields and not _VOICE.match(changes.voice):
            raise InvalidArgument("voice must be a voice id (a-z, 0-9, '-', '_')",
                                  reason="INVALID_VOICE", metadata={"field": "voice"})
        return replace(self, **{name: getattr(changes, name) for name in fields})

    def to_dict(self) -> dict[str, str]:
        return {"voice": self.voice, "pace": self.pace.value, "tone": self.tone.value}

    @classmethod
    def from_dict(cls, data: dict[str, str] | None) -> Preferences:
        data = data or {}
        return cls(voice=data.get("voice", ""), pace=Pace(data.get("pace", "unspecified")),
                   tone=Tone(data.get("tone", "unspecified")))


@dataclass
class User:
    id: uuid.UUID
    email: str
    display_name: str
    password_hash: str
    created_at: datetime
    updated_at: datetime
    roles: tuple[str, ...] = (ROLE_USER,)
    preferences: Preferences = field(default_factory=Preferences)

    def profile(self) -> UserProfile:
        return UserProfile(id=self.id, email=self.email, display_name=self.display_name,
                           roles=self.roles, preferences=self.preferences,
                           created_at=self.created_at, updated_at=self.updated_at)


@dataclass(frozen=True)
class UserProfile:
    """What a user may see of their account: no credentials."""

    id: uuid.UUID
    email: str
    display_name: str
    roles: tuple[str, ...]
    preferences: Preferences
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> bytes:
        return json.dumps({
            "id": str(self.id), "email": self.email, "display_name": self.display_name,
            "roles": list(self.roles), "preferences": self.preferences.to_dict(),
            "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
        }, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> UserProfile:
        d = json.loads(raw)
        return cls(id=uuid.UUID(d["id"]), email=d["email"], display_name=d["display_name"],
                   roles=tuple(d["roles"]), preferences=Preferences.from_dict(d["preferences"]),
                   created_at=datetime.fromisoformat(d["created_at"]),
                   updated_at=datetime.fromisoformat(d["updated_at"]))


def new_refresh_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class RefreshToken:
    """A single-use refresh token. Only its SHA-256 is stored; every token issued
    from one login shares a family, revoked as a whole on logout or reuse."""

    id: uuid.UUID
    family_id: uuid.UUID
    user_id: uuid.UUID
    token_hash: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


class AuditAction(StrEnum):
    REGISTER = "user.register"
    LOGIN = "user.login"
    LOGIN_FAILED = "user.login_failed"
    REFRESH_REUSED = "token.refresh_reused"
    LOGOUT = "user.logout"


@dataclass(frozen=True)
class AuditEntry:
    """A security-relevant fact. Never holds passwords or tokens."""

    id: uuid.UUID
    action: AuditAction
    created_at: datetime
    user_id: uuid.UUID | None = None
    request_id: str = ""
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class UserRegistered(DomainEvent):
    topic = "waqup.identity.user.registered.v1"
    user_id: uuid.UUID
