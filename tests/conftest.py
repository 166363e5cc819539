from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
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


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on a free port for the session, stopped at the end."""
    from tests.backends import free_port

    port = free_port()
    binary = Path(sys.executable).parent / "moto_server"
    command = ([str(binary)] if binary.exists() else [sys.executable, "-m", "moto.server"])
    process = subprocess.Popen([*command, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    try:
        while True:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"moto server exited: {stderr[-2000:]}")
            try:
                httpx.get(f"{url}/moto-api/", timeout=0.5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("moto server did not answer within 20 s")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
