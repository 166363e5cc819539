"""Ports of the identity context."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from core.identity.model import AuditEntry, RefreshToken, User
from core.shared.auth import Principal
from ports.common import Outbox, UnitOfWork


class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Raises core.shared.errors.AlreadyExists (EMAIL_TAKEN) for a taken email."""
        ...

    async def get(self, user_id: uuid.UUID) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None: ...

    async def update(self, user: User) -> None: ...


class RefreshTokenRepository(Protocol):
    async def add(self, token: RefreshToken) -> None: ...

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None: ...

    async def mark_used(self, token_id: uuid.UUID, at: datetime) -> bool:
        """Spend a token; False if it was already used or revoked (atomic)."""
        ...

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> int:
        """Revoke every live token of a family; returns how many."""
        ...


class AuditLog(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...

    async def list_for_user(self, user_id: uuid.UUID) -> list[AuditEntry]: ...


class IdentityUnitOfWork(UnitOfWork, Protocol):
    users: UserRepository
    refresh_tokens: RefreshTokenRepository
    audit: AuditLog
    outbox: Outbox


class IdentityUnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> IdentityUnitOfWork:
        """A new unit of work; `read_only` ones refuse commit() and take no write lock."""
        ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int
    token_id: str


class TokenIssuer(Protocol):
    def issue(self, subject: str, roles: tuple[str, ...], now: datetime) -> AccessToken: ...

    def jwks(self) -> list[dict[str, str]]:
        """Public keys as JWK dicts, current signing key first."""
        ...


class TokenVerifier(Protocol):
    def verify(self, token: str) -> Principal:
        """Raises core.shared.errors.Unauthenticated for any token it does not accept."""
        ...


class JwksSource(Protocol):
    """Where contexts other than identity get identity's public signing keys."""

    async def fetch_jwks(self) -> list[dict[str, str]]:
        """The published JWKs (current key first). Raises when unreachable."""
        ...
