"""A hostile client against the creation contexts (conversation, library,
content, audio) through the real Envoy in front of the real server (SQLite
file, the offline composer, the Piper voice, signed media URLs).

Whatever it sends, the answer is a clean 4xx: a google.rpc.Status JSON body
with an ErrorInfo reason (or the gRPC status of the same meaning, or an `error`
frame / a clean close on the WebSocket), never a 500 or a hang; another
person's ids answer exactly like missing ones; and nothing is lost or changed.

One app and one Envoy for the module. Two creations in all (they take seconds
each with the real voice), both started by the `world` fixture so that they
run while the cheap tests do: the owner's item, and the racer's item made by
ten confirms at once.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pytest
import websockets

from core.credits.model import TransactionType
from core.library.model import ContentItem, ItemState
from core.shared.creation import Brief, ContentType
from core.shared.ids import uuid7
from services.gen.waqup.common.v1 import creation_pb2 as common_pb
from services.gen.waqup.content.v1 import content_pb2
from services.gen.waqup.library.v1 import library_pb2
from tests.e2e.conftest import RealEdge, real_edge
from tests.e2e.rawhttp import RawResponse, raw_request
from tests.integration.status import details

pytestmark = pytest.mark.envoy

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
TURNS = ["I want to feel more confident before my job interview",
         "The interview is tomorrow morning and I get nervous talking to strangers",
         "Make it about 3 minutes, and focus on self-worth",
         "No preference, that's fine"]
#: Characters the text rule refuses: NUL, DEL, a bidi override, a zero-width
#: space, the BOM.
FORBIDDEN = ("\x00", "\x7f", "\u202e", "\u200b", "\ufeff")
START_CREATION = "/waqup.library.v1.CreationService/StartCreation"
GENERATE_CONTENT = "/waqup.content.v1.ContentGenerationService/GenerateContent"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# --- the module's world --------------------------------------------------------


@dataclass
class User:
    headers: dict[str, str]
    token: str
    id: uuid.UUID

    @property
    def name(self) -> str:
        return f"users/{self.id}"


@dataclass
class World:
    owner: User
    #: Someone else, who tries the owner's ids; has two seeded (FAILED) items.
    stranger: User
    #: Confirmed one conversation ten times at once (credits for five).
    racer: User
    #: The owner's confirmed conversation and its item (READY in time).
    conversation: str
    content: str
    #: The racer's conversation, the ten answers and its account right after.
    race_conversation: str
    race: list[httpx.Response]
    race_account: dict[str, Any]


@pytest.fixture(scope="module")
async def edge(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RealEdge]:
    from adapters.sql.migrate import migrate

    tmp = tmp_path_factory.mktemp("creation-hostile")
    url = f"sqlite+aiosqlite:///{tmp / 'waqup.db'}"
    migrate(url)
    async with real_edge(tmp, url, credential_rate_limit=10_000) as running:
        yield running


@pytest.fixture(scope="module")
async def world(edge: RealEdge) -> World:
    owner, stranger, racer = await asyncio.gather(register(edge), register(edge),
                                                  register(edge))
    credits = edge.app.container.service("credits")
    await credits.grant(f"test:{racer.id}", racer.id, 4, TransactionType.PURCHASE, "bundle")
    await credits.grant(f"test:{stranger.id}", stranger.id, 1, TransactionType.PURCHASE,
                        "bundle")
    await seed_failed_items(edge, stranger, 2)
    mine, theirs = await asyncio.gather(to_confirmation(edge, owner),
                                        to_confirmation(edge, racer))
    confirmed = await edge.client.post(f"/v1/{mine['name']}:confirm", headers=owner.headers,
                                       json={})
    assert confirmed.status_code == 200, confirmed.text
    race = list(await asyncio.gather(*(
        edge.client.post(f"/v1/{theirs['name']}:confirm", headers=racer.headers, json={})
        for _ in range(10))))
    account = (await edge.client.get("/v1/users/me/creditAccount",
                                     headers=racer.headers)).json()
    return World(owner, stranger, racer, mine["name"], confirmed.json()["content"],
                 theirs["name"], race, account)


# --- helpers --------------------------------------------------------------------


async def register(edge: RealEdge) -> User:
    response = await edge.client.post("/v1/auth:register", json={
        "email": f"h-{uuid.uuid4().hex[:12]}@example.com", "password": "s3cret-pass",
        "display_name": "Hostile"})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    headers = {"authorization": f"Bearer {token}"}
    me = (await edge.client.get("/v1/users/me", headers=headers)).json()
    for _ in range(100):  # the free credit comes through the outbox
        account = (await edge.client.get("/v1/users/me/creditAccount", headers=headers)).json()
        if account["balance"] >= 1:
            break
        await asyncio.sleep(0.05)
    return User(headers, token, uuid.UUID(me["name"].rpartition("/")[2]))


async def seed_failed_items(edge: RealEdge, user: User, count: int) -> None:
    """FAILED items written straight to the library (no creation, no voice): a
    library with more than one page, cheaply."""
    now = datetime.now(UTC)
    async with edge.app.container.uow("library")() as uow:
        for _ in range(count):
            await uow.items.add(ContentItem(
                id=uuid7(), user_id=user.id, content_type=ContentType.AFFIRMATION,
                state=ItemState.FAILED, request_id=f"seed:{uuid.uuid4()}", cost=1,
                brief=Brief(content_type=ContentType.AFFIRMATION), created_at=now,
                updated_at=now, title="Seeded", failure_reason="TEXT_GENERATION_FAILED"))
        await uow.commit()


async def new_conversation(edge: RealEdge, user: User, **body: str) -> dict[str, Any]:
    created = await edge.client.post("/v1/conversations", headers=user.headers, json=body)
    assert created.status_code == 200, created.text
    return created.json()


async def to_confirmation(edge: RealEdge, user: User) -> dict[str, Any]:
    conversation = await new_conversation(edge, user, content_type="CONTENT_TYPE_AFFIRMATION")
    for text in [*TURNS, "that's fine", "yes, that's all"]:
        if conversation["state"] == "STATE_CONFIRMATION":
            break
        sent = await edge.client.post(f"/v1/{conversation['name']}:send",
                                      headers=user.headers, json={"text": text})
        assert sent.status_code == 200, sent.text
        conversation = sent.json()
    assert conversation["state"] == "STATE_CONFIRMATION", conversation["messages"]
    return conversation


async def until_done(edge: RealEdge, user: User, content: str,
                     within: float = 120.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            item = (await edge.client.get(f"/v1/{content}", headers=user.headers)).json()
            if item["state"] in ("CONTENT_STATE_READY", "CONTENT_STATE_FAILED"):
                return item
            await asyncio.sleep(0.2)


async def ready(edge: RealEdge, user: User, content: str) -> dict[str, Any]:
    item = await until_done(edge, user, content)
    assert item["state"] == "CONTENT_STATE_READY", item
    return item


def status_of(response: httpx.Response | RawResponse) -> tuple[int, str]:
    """(HTTP status, ErrorInfo reason) of an error reply; fails unless it is a 4xx
    whose body is a google.rpc.Status JSON object with exactly one ErrorInfo."""
    code = response.status_code if isinstance(response, httpx.Response) else response.status
    text = response.text if isinstance(response, httpx.Response) else response.body[:300]
    assert 400 <= code < 500, (code, text)
    assert response.headers["content-type"].startswith("application/json"), (code, text)
    body = response.json()
    assert isinstance(body.get("code"), int) and isinstance(body.get("message"), str), body
    [info] = [d for d in body.get("details", []) if d.get("@type") == ERROR_INFO]
    assert info["domain"] == "waqup.app", body
    return code, info["reason"]


def frame_reason(frame: dict[str, Any]) -> str:
    """The ErrorInfo reason of a WebSocket `error` frame."""
    assert "error" in frame, frame
    [info] = [d for d in frame["error"].get("details", []) if d.get("@type") == ERROR_INFO]
    return info["reason"]


def shape(response: httpx.Response) -> tuple[int, int, str, str]:
    """What a client learns from a refusal: HTTP status, gRPC code, the message
    with ids blanked, the reason."""
    body = response.json()
    return (response.status_code, body["code"], UUID.sub("{id}", body["message"]),
            status_of(response)[1])


async def recv(ws: Any, within: float = 15.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        return json.loads(await ws.recv())


def ws_url(edge: RealEdge, conversation: str, query: str = "") -> str:
    return f"ws://127.0.0.1:{edge.http_port}/v1/{conversation}:stream{query}"


def raw_get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n".encode()


async def library(edge: RealEdge, user: User) -> list[dict[str, Any]]:
    response = await edge.client.get("/v1/users/me/contents", headers=user.headers,
                                     params={"page_size": 100})
    assert response.status_code == 200, response.text
    return response.json()["contents"]


async def account(edge: RealEdge, user: User) -> dict[str, Any]:
    return (await edge.client.get("/v1/users/me/creditAccount", headers=user.headers)).json()


# --- bodies: malformed, wrong types, too big, bad characters -----------------------------


async def test_malformed_json_and_wrong_types_are_400(edge: RealEdge, world: World) -> None:
    """Broken JSON, wrong JSON types and unknown enum names on every creation
    route with a body: 400 MALFORMED_REQUEST (or INVALID_REQUEST for an enum
    number out of range) from the edge, and nothing the client sent is echoed."""
    user = world.stranger
    conversation = await new_conversation(edge, user)
    name = conversation["name"]
    item = (await library(edge, user))[0]
    secret = "SECRET-" + uuid.uuid4().hex
    bodies: dict[tuple[str, str], list[bytes]] = {
        ("POST", "/v1/conversations"): [
            b'{"content_type": ', f'{{"content_type": {secret}}}'.encode(),
            f'["{secret}"]'.encode(), b'{"content_type": ["CONTENT_TYPE_RITUAL"]}',
            f'{{"content_type": "CONTENT_TYPE_{secret}"}}'.encode(),
            b'{"content_type": 99}', b'{"content_type": {"a": 1}}', b'"just a string"',
            b'{"content_type": 1.5}'],
        ("POST", f"/v1/{name}:send"): [
            b'{"text": ', f'{{"text": {secret}}}'.encode(), b'{"text": 5}',
            f'{{"text": ["{secret}"]}}'.encode(), b'{"text": {"a": "b"}}', b"null",
            f'{{"text": "\\ud800{secret}"}}'.encode(), b'\xff\xfe{"text": "x"}',
            b"[" * 5_000 + b"]" * 5_000],
        ("POST", f"/v1/{name}:confirm"): [b'{"name": ', b'{"name": 5}', b"[1, 2]"],
        ("POST", f"/v1/{name}:cancel"): [b"{,}", b'{"name": ["x"]}'],
        ("PATCH", f"/v1/{item['name']}"): [
            b'{"title": ', b'{"title": 5}', b'{"title": ["x"]}', b'{"title": true}',
            b'{"tags": [1, 2]}', b'{"tags": {"a": "b"}}', b'"title"',
            b'{"state": "CONTENT_STATE_NOPE"}', b'{"content_type": "CONTENT_TYPE_NOPE"}',
            b'{"audio_duration": "forever"}'],
    }
    for (method, path), cases in bodies.items():
        for body in cases:
            response = await edge.client.request(
                method, path, content=body, headers={**user.headers,
                                                     "content-type": "application/json"})
            code, reason = status_of(response)
            assert code == 400, (method, path, body[:60], response.text)
            assert reason in ("MALFORMED_REQUEST", "INVALID_REQUEST"), (path, body[:60], reason)
            assert secret not in response.text, response.text
    # Unknown update_mask paths and output-only fields in a mask are refused too.
    for mask in ("state", "title,owner", "name", "../title"):
        response = await edge.client.patch(f"/v1/{item['name']}", headers=user.headers,
                                           params={"update_mask": mask}, json={"title": "x"})
        assert status_of(response)[0] == 400, (mask, response.text)
    after = (await edge.client.get(f"/v1/{name}", headers=user.headers)).json()
    assert after["messages"] == conversation["messages"]
    assert after["state"] == conversation["state"]
    assert (await library(edge, user))[0] == item


async def test_a_scalar_or_nested_lists_for_tags_are_read_as_one_flat_list(
        edge: RealEdge, world: World) -> None:
    """Known and documented (README, request rules): Envoy's transcoder reads a
    single JSON value where a repeated field is wanted as a list of one, and
    flattens nested lists; what reaches the service is then a valid request,
    checked like any other (lengths, characters), acting on the caller's own
    item only. Other wrong types stay 400 MALFORMED_REQUEST."""
    user = world.stranger
    item = (await library(edge, user))[-1]
    for body, tags in ((b'{"tags": "one"}', ["one"]),
                       (b'{"tags": ["a", ["b", ["c"]]]}', ["a", "b", "c"])):
        response = await edge.client.patch(
            f"/v1/{item['name']}", content=body,
            headers={**user.headers, "content-type": "application/json"})
        assert response.status_code == 200, response.text
        assert response.json()["tags"] == tags
    for body in (b'{"tags": [1, 2]}', b'{"tags": {"a": "b"}}', b'{"title": ["x"]}'):
        response = await edge.client.patch(
            f"/v1/{item['name']}", content=body,
            headers={**user.headers, "content-type": "application/json"})
        assert status_of(response)[0] == 400, (body, response.text)
    bad = await edge.client.patch(f"/v1/{item['name']}",
                                  content=b'{"tags": "' + b"x" * 41 + b'"}',
                                  headers={**user.headers, "content-type": "application/json"})
    assert status_of(bad)[0] == 400


async def test_bodies_over_64_kib_are_413(edge: RealEdge, world: World) -> None:
    """A 70 KiB body on :send, on create and on PATCH: 413 REQUEST_TOO_LARGE
    from the edge (sent raw: the edge answers before the body ends)."""
    user = world.stranger
    conversation = await new_conversation(edge, user)
    item = (await library(edge, user))[0]
    big_text = json.dumps({"text": "calm " * 14_000}).encode()
    big_patch = json.dumps({"title": "t", "tags": ["x" * 40] * 1800}).encode()
    big_create = json.dumps({"content_type": "CONTENT_TYPE_RITUAL",
                             "padding": "p" * 70_000}).encode()
    for method, path, body in (("POST", f"/v1/{conversation['name']}:send", big_text),
                               ("PATCH", f"/v1/{item['name']}", big_patch),
                               ("POST", "/v1/conversations", big_create)):
        assert len(body) > 64 * 1024
        head = (f"{method} {path} HTTP/1.1\r\nHost: edge\r\n"
                f"Authorization: Bearer {user.token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        raw = await raw_request(edge.http_port, head,
                                [body[i:i + 16384] for i in range(0, len(body), 16384)])
        assert status_of(raw) == (413, "REQUEST_TOO_LARGE"), (path, raw)
    after = (await edge.client.get(f"/v1/{conversation['name']}", headers=user.headers)).json()
    assert after["messages"] == conversation["messages"]
    assert (await library(edge, user))[0] == item


async def test_bad_text_in_send_is_refused_and_not_stored(edge: RealEdge, world: World) -> None:
    """Control and invisible characters, 4001 characters, an empty text and a
    text of spaces: 400 with a reason, and the conversation is unchanged."""
    user = world.stranger
    conversation = await new_conversation(edge, user)
    path = f"/v1/{conversation['name']}:send"
    for bad in FORBIDDEN:
        response = await edge.client.post(path, headers=user.headers,
                                          json={"text": f"I want{bad} to feel calm"})
        assert status_of(response) == (400, "INVALID_CHARACTERS"), (repr(bad), response.text)
        assert bad not in response.text and "\\u0000" not in response.text
    cases = {"a" * 4001: ("INVALID_REQUEST", "MESSAGE_TOO_LONG"),
             "": ("INVALID_REQUEST", "EMPTY_MESSAGE"),
             " " * 50: ("EMPTY_MESSAGE",), "\n\t \r\n": ("EMPTY_MESSAGE",)}
    for text, reasons in cases.items():
        response = await edge.client.post(path, headers=user.headers, json={"text": text})
        code, reason = status_of(response)
        assert code == 400 and reason in reasons, (text[:10], response.text)
    no_text = await edge.client.post(path, headers=user.headers, json={})
    assert status_of(no_text)[0] == 400, no_text.text
    after = (await edge.client.get(f"/v1/{conversation['name']}", headers=user.headers)).json()
    assert after["messages"] == conversation["messages"]
    assert after["state"] == "STATE_INTENT_DISCOVERY"
    # 4000 characters is the limit, not beyond it.
    fine = await edge.client.post(path, headers=user.headers, json={"text": "a" * 4000})
    assert fine.status_code == 200, fine.text


async def test_bad_title_and_tags_in_patch_are_refused(edge: RealEdge, world: World) -> None:
    """PATCH of a READY item with control or invisible characters in its title
    or tags, an empty or over-long title, too many or bad tags: 400, and the
    item is exactly as it was."""
    owner = world.owner
    await ready(edge, owner, world.content)
    before = (await edge.client.get(f"/v1/{world.content}", headers=owner.headers)).json()
    path = f"/v1/{world.content}"
    for bad in FORBIDDEN:
        for body in ({"title": f"Morning{bad}courage"}, {"tags": ["work", f"ca{bad}lm"]}):
            response = await edge.client.patch(path, headers=owner.headers, json=body)
            assert status_of(response) == (400, "INVALID_CHARACTERS"), (repr(bad), body,
                                                                         response.text)
    invalid = [({"title": "t" * 121}, None), ({"tags": ["x"] * 21}, None),
               ({"tags": [""]}, None), ({"tags": ["x" * 41]}, None),
               ({"title": ""}, "title"), ({"title": "   "}, "title")]
    for body, mask in invalid:
        params = {"update_mask": mask} if mask else {}
        response = await edge.client.patch(path, headers=owner.headers, json=body,
                                           params=params)
        assert status_of(response)[0] == 400, (body, response.status_code, response.text)
    after = (await edge.client.get(path, headers=owner.headers)).json()
    assert after == before


# --- listings: page tokens, filters, page sizes -----------------------------------


async def test_forged_and_foreign_page_tokens_are_invalid(edge: RealEdge, world: World) -> None:
    """A page token is bound to its listing: another user's, another filter's,
    credits' transactions', an altered or made-up one: 400 INVALID_PAGE_TOKEN."""
    stranger, owner = world.stranger, world.owner
    first = await edge.client.get("/v1/users/me/contents", headers=stranger.headers,
                                  params={"page_size": 1})
    assert first.status_code == 200, first.text
    token = first.json()["next_page_token"]
    assert token
    second = await edge.client.get("/v1/users/me/contents", headers=stranger.headers,
                                   params={"page_size": 1, "page_token": token})
    assert second.status_code == 200, second.text  # genuine: works for its owner
    assert second.json()["contents"][0]["name"] != first.json()["contents"][0]["name"]
    transactions = await edge.client.get("/v1/users/me/creditTransactions",
                                         headers=stranger.headers, params={"page_size": 1})
    credits_token = transactions.json()["next_page_token"]
    assert credits_token, transactions.text
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    attempts = [
        (owner, {"page_token": token}),  # another user's listing
        (stranger, {"page_token": token,  # another filter's listing
                    "filter": "content_type = CONTENT_TYPE_AFFIRMATION"}),
        (stranger, {"page_token": credits_token}),  # credits' listing
        (stranger, {"page_token": flipped}), (stranger, {"page_token": token[:-6]}),
        (stranger, {"page_token": "AAAA"}), (stranger, {"page_token": "not a token!"}),
        (stranger, {"page_token": '{"before": "00000000-0000-0000-0000-000000000000"}'}),
        (stranger, {"page_token": str(uuid.uuid4())}),
    ]
    for user, params in attempts:
        response = await edge.client.get("/v1/users/me/contents", headers=user.headers,
                                         params={"page_size": 1, **params})
        assert status_of(response) == (400, "INVALID_PAGE_TOKEN"), (params, response.text)
    response = await edge.client.get("/v1/users/me/creditTransactions",
                                     headers=stranger.headers, params={"page_token": token})
    assert status_of(response) == (400, "INVALID_PAGE_TOKEN"), response.text
    response = await edge.client.get("/v1/users/me/contents", headers=stranger.headers,
                                     params={"page_token": "A" * 2000})
    assert status_of(response)[0] == 400, response.text


async def test_bad_filters_and_page_sizes_are_400(edge: RealEdge, world: World) -> None:
    """Only `content_type = <ContentType>` filters: anything else is 400
    INVALID_FILTER (SQL-ish strings included, and the library is intact after
    them); page_size outside 0-100 is 400."""
    user = world.stranger
    before = await library(edge, user)
    filters = ["content_type = NOPE", 'title = "x"', "content_type = CONTENT_TYPE_UNSPECIFIED",
               "content_type = 1", "content_type != CONTENT_TYPE_RITUAL",
               "content_type = CONTENT_TYPE_RITUAL OR 1=1",
               "content_type = CONTENT_TYPE_RITUAL AND user_id = 'x'",
               "'; DROP TABLE content_items; --", "content_type = 'x' OR '1'='1'",
               "content_type = CONTENT_TYPE_AFFIRMATION)--", "content_type",
               "user_id = " + str(world.owner.id), "content_type = content_type"]
    for value in filters:
        response = await edge.client.get("/v1/users/me/contents", headers=user.headers,
                                         params={"filter": value})
        assert status_of(response) == (400, "INVALID_FILTER"), (value, response.text)
    too_long = await edge.client.get("/v1/users/me/contents", headers=user.headers,
                                     params={"filter": "content_type = " + "A" * 300})
    assert status_of(too_long)[0] == 400, too_long.text
    for size in ("-1", "1000", "101", "2147483648", "abc", "1.5"):
        response = await edge.client.get("/v1/users/me/contents", headers=user.headers,
                                         params={"page_size": size})
        assert status_of(response)[0] == 400, (size, response.text)
    assert await library(edge, user) == before


# --- names -------------------------------------------------------------------------------


async def test_malformed_resource_names_are_4xx(edge: RealEdge, world: World) -> None:
    """Ids that are not UUIDs, escaped slashes and dots, NUL, very long ids: a
    clean 4xx on every content and conversation route."""
    user = world.stranger
    ids = ["not-a-uuid", "..%2F..", "..%2F..%2Fusers%2Fme", "%2e%2e", "%00",
           f"{uuid.uuid4()}%00", f"{uuid.uuid4()}%2Fplayback", "1" * 5000,
           f"{uuid.uuid4()}x", "%7B" + str(uuid.uuid4()) + "%7D%20", "a" * 70]
    for bad in ids:
        routes = [("GET", f"/v1/contents/{bad}", None),
                  ("PATCH", f"/v1/contents/{bad}", {"title": "x"}),
                  ("DELETE", f"/v1/contents/{bad}", None),
                  ("GET", f"/v1/contents/{bad}/playback", None),
                  ("GET", f"/v1/conversations/{bad}", None),
                  ("POST", f"/v1/conversations/{bad}:send", {"text": "hello"}),
                  ("POST", f"/v1/conversations/{bad}:confirm", {}),
                  ("POST", f"/v1/conversations/{bad}:cancel", {})]
        for method, path, body in routes:
            url = httpx.URL(edge.url, raw_path=path.encode())
            response = await edge.client.request(method, url, json=body,
                                                 headers=user.headers)
            code, _ = status_of(response)
            assert code in (400, 404, 414, 431), (method, path[:80], response.text)
    assert len(await library(edge, user)) == 2


# --- other people's ids ------------------------------------------------------------


async def test_another_users_ids_are_exactly_missing_ids(edge: RealEdge, world: World) -> None:
    """Every content and conversation route, with the owner's ids and with
    ids that do not exist, from a stranger: the same 404 (status, code,
    message, reason); over native gRPC too. The owner's item and conversation
    are unchanged afterwards and still work for the owner."""
    owner, stranger = world.owner, world.stranger
    await ready(edge, owner, world.content)
    item_before = (await edge.client.get(f"/v1/{world.content}", headers=owner.headers)).json()
    talk_before = (await edge.client.get(f"/v1/{world.conversation}",
                                         headers=owner.headers)).json()
    own_item = (await library(edge, stranger))[0]["name"]
    own_talk = (await new_conversation(edge, stranger))["name"]

    def routes(content: str, conversation: str) -> list[tuple[str, str, Any]]:
        return [("GET", f"/v1/{content}", None),
                ("PATCH", f"/v1/{content}", {"title": "mine now", "tags": ["stolen"]}),
                ("DELETE", f"/v1/{content}", None),
                ("GET", f"/v1/{content}/playback", None),
                ("GET", f"/v1/{conversation}", None),
                ("POST", f"/v1/{conversation}:send", {"text": "hello there"}),
                ("POST", f"/v1/{conversation}:confirm", {}),
                ("POST", f"/v1/{conversation}:cancel", {})]

    theirs = routes(world.content, world.conversation)
    missing = routes(f"contents/{uuid.uuid4()}", f"conversations/{uuid.uuid4()}")
    for (method, path, body), (_, nowhere, _) in zip(theirs, missing, strict=True):
        response = await edge.client.request(method, path, json=body, headers=stranger.headers)
        nothing = await edge.client.request(method, nowhere, json=body,
                                            headers=stranger.headers)
        assert response.status_code == 404, (method, path, response.text)
        assert shape(response) == shape(nothing), (method, path, response.text, nothing.text)
        assert str(owner.id) not in response.text
    # The owner's name in the body of a request on the stranger's own path.
    for method, path, body in (
            ("PATCH", f"/v1/{own_item}", {"name": world.content, "title": "mine now"}),
            ("POST", f"/v1/{own_talk}:send", {"name": world.conversation, "text": "hi"}),
            ("POST", f"/v1/{own_talk}:cancel", {"name": world.conversation})):
        response = await edge.client.request(method, path, json=body, headers=stranger.headers)
        assert response.status_code in (200, 400, 404), (path, response.text)
    # Native gRPC names the owner's item directly.
    async with grpc.aio.insecure_channel(edge.grpc_target) as channel:
        get = channel.unary_unary("/waqup.library.v1.LibraryService/GetContent")
        outcomes = []
        for name in (world.content, f"contents/{uuid.uuid4()}"):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await get(library_pb2.GetContentRequest(name=name).SerializeToString(),
                          metadata=tuple(stranger.headers.items()), timeout=10)
            outcomes.append((caught.value.code(), caught.value.details(),
                             details(caught.value)[0]))
        assert outcomes[0] == outcomes[1]
        assert outcomes[0][0] == grpc.StatusCode.NOT_FOUND
    item_after = (await edge.client.get(f"/v1/{world.content}", headers=owner.headers)).json()
    talk_after = (await edge.client.get(f"/v1/{world.conversation}",
                                        headers=owner.headers)).json()
    assert item_after == item_before
    assert talk_after == talk_before
    playback = await edge.client.get(f"/v1/{world.content}/playback", headers=owner.headers)
    assert playback.status_code == 200, playback.text


async def test_the_websocket_of_another_users_conversation_is_not_found(
        edge: RealEdge, world: World) -> None:
    """The stranger opening the owner's conversation stream gets the error
    frame a missing conversation gets (NOT_FOUND, same message), then a close;
    no frame shows anything of the owner's."""
    stranger = world.stranger
    frames = []
    for conversation in (world.conversation, f"conversations/{uuid.uuid4()}"):
        async with websockets.connect(ws_url(edge, conversation),
                                      subprotocols=["waqup.v1", f"bearer.{stranger.token}"],
                                      open_timeout=10) as ws:
            frame = await recv(ws)
            with pytest.raises(websockets.ConnectionClosed):
                await recv(ws)
        assert frame_reason(frame) and frame["error"]["code"] == 5, frame
        assert "conversation" not in frame and "progress" not in frame
        frames.append((frame["error"]["code"], UUID.sub("{id}", frame["error"]["message"]),
                       frame_reason(frame)))
    assert frames[0] == frames[1]


# --- internal methods -------------------------------------------------------------


def _start_creation(user: User) -> bytes:
    return library_pb2.StartCreationRequest(
        parent=user.name, request_id=f"evil:{uuid.uuid4()}",
        brief=common_pb.Brief(content_type=common_pb.CONTENT_TYPE_AFFIRMATION,
                              intent="free stuff")).SerializeToString()


def _generate_content(user: User) -> bytes:
    return content_pb2.GenerateContentRequest(
        parent=user.name, request_id=f"evil:{uuid.uuid4()}",
        brief=common_pb.Brief(content_type=common_pb.CONTENT_TYPE_AFFIRMATION,
                              intent="free stuff")).SerializeToString()


async def test_internal_methods_are_never_routed_by_the_edge(
        edge: RealEdge, world: World) -> None:
    """StartCreation and GenerateContent through the edge, native gRPC and POST
    JSON, with a user token, a service token and none: UNIMPLEMENTED / 404,
    and no item is created, no credit held."""
    user = world.stranger
    items, credits = await library(edge, user), await account(edge, user)
    service = edge.app.service_token()
    tokens = [("user", user.token), ("service", service), ("none", None)]
    async with grpc.aio.insecure_channel(edge.grpc_target) as channel:
        for method, request in ((START_CREATION, _start_creation(user)),
                                (GENERATE_CONTENT, _generate_content(user))):
            for what, token in tokens:
                metadata = (("authorization", f"Bearer {token}"),) if token else ()
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await channel.unary_unary(method)(request, metadata=metadata, timeout=10)
                assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED, (
                    method, what, caught.value.code(), caught.value.details())
    body = {"parent": user.name, "request_id": f"evil:{uuid.uuid4()}",
            "brief": {"content_type": "CONTENT_TYPE_AFFIRMATION", "intent": "free stuff"}}
    for method in (START_CREATION, GENERATE_CONTENT,
                   "/waqup.library.v1.CreationService/GetCreation",
                   "/waqup.library.v1.CreationService/ListCreationTitles"):
        for what, token in tokens:
            headers = {"authorization": f"Bearer {token}"} if token else {}
            response = await edge.client.post(method, json=body, headers=headers)
            assert status_of(response) == (404, "NOT_FOUND"), (method, what, response.text)
    assert await library(edge, user) == items
    assert await account(edge, user) == credits


async def test_a_user_token_on_the_workers_port_is_internal_method(
        edge: RealEdge, world: World) -> None:
    """Straight to the worker (past the edge), a user token on the internal
    methods: PERMISSION_DENIED INTERNAL_METHOD, and nothing is created."""
    user = world.stranger
    items, credits = await library(edge, user), await account(edge, user)
    metadata = (("authorization", f"Bearer {user.token}"),)
    for method, request in ((START_CREATION, _start_creation(user)),
                            (GENERATE_CONTENT, _generate_content(user))):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await edge.app.channel.unary_unary(method)(request, metadata=metadata, timeout=10)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED, (
            method, caught.value.details())
        assert details(caught.value)[0] == "INTERNAL_METHOD", method
    assert await library(edge, user) == items
    assert await account(edge, user) == credits


# --- the WebSocket --------------------------------------------------------------------


async def test_garbage_frames_get_error_frames_and_the_stream_goes_on(
        edge: RealEdge, world: World) -> None:
    """Frames that are not a ConverseRequest (not JSON, binary, a JSON array,
    wrong types, two actions, NUL in text, too long, empty, another
    conversation's name): each an `error` frame, and a valid frame after them
    is answered; a frame of only unknown fields changes nothing. A 70 KiB
    frame closes the socket cleanly. Only the valid text is stored."""
    user = world.stranger
    conversation = await new_conversation(edge, user)
    other = await new_conversation(edge, user)
    garbage: list[tuple[str | bytes, tuple[str, ...]]] = [
        ("this is not json {", ("MALFORMED_FRAME",)),
        (b"\x00\x01\x02binary", ("MALFORMED_FRAME",)),
        ("[1, 2, 3]", ("MALFORMED_FRAME",)),
        ('[{"text": "hi"}]', ("MALFORMED_FRAME",)),
        ("null", ("MALFORMED_FRAME",)),
        ('{"text": 5}', ("MALFORMED_FRAME",)),
        ('{"confirm": "yes"}', ("MALFORMED_FRAME",)),
        ('{"text": "x", "cancel": true}', ("MALFORMED_FRAME",)),
        (json.dumps({"text": "calm\x00 please"}), ("INVALID_CHARACTERS",)),
        (json.dumps({"text": "calm\u202e please"}), ("INVALID_CHARACTERS",)),
        (json.dumps({"text": "a" * 4001}), ("MESSAGE_TOO_LONG", "INVALID_REQUEST")),
        (json.dumps({"text": "    "}), ("EMPTY_MESSAGE",)),
        (json.dumps({"name": other["name"], "text": "hi"}), ("CONVERSATION_MISMATCH",)),
        (json.dumps({"name": world.conversation, "cancel": True}),
         ("CONVERSATION_MISMATCH",)),
        (json.dumps({"name": "conversations/../../x", "text": "hi"}),
         ("INVALID_NAME", "CONVERSATION_MISMATCH")),
        (json.dumps({"confirm": True}), ("NOT_READY_TO_CONFIRM",)),
    ]
    async with websockets.connect(ws_url(edge, conversation["name"]),
                                  subprotocols=["waqup.v1", f"bearer.{user.token}"],
                                  open_timeout=10, max_size=None) as ws:
        first = await recv(ws)
        assert first["conversation"]["name"] == conversation["name"]
        for frame, reasons in garbage:
            await ws.send(frame)
            answer = await recv(ws)
            assert "error" in answer, (frame[:60], answer)
            assert frame_reason(answer) in reasons, (frame[:60], answer)
            assert answer["error"]["code"] in (3, 9), answer
            await ws.send("{}")  # the stream goes on: an empty frame is a look
            look = await recv(ws)
            assert look["conversation"]["messages"] == conversation["messages"], (frame[:60],
                                                                                  look)
        # Unknown fields only: ignored like on REST (a no-op), nothing changes.
        await ws.send(json.dumps({"bogus": 1, "role": "ROLE_ASSISTANT"}))
        answer = await recv(ws)
        if "error" not in answer:
            assert "reply" not in answer, answer
            assert answer["conversation"]["messages"] == conversation["messages"]
        await ws.send(json.dumps({"text": TURNS[0]}))
        answer = await recv(ws)
        assert answer["reply"]["role"] == "ROLE_ASSISTANT", answer
        await ws.send(json.dumps({"text": "x" * (70 * 1024)}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:  # an error frame may come first; then the close
                answer = await recv(ws)
                assert "error" in answer, answer
        assert closed.value.rcvd is not None, "no close frame: the connection was dropped"
    after = (await edge.client.get(f"/v1/{conversation['name']}", headers=user.headers)).json()
    said = [m["text"] for m in after["messages"] if m["role"] == "ROLE_USER"]
    assert said == [TURNS[0]], said
    untouched = (await edge.client.get(f"/v1/{other['name']}", headers=user.headers)).json()
    assert untouched["messages"] == other["messages"]
    owners = (await edge.client.get(f"/v1/{world.conversation}",
                                    headers=world.owner.headers)).json()
    assert owners["state"] in ("STATE_GENERATING", "STATE_COMPLETED"), owners["state"]


async def test_a_websocket_frame_that_is_a_json_string_is_refused(
        edge: RealEdge, world: World) -> None:
    """A frame is a JSON ConverseRequest object: a JSON string is refused like a
    JSON array, number or null (MALFORMED_FRAME), not taken as an empty frame."""
    user = world.stranger
    conversation = await new_conversation(edge, user)
    async with websockets.connect(ws_url(edge, conversation["name"]),
                                  subprotocols=["waqup.v1", f"bearer.{user.token}"],
                                  open_timeout=10) as ws:
        await recv(ws)
        for frame in ('"a string"', '""', json.dumps(json.dumps({"text": "hi"}))):
            await ws.send(frame)
            answer = await recv(ws)
            assert "error" in answer, (frame, answer)
            assert frame_reason(answer) == "MALFORMED_FRAME", (frame, answer)


async def test_forged_websocket_tokens_are_401_at_the_handshake(
        edge: RealEdge, world: World) -> None:
    """A forged token in the subprotocol or in `?access_token=`, or none: 401
    with a JSON status before any frame; a malformed id in the path: 4xx."""
    user = world.stranger
    conversation = (await new_conversation(edge, user))["name"]
    head, payload, _signature = user.token.split(".")
    forged = [user.token[:-4] + "AAAA", f"{head}.{payload}.", "not-a-jwt", "a.b.c",
              edge.app.service_token()[:-2] + "xx"]
    attempts: list[tuple[str, list[str]]] = []
    for token in forged:
        attempts.append((ws_url(edge, conversation), ["waqup.v1", f"bearer.{token}"]))
        attempts.append((ws_url(edge, conversation, f"?access_token={token}"), ["waqup.v1"]))
    attempts.append((ws_url(edge, conversation), ["waqup.v1"]))
    for url, protocols in attempts:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, subprotocols=protocols, open_timeout=10):
                pass
        response = refused.value.response
        assert response.status_code == 401, (url[-40:], protocols, response.status_code)
        body = json.loads(response.body)
        assert [d["reason"] for d in body["details"] if d["@type"] == ERROR_INFO], body
    for bad in ("conversations/not-a-uuid", "conversations/..%2F..", "conversations/" + "1" * 500):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(ws_url(edge, bad),
                                          subprotocols=["waqup.v1", f"bearer.{user.token}"],
                                          open_timeout=10):
                pass
        assert 400 <= refused.value.response.status_code < 500, (bad, refused.value.response)
    # The real token still works after all that.
    async with websockets.connect(ws_url(edge, conversation),
                                  subprotocols=["waqup.v1", f"bearer.{user.token}"],
                                  open_timeout=10) as ws:
        assert (await recv(ws))["conversation"]["name"] == conversation


# --- races --------------------------------------------------------------------------


async def test_ten_confirms_at_once_make_one_item_and_one_hold(
        edge: RealEdge, world: World) -> None:
    """The racer confirmed one conversation ten times at once (in the fixture,
    so the creation runs meanwhile): every answer is the same item (or a clean
    4xx), one cost held, one item in the library, and once READY one
    consumption."""
    racer = world.racer
    for answer in world.race:
        if answer.status_code != 200:
            status_of(answer)
    ok = [a for a in world.race if a.status_code == 200]
    assert ok, [a.text for a in world.race]
    contents = {a.json()["content"] for a in ok}
    assert len(contents) == 1 and "" not in contents, contents
    assert (world.race_account["balance"], world.race_account["held"]) == (5, 1), (
        world.race_account)
    [content] = contents
    items = await library(edge, racer)
    assert [i["name"] for i in items] == [content]
    await ready(edge, racer, content)
    after = await account(edge, racer)
    assert (after["balance"], after["held"]) == (4, 0), after
    entries = (await edge.client.get("/v1/users/me/creditTransactions",
                                     headers=racer.headers)).json()["credit_transactions"]
    spent = [e for e in entries if e["type"] == "TRANSACTION_TYPE_CONSUMPTION"]
    assert [e["amount"] for e in spent] == [-1], entries


async def test_send_and_cancel_at_once_end_consistently(edge: RealEdge, world: World) -> None:
    """A message and a cancel at the same moment, on several conversations:
    both answered 200 or a clean 4xx, and the final conversation is CANCELLED
    and holds the message exactly when the send was answered 200."""
    user = world.stranger
    conversations = [await new_conversation(edge, user) for _ in range(5)]
    for conversation in conversations:
        name = conversation["name"]
        text = f"I want to feel calm {uuid.uuid4().hex[:6]}"
        sent, cancelled = await asyncio.gather(
            edge.client.post(f"/v1/{name}:send", headers=user.headers, json={"text": text}),
            edge.client.post(f"/v1/{name}:cancel", headers=user.headers, json={}))
        for response in (sent, cancelled):
            if response.status_code != 200:
                assert status_of(response)[0] in (400, 409), response.text
        assert cancelled.status_code == 200, cancelled.text
        final = (await edge.client.get(f"/v1/{name}", headers=user.headers)).json()
        assert final["state"] == "STATE_CANCELLED", final["state"]
        stored = [m["text"] for m in final["messages"] if m["role"] == "ROLE_USER"]
        assert stored == ([text] if sent.status_code == 200 else []), (sent.text, stored)
        again = await edge.client.post(f"/v1/{name}:send", headers=user.headers,
                                       json={"text": "and another thing"})
        assert status_of(again) == (400, "CONVERSATION_CLOSED"), again.text
        refused = await edge.client.post(f"/v1/{name}:confirm", headers=user.headers, json={})
        assert status_of(refused)[0] == 400, refused.text
    assert len(await library(edge, user)) == 2


# --- signed media URLs ------------------------------------------------------------


async def test_tampered_media_urls_never_serve_another_file(
        edge: RealEdge, world: World) -> None:
    """The owner's signed URL with `..`, doubled slashes, another item's
    signature, another user's key, encoded dots, or another method: 403 / 404 /
    405-class JSON statuses; never 200 with any file; the genuine URL still
    works and its file is intact."""
    owner = world.owner
    await ready(edge, owner, world.content)
    # A second signed URL, of another person's item (the racer's, unless the
    # delete test removed it: then any other key is as good).
    uri = (await edge.client.get(f"/v1/{world.content}/playback",
                                 headers=owner.headers)).json()["uri"]
    async with httpx.AsyncClient(timeout=10) as player:
        genuine = await player.get(uri)
    assert genuine.status_code == 200, genuine.text
    parts = urlsplit(uri)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    key = parts.path.removeprefix("/v1/media/")
    segments = key.split("/")
    assert segments[1] == str(owner.id), key
    qs = f"?expires={query['expires']}&signature={query['signature']}"
    other_key = f"audio/{world.racer.id}/{uuid.uuid4()}/1.mp3"
    fake_sig = "?expires=" + query["expires"] + "&signature=" + "A" * 43
    racer_items = await library(edge, world.racer)
    if racer_items and racer_items[0]["state"] == "CONTENT_STATE_READY":
        racer_uri = (await edge.client.get(f"/v1/{racer_items[0]['name']}/playback",
                                           headers=world.racer.headers)).json()["uri"]
        racer_parts = urlsplit(racer_uri)
        other_key = racer_parts.path.removeprefix("/v1/media/")
        fake_sig = "?" + racer_parts.query
    paths = {
        "dot-dot": f"/v1/media/{'/'.join(segments[:-1])}/../{segments[2]}/{segments[-1]}{qs}",
        "dot-dot out": f"/v1/media/{key}/../../../../{other_key}{qs}",
        "dot-dot to the key file": f"/v1/media/{key}/../../../../media-url.key{qs}",
        "dot-dot from root": f"/v1/media/../../../../etc/passwd{qs}",
        "dot": f"/v1/media/audio/./{'/'.join(segments[1:])}{qs}",
        "doubled slash": f"/v1/media/audio//{'/'.join(segments[1:])}{qs}",
        "leading doubled slash": f"/v1/media//{key}{qs}",
        "trailing slash": f"/v1/media/{key}/{qs}",
        "encoded dots": f"/v1/media/audio/%2e%2e/{'/'.join(segments[1:])}{qs}",
        "encoded slash": f"/v1/media/{key.replace('/', '%2F')}{qs}",
        "another item's signature": f"/v1/media/{key}{fake_sig}",
        "my signature on another key": f"/v1/media/{other_key}{qs}",
        "hidden file": f"/v1/media/audio/{owner.id}/.{segments[2]}{qs}",
        "NUL": f"/v1/media/{key}%00{qs}",
    }
    files: list[bytes] = [genuine.content]
    for what, path in paths.items():
        raw = await raw_request(edge.http_port, raw_get(path))
        assert raw.status in (400, 401, 403, 404, 405), (what, raw.status, raw.body[:200])
        status_of(raw)
        assert raw.body not in files and b"ID3" not in raw.body[:10], what
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        raw = await raw_request(edge.http_port, raw_get(f"/v1/media/{key}{qs}", method))
        assert raw.status in (400, 401, 403, 404, 405, 411, 415), (method, raw.status, raw.body)
        status_of(raw)
    async with httpx.AsyncClient(timeout=10) as player:
        again = await player.get(uri)
    assert again.status_code == 200 and again.content == genuine.content


async def test_delete_while_patching_leaves_no_item(edge: RealEdge, world: World) -> None:
    """DELETE of a READY item while PATCHes of it run: each answer 200 or a
    clean 404, and afterwards the item, its listing entry and its audio are
    gone for good (no PATCH brings it back)."""
    racer = world.racer
    [item] = await library(edge, racer)
    await ready(edge, racer, item["name"])
    uri = (await edge.client.get(f"/v1/{item['name']}/playback",
                                 headers=racer.headers)).json()["uri"]
    patches = [edge.client.patch(f"/v1/{item['name']}", headers=racer.headers,
                                 json={"title": f"Renamed {i}", "tags": [f"t{i}"]})
               for i in range(6)]
    answers = await asyncio.gather(*patches[:3],
                                   edge.client.delete(f"/v1/{item['name']}",
                                                      headers=racer.headers),
                                   *patches[3:])
    deleted = answers[3]
    assert deleted.status_code == 200, deleted.text
    for answer in answers:
        if answer.status_code != 200:
            assert status_of(answer) == (404, "CONTENT_NOT_FOUND"), answer.text
    gone = await edge.client.get(f"/v1/{item['name']}", headers=racer.headers)
    assert status_of(gone) == (404, "CONTENT_NOT_FOUND"), gone.text
    late = await edge.client.patch(f"/v1/{item['name']}", headers=racer.headers,
                                   json={"title": "back from the dead"})
    assert status_of(late)[0] == 404, late.text
    assert await library(edge, racer) == []
    async with httpx.AsyncClient(timeout=10) as player:
        assert status_of(await player.get(uri))[0] in (403, 404)


async def test_nothing_in_the_module_answered_5xx(edge: RealEdge, world: World) -> None:
    """Last, over all the traffic of the module: no request through the edge was
    answered 5xx or with gRPC UNKNOWN / INTERNAL / DATA_LOSS, and no call on the
    worker ended so (an unexpected error the tests above might have let pass,
    e.g. inside a race)."""
    # Envoy derives grpc_status from the HTTP status of REST replies (400 reads
    # as 13): only a 200 (native gRPC) line's grpc_status is the service's.
    bad_http = [line for line in edge.log_lines()
                if int(line["response_code"]) >= 500
                or (line["response_code"] == 200 and line["grpc_status"] in (2, 13, 15))]
    assert not bad_http, bad_http[:5]
    bad_rpc = [line for line in edge.app.access_lines()
               if line["code"] in ("UNKNOWN", "INTERNAL", "DATA_LOSS")]
    assert not bad_rpc, bad_rpc[:5]
