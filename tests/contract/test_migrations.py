"""Migrations build exactly the schema the adapters are written against."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from adapters.sql.engine import check_database, normalize_url
from adapters.sql.engine import create_engine as create_async_engine
from adapters.sql.migrate import alembic_config, migrate
from adapters.sql.schema import metadata
from tests.backends import create_pg_database, drop_pg_database

#: The newest migration (one head: migrations form a single chain).
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()

#: What migration 0007 makes outside the metadata, which cannot describe it,
#: and the comparison leaves out, exactly these: SQLite's FTS5 table and the
#: shadow tables FTS5 keeps its index in; PostgreSQL's tsvector column and
#: its GIN indexes (full text, and trigrams of the vocabulary).
SQLITE_SEARCH_TABLES = {"pack_search_fts", *(f"pack_search_fts_{shadow}" for shadow in (
    "data", "idx", "docsize", "config", "content"))}
SEARCH_OBJECTS = {*(("table", t) for t in SQLITE_SEARCH_TABLES),
                  ("column", "pack_search.search_vector"),
                  ("index", "ix_pack_search_search_vector"),
                  ("index", "ix_pack_search_words_word_trgm")}


def _compared(obj: object, name: str | None, type_: str, reflected: bool,
              compare_to: object) -> bool:
    if type_ == "column":
        name = f"{obj.table.name}.{name}"  # type: ignore[attr-defined]
    return not (reflected and compare_to is None and (type_, name) in SEARCH_OBJECTS)


def schema_differences(url: str) -> list[object]:
    engine = create_engine(normalize_url(url, sync=True), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "compare_server_default": True,
                                                             "include_object": _compared})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def revision(url: str) -> str | None:
    engine = create_engine(normalize_url(url, sync=True), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_sqlite_fresh_file_in_a_new_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nested/dir/waqup.db"
    migrate(url)
    assert revision(url) == HEAD
    migrate(url.replace("sqlite://", "sqlite+aiosqlite://"))  # again: a no-op
    assert revision(url) == HEAD
    assert schema_differences(url) == []
    tables = set(inspect(create_engine(normalize_url(url, sync=True))).get_table_names())
    assert tables == {*metadata.tables, "alembic_version", *SQLITE_SEARCH_TABLES}


@pytest.mark.postgres
def test_postgres_schema_matches_and_upgrade_is_idempotent(pg_url: str) -> None:
    migrate(pg_url)  # the session fixture migrated already: a no-op
    migrate(pg_url.replace("postgresql+psycopg://", "postgresql://"))
    assert revision(pg_url) == HEAD
    assert schema_differences(pg_url) == []


async def test_check_database(tmp_path: Path) -> None:
    ok = create_async_engine(f"sqlite:///{tmp_path}/ok.db")
    await check_database(ok)
    await ok.dispose()
    bad = create_async_engine("postgresql://postgres:secret@127.0.0.1:1/nowhere")
    with pytest.raises(RuntimeError, match=r"database unreachable at .*127\.0\.0\.1:1") as err:
        await check_database(bad)
    assert "secret" not in str(err.value)
    await bad.dispose()


def _migrate_at(url: str, start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))
    migrate(url)


def migrate_concurrently(url: str) -> None:
    """Three migrating processes and two threads of this one, started together."""
    spawn = multiprocessing.get_context("spawn")
    start_at = time.time() + 2.0  # time enough for the spawned interpreters to start
    with ProcessPoolExecutor(3, mp_context=spawn) as processes, \
            ThreadPoolExecutor(2) as threads:
        runs = [processes.submit(_migrate_at, url, start_at) for _ in range(3)]
        runs += [threads.submit(_migrate_at, url, start_at) for _ in range(2)]
        for run in runs:
            run.result(timeout=60)  # re-raises any failure


@pytest.mark.postgres
def test_concurrent_migrators_on_a_fresh_postgres_database() -> None:
    url = create_pg_database()
    try:
        migrate_concurrently(url)
        assert revision(url) == HEAD
        assert schema_differences(url) == []
    finally:
        drop_pg_database(url)


def test_concurrent_migrators_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    migrate_concurrently(url)
    assert revision(url) == HEAD
    assert schema_differences(url) == []


def test_outbox_traceparent_column_is_added_to_an_existing_outbox(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            conn.exec_driver_sql(
                "INSERT INTO outbox (event_id, topic, payload, created_at, attempts, "
                "next_attempt_at) VALUES ('0192d7a0-0000-7000-8000-000000000001', "
                "'waqup.identity.user.registered.v1', x'00', '2025-01-01 00:00:00', 0, "
                "'2025-01-01 00:00:00')")
            conn.commit()
        migrate(url)  # 0001 -> head, the written event kept
        assert revision(url) == HEAD
        assert schema_differences(url) == []
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT topic, traceparent FROM outbox").all() == [
                ("waqup.identity.user.registered.v1", None)]
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0001")
            conn.commit()
        assert revision(url) == "0001"
    finally:
        engine.dispose()
