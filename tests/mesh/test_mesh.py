"""Mesh mode, as real processes: `waqup serve --context identity` and
`waqup serve --context credits` against PostgreSQL, Redis and NATS, Envoy routing
each context to its own cluster; then the faults the issue names.

Each test starts what it breaks privately (a NATS server and a Redis server of
its own, on free ports), so stopping them disturbs nothing else.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest
import sqlalchemy as sa

from adapters.jwt.keys import KeyRing
from services.edge import EnvoyProcess, write_envoy_config
from services.gen.waqup.credits.v1 import credits_pb2 as cr_pb
from services.gen.waqup.credits.v1 import credits_pb2_grpc
from services.gen.waqup.identity.v1 import identity_pb2 as id_pb
from services.gen.waqup.identity.v1 import identity_pb2_grpc
from services.runtime.supervisor import Worker, wait_healthy
from tests.backends import create_pg_database, drop_pg_database, free_port
from tests.natsserver import NatsServer
from tests.redisserver import RedisServer

pytestmark = [pytest.mark.postgres, pytest.mark.nats, pytest.mark.envoy]

PASSWORD = "correct horse"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0,  # noqa: ASYNC109
                     what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.1)


@dataclass
class Mesh:
    tmp: Path
    database_url: str
    nats: NatsServer
    redis: RedisServer
    identity: Worker
    credits: Worker
    logs: Path
    channels: dict[int, grpc.aio.Channel] = field(default_factory=dict)

    def channel(self, worker: Worker) -> grpc.aio.Channel:
        if worker.port not in self.channels:
            self.channels[worker.port] = grpc.aio.insecure_channel(f"127.0.0.1:{worker.port}")
        return self.channels[worker.port]

    @property
    def auth(self) -> identity_pb2_grpc.AuthServiceStub:
        return identity_pb2_grpc.AuthServiceStub(self.channel(self.identity))

    @property
    def users(self) -> identity_pb2_grpc.UserServiceStub:
        return identity_pb2_grpc.UserServiceStub(self.channel(self.identity))

    @property
    def accounts(self) -> credits_pb2_grpc.CreditAccountServiceStub:
        return credits_pb2_grpc.CreditAccountServiceStub(self.channel(self.credits))

    async def start(self, worker: Worker) -> None:
        worker.spawn()
        await wait_healthy(worker.host, worker.port, 30, worker.process)

    async def kill(self, worker: Worker, sig: int = signal.SIGKILL) -> None:
        assert worker.process is not None
        worker.process.send_signal(sig)
        await asyncio.to_thread(worker.process.wait, 10)

    async def register(self) -> tuple[uuid.UUID, str]:
        email = f"mesh-{uuid.uuid4().hex[:12]}@example.com"
        reply = await self.auth.Register(id_pb.RegisterRequest(
            email=email, password=PASSWORD, display_name="Mesh Person"), timeout=10)
        return uuid.UUID(reply.user.name.split("/")[1]), reply.access_token

    async def balance(self, token: str) -> int:
        account = await self.accounts.GetCreditAccount(
            cr_pb.GetCreditAccountRequest(name="users/me/creditAccount"),
            metadata=(("authorization", f"Bearer {token}"),), timeout=10)
        return account.balance

    def grants(self) -> dict[uuid.UUID, int]:
        """Ledger entries of type grant, per user, straight from PostgreSQL."""
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text(
                    "SELECT user_id, count(*) FROM credit_transactions "
                    "WHERE type = 'grant' GROUP BY user_id")).all()
        finally:
            engine.dispose()
        return {uuid.UUID(str(user_id)): count for user_id, count in rows}

    def pending_outbox(self) -> int:
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL")).scalar_one()
        finally:
            engine.dispose()


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    from adapters.sql.migrate import migrate

    url = create_pg_database()
    migrate(url)
    nats = NatsServer(store_dir=tmp_path / "nats")
    nats.start()
    redis = RedisServer()
    redis.start()
    KeyRing.load_or_create(tmp_path / "keys")  # once, before the processes start
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        "WAQUP_DATABASE_URL": url, "WAQUP_NATS_URL": nats.url, "WAQUP_REDIS_URL": redis.url,
        "WAQUP_DATA_DIR": str(tmp_path), "WAQUP_OUTBOX_POLL_SECONDS": "0.2",
        # A killed consumer's unacknowledged messages come back after this long.
        "WAQUP_NATS_ACK_WAIT_SECONDS": "2",
        "WAQUP_LOG_LEVEL": os.environ.get("WAQUP_TEST_MESH_LOG_LEVEL", "WARNING"),
    }
    identity = Worker("identity", "127.0.0.1", free_port(), env=env)
    credits = Worker("credits", "127.0.0.1", free_port(), env={
        **env, "WAQUP_IDENTITY_TARGET": f"127.0.0.1:{identity.port}"})
    running = Mesh(tmp_path, url, nats, redis, identity,
                   credits, logs)
    try:
        await running.start(identity)
        await running.start(credits)
        yield running
    finally:
        for channel in running.channels.values():
            await channel.close()
        for worker in (identity, credits):
            if worker.alive:
                await running.kill(worker, signal.SIGTERM)
        nats.stop()
        redis.stop()
        drop_pg_database(url)


async def test_each_context_runs_in_its_own_process_behind_envoy(mesh: Mesh) -> None:
    http_port, admin_port = free_port(), free_port()
    config = write_envoy_config(
        mesh.tmp / "envoy.yaml", listen_port=http_port, admin_port=admin_port,
        upstreams={"identity": [("127.0.0.1", mesh.identity.port)],
                   "credits": [("127.0.0.1", mesh.credits.port)]})
    with EnvoyProcess(admin_port=admin_port) as envoy:
        envoy.start(config, stdout=subprocess.DEVNULL)
        await envoy.wait_ready_async(timeout=20)
        await envoy.wait_jwks_async(timeout=20)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}",
                                     timeout=10) as client:
            email = f"edge-{uuid.uuid4().hex[:10]}@example.com"
            body = {"email": email, "password": PASSWORD, "display_name": "Edge"}
            reply = await client.post("/v1/auth:register", json=body)
            assert reply.status_code == 200, reply.text
            token = reply.json()["access_token"]
            headers = {"authorization": f"Bearer {token}"}

            async def has_credit() -> bool:
                reply = await client.get("/v1/users/me/creditAccount", headers=headers)
                return reply.status_code == 200 and reply.json()["balance"] == 1

            # user.registered: identity's outbox -> NATS -> the credits process.
            await eventually(has_credit, what="the sign-up credit through NATS")
            assert (await client.get("/v1/users/me", headers=headers)).json()["email"] == email

        stats = await asyncio.to_thread(
            envoy.stats, r"^cluster\.(identity|credits)\.upstream_rq_total$")
    assert stats["cluster.identity.upstream_rq_total"] >= 1
    assert stats["cluster.credits.upstream_rq_total"] >= 1

    # Each process serves its own context only.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await identity_pb2_grpc.AuthServiceStub(mesh.channel(mesh.credits)).GetJwks(
            id_pb.GetJwksRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await credits_pb2_grpc.CreditAccountServiceStub(mesh.channel(mesh.identity)) \
            .GetCreditAccount(cr_pb.GetCreditAccountRequest(name="users/me/creditAccount"),
                              metadata=headers_md(token), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def headers_md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def test_registration_while_nats_is_down_is_granted_once_when_it_returns(
        mesh: Mesh) -> None:
    mesh.nats.stop()
    users = [await mesh.register() for _ in range(5)]  # registration does not need NATS
    assert mesh.pending_outbox() >= 5  # the events wait in identity's outbox
    for _, token in users:
        assert await mesh.balance(token) == 0

    mesh.nats.start()  # same port, same store

    async def all_granted() -> bool:
        return all([await mesh.balance(token) == 1 for _, token in users])

    await eventually(all_granted, timeout=45, what="the grants after NATS came back")
    async def outbox_empty() -> bool:
        return mesh.pending_outbox() == 0

    await eventually(outbox_empty, what="an empty outbox")
    await asyncio.sleep(1.0)  # room for a duplicate delivery to show up, if any
    grants = mesh.grants()
    assert all(grants[user_id] == 1 for user_id, _ in users), grants


async def test_credits_killed_with_pending_events_processes_each_exactly_once(
        mesh: Mesh) -> None:
    # Some events are in flight when the credits process dies: handled but not
    # acknowledged, fetched but not handled, or not yet delivered.
    first = await asyncio.gather(*(mesh.register() for _ in range(15)))
    await mesh.kill(mesh.credits, signal.SIGKILL)
    second = await asyncio.gather(*(mesh.register() for _ in range(15)))
    users = [*first, *second]
    await mesh.start(mesh.credits)  # the same durable consumer picks up where it was

    async def all_granted() -> bool:
        grants = mesh.grants()
        return all(grants.get(user_id) for user_id, _ in users)

    await eventually(all_granted, timeout=45, what="every pending grant after the restart")
    await asyncio.sleep(1.0)
    grants = mesh.grants()
    assert [grants[user_id] for user_id, _ in users] == [1] * len(users)
    for _, token in users[:3]:
        assert await mesh.balance(token) == 1


async def test_redis_down_reads_fall_back_to_the_database(mesh: Mesh) -> None:
    _, token = await mesh.register()
    md = headers_md(token)
    first = await mesh.users.GetUser(id_pb.GetUserRequest(name="users/me"), metadata=md)
    mesh.redis.stop()

    again = await mesh.users.GetUser(id_pb.GetUserRequest(name="users/me"), metadata=md)
    assert again.email == first.email
    updated = await mesh.users.UpdatePreferences(id_pb.UpdatePreferencesRequest(
        preferences=id_pb.Preferences(name="users/me/preferences", voice="aria",
                                      tone=id_pb.TONE_CALM),
        update_mask={"paths": ["voice", "tone"]}), metadata=md)
    assert updated.voice == "aria"
    # Registration and sign-in keep working without the cache too.
    _, other = await mesh.register()
    await mesh.auth.Login(id_pb.LoginRequest(email=first.email, password=PASSWORD))

    mesh.redis.start()  # back, empty: nothing of record lived there
    after = await mesh.users.GetUser(id_pb.GetUserRequest(name="users/me"), metadata=md)
    assert (after.preferences.voice, after.preferences.tone) == ("aria", id_pb.TONE_CALM)
    assert await mesh.balance(other) in (0, 1)

