"""Credits' repositories on SQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sql.schema import (
    credit_accounts,
    credit_holds,
    credit_transactions,
    idempotency_keys,
    processed_events,
)
from adapters.sql.uow import SqlUnitOfWork, upsert_insert
from core.credits.model import (
    CreditAccount,
    Hold,
    HoldState,
    IdempotencyRecord,
    LedgerEntry,
    TransactionType,
)

# Hot read paths use statements built once: building and hashing a statement
# costs more Python time than SQLite spends answering it.
_GET_ACCOUNT = select(credit_accounts).where(credit_accounts.c.user_id == bindparam("user_id"))
_GET_ACCOUNT_SQLITE = "SELECT balance, held FROM credit_accounts WHERE user_id = ?"
_GET_ACCOUNT_PG = "SELECT balance, held FROM credit_accounts WHERE user_id = $1"


class SqlCreditAccountRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, user_id: uuid.UUID) -> CreditAccount | None:
        raw = getattr(self._conn, "sqlite3", None)
        if raw is not None:
            # The balance read behind GET /v1/users/me/creditAccount, on a SQLite
            # reader (uow.py): plain sqlite3, where SQLAlchemy's execution would cost
            # ten times the query. Uuid columns hold 32 hex digits on SQLite.
            found = raw.execute(_GET_ACCOUNT_SQLITE, (user_id.hex,)).fetchone()
            return CreditAccount(user_id, found[0], found[1]) if found else None
        pg = getattr(self._conn, "pg", None)
        if pg is not None:
            # The same read on PostgreSQL, on an asyncpg connection (PgReaders).
            found = await pg.fetchone(_GET_ACCOUNT_PG, (user_id,))
            return CreditAccount(user_id, found[0], found[1]) if found else None
        row = (await self._conn.execute(_GET_ACCOUNT, {"user_id": user_id})).first()
        return CreditAccount(row.user_id, row.balance, row.held) if row else None

    async def get_for_update(self, user_id: uuid.UUID) -> CreditAccount:
        await self._conn.execute(
            upsert_insert(self._conn, credit_accounts)
            .values(user_id=user_id, balance=0, held=0)
            .on_conflict_do_nothing(index_elements=[credit_accounts.c.user_id]))
        # FOR UPDATE is dropped on SQLite, where BEGIN IMMEDIATE already serialises.
        row = (await self._conn.execute(
            select(credit_accounts).where(credit_accounts.c.user_id == user_id)
            .with_for_update())).one()
        return CreditAccount(row.user_id, row.balance, row.held)

    async def save(self, account: CreditAccount) -> None:
        stmt = upsert_insert(self._conn, credit_accounts).values(
            user_id=account.user_id, balance=account.balance, held=account.held)
        await self._conn.execute(stmt.on_conflict_do_update(
            index_elements=[credit_accounts.c.user_id],
            set_={"balance": stmt.excluded.balance, "held": stmt.excluded.held}))


def _hold(row: Any) -> Hold:
    return Hold(id=row.id, user_id=row.user_id, amount=row.amount, reason=row.reason,
                created_at=row.created_at, state=HoldState(row.state),
                resolved_at=row.resolved_at)


class SqlHoldRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, hold: Hold) -> None:
        await self._conn.execute(credit_holds.insert().values(
            id=hold.id, user_id=hold.user_id, amount=hold.amount, state=hold.state.value,
            reason=hold.reason, created_at=hold.created_at, resolved_at=hold.resolved_at))

    async def get(self, hold_id: uuid.UUID) -> Hold | None:
        row = (await self._conn.execute(
            select(credit_holds).where(credit_holds.c.id == hold_id))).first()
        return _hold(row) if row else None

    async def save(self, hold: Hold) -> None:
        await self._conn.execute(update(credit_holds).where(credit_holds.c.id == hold.id).values(
            amount=hold.amount, state=hold.state.value, reason=hold.reason,
            resolved_at=hold.resolved_at))

    async def sum_active(self, user_id: uuid.UUID) -> int:
        total = await self._conn.scalar(
            select(func.coalesce(func.sum(credit_holds.c.amount), 0))
            .where(credit_holds.c.user_id == user_id,
                   credit_holds.c.state == HoldState.ACTIVE.value))
        return int(total or 0)

    async def list_active_created_before(self, cutoff: datetime, *, after: uuid.UUID | None,
                                         limit: int) -> list[Hold]:
        query = (select(credit_holds)
                 .where(credit_holds.c.state == HoldState.ACTIVE.value,
                        credit_holds.c.created_at < cutoff)
                 .order_by(credit_holds.c.id).limit(limit))
        if after is not None:
            query = query.where(credit_holds.c.id > after)
        return [_hold(row) for row in await self._conn.execute(query)]


class SqlLedger:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def append(self, entry: LedgerEntry) -> None:
        await self._conn.execute(credit_transactions.insert().values(
            id=entry.id, user_id=entry.user_id, type=entry.type.value, amount=entry.amount,
            balance_after=entry.balance_after, reason=entry.reason, hold_id=entry.hold_id,
            request_id=entry.request_id, created_at=entry.created_at))

    async def list(self, user_id: uuid.UUID, *, before: uuid.UUID | None,
                   limit: int) -> list[LedgerEntry]:
        t = credit_transactions
        query = select(t).where(t.c.user_id == user_id).order_by(t.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(t.c.id < before)
        return [LedgerEntry(id=r.id, user_id=r.user_id, type=TransactionType(r.type),
                            amount=r.amount, balance_after=r.balance_after, reason=r.reason,
                            created_at=r.created_at, hold_id=r.hold_id,
                            request_id=r.request_id)
                for r in await self._conn.execute(query)]


class SqlIdempotencyStore:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def claim(self, key: str, fingerprint: str, at: datetime) -> IdempotencyRecord | None:
        # On PostgreSQL a concurrent claim of the same key waits here for the first
        # transaction; the SELECT below (a new snapshot) then sees its committed row.
        inserted = (await self._conn.execute(
            upsert_insert(self._conn, idempotency_keys)
            .values(key=key, fingerprint=fingerprint, result=None, created_at=at)
            .on_conflict_do_nothing(index_elements=[idempotency_keys.c.key])
            .returning(idempotency_keys.c.key))).first()
        if inserted is not None:
            return None
        row = (await self._conn.execute(
            select(idempotency_keys).where(idempotency_keys.c.key == key))).one()
        return IdempotencyRecord(key=row.key, fingerprint=row.fingerprint, result=row.result)

    async def complete(self, key: str, result: dict[str, object]) -> None:
        await self._conn.execute(update(idempotency_keys)
                                 .where(idempotency_keys.c.key == key).values(result=result))


class SqlProcessedEvents:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, consumer: str, event_id: uuid.UUID, at: datetime) -> bool:
        inserted = (await self._conn.execute(
            upsert_insert(self._conn, processed_events)
            .values(consumer=consumer, event_id=event_id, processed_at=at)
            .on_conflict_do_nothing(index_elements=[processed_events.c.consumer,
                                                    processed_events.c.event_id])
            .returning(processed_events.c.event_id))).first()
        return inserted is not None


class SqlCreditsUnitOfWork(SqlUnitOfWork):
    accounts: SqlCreditAccountRepository
    holds: SqlHoldRepository
    ledger: SqlLedger
    idempotency: SqlIdempotencyStore
    processed_events: SqlProcessedEvents

    def _open(self, conn: AsyncConnection) -> None:
        self.accounts = SqlCreditAccountRepository(conn)
        self.holds = SqlHoldRepository(conn)
        self.ledger = SqlLedger(conn)
        self.idempotency = SqlIdempotencyStore(conn)
        self.processed_events = SqlProcessedEvents(conn)


def sql_credits_uow(engine: AsyncEngine) -> Callable[..., SqlCreditsUnitOfWork]:
    return lambda read_only=False: SqlCreditsUnitOfWork(engine, read_only=read_only)
