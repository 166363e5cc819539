"""ports.common.EventBus on NATS JetStream.

Subjects are the topics (`waqup.<context>.<entity>.<event>.v1`). Each context
has one stream, created and kept up to date by this code (never by hand):
`WAQUP_IDENTITY` holds `waqup.identity.>`, file storage, limits retention with
a maximum age, and a duplicate window inside which a repeated `Nats-Msg-Id`
(the event id) is stored once.

Each (consumer, topic) pair is one durable pull consumer, e.g.
`credits--waqup_identity_user_registered_v1`: explicit acks, unlimited
redeliveries, every message of the stream. Processes that use the same consumer
name share it, so each message goes to one of them. A message is acked only
after its handler returned; a failing handler's message is nak'ed with a
growing delay, and one whose process died is redelivered after `ack_wait`.
Long handlers keep their message with "in progress" acks.

Only features of nats-server 2.9 are used (single filter subject, legacy
durable create, nak with delay).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from adapters.nats.connection import NatsLink
from ports.common import ConsumerStatus, EventHandler, OutboxMessage

log = logging.getLogger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"
CREATED_AT_HEADER = "Waqup-Created-At"
#: The W3C trace context of the transaction that wrote the event.
TRACEPARENT_HEADER = "traceparent"

_TOKEN = r"[A-Za-z0-9_-]+"
_TOPIC = re.compile(rf"{_TOKEN}(\.{_TOKEN}){{2,}}")
_CONSUMER = re.compile(_TOKEN)


class NatsEventBusError(RuntimeError):
    """NATS could not be reached, has no JetStream, or did not store a message."""


def _check_topic(topic: str) -> None:
    if not _TOPIC.fullmatch(topic):
        raise ValueError(f"invalid topic {topic!r}: expected dot-separated tokens "
                         "like waqup.<context>.<entity>.<event>.v1")


def stream_for(topic: str) -> tuple[str, str]:
    """The stream that holds `topic` and its subject filter:
    `waqup.identity.user.registered.v1` -> (`WAQUP_IDENTITY`, `waqup.identity.>`)."""
    _check_topic(topic)
    root, context = topic.split(".")[:2]
    return f"{root}_{context}".upper(), f"{root}.{context}.>"


def durable_name(consumer: str, topic: str) -> str:
    """The durable consumer of `consumer` on `topic`:
    (`credits`, `waqup.identity.user.registered.v1`) ->
    `credits--waqup_identity_user_registered_v1`."""
    _check_topic(topic)
    if not _CONSUMER.fullmatch(consumer):
        raise ValueError(f"invalid consumer name {consumer!r}: use letters, digits, _ and -")
    return f"{consumer}--{topic.replace('.', '_')}"


def redact_url(url: str) -> str:
    """`url` without its password or token, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


@dataclass
class _Subscription:
    topic: str
    consumer: str
    handler: EventHandler
    stream: str
    durable: str
    pull: JetStreamContext.PullSubscription | None = None
    task: asyncio.Task[None] | None = None


class NatsEventBus(NatsLink):
    """Implements ports.common.EventBus on NATS JetStream.

    All durations are in seconds.

    url: NATS server URL (`nats://host:4222`; a comma-separated list for a cluster).
    connect_timeout: start() gives up and raises NatsEventBusError after this long
        without a connection. Later disconnections are retried forever.
    publish_timeout: bound on publish() (stream check and PubAck included) and on
        every JetStream API call.
    ack_wait: how long the broker waits for an ack before redelivering; running
        handlers are kept alive with "in progress" acks every ack_wait / 2.
    max_deliver: deliveries per message per consumer; -1 is unlimited.
    retry_delay, max_retry_delay: a failed handler's message comes back after
        min(retry_delay * 2**attempts, max_retry_delay).
    fetch_batch, fetch_timeout: messages per pull request and how long a pull
        waits for messages (an empty pull is normal; the loop pulls again).
    reconnect_time_wait: pause between reconnection attempts.
    error_backoff: pause after an unexpected error in a consumer loop.
    max_age: how long streams keep messages.
    duplicate_window: how long the broker remembers event ids for de-duplication
        (at most max_age, the broker's limit).
    replicas: stream replicas (1 for a single server; 3 on a cluster).
    client_name: connection name shown by the NATS monitoring endpoints.
    """

    _link_error = NatsEventBusError

    def __init__(self, url: str, *, connect_timeout: float = 5.0,
                 publish_timeout: float = 5.0, ack_wait: float = 30.0,
                 max_deliver: int = -1, retry_delay: float = 1.0,
                 max_retry_delay: float = 60.0, fetch_batch: int = 10,
                 fetch_timeout: float = 5.0, reconnect_time_wait: float = 2.0,
                 error_backoff: float = 1.0, max_age: float = 7 * 24 * 3600.0,
                 duplicate_window: float = 120.0, replicas: int = 1,
                 client_name: str | None = None) -> None:
        if fetch_batch < 1:
            raise ValueError("fetch_batch must be at least 1")
        if min(connect_timeout, publish_timeout, ack_wait, fetch_timeout, max_age,
               duplicate_window) <= 0:
            raise ValueError("timeouts, ack_wait, max_age and duplicate_window must be positive")
        self._url = url
        self._safe_url = ",".join(redact_url(u.strip()) for u in url.split(","))
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._ack_wait = ack_wait
        self._max_deliver = max_deliver
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._fetch_batch = fetch_batch
        self._fetch_timeout = fetch_timeout
        self._reconnect_time_wait = reconnect_time_wait
        self._error_backoff = error_backoff
        self._max_age = max_age
        self._duplicate_window = min(duplicate_window, max_age)
        self._replicas = replicas
        self._client_name = client_name
        self._subscriptions: list[_Subscription] = []
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._ensured: set[str] = set()
        self._stream_locks: dict[str, asyncio.Lock] = {}
        self._last_error: BaseException | None = None
        self._connected_once = False
        self._errors_since_connect = 0
        self._stopping = False
        self._closed = False

    # -- port ---------------------------------------------------------------

    def subscribe(self, topic: str, consumer: str, handler: EventHandler) -> None:
        if self._nc is not None or self._closed:
            raise RuntimeError("subscribe() must come before start()")
        durable = durable_name(consumer, topic)
        if any(s.durable == durable for s in self._subscriptions):
            raise ValueError(f"{consumer!r} already consumes {topic!r}")
        stream, _ = stream_for(topic)
        self._subscriptions.append(_Subscription(topic, consumer, handler, stream, durable))

    async def start(self) -> None:
        """Connects, ensures the streams and durable consumers of every
        subscription, and starts one pull loop per subscription."""
        if self._closed:
            raise RuntimeError("the bus is closed")
        if self._nc is not None:
            return
        nc = await self._connect()
        self._nc = nc
        self._js = nc.jetstream(timeout=self._publish_timeout)
        try:
            await self._check_jetstream()
            for sub in self._subscriptions:
                await self._setup(sub)
        except BaseException:
            await self._shutdown()
            raise
        self._stopping = False
        for sub in self._subscriptions:
            sub.task = asyncio.create_task(self._consume(sub), name=f"nats:{sub.durable}")
        log.info("event bus started", extra={
            "url": self._safe_url, "subscriptions": [s.durable for s in self._subscriptions]})

    async def publish(self, message: OutboxMessage) -> None:
        """Returns after JetStream stored the message (PubAck); raises
        NatsEventBusError otherwise, within publish_timeout."""
        js = self._js
        if js is None:
            raise RuntimeError("publish() before start() or after close()")
        headers = {MSG_ID_HEADER: str(message.event_id),
                   CREATED_AT_HEADER: message.created_at.isoformat()}
        if message.traceparent:
            headers[TRACEPARENT_HEADER] = message.traceparent
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self._ensure_stream(message.topic)
                ack = await js.publish(message.topic, message.payload,
                                       timeout=self._publish_timeout, headers=headers)
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise NatsEventBusError(
                f"publishing event {message.event_id} to {message.topic} on "
                f"{self._safe_url} failed: {exc!r}") from exc
        if ack.duplicate:
            log.debug("duplicate event ignored by the broker", extra={
                "event_id": str(message.event_id), "topic": message.topic})

    async def consumer_status(self) -> list[ConsumerStatus]:
        """From JetStream's consumer info: pending = messages of the topic not
        yet delivered to the consumer plus those delivered and not acked."""
        js = self._js
        if js is None:
            raise RuntimeError("consumer_status() before start() or after close()")
        statuses = []
        try:
            async with asyncio.timeout(self._publish_timeout):
                for sub in self._subscriptions:
                    info = await js.consumer_info(sub.stream, sub.durable)
                    statuses.append(ConsumerStatus(
                        sub.topic, sub.consumer,
                        (info.num_pending or 0) + (info.num_ack_pending or 0)))
        except (TimeoutError, nats.errors.Error) as exc:
            raise NatsEventBusError(f"consumer info from {self._safe_url} failed: "
                                    f"{exc!r}") from exc
        return statuses

    async def close(self) -> None:
        """Stops the pull loops (unfinished messages are nak'ed for immediate
        redelivery) and closes the connection. Safe to call twice."""
        self._closed = True
        await self._shutdown()

    async def _shutdown(self) -> None:
        # On Python 3.11 a cancellation can get lost inside nats-py (its
        # next_msg runs asyncio.wait_for in a task, and wait_for drops a cancel
        # that races with a result), so the loops also watch _stopping and the
        # cancel is repeated until they are done.
        self._stopping = True
        pending = {s.task for s in self._subscriptions if s.task is not None}
        deadline = asyncio.get_running_loop().time() + self._fetch_timeout + 5
        while pending and asyncio.get_running_loop().time() < deadline:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.2)
        for task in pending:
            log.error("event consumer did not stop", extra={"task": task.get_name()})
        for sub in self._subscriptions:
            sub.task = None
            sub.pull = None
        nc, self._nc, self._js = self._nc, None, None
        self._connected_once = False  # no "disconnected" warning for our own close
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), timeout=self._publish_timeout)

    # -- streams and consumers ----------------------------------------------

    def _stream_config(self, name: str, subjects: str) -> api.StreamConfig:
        return api.StreamConfig(
            name=name, subjects=[subjects], retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE, max_age=self._max_age,
            duplicate_window=self._duplicate_window, num_replicas=self._replicas,
            discard=api.DiscardPolicy.OLD)

    def _differs(self, have: api.StreamConfig, want: api.StreamConfig) -> bool:
        return (list(have.subjects or []) != want.subjects
                or have.retention != want.retention
                or have.storage != want.storage
                or abs((have.max_age or 0) - (want.max_age or 0)) > 1e-3
                or abs((have.duplicate_window or 0) - want.duplicate_window) > 1e-3
                or (have.num_replicas or 1) != want.num_replicas)

    async def _ensure_stream(self, topic: str, *, again: bool = False) -> None:
        """Creates the stream of `topic`, or updates it to this bus's config;
        once per stream and bus unless `again`."""
        name, subjects = stream_for(topic)
        if name in self._ensured and not again:
            return
        lock = self._stream_locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name in self._ensured and not again:
                return
            js = self._js
            assert js is not None
            want = self._stream_config(name, subjects)
            try:
                have = (await js.stream_info(name)).config
            except nats.js.errors.NotFoundError:
                try:
                    await self._add_stream(js, want)
                    log.info("stream created", extra={"stream": name, "subjects": subjects})
                    self._ensured.add(name)
                    return
                except nats.js.errors.BadRequestError:
                    # Created meanwhile by another process: check it like any other.
                    have = (await js.stream_info(name)).config
            if self._differs(have, want):
                await js.update_stream(have.evolve(
                    subjects=want.subjects, retention=want.retention, storage=want.storage,
                    max_age=want.max_age, duplicate_window=want.duplicate_window,
                    num_replicas=want.num_replicas))
                log.info("stream updated", extra={"stream": name, "subjects": subjects})
            self._ensured.add(name)

    @staticmethod
    async def _add_stream(js: JetStreamContext, config: api.StreamConfig) -> None:
        """add_stream, retrying server errors a few times: nats-server (2.9 at
        least) removes an account's store directory when its last stream is
        deleted, and a create racing with that fails with a 500 ("error
        creating store for stream")."""
        for attempt in range(3):
            try:
                await js.add_stream(config)
                return
            except nats.js.errors.ServerError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.05 * 2 ** attempt)

    async def _setup(self, sub: _Subscription) -> None:
        """Ensures the stream and the durable consumer of `sub`, and binds a
        pull subscription to it (once)."""
        js = self._js
        assert js is not None
        await self._ensure_stream(sub.topic, again=sub.pull is not None)
        await js.add_consumer(sub.stream, api.ConsumerConfig(
            durable_name=sub.durable, filter_subject=sub.topic,
            ack_policy=api.AckPolicy.EXPLICIT, ack_wait=self._ack_wait,
            max_deliver=self._max_deliver, deliver_policy=api.DeliverPolicy.ALL,
            replay_policy=api.ReplayPolicy.INSTANT))
        if sub.pull is None:
            sub.pull = await js.pull_subscribe_bind(durable=sub.durable, stream=sub.stream)

    # -- delivery -----------------------------------------------------------

    def _log_extra(self, sub: _Subscription, **more: object) -> dict[str, object]:
        return {"topic": sub.topic, "consumer": sub.consumer, "durable": sub.durable, **more}

    async def _consume(self, sub: _Subscription) -> None:
        """Pulls and handles messages until cancelled; survives broker restarts."""
        needs_setup = False
        while not self._stopping:
            try:
                if needs_setup:
                    await self._setup(sub)
                    needs_setup = False
                assert sub.pull is not None
                try:
                    messages = await sub.pull.fetch(self._fetch_batch,
                                                    timeout=self._fetch_timeout)
                except TimeoutError:
                    continue  # nothing to do, or reconnecting: pull again
                await self._handle_all(sub, messages)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Stream or consumer gone (say, a broker that lost its store):
                # set them up again before the next pull.
                needs_setup = needs_setup or isinstance(error, nats.js.errors.APIError)
                log.warning("event consumer loop error; retrying", extra=self._log_extra(
                    sub, error=repr(error)))
                await asyncio.sleep(self._error_backoff)

    async def _handle_all(self, sub: _Subscription, messages: list[Msg]) -> None:
        for index, msg in enumerate(messages):
            if self._stopping:
                await self._nak_quietly(messages[index:])
                return
            try:
                await self._handle(sub, msg)
            except asyncio.CancelledError:
                await self._nak_quietly(messages[index:])
                raise

    async def _nak_quietly(self, messages: Iterable[Msg]) -> None:
        """Best effort, on shutdown: hand unfinished messages back now rather
        than after ack_wait."""
        for msg in messages:
            with contextlib.suppress(Exception):
                await msg.nak()

    def _decode(self, msg: Msg) -> OutboxMessage:
        headers = msg.headers or {}
        meta = msg.metadata
        try:
            event_id = uuid.UUID(headers[MSG_ID_HEADER])
        except (KeyError, ValueError) as exc:
            raise ValueError(f"no event id in {MSG_ID_HEADER}") from exc
        try:
            created_at = datetime.fromisoformat(headers[CREATED_AT_HEADER])
        except (KeyError, ValueError):
            created_at = meta.timestamp  # when the stream stored it: close enough
        return OutboxMessage(event_id=event_id, topic=msg.subject, payload=msg.data,
                             created_at=created_at,
                             attempts=max(meta.num_delivered - 1, 0),
                             traceparent=headers.get(TRACEPARENT_HEADER, ""))

    async def _handle(self, sub: _Subscription, msg: Msg) -> None:
        try:
            message = self._decode(msg)
        except ValueError as error:
            log.error("undecodable message dropped", extra=self._log_extra(
                sub, error=repr(error), headers=dict(msg.headers or {})))
            await msg.term()
            return
        try:
            await self._run_handler(sub, message, msg)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            delay = min(self._retry_delay * 2 ** min(message.attempts, 30),
                        self._max_retry_delay)
            log.warning("event handler failed; redelivering later", extra=self._log_extra(
                sub, event_id=str(message.event_id), attempts=message.attempts + 1,
                retry_in=delay, error=repr(error)))
            await msg.nak(delay=delay)
        else:
            await msg.ack()

    async def _run_handler(self, sub: _Subscription, message: OutboxMessage,
                           msg: Msg) -> None:
        """Runs the handler, telling the broker every ack_wait / 2 that the
        message is still being worked on."""
        task = asyncio.ensure_future(sub.handler(message))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._ack_wait / 2)
                if done:
                    task.result()
                    return
                with contextlib.suppress(nats.errors.Error):
                    await msg.in_progress()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
