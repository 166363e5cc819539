"""Migration 0003 (leases, indexes of the sweep and the retention jobs) on a
database that already has data, and back."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from adapters.sql.migrate import alembic_config, migrate
from tests.contract.test_migrations import HEAD, revision, schema_differences


def test_0003_upgrades_a_database_with_data_and_downgrades(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0002_outbox_traceparent")
            conn.exec_driver_sql(
                "INSERT INTO credit_holds (id, user_id, amount, state, reason, created_at) "
                "VALUES ('0192d7a00000700080000000000000aa', "
                "'0192d7a00000700080000000000000bb', 2, 'active', 'ritual', "
                "'2025-01-01 00:00:00.000000')")
            conn.commit()
        migrate(url)
        assert revision(url) == HEAD
        assert schema_differences(url) == []
        inspector = inspect(engine)
        assert "leases" in inspector.get_table_names()
        assert "ix_credit_holds_state_created_at" in {
            i["name"] for i in inspector.get_indexes("credit_holds")}
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT amount, state FROM credit_holds").all() == [
                (2, "active")]
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0002_outbox_traceparent")
            conn.commit()
        assert revision(url) == "0002_outbox_traceparent"
        inspector = inspect(engine)
        assert "leases" not in inspector.get_table_names()
        assert "ix_credit_holds_state_created_at" not in {
            i["name"] for i in inspector.get_indexes("credit_holds")}
    finally:
        engine.dispose()
