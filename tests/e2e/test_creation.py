"""Creation end to end, as a mobile client does it, through the real Envoy in
front of the real server (SQLite file, the offline composer, the Piper voice,
MP3 files served by signed URLs through the edge): a free-text conversation,
confirm, READY, library, playback with Range, credits spent exactly once; the
same over the WebSocket; and what must not happen (crisis, no credits, a
failing voice, twenty confirms at once, other people's things, forged URLs).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import miniaudio
import pytest
import websockets

from core.audio.model import SpeechError
from core.credits.model import TransactionType
from tests.e2e.conftest import RealEdge, real_edge

pytestmark = pytest.mark.envoy

TURNS = ["I want to feel more confident before my job interview",
         "The interview is tomorrow morning and I get nervous talking to strangers",
         "Make it about 3 minutes, and focus on self-worth",
         "No preference, that's fine"]


@pytest.fixture(scope="module")
async def edge(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RealEdge]:
    from adapters.sql.migrate import migrate

    tmp = tmp_path_factory.mktemp("creation")
    url = f"sqlite+aiosqlite:///{tmp / 'waqup.db'}"
    migrate(url)
    async with real_edge(tmp, url, credential_rate_limit=1000) as running:
        yield running


def reason(response: httpx.Response) -> str:
    body = response.json()
    return next(d["reason"] for d in body.get("details", [])
                if d["@type"].endswith("google.rpc.ErrorInfo"))


async def register(edge: RealEdge) -> tuple[dict[str, str], str]:
    response = await edge.client.post("/v1/auth:register", json={
        "email": f"{uuid.uuid4().hex[:10]}@example.com", "password": "s3cret-pass",
        "display_name": "Sam"})
    assert response.status_code == 200, response.text
    body = response.json()
    headers = {"authorization": f"Bearer {body['access_token']}"}
    # The free credit arrives through the outbox (user.registered).
    for _ in range(100):
        account = (await edge.client.get("/v1/users/me/creditAccount", headers=headers)).json()
        if account["balance"] == 1:
            break
        await asyncio.sleep(0.05)
    return headers, body["access_token"]


async def to_confirmation(edge: RealEdge, headers: dict[str, str],
                          content_type: str = "CONTENT_TYPE_AFFIRMATION") -> dict[str, Any]:
    created = await edge.client.post("/v1/conversations", headers=headers,
                                     json={"content_type": content_type})
    assert created.status_code == 200, created.text
    conversation = created.json()
    assert conversation["messages"][-1]["role"] == "ROLE_ASSISTANT"
    name = conversation["name"]
    for text in [*TURNS, "that's fine", "yes, that's all"]:
        if conversation["state"] == "STATE_CONFIRMATION":
            break
        sent = await edge.client.post(f"/v1/{name}:send", headers=headers, json={"text": text})
        assert sent.status_code == 200, sent.text
        conversation = sent.json()
        assert conversation["messages"][-1]["role"] == "ROLE_ASSISTANT"
    assert conversation["state"] == "STATE_CONFIRMATION", conversation["messages"]
    assert conversation["messages"][-1]["kind"] == "MESSAGE_KIND_SUMMARY"
    return conversation


async def until_done(edge: RealEdge, headers: dict[str, str], content: str,
                     within: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        item = (await edge.client.get(f"/v1/{content}", headers=headers)).json()
        if item["state"] in ("CONTENT_STATE_READY", "CONTENT_STATE_FAILED"):
            return item
        assert time.monotonic() < deadline, item
        await asyncio.sleep(0.2)


async def ledger(edge: RealEdge, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await edge.client.get("/v1/users/me/creditTransactions", headers=headers)
    return response.json()["credit_transactions"]


async def test_the_whole_journey_over_rest(edge: RealEdge) -> None:
    headers, _ = await register(edge)
    conversation = await to_confirmation(edge, headers)
    assert len([m for m in conversation["messages"] if m["role"] == "ROLE_USER"]) >= 4
    name = conversation["name"]

    confirmed = await edge.client.post(f"/v1/{name}:confirm", headers=headers, json={})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["state"] == "STATE_GENERATING"
    content = confirmed.json()["content"]
    again = await edge.client.post(f"/v1/{name}:confirm", headers=headers, json={})
    assert again.json()["content"] == content  # idempotent

    item = await until_done(edge, headers, content)
    assert item["state"] == "CONTENT_STATE_READY", item
    assert item["content_type"] == "CONTENT_TYPE_AFFIRMATION"
    assert item["title"] and item["text"] and item["structure"]["statements"]
    finished = (await edge.client.get(f"/v1/{name}", headers=headers)).json()
    assert finished["state"] == "STATE_COMPLETED"

    library = (await edge.client.get("/v1/users/me/contents", headers=headers)).json()
    assert [c["name"] for c in library["contents"]] == [content]
    filtered = await edge.client.get("/v1/users/me/contents", headers=headers,
                                     params={"filter": "content_type = CONTENT_TYPE_RITUAL"})
    assert filtered.status_code == 200, filtered.text
    assert filtered.json()["contents"] == []

    playback = (await edge.client.get(f"/v1/{content}/playback", headers=headers)).json()
    assert playback["mime_type"] == "audio/mpeg"
    assert playback["uri"].startswith(edge.url + "/v1/media/")
    # The player fetches it directly: no token.
    async with httpx.AsyncClient(timeout=10) as player:
        whole = await player.get(playback["uri"])
        assert whole.status_code == 200, whole.text
        assert whole.headers["content-type"] == "audio/mpeg"
        part = await player.get(playback["uri"], headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206
        assert part.content == whole.content[100:1100]
    decoded = miniaudio.decode(whole.content, nchannels=1)
    seconds = decoded.num_frames / decoded.sample_rate
    stored = float(item["audio_duration"].rstrip("s"))
    assert abs(seconds - stored) <= 1.0, (seconds, stored)
    assert stored > 20

    account = (await edge.client.get("/v1/users/me/creditAccount", headers=headers)).json()
    assert account == {**account, "balance": 0, "held": 0, "available": 0}
    entries = await ledger(edge, headers)
    consumption = [e for e in entries if e["type"] == "TRANSACTION_TYPE_CONSUMPTION"]
    assert len(consumption) == 1
    assert consumption[0]["amount"] == -1
    assert content in consumption[0]["reason"] and "affirmation" in consumption[0]["reason"]


async def test_the_same_over_the_websocket(edge: RealEdge) -> None:
    headers, token = await register(edge)
    created = (await edge.client.post("/v1/conversations", headers=headers, json={})).json()
    url = f"ws://127.0.0.1:{edge.http_port}/v1/{created['name']}:stream"
    frames: list[dict[str, Any]] = []
    async with websockets.connect(url, subprotocols=["waqup.v1", f"bearer.{token}"]) as ws:
        assert ws.subprotocol == "waqup.v1"
        frames.append(json.loads(await ws.recv()))  # the conversation as it stands
        for text in ["I'd like some affirmations", *TURNS, "that's fine"]:
            if frames[-1]["conversation"]["state"] == "STATE_CONFIRMATION":
                break
            await ws.send(json.dumps({"text": text}))
            frames.append(json.loads(await ws.recv()))
            assert frames[-1]["reply"]["role"] == "ROLE_ASSISTANT"
        assert frames[-1]["conversation"]["state"] == "STATE_CONFIRMATION"
        await ws.send(json.dumps({"confirm": True}))
        async with asyncio.timeout(90):
            while True:
                frame = json.loads(await ws.recv())
                frames.append(frame)
                if frame.get("progress", {}).get("stage") in ("ready", "failed"):
                    break
    stages = [f["progress"]["stage"] for f in frames if "progress" in f]
    assert stages[-1] == "ready", frames[-3:]
    content = frames[-1]["progress"]["content"]
    item = (await edge.client.get(f"/v1/{content}", headers=headers)).json()
    assert item["state"] == "CONTENT_STATE_READY"
    assert (await edge.client.get("/v1/users/me/creditAccount",
                                  headers=headers)).json()["balance"] == 0


async def test_the_websocket_needs_a_valid_token(edge: RealEdge) -> None:
    headers, token = await register(edge)
    created = (await edge.client.post("/v1/conversations", headers=headers, json={})).json()
    url = f"ws://127.0.0.1:{edge.http_port}/v1/{created['name']}:stream"
    for bad in (None, token[:-4] + "AAAA"):
        protocols = ["waqup.v1"] + ([f"bearer.{bad}"] if bad else [])
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, subprotocols=protocols):
                pass
        assert refused.value.response.status_code == 401
    # The query parameter works too; another person's conversation does not.
    _other, other_token = await register(edge)
    async with websockets.connect(f"{url}?access_token={other_token}",
                                  subprotocols=["waqup.v1"]) as ws:
        frame = json.loads(await ws.recv())
        assert frame["error"]["code"] == 5  # NOT_FOUND, not PERMISSION_DENIED


async def test_crisis_language_answers_with_resources_and_costs_nothing(edge: RealEdge) -> None:
    headers, _ = await register(edge)
    created = (await edge.client.post("/v1/conversations", headers=headers, json={})).json()
    sent = await edge.client.post(f"/v1/{created['name']}:send", headers=headers,
                                  json={"text": "honestly I just want to kill myself"})
    body = sent.json()
    assert body["messages"][-1]["kind"] == "MESSAGE_KIND_REFUSAL"
    assert "988" in body["messages"][-1]["text"] or "116 123" in body["messages"][-1]["text"]
    assert body["state"] == "STATE_CANCELLED" and body["failure_reason"] == "CRISIS_SUPPORT"
    refused = await edge.client.post(f"/v1/{created['name']}:confirm", headers=headers, json={})
    assert refused.status_code == 400
    assert (await edge.client.get("/v1/users/me/contents", headers=headers)).json()[
        "contents"] == []
    assert (await edge.client.get("/v1/users/me/creditAccount",
                                  headers=headers)).json()["balance"] == 1


async def test_not_enough_credits_is_refused_and_nothing_is_made(edge: RealEdge) -> None:
    headers, _ = await register(edge)  # 1 credit; a meditation costs 2
    conversation = await to_confirmation(edge, headers, "CONTENT_TYPE_GUIDED_MEDITATION")
    refused = await edge.client.post(f"/v1/{conversation['name']}:confirm", headers=headers,
                                     json={})
    assert refused.status_code == 400, refused.text
    assert reason(refused) == "INSUFFICIENT_CREDITS"
    assert (await edge.client.get("/v1/users/me/contents", headers=headers)).json()[
        "contents"] == []
    still = (await edge.client.get(f"/v1/{conversation['name']}", headers=headers)).json()
    assert still["state"] == "STATE_CONFIRMATION"
    assert [e["type"] for e in await ledger(edge, headers)] == ["TRANSACTION_TYPE_GRANT"]


async def test_twenty_confirms_at_once_with_credits_for_three(edge: RealEdge) -> None:
    headers, _ = await register(edge)
    me = (await edge.client.get("/v1/users/me", headers=headers)).json()
    user_id = uuid.UUID(me["name"].rpartition("/")[2])
    await edge.app.container.service("credits").grant(
        f"test:{user_id}", user_id, 2, TransactionType.PURCHASE, "test bundle")
    conversations = [await to_confirmation(edge, headers) for _ in range(20)]
    answers = await asyncio.gather(*(
        edge.client.post(f"/v1/{c['name']}:confirm", headers=headers, json={})
        for c in conversations))
    ok = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code != 200]
    assert len(ok) == 3, [a.text for a in refused][:3]
    assert {reason(a) for a in refused} == {"INSUFFICIENT_CREDITS"}
    items = [await until_done(edge, headers, a.json()["content"]) for a in ok]
    assert {i["state"] for i in items} == {"CONTENT_STATE_READY"}
    account = (await edge.client.get("/v1/users/me/creditAccount", headers=headers)).json()
    assert (account["balance"], account["held"]) == (0, 0)
    entries = await ledger(edge, headers)
    assert len([e for e in entries if e["type"] == "TRANSACTION_TYPE_CONSUMPTION"]) == 3


async def test_other_peoples_things_are_not_found(edge: RealEdge) -> None:
    owner, _ = await register(edge)
    stranger, _ = await register(edge)
    conversation = await to_confirmation(edge, owner)
    confirmed = (await edge.client.post(f"/v1/{conversation['name']}:confirm", headers=owner,
                                        json={})).json()
    content = confirmed["content"]
    await until_done(edge, owner, content)
    missing = f"contents/{uuid.uuid4()}"
    for path in (f"/v1/{content}", f"/v1/{content}/playback", f"/v1/{conversation['name']}"):
        theirs = await edge.client.get(path, headers=stranger)
        assert theirs.status_code == 404, (path, theirs.text)
    nobody = await edge.client.get(f"/v1/{missing}", headers=stranger)
    assert nobody.json()["message"] == (await edge.client.get(
        f"/v1/{content}", headers=stranger)).json()["message"]
    for call in (edge.client.patch(f"/v1/{content}", headers=stranger, json={"title": "mine"}),
                 edge.client.delete(f"/v1/{content}", headers=stranger),
                 edge.client.post(f"/v1/{conversation['name']}:send", headers=stranger,
                                  json={"text": "hello"})):
        assert (await call).status_code == 404
    # The owner may rename, tag and delete it; its audio goes too.
    renamed = await edge.client.patch(f"/v1/{content}", headers=owner,
                                      json={"title": "Morning courage", "tags": ["work"]})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["title"], renamed.json()["tags"]) == ("Morning courage", ["work"])
    playback = (await edge.client.get(f"/v1/{content}/playback", headers=owner)).json()
    assert (await edge.client.delete(f"/v1/{content}", headers=owner)).status_code == 200
    assert (await edge.client.get(f"/v1/{content}", headers=owner)).status_code == 404
    async with httpx.AsyncClient(timeout=10) as player:
        assert (await player.get(playback["uri"])).status_code == 404


def _sign(tmp: Path, key: str, expires: int) -> str:
    raw = (tmp / "media-url.key").read_text().strip()
    secret = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    mac = hmac.new(secret, f"{key}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


async def test_expired_or_tampered_playback_urls_are_refused(edge: RealEdge) -> None:
    headers, _ = await register(edge)
    conversation = await to_confirmation(edge, headers)
    content = (await edge.client.post(f"/v1/{conversation['name']}:confirm", headers=headers,
                                      json={})).json()["content"]
    await until_done(edge, headers, content)
    uri = (await edge.client.get(f"/v1/{content}/playback", headers=headers)).json()["uri"]
    parts = urlsplit(uri)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    key = parts.path.removeprefix("/v1/media/")
    base = f"{edge.url}{parts.path}"
    tmp = Path(edge.app.container.settings.data_dir)
    expired = int(time.time()) - 5
    forged = {
        "expired": f"{base}?expires={expired}&signature={_sign(tmp, key, expired)}",
        "later expiry": f"{base}?expires={int(query['expires']) + 3600}"
                        f"&signature={query['signature']}",
        "bad signature": f"{base}?expires={query['expires']}"
                         f"&signature=AAAA{query['signature'][4:]}",
        "another key": uri.replace(key, key.replace("/1.mp3", "/2.mp3")),
        "no signature": base,
    }
    async with httpx.AsyncClient(timeout=10) as player:
        assert (await player.get(uri)).status_code == 200
        for what, url in forged.items():
            refused = await player.get(url)
            assert refused.status_code == 403, (what, refused.status_code, refused.text)
            assert refused.json()["code"] == 7


class BrokenVoice:
    """A voice that always fails for good (a refused text, a bad key)."""

    sample_rate = 22050

    def voices(self) -> list[Any]:
        return []

    async def synthesize(self, text: str, voice: str, rate: float) -> bytes:
        raise SpeechError("the voice refused the text", retryable=False)

    async def close(self) -> None:
        pass


async def test_a_failing_voice_fails_the_item_and_releases_the_credits(
        tmp_path: Path) -> None:
    from adapters.sql.migrate import migrate

    url = f"sqlite+aiosqlite:///{tmp_path / 'waqup.db'}"
    migrate(url)
    async with real_edge(tmp_path, url, app_overrides={"speech": BrokenVoice()}) as broken:
        headers, _ = await register(broken)
        conversation = await to_confirmation(broken, headers)
        confirmed = await broken.client.post(f"/v1/{conversation['name']}:confirm",
                                             headers=headers, json={})
        item = await until_done(broken, headers, confirmed.json()["content"])
        assert item["state"] == "CONTENT_STATE_FAILED"
        assert item["failure_reason"] == "AUDIO_RENDERING_FAILED"
        finished = (await broken.client.get(f"/v1/{conversation['name']}",
                                            headers=headers)).json()
        assert finished["state"] == "STATE_FAILED"
        account = (await broken.client.get("/v1/users/me/creditAccount",
                                           headers=headers)).json()
        assert (account["balance"], account["held"]) == (1, 0)
        assert "TRANSACTION_TYPE_CONSUMPTION" not in [e["type"] for e in
                                                      await ledger(broken, headers)]
