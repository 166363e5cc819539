"""Every contract test runs against each adapter: memory, SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.memory.credits import memory_credits_uow
from adapters.memory.identity import memory_identity_uow
from adapters.memory.outbox import MemoryOutboxStore
from adapters.memory.store import MemoryStore
from adapters.sql.credits import sql_credits_uow
from adapters.sql.engine import create_engine, dispose_engine
from adapters.sql.identity import sql_identity_uow
from adapters.sql.migrate import migrate
from adapters.sql.outbox import SqlOutboxStore
from adapters.sql.schema import metadata
from tests.contract.codec import JsonEventCodec

BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

#: The trace context the outbox adapters see (services pass the current span's).
current_trace: ContextVar[str] = ContextVar("current_trace", default="")


@dataclass
class Backend:
    name: str
    identity_uow: Callable[[], Any]
    credits_uow: Callable[[], Any]
    outbox_store: Any
    engine: AsyncEngine | None = None
    #: The MemoryStore of the memory backend.
    store: MemoryStore | None = None

    @property
    def is_sql(self) -> bool:
        return self.engine is not None


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "db" / "waqup.db"
    path.parent.mkdir()
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
async def pg_engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_url)
    yield engine
    await dispose_engine(engine)


async def truncate_all(engine: AsyncEngine) -> None:
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} CASCADE"))


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database(backend_name: str, request: pytest.FixtureRequest) -> str | AsyncEngine | None:
    """What the backend needs, resolved outside the event loop: a SQLite URL or the
    PostgreSQL engine (async fixtures cannot request async fixtures dynamically)."""
    if backend_name == "sqlite":
        return request.getfixturevalue("sqlite_url")
    if backend_name == "postgres":
        return request.getfixturevalue("pg_engine")
    return None


@pytest.fixture
async def backend(backend_name: str, database: Any) -> AsyncIterator[Backend]:
    codec = JsonEventCodec()
    if backend_name == "memory":
        store = MemoryStore()
        yield Backend("memory", memory_identity_uow(store, codec, current_trace.get),
                      memory_credits_uow(store), MemoryOutboxStore(store), store=store)
        return
    if backend_name == "sqlite":
        engine = create_engine(database)
        try:
            yield Backend("sqlite", sql_identity_uow(engine, codec, current_trace.get),
                          sql_credits_uow(engine), SqlOutboxStore(engine), engine)
        finally:
            await engine.dispose()
        return
    engine = database
    await truncate_all(engine)
    yield Backend("postgres", sql_identity_uow(engine, codec, current_trace.get),
                  sql_credits_uow(engine), SqlOutboxStore(engine), engine)
