"""Creation and the marketplace in mesh mode: identity, credits,
conversation, content, audio, library, catalog, payments and rewards each in
their own process (`waqup serve --context ...`), on PostgreSQL, Redis
(sessions), NATS JetStream (events and the render queue) and an S3 endpoint
(a moto server), behind Envoy. The journey passes there too; an audio worker
killed in the middle of a render has its job redelivered to another one (one
audio object, one render, one consumption); and a pack is published, bought
through the simulator and played, every context asking the others over gRPC.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import miniaudio
import pytest
import sqlalchemy as sa

from adapters.jwt.keys import KeyRing
from services.edge import EnvoyProcess, write_envoy_config
from services.runtime.supervisor import Worker, wait_healthy
from tests.backends import create_pg_database, drop_pg_database, free_port
from tests.natsserver import NatsServer
from tests.redisserver import RedisServer

pytestmark = [pytest.mark.postgres, pytest.mark.nats, pytest.mark.envoy]

CONTEXTS = ("identity", "credits", "conversation", "content", "audio", "library", "catalog",
            "payments", "rewards")
TURNS = ["I want to feel more confident before my job interview",
         "The interview is tomorrow morning and I get nervous talking to strangers",
         "Make it about 3 minutes, and focus on self-worth", "No preference, that's fine",
         "that's fine", "yes, that's all"]


@dataclass
class CreationMesh:
    tmp: Path
    database_url: str
    bucket: str
    s3_endpoint: str
    workers: dict[str, Worker]
    env: dict[str, str]
    client: httpx.AsyncClient

    def sql(self, query: str, **params: Any) -> list[Any]:
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(query), params).all())
        finally:
            engine.dispose()

    def objects(self, prefix: str) -> list[str]:
        s3 = boto3.client("s3", endpoint_url=self.s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
        listed = s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for o in listed.get("Contents", [])]


async def _start(worker: Worker) -> None:
    worker.spawn()
    await wait_healthy(worker.host, worker.port, 60, worker.process)


async def _stop(worker: Worker, sig: int = signal.SIGTERM) -> None:
    if worker.alive:
        assert worker.process is not None
        worker.process.send_signal(sig)
        await asyncio.to_thread(worker.process.wait, 15)


@pytest.fixture
async def mesh(tmp_path: Path, moto_endpoint: str) -> AsyncIterator[CreationMesh]:
    from adapters.sql.migrate import migrate

    url = create_pg_database()
    migrate(url)
    nats = NatsServer(store_dir=tmp_path / "nats")
    nats.start()
    redis = RedisServer()
    redis.start()
    KeyRing.load_or_create(tmp_path / "keys")  # once, before the processes start
    bucket = f"waqup-mesh-{uuid.uuid4().hex[:10]}"
    ports = {name: free_port() for name in CONTEXTS}
    http_ports = {name: free_port() for name in ("conversation", "library", "payments")}
    http_port, admin_port = free_port(), free_port()
    env = {
        "WAQUP_DATABASE_URL": url, "WAQUP_NATS_URL": nats.url, "WAQUP_REDIS_URL": redis.url,
        "WAQUP_DATA_DIR": str(tmp_path), "WAQUP_OUTBOX_POLL_SECONDS": "0.2",
        "WAQUP_NATS_ACK_WAIT_SECONDS": "3", "WAQUP_JOB_ACK_WAIT_SECONDS": "3",
        "WAQUP_S3_BUCKET": bucket, "WAQUP_S3_ENDPOINT_URL": moto_endpoint,
        "WAQUP_S3_ACCESS_KEY_ID": "test", "WAQUP_S3_SECRET_ACCESS_KEY": "test",
        "WAQUP_S3_CREATE_BUCKET": "true",
        "WAQUP_LOG_LEVEL": os.environ.get("WAQUP_TEST_MESH_LOG_LEVEL", "WARNING"),
        **{f"WAQUP_{name.upper()}_TARGET": f"127.0.0.1:{port}" for name, port in ports.items()},
        # Links the services hand out (checkout pages, shares) point at the edge.
        "WAQUP_PUBLIC_BASE_URL": f"http://127.0.0.1:{http_port}",
    }
    workers = {name: Worker(name, "127.0.0.1", port, env={
        **env, **({"WAQUP_WORKER_HTTP_PORT": str(http_ports[name])}
                  if name in http_ports else {})}) for name, port in ports.items()}
    envoy = EnvoyProcess(admin_port=admin_port)
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=15)
    try:
        for name in CONTEXTS:  # identity first: the others fetch its keys
            await _start(workers[name])
        config = write_envoy_config(
            tmp_path / "envoy.yaml", listen_port=http_port, admin_port=admin_port,
            upstreams={name: [("127.0.0.1", port)] for name, port in ports.items()},
            http_upstreams={name: [("127.0.0.1", port)] for name, port in http_ports.items()},
            credential_rate_limit=1000)
        envoy.start(config, stdout=subprocess.DEVNULL)
        await envoy.wait_ready_async(timeout=20)
        await envoy.wait_jwks_async(timeout=20)
        yield CreationMesh(tmp_path, url, bucket, moto_endpoint, workers, env, client)
    finally:
        await client.aclose()
        envoy.stop()
        for worker in reversed(list(workers.values())):
            await _stop(worker)
        nats.stop()
        redis.stop()
        drop_pg_database(url)


async def _register(mesh: CreationMesh) -> tuple[dict[str, str], uuid.UUID]:
    reply = await mesh.client.post("/v1/auth:register", json={
        "email": f"{uuid.uuid4().hex[:10]}@example.com", "password": "s3cret-pass",
        "display_name": "Sam"})
    assert reply.status_code == 200, reply.text
    headers = {"authorization": f"Bearer {reply.json()['access_token']}"}
    user_id = uuid.UUID(reply.json()["user"]["name"].rpartition("/")[2])
    deadline = time.monotonic() + 30
    while (await mesh.client.get("/v1/users/me/creditAccount",
                                 headers=headers)).json().get("balance") != 1:
        assert time.monotonic() < deadline, "the sign-up credit did not arrive"
        await asyncio.sleep(0.2)
    return headers, user_id


async def _confirm(mesh: CreationMesh, headers: dict[str, str]) -> str:
    conversation = (await mesh.client.post(
        "/v1/conversations", headers=headers,
        json={"content_type": "CONTENT_TYPE_AFFIRMATION"})).json()
    for text in TURNS:
        if conversation["state"] == "STATE_CONFIRMATION":
            break
        conversation = (await mesh.client.post(f"/v1/{conversation['name']}:send",
                                               headers=headers, json={"text": text})).json()
    assert conversation["state"] == "STATE_CONFIRMATION", conversation
    confirmed = await mesh.client.post(f"/v1/{conversation['name']}:confirm", headers=headers,
                                       json={})
    assert confirmed.status_code == 200, confirmed.text
    return confirmed.json()["content"]


async def _item(mesh: CreationMesh, headers: dict[str, str], content: str,
                states: tuple[str, ...], within: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        item = (await mesh.client.get(f"/v1/{content}", headers=headers)).json()
        if item["state"] in states:
            return item
        assert time.monotonic() < deadline, item
        await asyncio.sleep(0.1)


async def test_the_journey_with_each_context_in_its_own_process(mesh: CreationMesh) -> None:
    headers, user_id = await _register(mesh)
    content = await _confirm(mesh, headers)
    item = await _item(mesh, headers, content, ("CONTENT_STATE_READY", "CONTENT_STATE_FAILED"))
    assert item["state"] == "CONTENT_STATE_READY", item
    library = (await mesh.client.get("/v1/users/me/contents", headers=headers)).json()
    assert [c["name"] for c in library["contents"]] == [content]
    playback = (await mesh.client.get(f"/v1/{content}/playback", headers=headers)).json()
    assert "X-Amz-Signature=" in playback["uri"]  # pre-signed by S3
    async with httpx.AsyncClient(timeout=15) as player:
        audio = (await player.get(playback["uri"])).content
        part = await player.get(playback["uri"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == audio[:100]
    decoded = miniaudio.decode(audio, nchannels=1)
    assert abs(decoded.num_frames / decoded.sample_rate
               - float(item["audio_duration"].rstrip("s"))) <= 1.0
    account = (await mesh.client.get("/v1/users/me/creditAccount", headers=headers)).json()
    assert (account["balance"], account["held"]) == (0, 0)
    assert mesh.sql("SELECT count(*) FROM credit_transactions WHERE user_id = :u "
                    "AND type = 'consumption'", u=user_id)[0][0] == 1


async def test_an_audio_worker_killed_mid_render_finishes_the_job_exactly_once(
        mesh: CreationMesh) -> None:
    headers, user_id = await _register(mesh)
    content = await _confirm(mesh, headers)
    await _item(mesh, headers, content, ("CONTENT_STATE_RENDERING_AUDIO",))
    await asyncio.sleep(1.0)  # the worker has the job and is speaking
    await _stop(mesh.workers["audio"], signal.SIGKILL)
    await asyncio.sleep(4.0)  # past the ack wait: nobody renders now
    item = (await mesh.client.get(f"/v1/{content}", headers=headers)).json()
    assert item["state"] == "CONTENT_STATE_RENDERING_AUDIO"

    replacement = Worker("audio", "127.0.0.1", free_port(), env=mesh.env)
    mesh.workers["audio-2"] = replacement
    await _start(replacement)
    item = await _item(mesh, headers, content, ("CONTENT_STATE_READY", "CONTENT_STATE_FAILED"))
    assert item["state"] == "CONTENT_STATE_READY", item
    content_id = uuid.UUID(content.rpartition("/")[2])
    # Both renditions, once; the first part's preview goes right after READY.
    wanted = [f"audio/{user_id}/{content_id}/1.mp3", f"audio/{user_id}/{content_id}/1.opus"]
    for _ in range(50):
        if mesh.objects(f"audio/{user_id}/{content_id}/") == wanted:
            break
        await asyncio.sleep(0.1)
    assert mesh.objects(f"audio/{user_id}/{content_id}/") == wanted
    assert mesh.sql("SELECT count(*) FROM audio_renders WHERE content_id = :c",
                    c=content_id)[0][0] == 1
    assert mesh.sql("SELECT count(*) FROM credit_transactions WHERE user_id = :u "
                    "AND type = 'consumption'", u=user_id)[0][0] == 1
    await asyncio.sleep(1.0)  # a late duplicate event would show here
    assert mesh.sql("SELECT count(*) FROM credit_transactions WHERE user_id = :u "
                    "AND type = 'consumption'", u=user_id)[0][0] == 1


async def test_a_pack_is_published_bought_and_played_across_processes(
        mesh: CreationMesh) -> None:
    creator, creator_id = await _register(mesh)
    content = await _confirm(mesh, creator)
    item = await _item(mesh, creator, content, ("CONTENT_STATE_READY", "CONTENT_STATE_FAILED"))
    assert item["state"] == "CONTENT_STATE_READY", item
    assert (await mesh.client.post("/v1/creators", headers=creator,
                                   json={"display_name": "Maya"})).status_code == 200
    pack = (await mesh.client.post("/v1/packs", headers=creator, json={
        "title": "Confident mornings", "description": "Before the interview",
        "price_type": "PRICE_TYPE_ONE_TIME",
        "price": {"currency_code": "EUR", "units": 2, "nanos": 990_000_000}})).json()
    added = await mesh.client.post(f"/v1/{pack['name']}/items", headers=creator,
                                   json={"content": content})  # catalog -> library
    assert added.status_code == 200, added.text
    # An uploaded recording: a presigned PUT straight to S3, then the library
    # (another process) measures and encodes it.
    slot = (await mesh.client.post(f"/v1/{pack['name']}/uploads", headers=creator, json={
        "title": "Breath", "content_type": "CONTENT_TYPE_GUIDED_MEDITATION"})).json()
    assert "X-Amz-Signature=" in slot["upload_uri"]
    from tests.e2e.test_marketplace import wav

    async with httpx.AsyncClient(timeout=15) as uploader:
        put = await uploader.put(slot["upload_uri"], content=wav(12, 0.25))
    assert put.status_code == 200, put.text
    uploaded = await mesh.client.post(f"/v1/{pack['name']}/items", headers=creator,
                                      json={"upload": slot["name"]})
    assert uploaded.status_code == 200, uploaded.text
    published = await mesh.client.post(f"/v1/{pack['name']}:publish", headers=creator, json={})
    assert published.status_code == 200, published.text

    buyer, _ = await _register(mesh)
    refused = await mesh.client.get(f"/v1/{content}/playback", headers=buyer)  # library -> catalog
    assert refused.status_code == 403, refused.text
    deadline = time.monotonic() + 30
    while True:  # the index follows the publish through NATS
        found = (await mesh.client.get("/v1/packs:search", headers=buyer,
                                       params={"query": "confidnt"})).json()
        if [p for p in found.get("packs", []) if p["name"] == pack["name"]]:
            break
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.2)
    checkout = await mesh.client.post("/v1/checkoutSessions", headers=buyer,
                                      json={"pack": pack["name"]})  # payments -> catalog
    assert checkout.status_code == 200, checkout.text
    paid = await mesh.client.post(checkout.json()["url"], data={"outcome": "succeeded"})
    assert paid.status_code == 200, paid.text
    deadline = time.monotonic() + 30
    while (await mesh.client.get(f"/v1/{content}/playback", headers=buyer)).status_code != 200:
        assert time.monotonic() < deadline, "the purchase did not grant the pack"
        await asyncio.sleep(0.2)
    deadline = time.monotonic() + 30
    while True:
        account = (await mesh.client.get("/v1/creators/me/rewardAccount",
                                         headers=creator)).json()
        if account.get("balances"):
            break
        assert time.monotonic() < deadline, account
        await asyncio.sleep(0.2)
    assert account["balances"] == [{"currency_code": "EUR", "tokens": "209"}]
    assert mesh.sql("SELECT count(*) FROM purchases WHERE creator_id = :c",
                    c=creator_id)[0][0] == 1
