"""The WorkQueue contract, held by the in-process queue and by JetStream alike.

The first part runs on both adapters with the same test bodies. The second part
is what only a broker can do (jobs kept across processes, shared between worker
processes, a worker killed mid-job) or what differs by design (what close()
does with a running job, how long a job id is remembered).

Each test has its own stream and subject prefix on the shared NATS server,
deleted afterwards. Waits poll with deadlines; no test asserts that something
was fast.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import nats
import nats.js.errors
import pytest
from nats.js import api

from adapters.memory.work_queue import InProcessWorkQueue
from adapters.nats.work_queue import JetStreamWorkQueue, JetStreamWorkQueueError
from ports.media import QueuedJob, RetryLater, WorkQueue

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "render"

#: Short delays keep the runs fast; production uses the defaults.
FAST: dict[str, Any] = {"retry_delay": 0.05, "max_retry_delay": 0.2}
NATS_FAST: dict[str, Any] = {
    "fetch_timeout": 0.5, "connect_timeout": 2.0, "request_timeout": 2.0,
    "reconnect_time_wait": 0.1, "error_backoff": 0.1}


class Queue(WorkQueue, Protocol):
    """Both adapters also tell how many jobs of a queue are waiting or running."""

    async def pending(self, queue: str) -> int: ...


# -- helpers -------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """The private stream and subject prefix of one test."""

    stream: str
    prefix: str


class Inbox:
    """Every delivery a handler was given, in order, with when it came."""

    def __init__(self) -> None:
        self.got: list[QueuedJob] = []
        self.at: list[float] = []

    def record(self, job: QueuedJob) -> None:
        self.got.append(job)
        self.at.append(time.monotonic())

    def handler(self, *, fail: Callable[[QueuedJob], BaseException | None] | None = None,
                work_seconds: float = 0.0) -> Callable[[QueuedJob], Awaitable[None]]:
        """Records each delivery; raises what `fail` returns for it, if anything."""

        async def handle(job: QueuedJob) -> None:
            self.record(job)
            error = fail(job) if fail else None
            if error is not None:
                raise error
            if work_seconds:
                await asyncio.sleep(work_seconds)

        return handle

    def ids(self) -> list[str]:
        return [job.id for job in self.got]

    def of(self, job_id: str) -> list[QueuedJob]:
        return [job for job in self.got if job.id == job_id]


async def eventually(check: Callable[[], bool | Awaitable[bool]], what: str,
                     within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.01)


async def settled(queue: Queue, name: str = QUEUE) -> None:
    """Waits until no job of `name` is waiting or running (all acked or dropped)."""

    async def empty() -> bool:
        return await queue.pending(name) == 0

    await eventually(empty, f"queue {name} empty")


async def delete_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        await nc.jetstream().delete_stream(stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await nc.close()


# -- fixtures ------------------------------------------------------------------


@pytest.fixture
def names() -> Names:
    token = uuid.uuid4().hex[:12]
    return Names(f"WAQUP_JOBS_T{token}", f"waqup.t{token}.jobs")


@pytest.fixture(params=["memory", pytest.param("nats", marks=pytest.mark.nats)])
def queue_url(request: pytest.FixtureRequest) -> str | None:
    """None for the in-process queue, else the URL of the shared NATS."""
    return request.getfixturevalue("nats_url") if request.param == "nats" else None


@pytest.fixture
async def make_queue(queue_url: str | None,
                     names: Names) -> AsyncIterator[Callable[..., Queue]]:
    """A factory of queues of the adapter under test. Options: max_deliveries,
    ack_wait, retry_delay, max_retry_delay. JetStream queues of one test share
    their stream, as worker processes do."""
    made: list[Queue] = []

    def make(**options: Any) -> Queue:
        options = {**FAST, **options}
        queue: Queue
        if queue_url is None:
            queue = InProcessWorkQueue(**options)
        else:
            queue = JetStreamWorkQueue(queue_url, stream=names.stream,
                                       subject_prefix=names.prefix, **NATS_FAST, **options)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        await queue.close()
    if queue_url is not None:
        await delete_stream(queue_url, names.stream)


@pytest.fixture
async def jetstream(nats_url: str, names: Names) -> AsyncIterator[Callable[..., Queue]]:
    """A factory of JetStreamWorkQueue on the shared NATS, all on this test's stream."""
    made: list[Queue] = []

    def make(**options: Any) -> Queue:
        queue = JetStreamWorkQueue(nats_url, **{
            "stream": names.stream, "subject_prefix": names.prefix, **FAST, **NATS_FAST,
            **options})
        made.append(queue)
        return queue

    yield make
    for queue in made:
        await queue.close()
    await delete_stream(nats_url, names.stream)


# -- the contract: every adapter -------------------------------------------------


async def test_an_enqueued_job_is_handled_once_and_acked(
        make_queue: Callable[..., Queue]) -> None:
    inbox = Inbox()
    queue = make_queue()
    queue.consume(QUEUE, inbox.handler())
    await queue.start()

    await queue.enqueue(QUEUE, "job-1", b"\x00binary\xffpayload")

    await eventually(lambda: bool(inbox.got), "a delivery")
    await settled(queue)
    assert inbox.got == [QueuedJob("job-1", QUEUE, b"\x00binary\xffpayload", 0)]


async def test_a_job_id_waiting_or_running_is_not_enqueued_again(
        make_queue: Callable[..., Queue]) -> None:
    release = asyncio.Event()
    inbox = Inbox()

    async def handle(job: QueuedJob) -> None:
        inbox.record(job)
        if job.id == "blocker":
            await release.wait()

    queue = make_queue()
    queue.consume(QUEUE, handle, concurrency=1)
    await queue.start()
    await queue.enqueue(QUEUE, "blocker", b"1")
    await eventually(lambda: inbox.ids() == ["blocker"], "the blocker running")

    await queue.enqueue(QUEUE, "waiting", b"2")
    await queue.enqueue(QUEUE, "waiting", b"2")  # waiting: ignored
    await queue.enqueue(QUEUE, "blocker", b"1")  # running: ignored
    assert await queue.pending(QUEUE) == 2
    release.set()

    await eventually(lambda: "waiting" in inbox.ids(), "the waiting job")
    await settled(queue)
    assert Counter(inbox.ids()) == {"blocker": 1, "waiting": 1}


async def test_retry_later_redelivers_the_job_after_its_delay(
        make_queue: Callable[..., Queue]) -> None:
    inbox = Inbox()
    queue = make_queue()
    queue.consume(QUEUE, inbox.handler(
        fail=lambda job: RetryLater("rate limited", delay=0.5) if job.attempts == 0 else None))
    await queue.start()

    await queue.enqueue(QUEUE, "job-1", b"payload")

    await eventually(lambda: len(inbox.got) == 2, "the second delivery")
    await settled(queue)
    first, second = inbox.got
    assert (first.id, first.payload, first.attempts) == ("job-1", b"payload", 0)
    assert (second.id, second.payload, second.attempts) == ("job-1", b"payload", 1)
    assert inbox.at[1] - inbox.at[0] >= 0.45, "not before the delay RetryLater asked for"
    assert len(inbox.got) == 2


async def test_a_failing_job_is_redelivered_until_it_succeeds(
        make_queue: Callable[..., Queue]) -> None:
    inbox = Inbox()
    queue = make_queue()
    queue.consume(QUEUE, inbox.handler(
        fail=lambda job: RuntimeError("boom") if job.attempts < 2 else None))
    await queue.start()

    await queue.enqueue(QUEUE, "job-1", b"payload")

    await eventually(lambda: len(inbox.got) == 3, "the third delivery")
    await settled(queue)
    assert [(j.id, j.payload, j.attempts) for j in inbox.got] == [
        ("job-1", b"payload", 0), ("job-1", b"payload", 1), ("job-1", b"payload", 2)]


@pytest.mark.parametrize("failure", ["error", "retry_later"])
async def test_a_job_is_dropped_after_max_deliveries(
        make_queue: Callable[..., Queue], failure: str,
        caplog: pytest.LogCaptureFixture) -> None:
    def fail(job: QueuedJob) -> BaseException | None:
        if job.id != "doomed":
            return None
        return RuntimeError("always") if failure == "error" else RetryLater("never", 0.05)

    inbox = Inbox()
    queue = make_queue(max_deliveries=3)
    queue.consume(QUEUE, inbox.handler(fail=fail))
    await queue.start()

    with caplog.at_level(logging.WARNING):
        await queue.enqueue(QUEUE, "doomed", b"x")
        await eventually(lambda: len(inbox.of("doomed")) == 3, "three deliveries")
        await settled(queue)

    assert [j.attempts for j in inbox.of("doomed")] == [0, 1, 2]
    dropped = [r for r in caplog.records
               if r.levelno == logging.ERROR and "dropped" in r.getMessage()]
    assert len(dropped) == 1 and getattr(dropped[0], "job_id", None) == "doomed"
    # Gone for good: a later job goes through and the doomed one never comes back.
    await asyncio.sleep(0.3)  # longer than any redelivery delay of this test
    await queue.enqueue(QUEUE, "after", b"y")
    await eventually(lambda: bool(inbox.of("after")), "the later job")
    await settled(queue)
    assert len(inbox.of("doomed")) == 3


async def test_concurrency_is_used_and_never_exceeded(
        make_queue: Callable[..., Queue]) -> None:
    running = peak = 0
    handled: Counter[str] = Counter()

    async def handle(job: QueuedJob) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.05)
        finally:
            running -= 1
        handled[job.id] += 1

    queue = make_queue()
    queue.consume(QUEUE, handle, concurrency=8)
    await queue.start()
    ids = [f"job-{i}" for i in range(50)]

    await asyncio.gather(*(queue.enqueue(QUEUE, job_id, b"x") for job_id in ids))

    await eventually(lambda: sum(handled.values()) >= 50, "all 50 handled")
    await settled(queue)
    assert handled == dict.fromkeys(ids, 1)
    assert peak == 8, f"at most 8 at once, and 8 were reached (peak {peak})"


async def test_a_job_running_longer_than_ack_wait_in_a_live_worker_is_not_redelivered(
        make_queue: Callable[..., Queue]) -> None:
    inbox = Inbox()
    queue = make_queue(ack_wait=1.0)
    # A free slot: a redelivery of the slow job would be picked up at once.
    queue.consume(QUEUE, inbox.handler(work_seconds=2.5), concurrency=2)
    await queue.start()

    await queue.enqueue(QUEUE, "slow", b"x")

    await eventually(lambda: bool(inbox.got), "the delivery")
    await settled(queue)
    assert [(j.id, j.attempts) for j in inbox.got] == [("slow", 0)]


async def test_jobs_of_other_queues_go_to_their_own_handler(
        make_queue: Callable[..., Queue]) -> None:
    renders, mails = Inbox(), Inbox()
    queue = make_queue()
    queue.consume(QUEUE, renders.handler())
    queue.consume("mail", mails.handler())
    await queue.start()

    await queue.enqueue(QUEUE, "same-id", b"render")
    await queue.enqueue("mail", "same-id", b"mail")  # ids are per queue

    await eventually(lambda: bool(renders.got and mails.got), "both deliveries")
    await settled(queue)
    await settled(queue, "mail")
    assert [(j.queue, j.payload) for j in renders.got] == [(QUEUE, b"render")]
    assert [(j.queue, j.payload) for j in mails.got] == [("mail", b"mail")]


async def test_close_cancels_running_handlers(make_queue: Callable[..., Queue]) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(job: QueuedJob) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    queue = make_queue()
    queue.consume(QUEUE, stuck)
    await queue.start()
    await queue.enqueue(QUEUE, "job-1", b"x")
    await asyncio.wait_for(started.wait(), 10)

    await queue.close()

    assert cancelled.is_set()
    with pytest.raises(RuntimeError):
        await queue.enqueue(QUEUE, "job-2", b"x")


async def test_lifecycle_rules(make_queue: Callable[..., Queue]) -> None:
    unstarted = make_queue()
    with pytest.raises(RuntimeError, match="before start"):
        await unstarted.enqueue(QUEUE, "job-1", b"x")
    await unstarted.close()
    await unstarted.close()

    queue = make_queue()
    for bad_queue in ("", "a.b", "a b", "*", ">"):
        with pytest.raises(ValueError):
            queue.consume(bad_queue, Inbox().handler())
    with pytest.raises(ValueError):
        queue.consume(QUEUE, Inbox().handler(), concurrency=0)
    queue.consume(QUEUE, Inbox().handler())
    with pytest.raises(ValueError, match="already has a consumer"):
        queue.consume(QUEUE, Inbox().handler())
    await queue.start()
    with pytest.raises(RuntimeError, match="before start"):
        queue.consume("other", Inbox().handler())
    for bad_id in ("", "line\nbreak"):
        with pytest.raises(ValueError):
            await queue.enqueue(QUEUE, bad_id, b"x")
    await queue.close()
    await queue.close()


# -- by adapter ------------------------------------------------------------------


async def test_in_process_close_drops_what_it_held() -> None:
    started = asyncio.Event()

    async def stuck(job: QueuedJob) -> None:
        started.set()
        await asyncio.Event().wait()

    queue = InProcessWorkQueue(**FAST)
    queue.consume(QUEUE, stuck)
    await queue.start()
    await queue.enqueue(QUEUE, "running", b"x")
    await queue.enqueue(QUEUE, "waiting", b"x")
    await asyncio.wait_for(started.wait(), 10)
    assert await queue.pending(QUEUE) == 2

    await queue.close()

    assert await queue.pending(QUEUE) == 0
    with pytest.raises(RuntimeError, match="closed"):
        await queue.start()


async def test_in_process_an_id_can_be_enqueued_again_once_its_job_ended() -> None:
    inbox = Inbox()
    queue = InProcessWorkQueue(**FAST)
    queue.consume(QUEUE, inbox.handler())
    await queue.start()
    try:
        await queue.enqueue(QUEUE, "job-1", b"first")
        await eventually(lambda: len(inbox.got) == 1, "the first run")
        await settled(queue)
        await queue.enqueue(QUEUE, "job-1", b"second")
        await eventually(lambda: len(inbox.got) == 2, "the second run")
        assert [j.payload for j in inbox.got] == [b"first", b"second"]
    finally:
        await queue.close()


@pytest.mark.nats
async def test_jetstream_remembers_a_job_id_for_the_duplicate_window(
        jetstream: Callable[..., Queue]) -> None:
    inbox = Inbox()
    queue = jetstream()
    queue.consume(QUEUE, inbox.handler())
    await queue.start()
    await queue.enqueue(QUEUE, "job-1", b"first")
    await eventually(lambda: len(inbox.got) == 1, "the first run")
    await settled(queue)

    await queue.enqueue(QUEUE, "job-1", b"second")  # acked, but within the window
    await queue.enqueue(QUEUE, "job-2", b"sentinel")

    await eventually(lambda: bool(inbox.of("job-2")), "the sentinel")
    await settled(queue)
    assert [j.payload for j in inbox.got] == [b"first", b"sentinel"]


@pytest.mark.nats
async def test_jobs_enqueued_while_no_worker_runs_are_handled_later(
        jetstream: Callable[..., Queue]) -> None:
    producer = jetstream()  # an API process: enqueues, consumes nothing
    await producer.start()
    for i in range(3):
        await producer.enqueue(QUEUE, f"job-{i}", f"{i}".encode())
    assert await producer.pending(QUEUE) == 3
    await producer.close()

    inbox = Inbox()
    worker = jetstream()
    worker.consume(QUEUE, inbox.handler())
    await worker.start()

    await eventually(lambda: len(inbox.got) == 3, "the three jobs")
    await settled(worker)
    assert sorted((j.id, j.payload, j.attempts) for j in inbox.got) == [
        ("job-0", b"0", 0), ("job-1", b"1", 0), ("job-2", b"2", 0)]


@pytest.mark.nats
async def test_two_worker_processes_share_a_queue_each_job_handled_once(
        jetstream: Callable[..., Queue]) -> None:
    a, b = Inbox(), Inbox()
    workers = [jetstream(), jetstream()]
    for inbox, worker in zip((a, b), workers, strict=True):
        worker.consume(QUEUE, inbox.handler(work_seconds=0.01), concurrency=2)
        await worker.start()
    ids = [f"job-{i}" for i in range(40)]

    await asyncio.gather(*(workers[0].enqueue(QUEUE, job_id, b"x") for job_id in ids))

    await eventually(lambda: len(a.got) + len(b.got) >= 40, "all 40 handled")
    await settled(workers[0])
    assert sorted(a.ids() + b.ids()) == sorted(ids), "each job handled exactly once"
    assert a.got and b.got, f"both workers worked (a={len(a.got)}, b={len(b.got)})"


@pytest.mark.nats
async def test_jetstream_close_hands_a_running_job_to_the_next_worker_at_once(
        jetstream: Callable[..., Queue]) -> None:
    started = asyncio.Event()

    async def stuck(job: QueuedJob) -> None:
        started.set()
        await asyncio.Event().wait()

    first = jetstream(ack_wait=30.0)  # far longer than the wait below
    first.consume(QUEUE, stuck)
    await first.start()
    await first.enqueue(QUEUE, "job-1", b"x")
    await asyncio.wait_for(started.wait(), 10)
    await first.close()

    inbox = Inbox()
    second = jetstream(ack_wait=30.0)
    second.consume(QUEUE, inbox.handler())
    await second.start()

    await eventually(lambda: bool(inbox.got), "redelivery to the next worker", within=10)
    await settled(second)
    assert [(j.id, j.attempts) for j in inbox.got] == [("job-1", 1)]


CRASHING_WORKER = textwrap.dedent("""
    import asyncio
    import sys

    from adapters.nats.work_queue import JetStreamWorkQueue

    async def main() -> None:
        url, stream, prefix, queue_name = sys.argv[1:5]
        queue = JetStreamWorkQueue(url, stream=stream, subject_prefix=prefix, ack_wait=2.0,
                                   fetch_timeout=0.5)

        async def handle(job):
            print("started", job.id, job.attempts, flush=True)
            await asyncio.Event().wait()  # works until killed

        queue.consume(queue_name, handle)
        await queue.start()
        await asyncio.Event().wait()

    asyncio.run(main())
""")


@pytest.mark.nats
async def test_a_job_of_a_killed_worker_process_is_redelivered_after_ack_wait(
        nats_url: str, names: Names, jetstream: Callable[..., Queue],
        tmp_path: Path) -> None:
    producer = jetstream(ack_wait=2.0)
    await producer.start()
    await producer.enqueue(QUEUE, "job-1", b"payload")
    script = tmp_path / "worker.py"
    script.write_text(CRASHING_WORKER)
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), nats_url, names.stream, names.prefix, QUEUE,
        stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert line.split() == [b"started", b"job-1", b"0"]

        # A second worker runs beside it: while the first is alive (past its
        # ack_wait, keeping the job with "in progress"), it gets nothing.
        inbox = Inbox()
        survivor = jetstream(ack_wait=2.0)
        survivor.consume(QUEUE, inbox.handler())
        await survivor.start()
        await asyncio.sleep(3.0)
        assert inbox.got == [], "a live worker's job is not redelivered"

        process.send_signal(signal.SIGKILL)  # no ack, no nak, no goodbye
        await process.wait()

        await eventually(lambda: bool(inbox.got), "redelivery after ack_wait")
        await settled(survivor)
        [job] = inbox.got
        assert (job.id, job.payload) == ("job-1", b"payload") and job.attempts >= 1
        # Acked: it never comes back, while later jobs still flow.
        await producer.enqueue(QUEUE, "job-2", b"sentinel")
        await eventually(lambda: bool(inbox.of("job-2")), "a later job")
        await settled(survivor)
        assert len(inbox.of("job-1")) == 1
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.nats
async def test_a_job_whose_worker_died_on_its_last_delivery_is_dropped(
        nats_url: str, names: Names, jetstream: Callable[..., Queue],
        caplog: pytest.LogCaptureFixture) -> None:
    setup = jetstream(max_deliveries=1, ack_wait=0.5)
    setup.consume(QUEUE, Inbox().handler())
    await setup.start()  # creates the stream and the consumer
    await setup.close()
    producer = jetstream()
    await producer.start()
    await producer.enqueue(QUEUE, "job-1", b"x")
    # A worker takes the one allowed delivery and dies without a word.
    nc = await nats.connect(nats_url, allow_reconnect=False)
    pull = await nc.jetstream().pull_subscribe_bind(durable=QUEUE, stream=names.stream)
    [taken] = await pull.fetch(1, timeout=2)
    assert taken.headers is not None and taken.headers["Nats-Msg-Id"] == f"{QUEUE}:job-1"
    await nc.close()

    inbox = Inbox()
    worker = jetstream(max_deliveries=1, ack_wait=0.5)
    worker.consume(QUEUE, inbox.handler())
    with caplog.at_level(logging.ERROR):
        await worker.start()
        await settled(worker)

    assert inbox.got == [], "not handled beyond max_deliveries"
    assert any(getattr(r, "job_id", None) == "job-1" and r.levelno == logging.ERROR
               for r in caplog.records)


@pytest.mark.nats
async def test_the_stream_and_consumer_are_set_up_by_code(
        nats_url: str, names: Names, jetstream: Callable[..., Queue]) -> None:
    nc = await nats.connect(nats_url, allow_reconnect=False)
    js = nc.jetstream()
    try:
        # Made earlier by another worker with the same config: fine.
        await js.add_stream(api.StreamConfig(
            name=names.stream, subjects=[f"{names.prefix}.>"],
            retention=api.RetentionPolicy.WORK_QUEUE, storage=api.StorageType.FILE,
            duplicate_window=600.0))
        queue = jetstream(ack_wait=7.0, max_deliveries=4)
        queue.consume(QUEUE, Inbox().handler(), concurrency=3)
        await queue.start()

        stream = (await js.stream_info(names.stream)).config
        assert (stream.subjects, stream.retention, stream.duplicate_window) == (
            [f"{names.prefix}.>"], api.RetentionPolicy.WORK_QUEUE, 600.0)
        consumer = (await js.consumer_info(names.stream, QUEUE)).config
        assert consumer.filter_subject == f"{names.prefix}.{QUEUE}"
        assert consumer.ack_policy == api.AckPolicy.EXPLICIT
        assert consumer.ack_wait == 7.0
        assert consumer.max_deliver == 5, "one more than handled, to drop a dead worker's job"

        # A stream of that name that is no work queue is refused, clearly.
        other = f"{names.stream}_LIMITS"
        await js.add_stream(name=other, subjects=[f"{names.prefix}x.>"])
        try:
            wrong = jetstream(stream=other, subject_prefix=f"{names.prefix}x")
            with pytest.raises(JetStreamWorkQueueError, match="work queue needs"):
                await wrong.start()
        finally:
            await js.delete_stream(other)
    finally:
        await nc.close()


@pytest.mark.nats
async def test_start_fails_fast_and_clearly_when_nats_is_unreachable() -> None:
    queue = JetStreamWorkQueue("nats://user:s3cret@127.0.0.1:1", connect_timeout=1.0)
    queue.consume(QUEUE, Inbox().handler())
    with pytest.raises(JetStreamWorkQueueError,
                       match=r"unreachable at nats://\*\*\*@127\.0\.0\.1:1") as error:
        await queue.start()
    assert "s3cret" not in str(error.value)
    with pytest.raises(RuntimeError, match="before start"):
        await queue.enqueue(QUEUE, "job-1", b"x")
    await queue.close()


@pytest.mark.nats
async def test_a_message_without_a_job_id_is_dropped_not_handled(
        nats_url: str, names: Names, jetstream: Callable[..., Queue],
        caplog: pytest.LogCaptureFixture) -> None:
    inbox = Inbox()
    worker = jetstream()
    worker.consume(QUEUE, inbox.handler())
    await worker.start()
    nc = await nats.connect(nats_url, allow_reconnect=False)
    try:
        await nc.jetstream().publish(f"{names.prefix}.{QUEUE}", b"from elsewhere")
    finally:
        await nc.close()

    with caplog.at_level(logging.ERROR):
        await worker.enqueue(QUEUE, "job-1", b"sentinel")
        await eventually(lambda: bool(inbox.got), "the sentinel")
        await settled(worker)

    assert inbox.ids() == ["job-1"]
    assert any("undecodable" in r.getMessage() for r in caplog.records)
