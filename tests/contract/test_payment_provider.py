"""The PaymentProvider contract, held by the embedded simulator and by the
Stripe adapter. The Stripe adapter talks, through the real SDK, to a fake
Stripe on 127.0.0.1 (in this file) that parses the SDK's form-encoded
requests, checks the key and the idempotency key, and answers as Stripe
does; what it records is what Stripe would have received.

Then what only the Stripe adapter does (the exact parameters it sends, its
failures and how they are reported) and what only the simulator does
(sessions expire), and the simulator's webhook sender, against a receiver
that verifies signatures with core.payments.signature.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiohttp import web

from adapters.stripe.checkout import REFUSED, UNAVAILABLE, StripeProvider
from adapters.stripe.delivery import USER_AGENT, WebhookSender
from adapters.stripe.events import checkout_session_completed
from adapters.stripe.simulator import SimulatedPayments
from core.payments.facts import CheckoutMode, CheckoutRequest, InvalidSignature
from core.payments.signature import verify
from core.shared.errors import DomainError, FailedPrecondition, Unavailable
from ports.payments import PaymentProvider
from tests.backends import free_port

API_KEY = "sk_test_51waQupSecretKeyThatMustNeverLeak0000"
BASE_URL = "https://api.waqup.test"
USER = uuid.UUID("0190a000-0000-7000-8000-0000000000aa")


def checkout_request(mode: CheckoutMode = CheckoutMode.PAYMENT,
                     checkout_id: uuid.UUID | None = None, **changes: Any) -> CheckoutRequest:
    subscription = mode is CheckoutMode.SUBSCRIPTION
    values: dict[str, Any] = {
        "checkout_id": checkout_id or uuid.uuid4(), "user_id": USER, "mode": mode,
        "product_name": "waQup Premium" if subscription else "Morning calm pack",
        "amount_minor": 999 if subscription else 499, "currency": "EUR",
        "interval": "month" if subscription else None,
        "success_url": "https://app.waqup.test/checkout/done",
        "cancel_url": "https://app.waqup.test/checkout/cancel",
        "metadata": {"product": "premium" if subscription else "pack:morning-calm"},
    }
    values.update(changes)
    return CheckoutRequest(**values)


# --- a fake Stripe ------------------------------------------------------------------------------

@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    #: The form-encoded body, flat: `line_items[0][price_data][currency]` -> `eur`.
    form: dict[str, str]


@dataclass
class _Stored:
    form: dict[str, str]
    status: int
    body: dict[str, Any]


def _stripe_error(status: int, kind: str, message: str, code: str | None = None,
                  param: str | None = None) -> web.Response:
    error = {"type": kind, "message": message, "code": code, "param": param}
    return web.json_response({"error": {k: v for k, v in error.items() if v is not None}},
                             status=status, headers={"Request-Id": "req_fake0001"})


@dataclass
class FakeStripe:
    """Stripe's checkout sessions and subscription updates, in memory."""

    api_key: str = API_KEY
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: What the next requests get instead of a normal answer, in order:
    #: (status, error type) for an error, or "cut" for a body cut short.
    failures: deque[tuple[int, str] | str] = field(default_factory=deque)
    _replays: dict[str, _Stored] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/checkout/sessions", self._create_session)
        app.router.add_post("/v1/subscriptions/{id}", self._update_subscription)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def sessions_created(self) -> int:
        return sum(1 for stored in self._replays.values() if stored.status == 200)

    async def _record(self, request: web.Request) -> Recorded:
        text = (await request.read()).decode()
        recorded = Recorded(request.method, request.path,
                            {k.lower(): v for k, v in request.headers.items()},
                            dict(parse_qsl(text, keep_blank_values=True)))
        self.requests.append(recorded)
        return recorded

    async def _refusal(self, request: web.Request,
                       recorded: Recorded) -> web.StreamResponse | None:
        """Stripe's answer when the key is wrong, or the next scripted failure."""
        if recorded.headers.get("authorization") != f"Bearer {self.api_key}":
            return _stripe_error(401, "invalid_request_error",
                                 f"Invalid API Key provided: {self.api_key[:8]}****")
        if not self.failures:
            return None
        failure = self.failures.popleft()
        if failure == "cut":  # headers promise more than the body the connection ends
            response = web.StreamResponse(headers={"Content-Length": "4096",
                                                   "Content-Type": "application/json"})
            await response.prepare(request)
            await response.write(b'{"id": "cs_test_')
            assert request.transport is not None
            request.transport.close()
            return response
        status, kind = failure
        return _stripe_error(status, kind, f"scripted {kind} echoing {self.api_key}")

    async def _create_session(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        refusal = await self._refusal(request, recorded)
        if refusal is not None:
            return refusal
        key = recorded.headers.get("idempotency-key", "")
        stored = self._replays.get(key)
        if stored is not None:
            if stored.form != recorded.form:
                return _stripe_error(
                    400, "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters")
            return web.json_response(stored.body, status=stored.status,
                                     headers={"Idempotent-Replayed": "true"})
        status, body = self._session(recorded.form)
        if key:
            self._replays[key] = _Stored(recorded.form, status, body)
        return web.json_response(body, status=status)

    @staticmethod
    def _session(form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        price = "line_items[0][price_data]"
        for required in ("mode", f"{price}[currency]", f"{price}[unit_amount]",
                         f"{price}[product_data][name]", "line_items[0][quantity]"):
            if not form.get(required):
                return 400, {"error": {"type": "invalid_request_error",
                                       "code": "parameter_missing", "param": required,
                                       "message": f"Missing required param: {required}."}}
        if form["mode"] == "subscription" and f"{price}[recurring][interval]" not in form:
            return 400, {"error": {
                "type": "invalid_request_error", "code": "parameter_invalid",
                "message": "You must specify `line_items[0][price_data][recurring]` "
                           "in `subscription` mode."}}
        session_id = f"cs_test_{uuid.uuid4().hex}"
        metadata = {key[len("metadata["):-1]: value for key, value in form.items()
                    if key.startswith("metadata[")}
        return 200, {
            "id": session_id, "object": "checkout.session",
            "amount_total": int(form[f"{price}[unit_amount]"]),
            "client_reference_id": form.get("client_reference_id"),
            "currency": form[f"{price}[currency]"], "expires_at": int(time.time()) + 86400,
            "livemode": False, "metadata": metadata, "mode": form["mode"],
            "payment_status": "unpaid", "status": "open",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }

    async def _update_subscription(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        refusal = await self._refusal(request, recorded)
        if refusal is not None:
            return refusal
        subscription = self.subscriptions.get(request.match_info["id"])
        if subscription is None:
            return _stripe_error(404, "invalid_request_error",
                                 f"No such subscription: '{request.match_info['id']}'",
                                 code="resource_missing", param="id")
        if "cancel_at_period_end" in recorded.form:
            subscription["cancel_at_period_end"] = recorded.form["cancel_at_period_end"] == "true"
        return web.json_response(subscription)

    def add_subscription(self, subscription_id: str) -> None:
        self.subscriptions[subscription_id] = {
            "id": subscription_id, "object": "subscription", "status": "active",
            "cancel_at_period_end": False, "livemode": False, "metadata": {}}


@pytest.fixture
async def fake_stripe() -> AsyncIterator[FakeStripe]:
    server = FakeStripe()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def stripe_provider(fake_stripe: FakeStripe) -> AsyncIterator[StripeProvider]:
    provider = StripeProvider(API_KEY, api_base=fake_stripe.url, max_network_retries=0)
    yield provider
    await provider.close()


# --- the contract -------------------------------------------------------------------------------

@dataclass
class Kit:
    """A provider under test, and how to see what it did."""

    name: str
    provider: PaymentProvider
    #: Makes a subscription the provider knows, by id.
    add_subscription: Callable[[str], None]
    #: The subscriptions whose renewal was cancelled.
    cancelled: Callable[[], list[str]]


@pytest.fixture(params=["simulator", "stripe"])
async def kit(request: pytest.FixtureRequest) -> AsyncIterator[Kit]:
    if request.param == "simulator":
        cancels: list[str] = []

        async def on_cancel(subscription: str) -> None:
            cancels.append(subscription)

        simulator = SimulatedPayments(f"{BASE_URL}/", on_cancel)
        # It keeps no subscriptions: it cancels whatever it is asked to.
        yield Kit("simulator", simulator, lambda _: None, lambda: cancels)
        await simulator.close()
        return
    server = FakeStripe()
    await server.start()
    provider = StripeProvider(API_KEY, api_base=server.url, max_network_retries=0)
    try:
        yield Kit("stripe", provider, server.add_subscription,
                  lambda: [s for s, v in server.subscriptions.items()
                           if v["cancel_at_period_end"]])
    finally:
        await provider.close()
        await server.stop()


@pytest.mark.parametrize("mode", list(CheckoutMode))
async def test_create_gives_a_session_with_a_page(kit: Kit, mode: CheckoutMode) -> None:
    before = datetime.now(UTC)
    session = await kit.provider.create_checkout(checkout_request(mode))

    assert session.provider_id.startswith("cs_")
    assert urlsplit(session.url).scheme in {"http", "https"}
    assert urlsplit(session.url).netloc
    assert session.expires_at.tzinfo is not None
    assert before < session.expires_at <= before + timedelta(hours=24, seconds=5)


async def test_the_same_checkout_twice_is_the_same_session(kit: Kit) -> None:
    request = checkout_request()

    first = await kit.provider.create_checkout(request)
    second = await kit.provider.create_checkout(request)

    assert second == first


async def test_different_checkouts_are_different_sessions(kit: Kit) -> None:
    first = await kit.provider.create_checkout(checkout_request())
    second = await kit.provider.create_checkout(checkout_request())

    assert first.provider_id != second.provider_id
    assert first.url != second.url


async def test_cancel_subscription_stops_the_renewal(kit: Kit) -> None:
    kit.add_subscription("sub_1Keep")
    kit.add_subscription("sub_1Stop")

    await kit.provider.cancel_subscription("sub_1Stop")

    assert kit.cancelled() == ["sub_1Stop"]


# --- Stripe: what the SDK sends -----------------------------------------------------------------

async def test_a_payment_checkout_as_stripe_receives_it(
        fake_stripe: FakeStripe, stripe_provider: StripeProvider) -> None:
    request = checkout_request(CheckoutMode.PAYMENT)

    session = await stripe_provider.create_checkout(request)

    [sent] = fake_stripe.requests
    assert (sent.method, sent.path) == ("POST", "/v1/checkout/sessions")
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["idempotency-key"] == f"waqup-checkout-{request.checkout_id}"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.headers["stripe-version"]
    checkout = str(request.checkout_id)
    assert sent.form == {
        "mode": "payment",
        "line_items[0][price_data][currency]": "eur",
        "line_items[0][price_data][unit_amount]": "499",
        "line_items[0][price_data][product_data][name]": "Morning calm pack",
        "line_items[0][quantity]": "1",
        "success_url": "https://app.waqup.test/checkout/done",
        "cancel_url": "https://app.waqup.test/checkout/cancel",
        "client_reference_id": checkout,
        "metadata[product]": "pack:morning-calm",
        "metadata[checkout_session]": checkout,
        "payment_intent_data[metadata][product]": "pack:morning-calm",
        "payment_intent_data[metadata][checkout_session]": checkout,
    }
    assert session.url == f"https://checkout.stripe.com/c/pay/{session.provider_id}"


async def test_a_subscription_checkout_as_stripe_receives_it(
        fake_stripe: FakeStripe, stripe_provider: StripeProvider) -> None:
    request = checkout_request(CheckoutMode.SUBSCRIPTION, interval="year", currency="USD")

    await stripe_provider.create_checkout(request)

    [sent] = fake_stripe.requests
    checkout = str(request.checkout_id)
    assert sent.form["mode"] == "subscription"
    assert sent.form["line_items[0][price_data][currency]"] == "usd"
    assert sent.form["line_items[0][price_data][unit_amount]"] == "999"
    assert sent.form["line_items[0][price_data][recurring][interval]"] == "year"
    assert sent.form["client_reference_id"] == checkout
    assert sent.form["subscription_data[metadata][checkout_session]"] == checkout
    assert sent.form["subscription_data[metadata][product]"] == "premium"
    assert not any(key.startswith("payment_intent_data") for key in sent.form)


async def test_a_repeated_checkout_is_replayed_not_created_again(
        fake_stripe: FakeStripe, stripe_provider: StripeProvider) -> None:
    request = checkout_request()

    await stripe_provider.create_checkout(request)
    await stripe_provider.create_checkout(request)

    assert len(fake_stripe.requests) == 2
    assert fake_stripe.sessions_created == 1
    assert len({r.headers["idempotency-key"] for r in fake_stripe.requests}) == 1


async def test_cancel_sets_cancel_at_period_end(
        fake_stripe: FakeStripe, stripe_provider: StripeProvider) -> None:
    fake_stripe.add_subscription("sub_1Stop")

    await stripe_provider.cancel_subscription("sub_1Stop")

    [sent] = fake_stripe.requests
    assert (sent.method, sent.path) == ("POST", "/v1/subscriptions/sub_1Stop")
    assert sent.form == {"cancel_at_period_end": "true"}


# --- Stripe: failures ---------------------------------------------------------------------------

def assert_safe(error: DomainError) -> None:
    """Nothing of the key or of Stripe's answer in what the error carries."""
    assert API_KEY not in str(error)
    assert API_KEY[:12] not in str(error)
    assert "echoing" not in str(error)
    assert API_KEY not in repr(error.metadata)
    assert error.__cause__ is None and error.__suppress_context__


async def test_a_server_error_is_unavailable(
        fake_stripe: FakeStripe, stripe_provider: StripeProvider) -> None:
    fake_stripe.failures.append((500, "api_error"))

    with pytest.raises(Unavailable) as caught:
        await stripe_provider.create_checkout(checkout_request())

    assert caught.value.reason == UNAVAILABLE
    assert "HTTP 500" in str(caught.value)
    assert_safe(caught.value)


async def test_a_rate_limit_is_unavailable(
        fake_stripe: FakeStripe, stripe_provider: StripeProvider) -> None:
    fake_stripe.failures.append((429, "invalid_request_error"))

    with pytest.raises(Unavailable) as caught:
        await stripe_provider.create_checkout(checkout_request())

    assert caught.value.reason == UNAVAILABLE
    assert_safe(caught.value)


async def test_a_wrong_key_is_unavailable(fake_stripe: FakeStripe) -> None:
    fake_stripe.api_key = "sk_test_the_right_one"
    provider = StripeProvider(API_KEY, api_base=fake_stripe.url, max_network_retries=0)
    try:
        with pytest.raises(Unavailable) as caught:
            await provider.create_checkout(checkout_request())
    finally:
        await provider.close()

    assert "HTTP 401" in str(caught.value)
    assert_safe(caught.value)


async def test_connection_refused_is_unavailable() -> None:
    provider = StripeProvider(API_KEY, api_base=f"http://127.0.0.1:{free_port()}",
                              max_network_retries=0)
    try:
        with pytest.raises(Unavailable) as caught:
            await provider.create_checkout(checkout_request())
        with pytest.raises(Unavailable):
            await provider.cancel_subscription("sub_1Stop")
    finally:
        await provider.close()

    assert caught.value.reason == UNAVAILABLE
    assert_safe(caught.value)


async def test_an_answer_cut_short_is_unavailable(
        fake_stripe: FakeStripe, stripe_provider: StripeProvider) -> None:
    fake_stripe.failures.append("cut")

    with pytest.raises(Unavailable) as caught:
        await stripe_provider.create_checkout(checkout_request())

    assert_safe(caught.value)


async def test_an_invalid_request_is_refused(
        fake_stripe: FakeStripe, stripe_provider: StripeProvider) -> None:
    # A subscription without a billing interval: Stripe says 400.
    request = checkout_request(CheckoutMode.SUBSCRIPTION, interval=None)

    with pytest.raises(FailedPrecondition) as caught:
        await stripe_provider.create_checkout(request)

    assert caught.value.reason == REFUSED
    assert "HTTP 400" in str(caught.value) and "parameter_invalid" in str(caught.value)
    assert "recurring" not in str(caught.value)  # Stripe's message stays out
    assert_safe(caught.value)


async def test_a_scripted_invalid_request_is_refused(
        fake_stripe: FakeStripe, stripe_provider: StripeProvider) -> None:
    fake_stripe.failures.append((400, "invalid_request_error"))

    with pytest.raises(FailedPrecondition) as caught:
        await stripe_provider.create_checkout(checkout_request())

    assert caught.value.reason == REFUSED
    assert_safe(caught.value)


async def test_an_idempotency_key_reused_for_other_parameters_is_refused(
        fake_stripe: FakeStripe, stripe_provider: StripeProvider) -> None:
    request = checkout_request()
    await stripe_provider.create_checkout(request)

    with pytest.raises(FailedPrecondition) as caught:
        await stripe_provider.create_checkout(checkout_request(
            checkout_id=request.checkout_id, amount_minor=1))

    assert caught.value.reason == REFUSED


async def test_cancelling_an_unknown_subscription_is_refused(
        stripe_provider: StripeProvider) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        await stripe_provider.cancel_subscription("sub_1Unknown")

    assert "resource_missing" in str(caught.value)
    assert_safe(caught.value)


async def test_the_sdk_retries_a_server_error_with_the_same_key(fake_stripe: FakeStripe) -> None:
    fake_stripe.failures.append((500, "api_error"))
    provider = StripeProvider(API_KEY, api_base=fake_stripe.url, max_network_retries=1)
    try:
        session = await provider.create_checkout(checkout_request())
    finally:
        await provider.close()

    assert session.provider_id.startswith("cs_test_")
    first, second = fake_stripe.requests
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]


def test_the_provider_does_not_show_its_key() -> None:
    provider = StripeProvider(API_KEY)

    assert API_KEY not in repr(provider)


# --- the simulator ------------------------------------------------------------------------------

class ManualClock:
    def __init__(self, now: datetime) -> None:
        self.time = now

    def now(self) -> datetime:
        return self.time


async def test_the_simulator_page_is_the_services_own() -> None:
    simulator = SimulatedPayments("http://localhost:8080/")
    request = checkout_request()

    session = await simulator.create_checkout(request)

    assert session.provider_id == f"cs_sim_{request.checkout_id.hex}"
    assert session.url == (
        f"http://localhost:8080/v1/checkoutSessions/{request.checkout_id}/simulator")


async def test_an_expired_simulated_session_is_made_anew() -> None:
    clock = ManualClock(datetime(2025, 6, 1, tzinfo=UTC))
    simulator = SimulatedPayments(BASE_URL, clock=clock)
    request = checkout_request()
    first = await simulator.create_checkout(request)

    clock.time += timedelta(hours=23)
    assert await simulator.create_checkout(request) == first
    clock.time += timedelta(hours=1)
    again = await simulator.create_checkout(request)

    assert again.provider_id == first.provider_id
    assert again.expires_at == clock.time + timedelta(hours=24)


async def test_the_simulator_cancels_without_a_callback() -> None:
    await SimulatedPayments(BASE_URL).cancel_subscription("sub_1")


# --- the simulator's webhook sender -------------------------------------------------------------

SECRET = "whsec_simulator_secret"


@dataclass
class Receiver:
    """A webhook endpoint that verifies each delivery and answers from a script."""

    answers: deque[int] = field(default_factory=deque)
    received: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/v1/webhooks/stripe", self._receive)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1/webhooks/stripe"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            signed_at = verify(body, request.headers.get("Stripe-Signature"), SECRET,
                               now=int(time.time()))
        except InvalidSignature:
            return web.Response(status=401)
        self.received.append(({k.lower(): v for k, v in request.headers.items()}, body,
                              signed_at))
        return web.Response(status=self.answers.popleft() if self.answers else 202)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@dataclass
class Sleeps:
    """The sender's waits, recorded instead of slept."""

    seconds: list[float] = field(default_factory=list)
    #: Runs at each wait (after recording it).
    then: Callable[[], Awaitable[None]] | None = None

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        if self.then is not None:
            await self.then()


EVENT = checkout_session_completed(checkout_id=uuid.uuid4(), mode=CheckoutMode.PAYMENT,
                                   amount_minor=499, currency="EUR", payment_intent="pi_1")


async def test_a_delivery_is_signed_and_retried_after_a_503(receiver: Receiver) -> None:
    receiver.answers.extend([503, 202])
    sleeps = Sleeps()
    sender = WebhookSender(receiver.url, SECRET, sleep=sleeps)
    try:
        status = await sender.send(EVENT)
    finally:
        await sender.close()

    assert status == 202
    assert sleeps.seconds == [0.2]
    assert len(receiver.received) == 2
    for headers, body, signed_at in receiver.received:
        assert json.loads(body) == EVENT
        assert headers["content-type"] == "application/json; charset=utf-8"
        assert headers["user-agent"] == USER_AGENT
        assert abs(signed_at - time.time()) < 5


async def test_a_client_error_is_not_retried(receiver: Receiver) -> None:
    receiver.answers.append(400)
    sleeps = Sleeps()
    sender = WebhookSender(receiver.url, SECRET, sleep=sleeps)
    try:
        assert await sender.send(EVENT) == 400
    finally:
        await sender.close()

    assert len(receiver.received) == 1
    assert sleeps.seconds == []


async def test_a_bad_secret_gets_the_endpoints_401(receiver: Receiver) -> None:
    sender = WebhookSender(receiver.url, "whsec_wrong", sleep=Sleeps())
    try:
        assert await sender.send(EVENT) == 401
    finally:
        await sender.close()

    assert receiver.received == []


async def test_server_errors_are_retried_three_times(receiver: Receiver) -> None:
    receiver.answers.extend([500, 502, 503, 504, 202])
    sleeps = Sleeps()
    sender = WebhookSender(receiver.url, SECRET, sleep=sleeps)
    try:
        assert await sender.send(EVENT) == 504
    finally:
        await sender.close()

    assert len(receiver.received) == 4
    assert sleeps.seconds == [0.2, 0.5, 1.0]


async def test_an_endpoint_that_never_answers_is_a_connection_error() -> None:
    sleeps = Sleeps()
    sender = WebhookSender(f"http://127.0.0.1:{free_port()}/v1/webhooks/stripe", SECRET,
                           sleep=sleeps)
    try:
        with pytest.raises(ConnectionError):
            await sender.send(EVENT)
    finally:
        await sender.close()

    assert sleeps.seconds == [0.2, 0.5, 1.0]


async def test_a_connection_error_then_an_answer() -> None:
    # Nothing listens at first; the endpoint opens during the first wait.
    late = Receiver()
    port = free_port()

    async def open_endpoint() -> None:
        if late.url == "":
            await late.start(port)

    sleeps = Sleeps(then=open_endpoint)
    sender = WebhookSender(f"http://127.0.0.1:{port}/v1/webhooks/stripe", SECRET,
                           sleep=sleeps)
    try:
        assert await sender.send(EVENT) == 202
    finally:
        await sender.close()
        await late.stop()

    assert sleeps.seconds == [0.2]
    assert len(late.received) == 1
