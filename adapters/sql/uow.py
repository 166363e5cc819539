"""The SQL unit of work: one connection and one transaction for its whole life."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sql.engine import (
    PgReaders,
    SqliteReaders,
    autocommit_engine,
    pg_readers,
    sqlite_readers,
)

#: Connection execution option that marks a read-only unit of work.
READ_ONLY_OPTION = "waqup_read_only"


def upsert_insert(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT that knows ON CONFLICT, for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no ON CONFLICT support for {conn.dialect.name}")


class _InlineConnection:
    """The part of AsyncConnection the repositories use, over a synchronous
    connection whose calls return at once (SQLite reads on the loop's thread)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect = conn.dialect
        #: The sqlite3 connection itself, for the few reads hot enough to skip
        #: SQLAlchemy's statement execution (about 0.15 ms of Python each).
        self.sqlite3 = conn.connection.driver_connection

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.scalar(statement, parameters)


class _LazyPgConnection:
    """A read-only unit of work's connection on PostgreSQL, opened on first use:
    a read served by the asyncpg readers (`pg`) never checks out a SQLAlchemy
    connection at all."""

    def __init__(self, engine: AsyncEngine, pg: PgReaders) -> None:
        self._engine = engine
        self.dialect = engine.dialect
        #: Hot reads: `await conn.pg.fetchone(sql, params)` (see PgReaders).
        self.pg = pg
        self._conn: AsyncConnection | None = None

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if self._conn is None:
            # Autocommit: no BEGIN/ROLLBACK round trips around the reads; each
            # statement sees the data committed when it starts.
            self._conn = await autocommit_engine(self._engine).connect()
        return await self._conn.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return (await self.execute(statement, parameters)).scalar()

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()


class SqlUnitOfWork:
    """Begins a transaction on entry (BEGIN IMMEDIATE on SQLite, plain BEGIN when
    read-only); leaving the block without commit() rolls it back. Not reusable,
    not shared between tasks."""

    def __init__(self, engine: AsyncEngine, *, read_only: bool = False) -> None:
        self._engine = engine
        self._read_only = read_only
        self._conn: AsyncConnection | None = None
        self._sync: Connection | None = None
        self._readers: SqliteReaders | None = None
        self._lazy: _LazyPgConnection | None = None

    @property
    def conn(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("the unit of work is used outside its `async with` block")
        return self._conn

    def _open(self, conn: AsyncConnection) -> None:
        """Set up the repositories on the fresh connection."""

    async def __aenter__(self) -> Self:
        if self._conn is not None or self._sync is not None or self._lazy is not None:
            raise RuntimeError("a unit of work can be entered only once")
        if self._read_only:
            readers = sqlite_readers(self._engine)
            if readers is not None:
                # SQLite file: autocommit reads on a plain sqlite3 connection, on
                # this thread; WAL readers take no lock (see SqliteReaders).
                self._readers = readers
                self._sync = readers.acquire()
                self._open(_InlineConnection(self._sync))  # type: ignore[arg-type]
                return self
        if self._read_only:
            pg = pg_readers(self._engine)
            if pg is not None:
                self._lazy = _LazyPgConnection(self._engine, pg)
                self._open(self._lazy)  # type: ignore[arg-type]
                return self
        conn = await self._engine.connect()
        try:
            if self._read_only and conn.dialect.name == "sqlite":  # in-memory SQLite
                await conn.execution_options(**{READ_ONLY_OPTION: True})
            await conn.begin()
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self._open(conn)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._lazy is not None:
            lazy, self._lazy = self._lazy, None
            await lazy.close()
            return
        if self._sync is not None:
            sync, self._sync = self._sync, None
            assert self._readers is not None
            self._readers.release(sync, failed=exc_type is not None)
            return
        conn = self.conn
        try:
            if conn.in_transaction():
                await conn.rollback()
        finally:
            await conn.close()

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        await self.conn.commit()
