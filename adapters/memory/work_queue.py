"""ports.media.WorkQueue in one process (embedded mode and tests): asyncio tasks.

Jobs live in this process's memory only. A process that crashes, or a queue
that is closed, loses the jobs it held, waiting or running: nothing is kept for
a later start. Whoever enqueues must therefore be able to enqueue again (the
creation pipeline's sweep re-enqueues the jobs of unfinished work). JetStream
(adapters.nats.work_queue) is the durable one.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from dataclasses import dataclass, field

from ports.media import JobHandler, QueuedJob, RetryLater

log = logging.getLogger(__name__)

_QUEUE = re.compile(r"[A-Za-z0-9_-]+")


def check_names(queue: str, job_id: str | None = None) -> None:
    """Queue names are tokens (letters, digits, _ and -); job ids are non-empty
    printable text (they travel in a message header on JetStream)."""
    if not _QUEUE.fullmatch(queue):
        raise ValueError(f"invalid queue name {queue!r}: use letters, digits, _ and -")
    if job_id is not None and (not job_id or not job_id.isprintable()):
        raise ValueError(f"invalid job id {job_id!r}: expected non-empty printable text")


def retry_backoff(attempts: int, retry_delay: float, max_retry_delay: float) -> float:
    """Delay before redelivering a job whose handler failed on delivery
    `attempts` (0 = the first): retry_delay * 2**attempts, at most max_retry_delay."""
    return min(retry_delay * 2 ** min(attempts, 30), max_retry_delay)


@dataclass
class _Queue:
    """Jobs of one queue that are ready, and its consumer when there is one."""

    ready: deque[QueuedJob] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    handler: JobHandler | None = None
    concurrency: int = 1
    workers: list[asyncio.Task[None]] = field(default_factory=list)


class InProcessWorkQueue:
    """Implements ports.media.WorkQueue with asyncio tasks in this process.

    Each consumed queue has `concurrency` worker tasks, so at most that many of
    its jobs run at once. A job id waiting (ready, or waiting for a redelivery
    delay) or running is not enqueued again; once acked or dropped it can be.

    max_deliveries: deliveries of one job, however each ended (return, RetryLater
        or another exception); the job is dropped, logged at ERROR, when its last
        delivery fails. As on JetStream, RetryLater counts too.
    ack_wait: accepted for parity with the JetStream queue. In one process a
        handler cannot die while its queue lives, so a running job is never
        redelivered however long it takes (JetStream keeps a live worker's job
        the same way, with "in progress" acks).
    retry_delay, max_retry_delay: a failed job (other than RetryLater, which
        names its own delay) comes back after min(retry_delay * 2**attempts,
        max_retry_delay) seconds.

    close() cancels running handlers (their jobs count as not acked) and drops
    every job it holds: see the module docstring.
    """

    def __init__(self, *, max_deliveries: int = 5, ack_wait: float = 30.0,
                 retry_delay: float = 1.0, max_retry_delay: float = 60.0) -> None:
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        if ack_wait <= 0 or retry_delay < 0 or max_retry_delay < 0:
            raise ValueError("ack_wait must be positive and retry delays not negative")
        self._max_deliveries = max_deliveries
        self._ack_wait = ack_wait
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._queues: dict[str, _Queue] = {}
        #: (queue, job id) of every job waiting or running.
        self._live: set[tuple[str, str]] = set()
        self._timers: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False

    # -- port ---------------------------------------------------------------

    async def enqueue(self, queue: str, job_id: str, payload: bytes) -> None:
        check_names(queue, job_id)
        if not self._started or self._closed:
            raise RuntimeError("enqueue() before start() or after close()")
        if (queue, job_id) in self._live:
            log.debug("job already waiting or running; enqueue ignored",
                      extra={"queue": queue, "job_id": job_id})
            return
        self._live.add((queue, job_id))
        self._push(QueuedJob(id=job_id, queue=queue, payload=bytes(payload)))

    def consume(self, queue: str, handler: JobHandler, *, concurrency: int = 1) -> None:
        check_names(queue)
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self._started or self._closed:
            raise RuntimeError("consume() must come before start()")
        state = self._queue(queue)
        if state.handler is not None:
            raise ValueError(f"queue {queue!r} already has a consumer")
        state.handler = handler
        state.concurrency = concurrency

    async def start(self) -> None:
        """Starts the workers of every consumed queue."""
        if self._closed:
            raise RuntimeError("the work queue is closed")
        if self._started:
            return
        self._started = True
        for name, state in self._queues.items():
            if state.handler is not None:
                state.workers = [
                    asyncio.create_task(self._work(name, state), name=f"work:{name}:{i}")
                    for i in range(state.concurrency)]

    async def close(self) -> None:
        """Cancels running handlers and redelivery timers, waits for them to
        end, and drops every job. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        tasks = [*self._timers, *(w for s in self._queues.values() for w in s.workers)]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        if self._live:
            log.warning("work queue closed; jobs it held are dropped",
                        extra={"jobs": len(self._live)})
        self._live.clear()
        self._timers.clear()
        for state in self._queues.values():
            state.ready.clear()
            state.workers = []

    # -- monitoring ---------------------------------------------------------

    async def pending(self, queue: str) -> int:
        """Jobs of `queue` waiting or running (enqueued, not yet acked or dropped)."""
        check_names(queue)
        return sum(1 for name, _ in self._live if name == queue)

    # -- delivery -----------------------------------------------------------

    def _queue(self, name: str) -> _Queue:
        state = self._queues.get(name)
        if state is None:
            state = self._queues[name] = _Queue()
        return state

    def _push(self, job: QueuedJob) -> None:
        state = self._queue(job.queue)
        state.ready.append(job)
        state.wakeup.set()

    def _redeliver_later(self, job: QueuedJob, delay: float) -> None:
        async def timer() -> None:
            try:
                await asyncio.sleep(delay)
                self._push(job)
            finally:
                self._timers.discard(task)

        task = asyncio.create_task(timer(), name=f"redeliver:{job.queue}:{job.id}")
        self._timers.add(task)

    async def _work(self, name: str, state: _Queue) -> None:
        handler = state.handler
        assert handler is not None
        while True:
            while not state.ready:
                state.wakeup.clear()
                await state.wakeup.wait()
            job = state.ready.popleft()
            await self._deliver(handler, job)

    async def _deliver(self, handler: JobHandler, job: QueuedJob) -> None:
        extra: dict[str, object] = {"queue": job.queue, "job_id": job.id,
                                    "attempts": job.attempts}
        try:
            await handler(job)
        except asyncio.CancelledError:
            # close(): not acked, and not kept either.
            self._live.discard((job.queue, job.id))
            raise
        except RetryLater as retry:
            self._failed(job, max(retry.delay, 0.0), extra, f"retry later: {retry}",
                         logging.INFO)
        except Exception as error:
            delay = retry_backoff(job.attempts, self._retry_delay, self._max_retry_delay)
            self._failed(job, delay, extra, repr(error), logging.WARNING)
        else:
            self._live.discard((job.queue, job.id))

    def _failed(self, job: QueuedJob, delay: float, extra: dict[str, object],
                reason: str, level: int) -> None:
        if job.attempts + 1 >= self._max_deliveries:
            self._live.discard((job.queue, job.id))
            log.error("job dropped after its last delivery failed", extra={
                **extra, "max_deliveries": self._max_deliveries, "error": reason})
            return
        log.log(level, "job not done; redelivering later", extra={
            **extra, "retry_in": delay, "error": reason})
        self._redeliver_later(QueuedJob(job.id, job.queue, job.payload, job.attempts + 1),
                              delay)
