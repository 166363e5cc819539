"""Alembic environment. Run through adapters.sql.migrate.migrate(url), which hands
over an open connection; there is no alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from adapters.sql.schema import metadata

# Any constant: serialises concurrent migrators on one PostgreSQL database.
_PG_LOCK_KEY = 0x7761_5175_7000


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": _PG_LOCK_KEY})
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported")
run_migrations_online()
