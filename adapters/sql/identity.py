"""Identity's repositories on SQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sql.outbox import SqlOutbox
from adapters.sql.schema import audit_logs, refresh_tokens, users
from adapters.sql.uow import SqlUnitOfWork, upsert_insert
from core.identity.model import AuditAction, AuditEntry, Preferences, RefreshToken, User
from core.shared.errors import AlreadyExists
from ports.common import EventCodec, TraceContext, no_trace_context


def email_taken() -> AlreadyExists:
    return AlreadyExists("an account with this email already exists", reason="EMAIL_TAKEN",
                         metadata={"field": "email"})


def _user_values(user: User) -> dict[str, Any]:
    return {"email": user.email, "display_name": user.display_name,
            "password_hash": user.password_hash, "roles": list(user.roles),
            "preferences": user.preferences.to_dict(), "created_at": user.created_at,
            "updated_at": user.updated_at}


def _user(row: Any) -> User:
    return User(id=row.id, email=row.email, display_name=row.display_name,
                password_hash=row.password_hash, created_at=row.created_at,
                updated_at=row.updated_at, roles=tuple(row.roles),
                preferences=Preferences.from_dict(row.preferences))


class SqlUserRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, user: User) -> None:
        # ON CONFLICT keeps the transaction usable (PostgreSQL aborts it on an error).
        stmt = (upsert_insert(self._conn, users)
                .values(id=user.id, **_user_values(user))
                .on_conflict_do_nothing(index_elements=[users.c.email])
                .returning(users.c.id))
        if (await self._conn.execute(stmt)).first() is None:
            raise email_taken()

    async def get(self, user_id: uuid.UUID) -> User | None:
        row = (await self._conn.execute(select(users).where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def get_by_email(self, email: str) -> User | None:
        row = (await self._conn.execute(select(users).where(users.c.email == email))).first()
        return _user(row) if row else None

    async def update(self, user: User) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    update(users).where(users.c.id == user.id).values(**_user_values(user)))
        except IntegrityError:
            raise email_taken() from None


def _token(row: Any) -> RefreshToken:
    return RefreshToken(id=row.id, family_id=row.family_id, user_id=row.user_id,
                        token_hash=row.token_hash, created_at=row.created_at,
                        expires_at=row.expires_at, used_at=row.used_at,
                        revoked_at=row.revoked_at)


class SqlRefreshTokenRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, token: RefreshToken) -> None:
        await self._conn.execute(refresh_tokens.insert().values(
            id=token.id, family_id=token.family_id, user_id=token.user_id,
            token_hash=token.token_hash, created_at=token.created_at,
            expires_at=token.expires_at, used_at=token.used_at, revoked_at=token.revoked_at))

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        row = (await self._conn.execute(
            select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash))).first()
        return _token(row) if row else None

    async def mark_used(self, token_id: uuid.UUID, at: datetime) -> bool:
        result = await self._conn.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.id == token_id, refresh_tokens.c.used_at.is_(None),
                   refresh_tokens.c.revoked_at.is_(None))
            .values(used_at=at))
        return result.rowcount == 1

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> int:
        result = await self._conn.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.family_id == family_id,
                   refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at))
        return result.rowcount


class SqlAuditLog:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def record(self, entry: AuditEntry) -> None:
        await self._conn.execute(audit_logs.insert().values(
            id=entry.id, action=entry.action.value, user_id=entry.user_id,
            request_id=entry.request_id, details=dict(entry.details),
            created_at=entry.created_at))

    async def list_for_user(self, user_id: uuid.UUID) -> list[AuditEntry]:
        rows = await self._conn.execute(
            select(audit_logs).where(audit_logs.c.user_id == user_id)
            .order_by(audit_logs.c.created_at, audit_logs.c.id))
        return [AuditEntry(id=r.id, action=AuditAction(r.action), created_at=r.created_at,
                           user_id=r.user_id, request_id=r.request_id, details=dict(r.details))
                for r in rows]


class SqlIdentityUnitOfWork(SqlUnitOfWork):
    users: SqlUserRepository
    refresh_tokens: SqlRefreshTokenRepository
    audit: SqlAuditLog
    outbox: SqlOutbox

    def __init__(self, engine: AsyncEngine, codec: EventCodec, *,
                 read_only: bool = False,
                 trace_context: TraceContext = no_trace_context) -> None:
        super().__init__(engine, read_only=read_only)
        self._codec = codec
        self._trace_context = trace_context

    def _open(self, conn: AsyncConnection) -> None:
        self.users = SqlUserRepository(conn)
        self.refresh_tokens = SqlRefreshTokenRepository(conn)
        self.audit = SqlAuditLog(conn)
        self.outbox = SqlOutbox(conn, self._codec, self._trace_context)


def sql_identity_uow(engine: AsyncEngine, codec: EventCodec,
                     trace_context: TraceContext = no_trace_context,
                     ) -> Callable[..., SqlIdentityUnitOfWork]:
    return lambda read_only=False: SqlIdentityUnitOfWork(
        engine, codec, read_only=read_only, trace_context=trace_context)
