"""ports.common.Leases on SQL (PostgreSQL or SQLite): one row per name, its
owner and its expiry, shared by every process and machine on the database.

Taking a lease is one short transaction: lock the row (SQLite: the database's
write lock), read the time, then one atomic upsert that inserts the row or
takes it over when it is ours already or expired. Concurrent contenders are
serialised by the row (PostgreSQL's row lock and ON CONFLICT, SQLite's write
lock), so exactly one of them sees its row come back. Times come from the
Clock: leases need the clocks of the machines to agree to well within a
lease's length.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.schema import leases
from adapters.sql.uow import upsert_insert
from ports.common import Clock


class SqlLeases:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def acquire(self, name: str, owner: str, ttl: timedelta) -> bool:
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        async with self._engine.begin() as conn:
            # Wait for whoever is changing this lease first (SQLite: BEGIN
            # IMMEDIATE did, for the write lock; PostgreSQL: the row's lock),
            # then read the time: a time read before such a wait would write
            # an expiry already (nearly) past, and two holders could overlap.
            await conn.execute(select(leases.c.name).where(leases.c.name == name)
                               .with_for_update())
            now = self._clock.now()
            insert = upsert_insert(conn, leases).values(name=name, owner=owner,
                                                        expires_at=now + ttl)
            taken = (await conn.execute(insert.on_conflict_do_update(
                index_elements=[leases.c.name],
                set_={"owner": insert.excluded.owner, "expires_at": insert.excluded.expires_at},
                where=(leases.c.owner == insert.excluded.owner) | (leases.c.expires_at <= now),
            ).returning(leases.c.owner))).first()
        return taken is not None

    async def release(self, name: str, owner: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(leases).where(leases.c.name == name,
                                                    leases.c.owner == owner))

    async def close(self) -> None:
        pass
