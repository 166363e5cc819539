"""WAQUP_DATA_DIR alone places the embedded mode's SQLite database: with
WAQUP_DATABASE_URL unset, `waqup migrate` and build() use `<data_dir>/waqup.db`."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from services.runtime.bootstrap import build
from services.runtime.settings import Settings
from tests.contract.test_migrations import HEAD

WAQUP = Path(sys.executable).parent / "waqup"


def env_with_only_the_data_dir(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAQUP_")}
    env["WAQUP_DATA_DIR"] = str(data_dir)
    return env


def test_waqup_migrate_creates_the_database_in_the_data_dir(tmp_path: Path) -> None:
    data_dir, elsewhere = tmp_path / "data", tmp_path / "cwd"
    elsewhere.mkdir()
    done = subprocess.run([str(WAQUP), "migrate"], cwd=elsewhere, capture_output=True,
                          text=True, timeout=60, env=env_with_only_the_data_dir(data_dir))
    assert done.returncode == 0, done.stderr
    database = data_dir / "waqup.db"
    assert database.is_file()
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
    assert list(elsewhere.iterdir()) == []  # nothing in the working directory (no ./var)


async def test_build_opens_the_database_in_the_data_dir(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("WAQUP_")]:
        monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("WAQUP_DATA_DIR", str(data_dir))
    settings = Settings()
    assert settings.database_url == f"sqlite+aiosqlite:///{data_dir / 'waqup.db'}"
    container = build(settings)
    try:
        await container.start()  # checks the database: SQLite creates the file
        assert (data_dir / "waqup.db").is_file()
    finally:
        await container.close()
