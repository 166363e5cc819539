"""ports.media.WorkQueue on NATS JetStream.

One stream (`WAQUP_JOBS` by default) with work-queue retention holds every
queue: queue `render` is subject `waqup.jobs.render`. A message stays in the
stream until a worker acks it (or it is dropped), then the stream deletes it;
so the stream's messages on a subject are exactly that queue's jobs waiting or
running.

`enqueue` publishes with `Nats-Msg-Id` = `<queue>:<job id>` (the broker's
de-duplication is stream-wide, and job ids are per queue): the broker stores
one job per queue and id within `duplicate_window`. That covers "already waiting or running", and
more: an id that was acked or dropped less than `duplicate_window` ago is
ignored too. Callers that must run a job again soon after it ended (a sweep
re-enqueueing what failed) find it enqueued once the window has passed.

Each queue has one durable pull consumer named after the queue, with explicit
acks. Processes that consume the same queue bind to the same consumer and share
its jobs, each job going to one of them. A worker keeps `concurrency` jobs in
flight, and sends "in progress" every ack_wait / 3 while a job runs: a slow but
live worker keeps its job, a killed worker's job is redelivered after ack_wait.
Returning acks; RetryLater naks with its delay; another exception naks with a
growing delay. The delivery that is the `max_deliveries`-th is the last: if it
fails, the job is terminated (removed) and logged at ERROR. The consumer allows
one delivery more, so that a job whose worker died on its last delivery comes
back once more and is terminated then, instead of staying in the stream.

Only features of nats-server 2.9 are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass, field

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from adapters.nats.connection import NatsLink
from adapters.nats.event_bus import redact_url
from ports.media import JobHandler, QueuedJob, RetryLater

log = logging.getLogger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def check_names(queue: str, job_id: str | None = None) -> None:
    """Queue names are subject tokens (letters, digits, _ and -); job ids are
    non-empty printable text (they travel in a header)."""
    if not _TOKEN.fullmatch(queue):
        raise ValueError(f"invalid queue name {queue!r}: use letters, digits, _ and -")
    if job_id is not None and (not job_id or not job_id.isprintable()):
        raise ValueError(f"invalid job id {job_id!r}: expected non-empty printable text")


def retry_backoff(attempts: int, retry_delay: float, max_retry_delay: float) -> float:
    """min(retry_delay * 2**attempts, max_retry_delay): the delay after a failure
    on delivery `attempts` (0 = the first)."""
    return min(retry_delay * 2 ** min(attempts, 30), max_retry_delay)


class JetStreamWorkQueueError(RuntimeError):
    """NATS could not be reached, has no JetStream, did not store a job, or its
    stream is set up in a way this queue cannot use."""


@dataclass
class _Consumer:
    queue: str
    handler: JobHandler
    concurrency: int
    subject: str
    pull: JetStreamContext.PullSubscription | None = None
    loop: asyncio.Task[None] | None = None
    running: set[asyncio.Task[None]] = field(default_factory=set)
    slots: asyncio.Semaphore = field(init=False)
    freed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.concurrency)

    @property
    def durable(self) -> str:
        return self.queue


class JetStreamWorkQueue(NatsLink):
    """Implements ports.media.WorkQueue on NATS JetStream (see the module docstring).

    All durations are in seconds.

    url: NATS server URL (`nats://host:4222`; a comma-separated list for a cluster).
    stream, subject_prefix: the stream that holds every queue, and the subjects
        (`<subject_prefix>.<queue>`) it holds.
    ack_wait: how long the broker waits for an ack or an "in progress" before it
        redelivers a job to another worker.
    max_deliveries: deliveries of one job, however each ended (RetryLater counts).
    duplicate_window: how long the broker remembers job ids.
    client_name: connection name shown by the NATS monitoring endpoints.
    connect_timeout: start() gives up and raises JetStreamWorkQueueError after
        this long without a connection. Later disconnections are retried forever.
    request_timeout: bound on enqueue() and on every JetStream API call.
    retry_delay, max_retry_delay: a failed job (other than RetryLater, which names
        its own delay) comes back after min(retry_delay * 2**attempts, max_retry_delay).
    fetch_timeout: how long one pull waits for jobs (an empty pull is normal).
    reconnect_time_wait: pause between reconnection attempts.
    error_backoff: pause after an unexpected error in a consumer loop.
    replicas: stream replicas (1 for a single server; 3 on a cluster).
    """

    _link_error = JetStreamWorkQueueError

    def __init__(self, url: str, *, stream: str = "WAQUP_JOBS",
                 subject_prefix: str = "waqup.jobs", ack_wait: float = 30.0,
                 max_deliveries: int = 5, duplicate_window: float = 600.0,
                 client_name: str | None = "waqup-work-queue", connect_timeout: float = 5.0,
                 request_timeout: float = 5.0, retry_delay: float = 1.0,
                 max_retry_delay: float = 60.0, fetch_timeout: float = 5.0,
                 reconnect_time_wait: float = 2.0, error_backoff: float = 1.0,
                 replicas: int = 1) -> None:
        if not _TOKEN.fullmatch(stream):
            raise ValueError(f"invalid stream name {stream!r}: use letters, digits, _ and -")
        if not _PREFIX.fullmatch(subject_prefix):
            raise ValueError(f"invalid subject prefix {subject_prefix!r}: expected "
                             "dot-separated tokens like waqup.jobs")
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        if min(ack_wait, duplicate_window, connect_timeout, request_timeout,
               fetch_timeout) <= 0:
            raise ValueError("ack_wait, duplicate_window and timeouts must be positive")
        self._url = url
        self._safe_url = ",".join(redact_url(u.strip()) for u in url.split(","))
        self._stream = stream
        self._prefix = subject_prefix
        self._ack_wait = ack_wait
        self._max_deliveries = max_deliveries
        self._duplicate_window = duplicate_window
        self._client_name = client_name
        self._connect_timeout = connect_timeout
        self._request_timeout = request_timeout
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._fetch_timeout = fetch_timeout
        self._reconnect_time_wait = reconnect_time_wait
        self._error_backoff = error_backoff
        self._replicas = replicas
        self._consumers: dict[str, _Consumer] = {}
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._last_error: BaseException | None = None
        self._connected_once = False
        self._errors_since_connect = 0
        self._stopping = False
        self._closed = False

    def subject(self, queue: str) -> str:
        """The subject of `queue`."""
        check_names(queue)
        return f"{self._prefix}.{queue}"

    # -- port ---------------------------------------------------------------

    async def enqueue(self, queue: str, job_id: str, payload: bytes) -> None:
        """Returns once JetStream stored the job (or recognised its id as a
        duplicate); raises JetStreamWorkQueueError otherwise, within
        request_timeout."""
        subject = self.subject(queue)
        check_names(queue, job_id)
        js = self._js
        if js is None:
            raise RuntimeError("enqueue() before start() or after close()")
        msg_id = f"{queue}:{job_id}"
        try:
            async with asyncio.timeout(self._request_timeout):
                try:
                    ack = await js.publish(subject, payload, timeout=self._request_timeout,
                                           headers={MSG_ID_HEADER: msg_id})
                except nats.js.errors.NoStreamResponseError:
                    # The stream is gone (a broker that lost its store): again.
                    await self._ensure_stream()
                    ack = await js.publish(subject, payload, timeout=self._request_timeout,
                                           headers={MSG_ID_HEADER: msg_id})
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise JetStreamWorkQueueError(
                f"enqueueing job {job_id!r} on {subject} at {self._safe_url} failed: "
                f"{exc!r}") from exc
        if ack.duplicate:
            log.debug("job id already stored; enqueue ignored",
                      extra={"queue": queue, "job_id": job_id})

    def consume(self, queue: str, handler: JobHandler, *, concurrency: int = 1) -> None:
        subject = self.subject(queue)
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self._nc is not None or self._closed:
            raise RuntimeError("consume() must come before start()")
        if queue in self._consumers:
            raise ValueError(f"queue {queue!r} already has a consumer")
        self._consumers[queue] = _Consumer(queue, handler, concurrency, subject)

    async def start(self) -> None:
        """Connects, ensures the stream and the consumer of every consumed queue,
        and starts pulling. Raises JetStreamWorkQueueError when NATS is
        unreachable or has no JetStream."""
        if self._closed:
            raise RuntimeError("the work queue is closed")
        if self._nc is not None:
            return
        nc = await self._connect()
        self._nc = nc
        self._js = nc.jetstream(timeout=self._request_timeout)
        try:
            await self._check_jetstream()
            await self._ensure_stream()
            for consumer in self._consumers.values():
                await self._setup(consumer)
        except BaseException:
            await self._shutdown()
            raise
        self._stopping = False
        for consumer in self._consumers.values():
            consumer.loop = asyncio.create_task(self._pull(consumer),
                                                name=f"jobs:{consumer.queue}")
        log.info("work queue started", extra={
            "url": self._safe_url, "stream": self._stream, "queues": list(self._consumers)})

    async def close(self) -> None:
        """Stops pulling, cancels running handlers and naks their jobs (another
        worker gets them at once), and closes the connection. Safe to call twice."""
        self._closed = True
        await self._shutdown()

    # -- monitoring ---------------------------------------------------------

    async def pending(self, queue: str) -> int:
        """Jobs of `queue` waiting or running (stored, not yet acked or dropped)."""
        subject = self.subject(queue)
        js = self._js
        if js is None:
            raise RuntimeError("pending() before start() or after close()")
        try:
            async with asyncio.timeout(self._request_timeout):
                info = await js.stream_info(self._stream, subjects_filter=subject)
        except (TimeoutError, nats.errors.Error) as exc:
            raise JetStreamWorkQueueError(
                f"stream info from {self._safe_url} failed: {exc!r}") from exc
        return (info.state.subjects or {}).get(subject, 0)

    async def _shutdown(self) -> None:
        # As in the event bus: on Python 3.11 a cancellation can get lost inside
        # nats-py, so loops also watch _stopping and the cancel is repeated.
        self._stopping = True
        await self._cancel_all({c.loop for c in self._consumers.values() if c.loop},
                               self._fetch_timeout + 5, "job puller")
        # Handlers: cancelled, their jobs nak'ed (in _process).
        await self._cancel_all({t for c in self._consumers.values() for t in c.running},
                               self._request_timeout + 5, "job handler")
        for consumer in self._consumers.values():
            consumer.loop = None
            consumer.pull = None
            consumer.running.clear()
        nc, self._nc, self._js = self._nc, None, None
        self._connected_once = False  # no "disconnected" warning for our own close
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.flush(), timeout=self._request_timeout)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), timeout=self._request_timeout)

    @staticmethod
    async def _cancel_all(tasks: set[asyncio.Task[None]], within: float, what: str) -> None:
        pending = set(tasks)
        deadline = asyncio.get_running_loop().time() + within
        while pending and asyncio.get_running_loop().time() < deadline:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.2)
        for task in pending:
            log.error(f"{what} did not stop", extra={"task": task.get_name()})

    # -- stream and consumers -----------------------------------------------

    def _stream_config(self) -> api.StreamConfig:
        return api.StreamConfig(
            name=self._stream, subjects=[f"{self._prefix}.>"],
            retention=api.RetentionPolicy.WORK_QUEUE, storage=api.StorageType.FILE,
            duplicate_window=self._duplicate_window, num_replicas=self._replicas,
            discard=api.DiscardPolicy.OLD)

    async def _ensure_stream(self) -> None:
        """Creates the stream, or checks an existing one: its retention and
        storage must be this queue's (they cannot change); subjects, duplicate
        window and replicas are updated to this queue's config."""
        js = self._js
        assert js is not None
        want = self._stream_config()
        try:
            have = (await js.stream_info(self._stream)).config
        except nats.js.errors.NotFoundError:
            try:
                await self._add_stream(js, want)
                log.info("job stream created", extra={
                    "stream": self._stream, "subjects": want.subjects})
                return
            except nats.js.errors.BadRequestError:
                # Created meanwhile by another process: check it like any other.
                have = (await js.stream_info(self._stream)).config
        if have.retention != want.retention or have.storage != want.storage:
            raise JetStreamWorkQueueError(
                f"stream {self._stream} exists with retention {have.retention} and storage "
                f"{have.storage}; a work queue needs {want.retention} and {want.storage} "
                "(use another stream name, or delete that stream)")
        if (list(have.subjects or []) != want.subjects
                or abs((have.duplicate_window or 0) - self._duplicate_window) > 1e-3
                or (have.num_replicas or 1) != self._replicas):
            await js.update_stream(have.evolve(
                subjects=want.subjects, duplicate_window=want.duplicate_window,
                num_replicas=want.num_replicas))
            log.info("job stream updated", extra={
                "stream": self._stream, "subjects": want.subjects})

    @staticmethod
    async def _add_stream(js: JetStreamContext, config: api.StreamConfig) -> None:
        """add_stream, retrying server errors a few times (see the event bus:
        nats-server 2.9 can fail a create racing with the removal of the
        account's last stream)."""
        for attempt in range(3):
            try:
                await js.add_stream(config)
                return
            except nats.js.errors.ServerError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.05 * 2 ** attempt)

    async def _setup(self, consumer: _Consumer) -> None:
        """Creates or updates the durable consumer of the queue and binds a pull
        subscription to it (once)."""
        js = self._js
        assert js is not None
        await js.add_consumer(self._stream, api.ConsumerConfig(
            durable_name=consumer.durable, filter_subject=consumer.subject,
            ack_policy=api.AckPolicy.EXPLICIT, ack_wait=self._ack_wait,
            # One more than handled: see the module docstring.
            max_deliver=self._max_deliveries + 1,
            deliver_policy=api.DeliverPolicy.ALL, replay_policy=api.ReplayPolicy.INSTANT))
        if consumer.pull is None:
            consumer.pull = await js.pull_subscribe_bind(durable=consumer.durable,
                                                         stream=self._stream)

    # -- delivery -----------------------------------------------------------

    async def _pull(self, consumer: _Consumer) -> None:
        """Keeps up to `concurrency` jobs in flight until stopped; survives
        broker restarts."""
        needs_setup = False
        while not self._stopping:
            try:
                if needs_setup:
                    await self._ensure_stream()
                    await self._setup(consumer)
                    needs_setup = False
                while len(consumer.running) >= consumer.concurrency:
                    consumer.freed.clear()
                    await consumer.freed.wait()
                if self._stopping:
                    return
                assert consumer.pull is not None
                try:
                    messages = await consumer.pull.fetch(
                        consumer.concurrency - len(consumer.running),
                        timeout=self._fetch_timeout)
                except TimeoutError:
                    continue  # nothing to do, or reconnecting: pull again
                for msg in messages:
                    task = asyncio.create_task(self._process(consumer, msg),
                                               name=f"job:{consumer.queue}")
                    consumer.running.add(task)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Stream or consumer gone (a broker that lost its store): set
                # them up again before the next pull.
                needs_setup = needs_setup or isinstance(error, nats.js.errors.APIError)
                log.warning("job puller error; retrying", extra={
                    "queue": consumer.queue, "error": repr(error)})
                await asyncio.sleep(self._error_backoff)

    async def _process(self, consumer: _Consumer, msg: Msg) -> None:
        try:
            await self._deliver(consumer, msg)
        except asyncio.CancelledError:
            # close(): hand the job back now rather than after ack_wait.
            with contextlib.suppress(Exception):
                await msg.nak()
            raise
        except Exception as error:
            log.warning("could not settle a job with the broker; it comes back after "
                        "ack_wait", extra={"queue": consumer.queue, "error": repr(error)})
        finally:
            task = asyncio.current_task()
            if task is not None:
                consumer.running.discard(task)
            consumer.freed.set()

    def _decode(self, consumer: _Consumer, msg: Msg) -> QueuedJob:
        msg_id = (msg.headers or {}).get(MSG_ID_HEADER, "")
        job_id = msg_id.removeprefix(f"{consumer.queue}:")
        if not job_id or job_id == msg_id:
            raise ValueError(f"no job id of queue {consumer.queue} in {MSG_ID_HEADER}")
        return QueuedJob(id=job_id, queue=consumer.queue, payload=msg.data,
                         attempts=max(msg.metadata.num_delivered - 1, 0))

    async def _deliver(self, consumer: _Consumer, msg: Msg) -> None:
        try:
            job = self._decode(consumer, msg)
        except ValueError as error:
            log.error("undecodable job dropped", extra={
                "queue": consumer.queue, "error": repr(error),
                "headers": dict(msg.headers or {})})
            await msg.term()
            return
        extra: dict[str, object] = {"queue": job.queue, "job_id": job.id,
                                    "attempts": job.attempts}
        if job.attempts >= self._max_deliveries:
            # Its worker died during the last delivery.
            log.error("job dropped: its last delivery was never acked", extra={
                **extra, "max_deliveries": self._max_deliveries})
            await msg.term()
            return
        try:
            await self._run(consumer, job, msg)
        except RetryLater as retry:
            await self._failed(msg, job, max(retry.delay, 0.0), extra,
                               f"retry later: {retry}", logging.INFO)
        except Exception as error:
            delay = retry_backoff(job.attempts, self._retry_delay, self._max_retry_delay)
            await self._failed(msg, job, delay, extra, repr(error), logging.WARNING)
        else:
            await msg.ack()

    async def _run(self, consumer: _Consumer, job: QueuedJob, msg: Msg) -> None:
        """Runs the handler (when a slot is free), telling the broker every
        ack_wait / 3 that the job is still being worked on."""
        keep_alive = asyncio.create_task(self._keep_alive(msg))
        try:
            async with consumer.slots:
                await consumer.handler(job)
        finally:
            keep_alive.cancel()

    async def _keep_alive(self, msg: Msg) -> None:
        while True:
            await asyncio.sleep(self._ack_wait / 3)
            try:
                await msg.in_progress()
            except nats.errors.Error as error:
                log.debug("in-progress ack failed", extra={"error": repr(error)})

    async def _failed(self, msg: Msg, job: QueuedJob, delay: float,
                      extra: dict[str, object], reason: str, level: int) -> None:
        if job.attempts + 1 >= self._max_deliveries:
            log.error("job dropped after its last delivery failed", extra={
                **extra, "max_deliveries": self._max_deliveries, "error": reason})
            await msg.term()
            return
        log.log(level, "job not done; redelivering later", extra={
            **extra, "retry_in": delay, "error": reason})
        await msg.nak(delay=delay)
