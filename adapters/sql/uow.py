"""The SQL unit of work: one connection and one transaction for its whole life."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


def upsert_insert(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT that knows ON CONFLICT, for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no ON CONFLICT support for {conn.dialect.name}")


class SqlUnitOfWork:
    """Begins a transaction on entry (BEGIN IMMEDIATE on SQLite); leaving the block
    without commit() rolls it back. Not reusable, not shared between tasks."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None

    @property
    def conn(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("the unit of work is used outside its `async with` block")
        return self._conn

    def _open(self, conn: AsyncConnection) -> None:
        """Set up the repositories on the fresh connection."""

    async def __aenter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError("a unit of work can be entered only once")
        conn = await self._engine.connect()
        try:
            await conn.begin()
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self._open(conn)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        conn = self.conn
        try:
            if conn.in_transaction():
                await conn.rollback()
        finally:
            await conn.close()

    async def commit(self) -> None:
        await self.conn.commit()
