"""Bring a database's schema to the newest migration: `migrate(url)`."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.pool import NullPool

from adapters.sql.engine import install_sqlite_hooks, normalize_url, prepare_sqlite_file

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Alembic keeps its running environment in module globals (alembic.context), so two
# migrations may not run in one process at once. Across processes the database
# serialises them (pg_advisory_xact_lock in env.py; BEGIN IMMEDIATE on SQLite).
_in_process = threading.Lock()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(url: str) -> None:
    """Run `alembic upgrade head` against `url` (any URL create_engine accepts).
    Idempotent, and safe to call from several processes at once."""
    sync_url = normalize_url(url, sync=True)
    if sync_url.get_backend_name() == "sqlite":
        prepare_sqlite_file(sync_url)
    engine = create_sync_engine(sync_url, poolclass=NullPool)
    if sync_url.get_backend_name() == "sqlite":
        install_sqlite_hooks(engine)
    try:
        with _in_process, engine.connect() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
    finally:
        engine.dispose()
