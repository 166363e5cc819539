"""The marketplace end to end, through the real Envoy in front of the real
server, on SQLite (FTS5 search) and on PostgreSQL (tsvector + pg_trgm):

a creator publishes a pack of two of their items -> a misspelt query finds
it -> a listener may not play it -> buys it through the payment simulator's
page -> Stripe-format webhooks arrive, signed -> access granted, playback
works, the creator's reward account moved -> a refund takes it all back.
Then the webhook attacks: a forged signature is 401 and changes nothing; the
same events delivered ten times at once and out of order make one purchase
and one reward; a credit bundle's credits arrive and leave with its refund.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from adapters.stripe import events as stripe_events
from core.credits.model import TransactionType
from core.payments.facts import CheckoutMode
from core.payments.signature import sign
from services.contexts.payments.wiring import webhook_secret
from tests.backends import create_pg_database, drop_pg_database
from tests.e2e.conftest import RealEdge, real_edge
from tests.e2e.test_creation import reason, register, to_confirmation, until_done

pytestmark = pytest.mark.envoy

WEBHOOK = "/v1/webhooks/stripe"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                                marks=pytest.mark.postgres)])
async def edge(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RealEdge]:
    from adapters.sql.migrate import migrate

    tmp = tmp_path_factory.mktemp(f"market-{request.param}")
    url = (f"sqlite+aiosqlite:///{tmp / 'waqup.db'}" if request.param == "sqlite"
           else create_pg_database())
    migrate(url)
    try:
        async with real_edge(tmp, url, credential_rate_limit=1000) as running:
            yield running
    finally:
        if request.param == "postgres":
            drop_pg_database(url)


async def eventually(check: Callable[[], Awaitable[Any]], what: str,
                     within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"not within {within}s: {what}"
        await asyncio.sleep(0.1)


async def user_id(edge: RealEdge, headers: dict[str, str]) -> uuid.UUID:
    me = (await edge.client.get("/v1/users/me", headers=headers)).json()
    return uuid.UUID(me["name"].rpartition("/")[2])


async def ready_item(edge: RealEdge, headers: dict[str, str]) -> str:
    conversation = await to_confirmation(edge, headers)
    confirmed = await edge.client.post(f"/v1/{conversation['name']}:confirm", headers=headers,
                                       json={})
    assert confirmed.status_code == 200, confirmed.text
    item = await until_done(edge, headers, confirmed.json()["content"])
    assert item["state"] == "CONTENT_STATE_READY", item
    return str(item["name"])


def roles(token: str) -> list[str]:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return list(claims.get("roles", []))


async def creator_with_pack(edge: RealEdge, title: str, price_units: int = 4,
                            members_only: bool = False, monthly: bool = False,
                            ) -> dict[str, Any]:
    """A creator, two READY items and a published pack of them (one-time, a
    monthly subscription, or members-only)."""
    headers, _ = await register(edge)
    me = await user_id(edge, headers)
    await edge.app.container.service("credits").grant(
        f"test:{uuid.uuid4()}", me, 10, TransactionType.PURCHASE, "test credits")
    items = [await ready_item(edge, headers) for _ in range(2)]
    became = await edge.client.post("/v1/creators", headers=headers, json={
        "display_name": "Maya Sol", "bio": "Sleep and breath.",
        "links": ["https://maya.example.com"]})
    assert became.status_code == 200, became.text
    again = await edge.client.post("/v1/creators", headers=headers,
                                   json={"display_name": "Maya"})
    assert (again.status_code, reason(again)) == (409, "CREATOR_EXISTS")
    price = ({"price_type": "PRICE_TYPE_SUBSCRIPTION"} if members_only else {
        "price_type": "PRICE_TYPE_SUBSCRIPTION" if monthly else "PRICE_TYPE_ONE_TIME",
        "price": {"currency_code": "EUR", "units": price_units, "nanos": 990_000_000},
        **({"subscription_interval": "SUBSCRIPTION_INTERVAL_MONTHLY"} if monthly else {})})
    draft = await edge.client.post("/v1/packs", headers=headers, json={
        "title": title, "description": "Ten nights of slow breathing before sleep.",
        "tags": ["Sleep", "evening"], **price})
    assert draft.status_code == 200, draft.text
    pack = draft.json()
    assert pack["state"] == "PACK_STATE_DRAFT"
    if not members_only:
        assert pack["price"] == {"currency_code": "EUR", "units": str(price_units),
                                 "nanos": 990_000_000}
    early = await edge.client.post(f"/v1/{pack['name']}:publish", headers=headers, json={})
    assert (early.status_code, reason(early)) == (400, "PACK_INCOMPLETE")
    for content in items:
        added = await edge.client.post(f"/v1/{pack['name']}/items", headers=headers,
                                       json={"content": content})
        assert added.status_code == 200, added.text
    published = await edge.client.post(f"/v1/{pack['name']}:publish", headers=headers, json={})
    assert published.status_code == 200, published.text
    assert published.json()["state"] == "PACK_STATE_PUBLISHED"
    assert published.json()["item_count"] == 2
    return {"headers": headers, "pack": pack["name"], "items": items, "user": me}


async def listener(edge: RealEdge) -> dict[str, str]:
    headers, _ = await register(edge)
    return headers


async def pay(edge: RealEdge, headers: dict[str, str], pack: str, outcome: str = "succeeded",
              ) -> dict[str, Any]:
    checkout = await edge.client.post("/v1/checkoutSessions", headers=headers,
                                      json={"pack": pack})
    assert checkout.status_code == 200, checkout.text
    session = checkout.json()
    assert session["url"].startswith(edge.url + "/v1/checkoutSessions/")
    page = await edge.client.get(session["url"])
    assert page.status_code == 200 and "EUR" in page.text
    paid = await edge.client.post(session["url"], data={"outcome": outcome})
    assert paid.status_code == 200, paid.text
    return session


async def test_a_pack_is_made_found_bought_played_and_refunded(edge: RealEdge) -> None:
    made = await creator_with_pack(edge, "Deep Sleep Meditation Series")
    # The role comes with the next token.
    refreshed = await edge.client.post("/v1/auth:login", json={
        "email": (await edge.client.get("/v1/users/me", headers=made["headers"])).json()["email"],
        "password": "s3cret-pass"})
    assert "creator" in roles(refreshed.json()["access_token"])

    buyer = await listener(edge)

    async def found() -> Any:
        response = await edge.client.get("/v1/packs:search", headers=buyer,
                                         params={"query": "meditaton sleap"})
        assert response.status_code == 200, response.text
        return [p for p in response.json()["packs"] if p["name"] == made["pack"]]

    [hit] = await eventually(found, "the published pack in search")
    assert hit["creator_profile"]["display_name"] == "Maya Sol"
    assert hit["owned"] is False
    filtered = await edge.client.get("/v1/packs:search", headers=buyer, params={
        "query": "sleep", "filter": 'tag = "sleep" AND price_type = PRICE_TYPE_ONE_TIME',
        "order_by": "newest"})
    assert filtered.status_code == 200, filtered.text
    assert made["pack"] in [p["name"] for p in filtered.json()["packs"]]

    content = made["items"][0]
    refused = await edge.client.get(f"/v1/{content}/playback", headers=buyer)
    assert (refused.status_code, reason(refused)) == (403, "PACK_NOT_OWNED")

    session = await pay(edge, buyer, made["pack"])

    async def owned() -> Any:
        mine = (await edge.client.get("/v1/users/me/packs", headers=buyer)).json()
        return [p for p in mine["packs"] if p["name"] == made["pack"]]

    [mine] = await eventually(owned, "the pack among the buyer's packs")
    assert mine["owned"] is True
    playback = await edge.client.get(f"/v1/{content}/playback", headers=buyer)
    assert playback.status_code == 200, playback.text
    async with httpx.AsyncClient(timeout=10) as player:
        assert (await player.get(playback.json()["uri"])).status_code == 200
    purchases = (await edge.client.get("/v1/users/me/purchases", headers=buyer)).json()
    assert [(p["pack"], p["state"]) for p in purchases["purchases"]] == [
        (made["pack"], "PURCHASE_STATE_COMPLETED")]
    state = (await edge.client.get(f"/v1/{session['name']}", headers=buyer)).json()
    assert state["state"] == "CHECKOUT_STATE_COMPLETED"

    async def rewarded() -> Any:
        account = (await edge.client.get("/v1/creators/me/rewardAccount",
                                         headers=made["headers"])).json()
        return account["balances"]

    # 70% of 4.99 EUR, in cents.
    assert await eventually(rewarded, "the reward") == [{"currency_code": "EUR",
                                                         "tokens": "349"}]
    again = await edge.client.post("/v1/checkoutSessions", headers=buyer,
                                   json={"pack": made["pack"]})
    assert (again.status_code, reason(again)) == (409, "ALREADY_OWNED")
    # Recommendations (offline embeddings on): never what the buyer owns,
    # each with a reason.
    suggested = await edge.client.get("/v1/users/me/recommendations", headers=buyer)
    assert suggested.status_code == 200, suggested.text
    for entry in suggested.json().get("recommendations", []):
        assert entry["pack"]["name"] != made["pack"] and entry["reason"]

    # A refund from the provider's side takes it all back.
    refunded = await edge.client.post(session["url"], data={"outcome": "refunded"})
    assert refunded.status_code == 200, refunded.text

    async def revoked() -> bool:
        response = await edge.client.get(f"/v1/{content}/playback", headers=buyer)
        return response.status_code == 403

    await eventually(revoked, "access revoked")
    purchases = (await edge.client.get("/v1/users/me/purchases", headers=buyer)).json()
    assert purchases["purchases"][0]["state"] == "PURCHASE_STATE_REFUNDED"

    async def reversed_() -> Any:
        return (await rewarded()) == [{"currency_code": "EUR", "tokens": "0"}]

    await eventually(reversed_, "the reward reversed")
    history = (await edge.client.get("/v1/creators/me/rewardTransactions",
                                     headers=made["headers"])).json()
    assert [(t["type"], t["tokens"], t["balance_after"])
            for t in history["reward_transactions"]] == [
        ("REWARD_TRANSACTION_TYPE_REVERSAL", "-349", "0"),
        ("REWARD_TRANSACTION_TYPE_ACCRUAL", "349", "349")]


def signed(edge: RealEdge, event: dict[str, Any], *, secret: str | None = None,
           at: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    key = secret or webhook_secret(edge.app.container.settings)
    return body, {"content-type": "application/json",
                  "stripe-signature": sign(body, key, at or int(time.time()))}


async def test_forged_webhooks_are_refused_and_change_nothing(edge: RealEdge) -> None:
    made = await creator_with_pack(edge, "Forged Morning Ritual")
    buyer = await listener(edge)
    checkout = (await edge.client.post("/v1/checkoutSessions", headers=buyer,
                                       json={"pack": made["pack"]})).json()
    checkout_id = uuid.UUID(checkout["name"].rpartition("/")[2])
    event = stripe_events.checkout_session_completed(
        checkout_id=checkout_id, mode=CheckoutMode.PAYMENT, amount_minor=499, currency="EUR",
        payment_intent="pi_forged")
    for body, headers in (
            signed(edge, event, secret="whsec_not-ours"),
            signed(edge, event, at=int(time.time()) - 3600),
            (json.dumps(event).encode(), {"content-type": "application/json"}),
            (signed(edge, event)[0] + b" ", signed(edge, event)[1])):
        response = await edge.client.post(WEBHOOK, content=body, headers=headers)
        assert (response.status_code, reason(response)) == (401, "INVALID_SIGNATURE")
    # Signed but not an event: 400. Signed, an event, but not one we can
    # read (another integration's): acknowledged and ignored.
    body = b"not json"
    response = await edge.client.post(WEBHOOK, content=body, headers={
        "content-type": "application/json", "stripe-signature": sign(
            body, webhook_secret(edge.app.container.settings), int(time.time()))})
    assert (response.status_code, reason(response)) == (400, "MALFORMED_EVENT")
    foreign, headers = signed(edge, {"id": f"evt_{uuid.uuid4().hex}",
                                     "type": "checkout.session.completed",
                                     "data": {"object": []}})
    response = await edge.client.post(WEBHOOK, content=foreign, headers=headers)
    assert response.status_code == 202, response.text
    await asyncio.sleep(0.5)
    assert (await edge.client.get("/v1/users/me/purchases", headers=buyer)).json()[
        "purchases"] == []
    state = (await edge.client.get(f"/v1/{checkout['name']}", headers=buyer)).json()
    assert state["state"] == "CHECKOUT_STATE_OPEN"


async def test_ten_concurrent_out_of_order_deliveries_make_one_purchase(edge: RealEdge) -> None:
    made = await creator_with_pack(edge, "Concurrent Calm Collection", price_units=9)
    buyer = await listener(edge)
    checkout = (await edge.client.post("/v1/checkoutSessions", headers=buyer,
                                       json={"pack": made["pack"]})).json()
    checkout_id = uuid.UUID(checkout["name"].rpartition("/")[2])
    intent = f"pi_test_{uuid.uuid4().hex[:12]}"
    completed = stripe_events.checkout_session_completed(
        checkout_id=checkout_id, mode=CheckoutMode.PAYMENT, amount_minor=999, currency="EUR",
        payment_intent=intent)
    succeeded = stripe_events.payment_intent_succeeded(
        payment_intent=intent, amount_minor=999, currency="EUR", checkout_id=checkout_id)
    deliveries = [completed] * 10 + [succeeded] * 10
    random.Random(7).shuffle(deliveries)
    answers = await asyncio.gather(*(
        edge.client.post(WEBHOOK, content=body, headers=headers)
        for body, headers in (signed(edge, e) for e in deliveries)))
    assert [a.status_code for a in answers] == [202] * 20
    assert sum(not a.json()["duplicate"] for a in answers) == 2  # one per event id

    async def rewarded() -> Any:
        account = (await edge.client.get("/v1/creators/me/rewardAccount",
                                         headers=made["headers"])).json()
        return account["balances"]

    assert await eventually(rewarded, "the reward") == [{"currency_code": "EUR",
                                                         "tokens": "699"}]
    await asyncio.sleep(0.5)  # anything late would show now
    purchases = (await edge.client.get("/v1/users/me/purchases", headers=buyer)).json()
    assert len(purchases["purchases"]) == 1
    history = (await edge.client.get("/v1/creators/me/rewardTransactions",
                                     headers=made["headers"])).json()
    assert len(history["reward_transactions"]) == 1
    # The refund of another delivery order: before its charge is known it
    # waits (retried), then applies once.
    refund = stripe_events.charge_refunded(payment_intent=intent, amount_minor=999,
                                           amount_refunded=999, currency="EUR")
    answers = await asyncio.gather(*(
        edge.client.post(WEBHOOK, content=body, headers=headers)
        for body, headers in [signed(edge, refund)] * 5))
    assert [a.status_code for a in answers] == [202] * 5

    async def reversed_() -> Any:
        return (await rewarded()) == [{"currency_code": "EUR", "tokens": "0"}]

    await eventually(reversed_, "the reward reversed")


async def test_a_credit_bundle_grants_credits_and_a_refund_takes_the_unspent_back(
        edge: RealEdge) -> None:
    buyer = await listener(edge)
    bundles = (await edge.client.get("/v1/creditBundles")).json()["credit_bundles"]
    small = bundles[0]
    assert small["name"] == "creditBundles/small" and small["credits"] == 10
    checkout = await edge.client.post("/v1/checkoutSessions", headers=buyer,
                                      json={"credit_bundle": small["name"]})
    assert checkout.status_code == 200, checkout.text
    url = checkout.json()["url"]
    assert (await edge.client.post(url, data={"outcome": "succeeded"})).status_code == 200

    async def balance() -> int:
        account = (await edge.client.get("/v1/users/me/creditAccount", headers=buyer)).json()
        return int(account["balance"])

    await eventually(lambda: _equals(balance, 11), "the bundle's credits")
    assert (await edge.client.post(url, data={"outcome": "refunded"})).status_code == 200
    await eventually(lambda: _equals(balance, 1), "the bundle's credits taken back")


async def _equals(read: Callable[[], Awaitable[int]], expected: int) -> bool:
    return await read() == expected


async def test_declined_payments_and_bad_checkouts(edge: RealEdge) -> None:
    made = await creator_with_pack(edge, "Declined Dawn Affirmations")
    buyer = await listener(edge)
    session = await pay(edge, buyer, made["pack"], outcome="declined")

    async def expired() -> bool:
        state = (await edge.client.get(f"/v1/{session['name']}", headers=buyer)).json()
        return state["state"] == "CHECKOUT_STATE_EXPIRED"

    await eventually(expired, "the declined session expired")
    own = await edge.client.post("/v1/checkoutSessions", headers=made["headers"],
                                 json={"pack": made["pack"]})
    assert (own.status_code, reason(own)) == (400, "PACK_NOT_FOR_SALE")
    both = await edge.client.post("/v1/checkoutSessions", headers=buyer, json={
        "pack": made["pack"], "credit_bundle": "creditBundles/small"})
    assert (both.status_code, reason(both)) == (400, "INVALID_CHECKOUT")
    unknown = await edge.client.post("/v1/checkoutSessions", headers=buyer,
                                     json={"pack": f"packs/{uuid.uuid4()}"})
    assert unknown.status_code == 404
    other = await edge.client.get(f"/v1/{session['name']}", headers=made["headers"])
    assert other.status_code == 404


async def test_hostile_clients_get_clear_errors_and_change_nothing(edge: RealEdge) -> None:
    creator, _ = await register(edge)
    assert (await edge.client.post("/v1/creators", headers=creator,
                                   json={"display_name": "Ana"})).status_code == 200
    stranger, _ = await register(edge)
    draft = (await edge.client.post("/v1/packs", headers=creator, json={
        "title": "Mine", "price_type": "PRICE_TYPE_FREE"})).json()

    async def status(method: str, path: str, **kw: Any) -> tuple[int, str]:
        response = await edge.client.request(method, path, **kw)
        assert response.status_code < 500, (path, response.text)
        body = response.json() if response.headers.get("content-type", "").startswith(
            "application/json") else {}
        reasons = [d.get("reason") for d in body.get("details", []) if "reason" in d]
        return response.status_code, (reasons[0] if reasons else "")

    # Someone else's draft does not exist to them; their pack is not theirs to change.
    assert (await status("GET", f"/v1/{draft['name']}", headers=stranger))[0] == 404
    assert (await status("PATCH", f"/v1/{draft['name']}", headers=stranger,
                         json={"title": "x"}))[0] == 404
    assert await status("POST", f"/v1/{draft['name']}:archive", headers=stranger,
                        json={}) == (404, "NOT_FOUND")
    assert (await status("POST", "/v1/packs", headers=stranger,
                         json={"title": "x"})) == (400, "NOT_A_CREATOR")
    # Names, prices, filters, orders, page tokens and text that make no sense.
    bad = [
        ("GET", "/v1/packs/not-a-uuid", {}),
        ("POST", "/v1/packs", {"json": {"title": "x", "price_type": "PRICE_TYPE_ONE_TIME",
                                        "price": {"currency_code": "EUR", "units": 1,
                                                  "nanos": 5}}}),
        ("POST", "/v1/packs", {"json": {"title": "x", "price_type": "PRICE_TYPE_ONE_TIME",
                                        "price": {"currency_code": "ZZZ", "units": 5}}}),
        ("POST", "/v1/packs", {"json": {"title": "x", "price_type": "PRICE_TYPE_FREE",
                                        "price": {"currency_code": "EUR", "units": 5}}}),
        ("POST", "/v1/packs", {"json": {"title": "x" * 121}}),
        ("GET", "/v1/packs:search", {"params": {"filter": "owner = me"}}),
        ("GET", "/v1/packs:search", {"params": {"filter": 'tag = "a" AND tag = "b"'}}),
        ("GET", "/v1/packs:search", {"params": {"order_by": "price desc"}}),
        ("GET", "/v1/packs:search", {"params": {"page_token": "forged"}}),
        ("GET", "/v1/packs:search", {"params": {"query": "x" * 201}}),
        ("POST", "/v1/checkoutSessions", {"json": {"credit_bundle": "bundles/small"}}),
        ("POST", "/v1/checkoutSessions", {"json": {}}),
        ("PATCH", f"/v1/{draft['name']}", {"params": {"update_mask": "state"},
                                           "json": {"title": "x"}}),
    ]
    for method, path, kw in bad:
        code, _ = await status(method, path, headers=creator, **kw)
        assert code == 400, (method, path, kw, code)
    # Memberships and recommendations.
    for method, path, kw, expected in (
            ("POST", "/v1/users/me/subscription", {"json": {"plan": "plans/monthly"}}, 400),
            ("POST", "/v1/users/me/subscription", {"json": {"plan": "subscriptionPlans/x.y"}},
             400),
            ("POST", "/v1/users/me/subscription", {"json": {"plan": "subscriptionPlans/gold"}},
             404),
            ("POST", "/v1/users/me/subscription:cancel", {"json": {}}, 404),
            ("GET", "/v1/users/me/subscription", {}, 404),
            ("GET", "/v1/users/me/recommendations", {"params": {"page_size": 1000}}, 400),
            ("GET", f"/v1/users/{uuid.uuid4()}/recommendations", {}, 404)):
        code, _ = await status(method, path, headers=stranger, **kw)
        assert code == expected, (method, path, kw, code)
    # A search token is bound to its query.
    page = (await edge.client.get("/v1/packs:search", headers=creator,
                                  params={"page_size": 1})).json()
    if page.get("next_page_token"):
        other = await status("GET", "/v1/packs:search", headers=creator, params={
            "query": "other", "page_token": page["next_page_token"]})
        assert other == (400, "INVALID_PAGE_TOKEN")
    # Odd text is words or nothing, never an error; control characters are
    # refused by the request path's text rule, as everywhere.
    for query in ('"', "a:b (c) OR NOT", "méditation", "*", "' OR 1=1 --", "\uff21\uff22\uff23"):
        assert (await status("GET", "/v1/packs:search", headers=creator,
                             params={"query": query}))[0] == 200
    assert await status("GET", "/v1/packs:search", headers=creator,
                        params={"query": "\t\x07"}) == (400, "INVALID_CHARACTERS")
    # Internal methods are not routed; another person's checkout is not found.
    internal = await edge.client.post("/waqup.catalog.v1.AccessService/CheckAccess",
                                      headers={**creator, "content-type": "application/json"},
                                      content=b"{}")
    assert internal.status_code in (403, 404)
    assert (await status("GET", f"/v1/checkoutSessions/{uuid.uuid4()}",
                         headers=creator))[0] == 404
    # The simulator's page of an unknown session, a bad outcome, an oversized form.
    missing = await edge.client.get(f"/v1/checkoutSessions/{uuid.uuid4()}/simulator")
    assert missing.status_code == 404
    assert (await edge.client.post(f"/v1/checkoutSessions/{uuid.uuid4()}/simulator",
                                   data={"outcome": "x" * 200_000})).status_code == 413
    # The webhook with no body, a huge body, a GET.
    assert (await edge.client.post(WEBHOOK, content=b"",
                                   headers={"content-type": "application/json"})
            ).status_code == 401
    assert (await edge.client.post(WEBHOOK, content=b"{" + b" " * 200_000 + b"}",
                                   headers={"content-type": "application/json"})
            ).status_code == 413
    assert (await edge.client.get(WEBHOOK)).status_code in (404, 405)


async def test_a_membership_plays_members_only_packs_until_it_lapses(edge: RealEdge) -> None:
    made = await creator_with_pack(edge, "Members Evening Wind Down", members_only=True)
    member = await listener(edge)
    content = made["items"][0]
    refused = await edge.client.get(f"/v1/{content}/playback", headers=member)
    assert (refused.status_code, reason(refused)) == (403, "PACK_NOT_OWNED")
    bought = await edge.client.post("/v1/checkoutSessions", headers=member,
                                    json={"pack": made["pack"]})
    assert (bought.status_code, reason(bought)) == (400, "PACK_NOT_FOR_SALE")
    plans = (await edge.client.get("/v1/subscriptionPlans")).json()["subscription_plans"]
    assert [(p["name"], p["interval"]) for p in plans] == [
        ("subscriptionPlans/monthly", "month"), ("subscriptionPlans/annual", "year")]
    none = await edge.client.get("/v1/users/me/subscription", headers=member)
    assert none.status_code == 404
    started = await edge.client.post("/v1/users/me/subscription", headers=member,
                                     json={"plan": "subscriptionPlans/monthly"})
    assert started.status_code == 200, started.text
    url = started.json()["url"]
    assert (await edge.client.post(url, data={"outcome": "succeeded"})).status_code == 200

    async def plays() -> bool:
        response = await edge.client.get(f"/v1/{content}/playback", headers=member)
        return response.status_code == 200

    await eventually(plays, "members-only playback")
    subscription = (await edge.client.get("/v1/users/me/subscription", headers=member)).json()
    assert subscription["state"] == "SUBSCRIPTION_STATE_ACTIVE"
    assert subscription["plan"] == "subscriptionPlans/monthly"
    again = await edge.client.post("/v1/users/me/subscription", headers=member,
                                   json={"plan": "subscriptionPlans/annual"})
    assert (again.status_code, reason(again)) == (409, "ALREADY_SUBSCRIBED")
    mine = (await edge.client.get("/v1/users/me/packs", headers=member)).json()
    assert made["pack"] in [p["name"] for p in mine["packs"]]

    # The member practises a members-only item; the next fee paid is shared
    # with its creator by plays.
    practice = await edge.client.post(f"/v1/{content}/practices", headers=member, json={})
    assert practice.status_code == 200, practice.text
    done = await edge.client.post(f"/v1/{practice.json()['name']}:complete", headers=member,
                                  json={"listened_duration": "1s"})
    assert done.status_code == 200, done.text
    await asyncio.sleep(1.0)  # the play reaches rewards through two events
    assert (await edge.client.post(url, data={"outcome": "renewed"})).status_code == 200

    async def shared() -> Any:
        history = (await edge.client.get("/v1/creators/me/rewardTransactions",
                                         headers=made["headers"])).json()
        return history.get("reward_transactions")

    [share] = await eventually(shared, "the creator's share of the renewal")
    assert (share["type"], share["tokens"], share["plays"], share["total_plays"]) == (
        "REWARD_TRANSACTION_TYPE_MEMBERSHIP", "699", 1, 1)

    # Cancelling stops the renewal; the period paid still plays.
    cancelled = await edge.client.post("/v1/users/me/subscription:cancel", headers=member,
                                       json={})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancel_at_period_end"] is True
    await asyncio.sleep(0.5)
    assert await plays()
    # The membership lapses (the provider ends it): access ends.
    assert (await edge.client.post(url, data={"outcome": "lapsed"})).status_code == 200

    async def ended() -> bool:
        response = await edge.client.get(f"/v1/{content}/playback", headers=member)
        return response.status_code == 403

    await eventually(ended, "access ended with the membership")
    subscription = (await edge.client.get("/v1/users/me/subscription", headers=member)).json()
    assert subscription["state"] == "SUBSCRIPTION_STATE_ENDED"
    gone = await edge.client.post("/v1/users/me/subscription:cancel", headers=member, json={})
    assert (gone.status_code, reason(gone)) == (400, "SUBSCRIPTION_ENDED")


def wav(seconds: float, amplitude: float, rate: int = 22050) -> bytes:
    """A mono 16-bit WAV of a slowly swelling 220 Hz tone (or silence)."""
    import io
    import math
    import wave

    frames = bytearray()
    for n in range(int(seconds * rate)):
        swell = 0.75 + 0.25 * math.sin(2 * math.pi * 0.2 * n / rate)
        value = amplitude * swell * math.sin(2 * math.pi * 220 * n / rate)
        frames += int(value * 32767).to_bytes(2, "little", signed=True)
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(bytes(frames))
    return out.getvalue()


async def test_an_uploaded_recording_is_checked_and_joins_the_pack(edge: RealEdge) -> None:
    creator, _ = await register(edge)
    assert (await edge.client.post("/v1/creators", headers=creator,
                                   json={"display_name": "Ana"})).status_code == 200
    pack = (await edge.client.post("/v1/packs", headers=creator, json={
        "title": "Recorded calm", "description": "Recorded by hand",
        "price_type": "PRICE_TYPE_FREE"})).json()

    async def upload(data: bytes | None, title: str = "Evening breath") -> httpx.Response:
        made = await edge.client.post(f"/v1/{pack['name']}/uploads", headers=creator, json={
            "title": title, "content_type": "CONTENT_TYPE_GUIDED_MEDITATION"})
        assert made.status_code == 200, made.text
        slot = made.json()
        assert slot["max_size_bytes"] > 1_000_000
        if data is not None:
            put = await edge.client.put(slot["upload_uri"], content=data,
                                        headers={"content-type": "audio/wav"})
            assert put.status_code == 201, put.text
        return await edge.client.post(f"/v1/{pack['name']}/items", headers=creator,
                                      json={"upload": slot["name"]})

    for data, expected in ((None, "UPLOAD_MISSING"), (b"not audio at all" * 100, "NOT_AUDIO"),
                           (wav(3, 0.3), "AUDIO_TOO_SHORT"), (wav(12, 0.0), "AUDIO_TOO_QUIET"),
                           (wav(12, 1.0), "AUDIO_TOO_LOUD")):
        refused = await upload(data)
        assert refused.status_code == 400, (expected, refused.text)
        assert reason(refused) == expected
    added = await upload(wav(15, 0.25))
    assert added.status_code == 200, added.text
    item = added.json()
    assert item["title"] == "Evening breath"
    assert item["content_type"] == "CONTENT_TYPE_GUIDED_MEDITATION"
    assert 14.5 <= float(item["duration"].rstrip("s")) <= 15.5
    # It is an item of the creator's library now, READY, with both renditions.
    content = (await edge.client.get(f"/v1/{item['content']}", headers=creator)).json()
    assert content["state"] == "CONTENT_STATE_READY" and content["cost"] == 0
    for fmt in ("FORMAT_MP3", "FORMAT_OGG_OPUS"):
        playback = await edge.client.get(f"/v1/{item['content']}/playback", headers=creator,
                                         params={"format": fmt})
        assert playback.status_code == 200, playback.text
        async with httpx.AsyncClient(timeout=10) as player:
            assert (await player.get(playback.json()["uri"])).status_code == 200
    report = (await edge.client.get(f"/v1/{item['content']}/audioReport",
                                    headers=creator)).json()
    assert report
    published = await edge.client.post(f"/v1/{pack['name']}:publish", headers=creator, json={})
    assert published.status_code == 200, published.text
    # A forged or altered upload URL stores nothing.
    slot = (await edge.client.post(f"/v1/{pack['name']}/uploads", headers=creator, json={
        "title": "x", "content_type": "CONTENT_TYPE_RITUAL"})).json()
    forged = slot["upload_uri"].replace("signature=", "signature=A")
    assert (await edge.client.put(forged, content=b"x")).status_code == 403
    stranger, _ = await register(edge)
    other = await edge.client.post(f"/v1/{pack['name']}/uploads", headers=stranger, json={
        "title": "x", "content_type": "CONTENT_TYPE_RITUAL"})
    assert other.status_code in (403, 404)


async def test_a_pack_of_its_own_subscription_plays_while_paid(edge: RealEdge) -> None:
    made = await creator_with_pack(edge, "Monthly Sleep Club", price_units=2, monthly=True)
    pack = (await edge.client.get(f"/v1/{made['pack']}", headers=made["headers"])).json()
    assert pack["subscription_interval"] == "SUBSCRIPTION_INTERVAL_MONTHLY"
    listener_headers = await listener(edge)
    content = made["items"][0]
    session = await pay(edge, listener_headers, made["pack"])  # a subscription checkout

    async def plays() -> bool:
        response = await edge.client.get(f"/v1/{content}/playback", headers=listener_headers)
        return response.status_code == 200

    await eventually(plays, "the subscriber plays the pack")
    subscription = (await edge.client.get("/v1/users/me/subscription", headers=listener_headers,
                                          params={"pack": made["pack"]})).json()
    assert (subscription["state"], subscription["pack"]) == ("SUBSCRIPTION_STATE_ACTIVE",
                                                            made["pack"])
    # Not the membership: that one does not exist.
    assert (await edge.client.get("/v1/users/me/subscription",
                                  headers=listener_headers)).status_code == 404

    async def rewarded() -> Any:
        account = (await edge.client.get("/v1/creators/me/rewardAccount",
                                         headers=made["headers"])).json()
        return account["balances"]

    # The first period's fee is the creator's sale: 70% of 2.99 EUR.
    assert await eventually(rewarded, "the fee's reward") == [{"currency_code": "EUR",
                                                              "tokens": "209"}]
    cancelled = await edge.client.post("/v1/users/me/subscription:cancel",
                                       headers=listener_headers, json={"pack": made["pack"]})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancel_at_period_end"] is True
    assert await plays()
    assert (await edge.client.post(session["url"], data={"outcome": "lapsed"})).status_code == 200

    async def ended() -> bool:
        return not await plays()

    await eventually(ended, "the lapsed subscription's access ended")
