"""Identity's repositories in memory, held to the same contract as the SQL ones."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from adapters.memory.outbox import MemoryOutbox
from adapters.memory.store import MemoryStore, MemoryUnitOfWork, Tables, stored, utc
from core.identity.model import AuditEntry, RefreshToken, User
from core.shared.errors import AlreadyExists
from ports.common import EventCodec, TraceContext, no_trace_context


def _email_taken() -> AlreadyExists:
    return AlreadyExists("an account with this email already exists", reason="EMAIL_TAKEN",
                         metadata={"field": "email"})


class MemoryUserRepository:
    def __init__(self, tables: Tables) -> None:
        self._users = tables.users

    def _email_owner(self, email: str) -> uuid.UUID | None:
        return next((u.id for u in self._users.values() if u.email == email), None)

    async def add(self, user: User) -> None:
        if self._email_owner(user.email) is not None:
            raise _email_taken()
        if user.id in self._users:
            raise ValueError(f"duplicate user id {user.id}")
        self._users[user.id] = stored(user)

    async def get(self, user_id: uuid.UUID) -> User | None:
        user = self._users.get(user_id)
        return replace(user) if user else None

    async def get_by_email(self, email: str) -> User | None:
        owner = self._email_owner(email)
        return await self.get(owner) if owner else None

    async def update(self, user: User) -> None:
        if user.id not in self._users:
            return
        if self._email_owner(user.email) not in (None, user.id):
            raise _email_taken()
        self._users[user.id] = stored(user)


class MemoryRefreshTokenRepository:
    def __init__(self, tables: Tables) -> None:
        self._tokens = tables.refresh_tokens
        self._users = tables.users

    async def add(self, token: RefreshToken) -> None:
        if token.user_id not in self._users:
            raise ValueError(f"refresh token for unknown user {token.user_id}")
        if token.id in self._tokens or any(
                t.token_hash == token.token_hash for t in self._tokens.values()):
            raise ValueError("duplicate refresh token")
        self._tokens[token.id] = stored(token)

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        token = next((t for t in self._tokens.values() if t.token_hash == token_hash), None)
        return replace(token) if token else None

    async def mark_used(self, token_id: uuid.UUID, at: datetime) -> bool:
        token = self._tokens.get(token_id)
        if token is None or token.used_at is not None or token.revoked_at is not None:
            return False
        token.used_at = utc(at)
        return True

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> int:
        live = [t for t in self._tokens.values()
                if t.family_id == family_id and t.revoked_at is None]
        for token in live:
            token.revoked_at = utc(at)
        return len(live)


class MemoryAuditLog:
    def __init__(self, tables: Tables) -> None:
        self._entries = tables.audit_logs

    async def record(self, entry: AuditEntry) -> None:
        self._entries.append(replace(stored(entry), details=dict(entry.details)))

    async def list_for_user(self, user_id: uuid.UUID) -> list[AuditEntry]:
        mine = [e for e in self._entries if e.user_id == user_id]
        return sorted(mine, key=lambda e: (e.created_at, e.id))


class MemoryIdentityUnitOfWork(MemoryUnitOfWork):
    users: MemoryUserRepository
    refresh_tokens: MemoryRefreshTokenRepository
    audit: MemoryAuditLog
    outbox: MemoryOutbox

    def __init__(self, store: MemoryStore, codec: EventCodec, *,
                 read_only: bool = False,
                 trace_context: TraceContext = no_trace_context) -> None:
        super().__init__(store, read_only=read_only)
        self._codec = codec
        self._trace_context = trace_context

    def _open(self, tables: Tables) -> None:
        self.users = MemoryUserRepository(tables)
        self.refresh_tokens = MemoryRefreshTokenRepository(tables)
        self.audit = MemoryAuditLog(tables)
        self.outbox = MemoryOutbox(tables, self._codec, self._trace_context)


def memory_identity_uow(store: MemoryStore, codec: EventCodec,
                        trace_context: TraceContext = no_trace_context,
                        ) -> Callable[..., MemoryIdentityUnitOfWork]:
    return lambda read_only=False: MemoryIdentityUnitOfWork(
        store, codec, read_only=read_only, trace_context=trace_context)
