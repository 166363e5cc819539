"""Periodic jobs inside every worker, one runner at a time across all of them.

Every worker process runs a Scheduler (a loop of the composition root,
Container.loops) with the same jobs. Before a run, a worker takes the job's
lease (ports.common.Leases: a lease row in the database, Redis or memory),
named `job:<name>`, for one interval:

- while another worker's lease is live, this one skips the run;
- the runner keeps renewing the lease while the job runs, so a job longer
  than its interval is never started twice;
- a finished run keeps its lease until the interval is over, so the job runs
  about once per interval whatever the number of workers, and a restart does
  not run it again early; the same worker renews it at its next attempt;
- a runner that dies stops renewing: its lease expires within one interval
  and another worker takes the job over;
- a failing job is logged and tried again at the next interval;
- shutdown cancels the loop; a job cancelled half-way gives its lease up at
  once, so another worker can take the job over.

The lease makes one runner the rule, not a proof: clocks that disagree by
more than a lease, or a lease store that loses a key, can let two runs
overlap. Every job is therefore safe to run twice or concurrently (the hold
sweep and the retention deletes are).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from ports.common import Leases

log = logging.getLogger(__name__)

#: A worker's first attempt at each job comes up to this long after start
#: (random), so that workers started together do not all contend at once.
MAX_START_DELAY_SECONDS = 5.0
#: Spread of the time between attempts: interval * (1 ± JITTER).
JITTER = 0.1


@dataclass(frozen=True)
class Job:
    """A periodic job: `run()` does one pass and returns how many things it
    did (holds released, rows deleted), which the scheduler logs."""

    name: str
    #: Seconds between runs, across all workers.
    interval: float
    run: Callable[[], Awaitable[int]]
    #: What the count counts, for the log line ("holds released").
    counts: str = "items"

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError(f"job {self.name}: the interval must be positive")

    @property
    def lease(self) -> str:
        return f"job:{self.name}"


def process_owner() -> str:
    """A lease owner unique to this process: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Scheduler:
    def __init__(self, jobs: Sequence[Job], leases: Leases, *, owner: str | None = None,
                 max_start_delay: float = MAX_START_DELAY_SECONDS,
                 jitter: float = JITTER) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique: {names}")
        self.jobs = tuple(jobs)
        self.owner = owner or process_owner()
        self._leases = leases
        self._max_start_delay = max_start_delay
        self._jitter = jitter
        self._random = random.Random()

    async def run(self) -> None:
        """Run every job periodically until cancelled."""
        if not self.jobs:
            return
        log.info("scheduler started", extra={"owner": self.owner,
                                             "jobs": [job.name for job in self.jobs]})
        tasks = [asyncio.create_task(self._loop(job), name=f"job {job.name}")
                 for job in self.jobs]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)

    async def _loop(self, job: Job) -> None:
        await asyncio.sleep(self._random.uniform(0, min(job.interval, self._max_start_delay)))
        while True:
            await self.run_once(job)
            await asyncio.sleep(job.interval * self._random.uniform(1 - self._jitter,
                                                                    1 + self._jitter))

    async def run_once(self, job: Job) -> int | None:
        """One attempt: run `job` here if this process gets its lease. Returns
        the job's count, or None when another process holds the lease or the
        job failed (logged)."""
        ttl = timedelta(seconds=job.interval)
        try:
            if not await self._leases.acquire(job.lease, self.owner, ttl):
                return None
        except Exception:
            log.warning("could not take a job's lease; trying again next interval",
                        exc_info=True, extra={"job": job.name})
            return None
        keeper = asyncio.create_task(self._keep(job, ttl), name=f"lease {job.name}")
        started = time.monotonic()
        try:
            count = await job.run()
        except asyncio.CancelledError:
            await _stop(keeper)
            await self._give_up(job)
            raise
        except Exception:
            await _stop(keeper)
            log.exception("job failed; it runs again next interval", extra={
                "job": job.name, "seconds": round(time.monotonic() - started, 3)})
            return None
        await _stop(keeper)
        log.info("job %s: %d %s", job.name, count, job.counts, extra={
            "job": job.name, "count": count, "seconds": round(time.monotonic() - started, 3)})
        return count

    async def _keep(self, job: Job, ttl: timedelta) -> None:
        """Renew the lease while the job runs (three times per lease)."""
        while True:
            await asyncio.sleep(ttl.total_seconds() / 3)
            try:
                if not await self._leases.acquire(job.lease, self.owner, ttl):
                    log.warning("a running job lost its lease", extra={"job": job.name})
            except Exception:
                log.warning("could not renew a running job's lease", exc_info=True,
                            extra={"job": job.name})

    async def _give_up(self, job: Job) -> None:
        """Release the lease of a job cancelled half-way (at shutdown), so that
        another worker may take it over without waiting for the expiry."""
        try:
            await asyncio.wait_for(self._leases.release(job.lease, self.owner), 2.0)
        except Exception:
            log.warning("could not release a cancelled job's lease", exc_info=True,
                        extra={"job": job.name})


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait for its end. Not `suppress(CancelledError)` around
    `await task`: that would also swallow a cancellation of the caller (the
    scheduler shutting down), which would then never stop."""
    task.cancel()
    await asyncio.wait([task])
