from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.backends import (
    NATS_URL,
    REDIS_URL,
    create_pg_database,
    drop_pg_database,
    require_service,
)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a migrated PostgreSQL database, private to this test session."""
    from adapters.sql.migrate import migrate

    url = create_pg_database()
    migrate(url)
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture(scope="session")
def nats_url() -> str:
    """NATS with JetStream on 127.0.0.1:4222 (a missing one skips; under CI=true, fails)."""
    require_service("NATS", "127.0.0.1", 4222)
    return NATS_URL
