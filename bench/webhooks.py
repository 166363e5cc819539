"""Webhook processing figures: `waqup up` (embedded, SQLite, Envoy in front)
receives signed Stripe `checkout.session.completed` events for N checkout
sessions of N buyers, sent C at a time through the edge, and the bench
reports

  accept     the webhook's answer (202): verify the signature, store the
             event id, queue it through the outbox -- latency p50/p99, events/s
  duplicate  the same events again: verified and dropped by event id
  applied    from the first event sent until every purchase is recorded, its
             pack granted and the creator's reward accrued (the creator's
             reward ledger counts N accruals) -- purchases/s end to end

    .venv/bin/python -m bench.webhooks                  # N=200, C=16, 2 workers
    .venv/bin/python -m bench.webhooks --events 500 --concurrency 32

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import System, _http, create_item, sign_up  # noqa: E402
from services.runtime.settings import Settings  # noqa: E402


def paid_pack(system: System, token: str) -> str:
    auth = {"authorization": f"Bearer {token}"}
    base = system.base
    content = create_item(system, token)
    _http("POST", f"{base}/v1/creators", {"display_name": "Bench Creator"}, auth)
    status, pack = _http("POST", f"{base}/v1/packs", {
        "title": "Bench pack", "description": "Bought many times",
        "price_type": "PRICE_TYPE_ONE_TIME",
        "price": {"currency_code": "EUR", "units": 4, "nanos": 990_000_000}}, auth)
    if status != 200:
        raise RuntimeError(f"could not create a pack: {status} {pack}")
    _http("POST", f"{base}/v1/{pack['name']}/items", {"content": content}, auth)
    status, published = _http("POST", f"{base}/v1/{pack['name']}:publish", {}, auth)
    if status != 200:
        raise RuntimeError(f"could not publish: {status} {published}")
    return str(pack["name"])


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


async def measure(system: System, secret: str, events: int, concurrency: int) -> dict:
    from adapters.stripe import events as stripe_events
    from core.payments.facts import CheckoutMode
    from core.payments.signature import sign

    creator = sign_up(system)
    pack = paid_pack(system, creator)
    async with httpx.AsyncClient(base_url=system.base, timeout=30) as client:
        # N buyers, each with a checkout session of the pack.
        async def checkout() -> uuid.UUID:
            email = f"buyer-{uuid.uuid4().hex[:10]}@example.com"
            reply = (await client.post("/v1/auth:register", json={
                "email": email, "password": "correct horse battery",
                "display_name": "Buyer"})).json()
            auth = {"authorization": f"Bearer {reply['access_token']}"}
            session = (await client.post("/v1/checkoutSessions", headers=auth,
                                         json={"pack": pack})).json()
            return uuid.UUID(session["name"].rpartition("/")[2])

        sessions: list[uuid.UUID] = []
        for _ in range(0, events, 8):
            sessions += await asyncio.gather(*(checkout() for _ in range(min(8, events -
                                                                             len(sessions)))))
        bodies = [json.dumps(stripe_events.checkout_session_completed(
            checkout_id=s, mode=CheckoutMode.PAYMENT, amount_minor=499, currency="EUR",
            payment_intent=f"pi_bench_{s.hex}")).encode() for s in sessions]
        gate = asyncio.Semaphore(concurrency)

        async def deliver(body: bytes) -> tuple[int, float]:
            async with gate:
                started = time.perf_counter()
                response = await client.post("/v1/webhooks/stripe", content=body, headers={
                    "content-type": "application/json",
                    "stripe-signature": sign(body, secret, int(time.time()))})
                return response.status_code, time.perf_counter() - started

        async def applied() -> int:
            reply = (await client.get("/v1/creators/me/rewardTransactions", params={
                "page_size": 100}, headers={"authorization": f"Bearer {creator}"})).json()
            count = len(reply.get("reward_transactions", []))
            token = reply.get("next_page_token")
            while token:
                reply = (await client.get("/v1/creators/me/rewardTransactions", params={
                    "page_size": 100, "page_token": token},
                    headers={"authorization": f"Bearer {creator}"})).json()
                count += len(reply.get("reward_transactions", []))
                token = reply.get("next_page_token")
            return count

        first = time.perf_counter()
        accepted = await asyncio.gather(*(deliver(b) for b in bodies))
        accept_seconds = time.perf_counter() - first
        while await applied() < len(bodies):
            if time.perf_counter() - first > 300:
                raise RuntimeError("purchases not all applied within 300 s")
            await asyncio.sleep(0.2)
        applied_seconds = time.perf_counter() - first
        dup_start = time.perf_counter()
        duplicates = await asyncio.gather(*(deliver(b) for b in bodies))
        dup_seconds = time.perf_counter() - dup_start
    latencies = [ms for _, ms in accepted]
    dup_latencies = [ms for _, ms in duplicates]
    return {
        "events": len(bodies), "concurrency": concurrency,
        "accept": {"status": sorted({s for s, _ in accepted}),
                   "p50_ms": round(_pct(latencies, 50) * 1000, 1),
                   "p99_ms": round(_pct(latencies, 99) * 1000, 1),
                   "mean_ms": round(statistics.mean(latencies) * 1000, 1),
                   "per_s": round(len(bodies) / accept_seconds, 1)},
        "duplicate": {"status": sorted({s for s, _ in duplicates}),
                      "p50_ms": round(_pct(dup_latencies, 50) * 1000, 1),
                      "p99_ms": round(_pct(dup_latencies, 99) * 1000, 1),
                      "per_s": round(len(bodies) / dup_seconds, 1)},
        "applied": {"seconds": round(applied_seconds, 2),
                    "purchases_per_s": round(len(bodies) / applied_seconds, 1)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="waqup-webhooks-") as tmp:
        work = Path(tmp)
        system = System(args.workers, work)
        system.start()
        try:
            from services.contexts.payments.wiring import webhook_secret

            secret = webhook_secret(Settings(data_dir=work / f"var-{args.workers}"))
            figures = asyncio.run(measure(system, secret, args.events, args.concurrency))
        finally:
            system.stop()
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
