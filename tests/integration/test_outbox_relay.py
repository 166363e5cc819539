"""The user.registered -> free credit path survives restarts and redelivery,
on SQLite and PostgreSQL: nothing lost, nothing granted twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.jwt.keys import KeyRing
from adapters.memory.event_bus import InProcessEventBus
from ports.common import OutboxMessage
from services.runtime.bootstrap import build
from services.runtime.settings import Settings
from tests.unit.fakes import FakeClock, PlainHasher


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    from adapters.sql.migrate import migrate

    url = f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
    migrate(url)
    return url


class CrashAfterDelivery(InProcessEventBus):
    """Delivers, then fails as a process killed before marking the outbox row would."""

    def __init__(self) -> None:
        super().__init__()
        self.crashes = 1

    async def publish(self, message: OutboxMessage) -> None:
        await super().publish(message)
        if self.crashes:
            self.crashes -= 1
            raise ConnectionResetError("killed after delivery")


def app(url: str, tmp_path: Path, **overrides):
    settings = Settings(database_url=url, data_dir=tmp_path, outbox_poll_seconds=0.05)
    return build(settings, keyring=KeyRing.load_or_create(tmp_path / "keys"),
                 hasher=PlainHasher(), **overrides)


async def grants(container, user_id: uuid.UUID) -> list[int]:
    async with container.uow("credits")() as uow:
        entries = await uow.ledger.list(user_id, before=None, limit=10)
    return [e.amount for e in entries]


async def balance_soon(container, user_id: uuid.UUID, expected: int) -> int:
    for _ in range(100):
        balance = (await container.service("credits").get_account(user_id)).balance
        if balance == expected:
            break
        await asyncio.sleep(0.05)
    return balance


async def test_event_waits_in_the_outbox_across_a_restart(database_url: str,
                                                          tmp_path: Path) -> None:
    first = app(database_url, tmp_path)  # its relay never runs: the process "dies"
    user = (await first.service("identity").register(f"{uuid.uuid4().hex}@example.com", "password1",
                                          "")).user
    await first.close()

    second = app(database_url, tmp_path)
    try:
        assert (await second.service("credits").get_account(user.id)).balance == 0
        await second.start()  # the relay finds the event left behind
        assert await balance_soon(second, user.id, 1) == 1
        assert await grants(second, user.id) == [1]
    finally:
        await second.close()


async def test_redelivery_after_a_crash_grants_once(database_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    container = app(database_url, tmp_path, bus=CrashAfterDelivery(), clock=clock)
    try:
        user = (await container.service("identity").register(f"{uuid.uuid4().hex}@example.com",
                                                  "password1", "")).user
        assert await container.relay.drain() == 0  # delivered, then "crashed"
        assert (await container.service("credits").get_account(user.id)).balance == 1
        assert await container.relay.drain() == 0  # held back until its retry is due
        clock.advance(timedelta(minutes=10))
        assert await container.relay.drain() == 1  # delivered again...
        assert (await container.service("credits").get_account(user.id)).balance == 1  # ...absorbed
        assert await grants(container, user.id) == [1]
        assert await container.relay.drain() == 0
    finally:
        await container.close()
