"""Engines for PostgreSQL (psycopg 3) and SQLite (aiosqlite).

SQLite runs in WAL mode and opens every transaction with BEGIN IMMEDIATE, so writers
(in this process or in others) queue on the database lock for up to 30 seconds instead
of failing with "database is locked" half-way through a transaction.
"""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

BUSY_TIMEOUT_SECONDS = 30


def normalize_url(url: str, *, sync: bool = False) -> URL:
    """The SQLAlchemy URL for `url`, with the driver this project uses."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite" if sync else "sqlite+aiosqlite")
    raise ValueError(f"unsupported database URL scheme: {parsed.drivername}")


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL; None for an in-memory database."""
    if url.database in (None, "", ":memory:") or url.database.startswith("file:"):
        return None
    return Path(url.database)


def prepare_sqlite_file(url: URL) -> None:
    """Create the directory a SQLite database file will live in."""
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _set_up_sqlite(dbapi_connection: Any, *pragmas: str) -> None:
    # Take BEGIN away from the driver: writers get it from the "begin" hook
    # below; readers run in autocommit.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    _set_up_sqlite(dbapi_connection, f"busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}",
                   "journal_mode = WAL", "foreign_keys = ON", "synchronous = NORMAL")


def _on_sqlite_begin(conn: Connection) -> None:
    # Writers take the lock up front; readers read a WAL snapshot, no lock.
    read_only = conn.get_execution_options().get("waqup_read_only", False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def install_sqlite_hooks(sync_engine: Any) -> None:
    """WAL, busy timeout, foreign keys and BEGIN IMMEDIATE on a (sync) SQLite engine."""
    event.listen(sync_engine, "connect", _on_sqlite_connect)
    event.listen(sync_engine, "begin", _on_sqlite_begin)


def _drop_pg_error_detail(context: Any) -> None:
    """psycopg's message of a server error is the whole report: the DETAIL line
    repeats the values of the failing row ("Key (email)=(ann@example.com)
    already exists", "Failing row contains (...)"), CONTEXT may show the
    parameters, and a data exception (SQLSTATE class 22) quotes the value it
    refused ('invalid input syntax for type uuid: "ann@example.com"'). Errors
    are logged, so keep the primary message only, without the refused value;
    the full report stays readable in `orig.diag`."""
    orig = context.original_exception
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if not primary:
        return
    if (getattr(diag, "sqlstate", None) or "").startswith("22") and ": " in primary:
        primary = primary.split(": ", 1)[0] + ": (value hidden)"
    said = str(orig)
    if said == primary:
        return
    orig.args = (primary,)
    # SQLAlchemy's own exception has copied the message already.
    wrapped = context.sqlalchemy_exception
    if wrapped is not None and wrapped.args and isinstance(wrapped.args[0], str):
        wrapped.args = (wrapped.args[0].replace(said, primary), *wrapped.args[1:])


def _hide_pg_values(engine: AsyncEngine) -> AsyncEngine:
    event.listen(engine.sync_engine, "handle_error", _drop_pg_error_detail)
    return engine


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url` (postgresql://, postgres://, sqlite:///path or the
    explicit +psycopg / +aiosqlite forms). No I/O happens here except creating the
    directory of a SQLite file.

    Errors never carry the statement's parameters (`hide_parameters`), nor on
    PostgreSQL the row values of the server's DETAIL line: they are personal
    data (emails) or secrets (password hashes), and errors are logged."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        prepare_sqlite_file(parsed)
        engine = create_async_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_SECONDS},
                                     hide_parameters=True)
        install_sqlite_hooks(engine.sync_engine)
        return engine
    return _hide_pg_values(create_async_engine(
        parsed, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_recycle=1800,
        hide_parameters=True))


class SqliteReaders:
    """Read-only connections to a SQLite file, used on the event loop's own thread.

    aiosqlite runs every call on a helper thread; a point read then costs several
    thread hand-offs (about 1.4 ms in all, measured) for a query that SQLite
    answers from its page cache in microseconds. In WAL mode a reader never waits
    for writers, so read-only units of work run their queries synchronously on
    plain sqlite3 connections instead, in autocommit mode (each statement reads
    the latest committed state), without pool check-out or BEGIN/ROLLBACK: about
    0.1 ms per read in all. Writers keep aiosqlite and BEGIN IMMEDIATE.
    """

    def __init__(self, url: URL, keep: int = 8) -> None:
        from sqlalchemy import create_engine as create_sync_engine
        from sqlalchemy.pool import NullPool

        self.engine = create_sync_engine(
            url.set(drivername="sqlite"), poolclass=NullPool, hide_parameters=True,
            # Readers are on the event loop: give up quickly rather than block it.
            connect_args={"timeout": READER_BUSY_TIMEOUT_SECONDS,
                          "check_same_thread": False})
        event.listen(self.engine, "connect", _on_sqlite_reader_connect)
        self._idle: list[Connection] = []
        self._keep = keep

    def acquire(self) -> Connection:
        """A connection (no transaction open) for one unit of work."""
        return self._idle.pop() if self._idle else self.engine.connect()

    def release(self, conn: Connection, *, failed: bool = False) -> None:
        """Back to the idle list; closed instead after a failure, since a cursor
        left half-read would pin its WAL snapshot (stale reads, a WAL that cannot
        be checkpointed)."""
        if conn.in_transaction():  # SQLAlchemy's bookkeeping only: nothing was begun
            conn.rollback()
        if not failed and len(self._idle) < self._keep and not conn.invalidated:
            self._idle.append(conn)
        else:
            conn.close()

    def dispose(self) -> None:
        while self._idle:
            self._idle.pop().close()
        self.engine.dispose()


READER_BUSY_TIMEOUT_SECONDS = 1


def _on_sqlite_reader_connect(dbapi_connection: Any, _record: Any) -> None:
    _set_up_sqlite(dbapi_connection, f"busy_timeout = {READER_BUSY_TIMEOUT_SECONDS * 1000}",
                   "query_only = ON")


def sqlite_readers(engine: AsyncEngine) -> SqliteReaders | None:
    """The synchronous readers of a SQLite engine (created once, kept on the
    engine), or None for other databases and in-memory SQLite. Called for every
    read-only unit of work: the answer is remembered per engine."""
    known = _READERS.get(engine.sync_engine, _UNKNOWN)
    if known is not _UNKNOWN:
        return known  # type: ignore[return-value]
    readers = None
    if engine.dialect.name == "sqlite" and sqlite_file(engine.url) is not None:
        readers = SqliteReaders(engine.url)
        # Closed with the engine's pool.
        event.listen(engine.sync_engine, "engine_disposed", lambda _e: readers.dispose())
    _READERS[engine.sync_engine] = readers
    return readers


_UNKNOWN = object()
_READERS: weakref.WeakKeyDictionary[Any, SqliteReaders | None] = weakref.WeakKeyDictionary()


def autocommit_engine(engine: AsyncEngine) -> AsyncEngine:
    """A sibling of `engine` whose connections are always in autocommit, for
    read-only units of work on PostgreSQL: switching one pooled connection to
    autocommit and back costs extra statements on every read (measured: four
    round trips per balance read instead of two). Shares the engine's lifetime."""
    reader = _AUTOCOMMIT.get(engine.sync_engine)
    if reader is None:
        # Its own pool: connections are put in autocommit once, when made.
        reader = _hide_pg_values(create_async_engine(
            engine.url, isolation_level="AUTOCOMMIT", pool_size=10, max_overflow=20,
            pool_pre_ping=True, pool_recycle=1800, hide_parameters=True))
        _AUTOCOMMIT[engine.sync_engine] = reader
    return reader


def _broken_connection_errors(asyncpg: Any) -> tuple[type[BaseException], ...]:
    """What a read on a connection the server or the network dropped raises.
    After pg_terminate_backend the server sends 57P01 (AdminShutdownError) or
    just closes the socket; a read already under way then sees
    ConnectionDoesNotExistError, and the protocol can be left mid-state
    (InternalClientError "another operation is in progress" / "cannot switch
    to state"). All of them mean this connection is done, not that the read
    is wrong."""
    return (
        asyncpg.PostgresConnectionError,  # ConnectionDoesNotExistError, class 08
        asyncpg.exceptions.OperatorInterventionError,  # class 57: admin shutdown...
        asyncpg.InterfaceError,
        asyncpg.exceptions.InternalClientError,
        ConnectionError,
        OSError,
    )


class PgReaders:
    """A small pool of asyncpg connections for the hottest reads on PostgreSQL.

    Measured per point read, CPU in this process on uvloop: SQLAlchemy's asyncio
    layer over psycopg about 500 µs (pool checkout with a pre-ping round trip,
    greenlet switches, statement and result processing); a raw psycopg
    AsyncConnection about 75 µs alone and 150 µs under load; asyncpg about
    40 µs alone (its protocol is compiled, and it prepares and caches each
    statement per connection). In mesh mode that decided whether the
    authenticated balance read reached 57% or 70% of the edge baseline
    (bench/README.md). So the few reads hot enough to matter
    (SqlCreditAccountRepository.get) run here, with `$1` placeholders;
    everything else, every write included, stays on SQLAlchemy and psycopg.

    No ping before use: a connection that turns out broken is discarded and
    the read retried once on a new one (a read has no effect to repeat). At
    most `size` connections are in use; callers beyond that wait for one.
    """

    def __init__(self, url: URL, size: int = 10) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.size = size
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Any] = []
        self._closing: set[asyncio.Future[None]] = set()
        self._closed = False

    async def acquire(self, *, fresh: bool = False) -> Any:
        """A connection of the pool (a new one when none is idle, or always when
        `fresh`); waits while `size` are in use."""
        await self._slots.acquire()
        try:
            if self._closed:
                raise RuntimeError("the PostgreSQL readers are closed")
            while self._idle and not fresh:
                conn = self._idle.pop()
                if not conn.is_closed():
                    return conn
            import asyncpg

            return await asyncpg.connect(self._conninfo)
        except BaseException:
            self._slots.release()
            raise

    def release(self, conn: Any, *, broken: bool = False) -> None:
        """Back to the pool; closed instead when `broken`, not idle (a statement
        failed half-way) or after dispose()."""
        if broken:
            conn.terminate()  # no goodbye on a connection in an unknown state
        elif self._closed or conn.is_closed() or conn.is_in_transaction():
            if not conn.is_closed():
                closing = asyncio.ensure_future(conn.close())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
        else:
            self._idle.append(conn)
        self._slots.release()

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.terminate()

    async def fetchone(self, query: str, params: tuple[Any, ...]) -> Any:
        """One row of `query`, on a pooled connection; retried once on a new
        connection when the first one turns out to be broken."""
        import asyncpg

        for attempt in (1, 2):
            conn = await self.acquire(fresh=attempt == 2)
            try:
                row = await conn.fetchrow(query, *params)
            except _broken_connection_errors(asyncpg):
                self.release(conn, broken=True)
                # Whatever dropped this one (a server restart, a failover, a
                # terminated backend) has most likely dropped its idle
                # siblings too, and another reader may hand one back at any
                # moment: the retry opens a new connection.
                self._drop_idle()
                if attempt == 2:
                    raise
                continue
            except BaseException:
                self.release(conn, broken=True)
                raise
            self.release(conn)
            return row
        raise AssertionError("unreachable")

    @property
    def in_use(self) -> int:
        """Connections handed out now."""
        return self.size - self._slots._value

    async def dispose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


def pg_readers(engine: AsyncEngine) -> PgReaders | None:
    """The asyncpg readers of a PostgreSQL engine (created once, closed by
    dispose_engine), or None for other databases."""
    known = _PG_READERS.get(engine.sync_engine, _UNKNOWN)
    if known is not _UNKNOWN:
        return known  # type: ignore[return-value]
    readers = PgReaders(engine.url) if engine.dialect.name == "postgresql" else None
    _PG_READERS[engine.sync_engine] = readers
    return readers


_PG_READERS: weakref.WeakKeyDictionary[Any, PgReaders | None] = weakref.WeakKeyDictionary()


async def dispose_engine(engine: AsyncEngine) -> None:
    """Close `engine`'s connections and those of its readers."""
    reader = _AUTOCOMMIT.pop(engine.sync_engine, None)
    if reader is not None:
        await reader.dispose()
    raw = _PG_READERS.pop(engine.sync_engine, None)
    if raw is not None:
        await raw.dispose()
    await engine.dispose()


_AUTOCOMMIT: weakref.WeakKeyDictionary[Any, AsyncEngine] = weakref.WeakKeyDictionary()


def pool_usage(engine: AsyncEngine) -> dict[str, tuple[int, int, int]]:
    """(checked out, size, most at once) of each connection pool of `engine`
    that exists: `main` (the engine's own), `autocommit` (read-only units of
    work on PostgreSQL) and `asyncpg` (the hottest reads). For metrics."""
    pools: dict[str, tuple[int, int, int]] = {}
    for name, source in (("main", engine), ("autocommit", _AUTOCOMMIT.get(engine.sync_engine))):
        pool = source.sync_engine.pool if source is not None else None
        if pool is not None and hasattr(pool, "checkedout") and hasattr(pool, "size"):
            size = pool.size()
            overflow = getattr(pool, "_max_overflow", 0)
            pools[name] = (pool.checkedout(), size, size + max(overflow, 0))
    raw = _PG_READERS.get(engine.sync_engine)
    if raw is not None:
        pools["asyncpg"] = (raw.in_use, raw.size, raw.size)
    return pools


def display_url(engine_or_url: AsyncEngine | URL | str) -> str:
    """The URL without its password, for messages and logs."""
    url = engine_or_url.url if isinstance(engine_or_url, AsyncEngine) else engine_or_url
    url = make_url(url)
    return URL.create(url.drivername, url.username, None, url.host, url.port, url.database,
                      url.query).render_as_string(hide_password=False)


async def check_database(engine: AsyncEngine) -> None:
    """Raise RuntimeError with a clear message when the database cannot be reached."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        cause = getattr(exc, "orig", None) or exc  # the driver's words, without SQLAlchemy's
        raise RuntimeError(
            f"database unreachable at {display_url(engine)}: {str(cause).strip()}") from exc
