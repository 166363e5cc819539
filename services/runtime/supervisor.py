"""Worker processes: several `waqup serve` children, one port each.

grpc.aio serves one event loop on one core, so a context uses every core by
running several worker processes. Each listens on its own port (Envoy lists them
all in the context's cluster and balances requests across them), which spreads
load evenly where SO_REUSEPORT would hash Envoy's few long-lived HTTP/2
connections onto whichever workers they happen to land on.

The supervisor starts the workers, waits until each answers its gRPC health
check, restarts one that dies (after a short pause), and on stop sends SIGTERM
(graceful: running calls finish) and then SIGKILL to any that linger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.proc import PARENT_PID_ENV

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0


@dataclass
class Worker:
    context: str
    host: str
    port: int
    env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0

    def command(self) -> list[str]:
        return [sys.executable, "-m", "services.runtime.cli", "serve", "--context", self.context,
                "--host", self.host, "--port", str(self.port), "--workers", "1"]

    def spawn(self) -> None:
        env = {**os.environ, **self.env, PARENT_PID_ENV: str(os.getpid())}
        self.started_at = time.monotonic()
        # Its own session: a terminal's Ctrl-C reaches the supervisor only, which
        # then stops the workers in order (instead of restarting the ones that
        # died of the same signal). If the supervisor dies, the kernel sends
        # SIGTERM to the workers (the worker asks for it: PARENT_PID_ENV).
        self.process = subprocess.Popen(self.command(), env=env, stdin=subprocess.DEVNULL,
                                        start_new_session=True)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


async def wait_healthy(host: str, port: int, timeout: float = 30.0,  # noqa: ASYNC109
                       process: subprocess.Popen[bytes] | None = None) -> None:
    """Until grpc.health.v1 Check answers SERVING on host:port."""
    deadline = time.monotonic() + timeout
    target = f"{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"worker on port {port} exited with code "
                                   f"{process.returncode} during start-up")
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() >= deadline:
                raise RuntimeError(f"worker on {target} not healthy after {timeout} s")
            await asyncio.sleep(0.1)


class Supervisor:
    def __init__(self, workers: Sequence[Worker]) -> None:
        self.workers = list(workers)
        self._watch: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        for worker in self.workers:
            worker.spawn()
        try:
            await asyncio.gather(*(wait_healthy(w.host, w.port, timeout, w.process)
                                   for w in self.workers))
        except BaseException:
            await self.stop()
            raise
        log.info("workers ready", extra={"workers": [f"{w.context}@{w.port}"
                                                     for w in self.workers]})
        self._watch = asyncio.create_task(self._restart_dead(), name="supervisor")

    async def _restart_dead(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for worker in self.workers:
                if worker.process is not None and not worker.alive:
                    log.error("worker died; restarting", extra={
                        "context": worker.context, "port": worker.port,
                        "exit_code": worker.process.returncode})
                    # Back off when a worker keeps dying (up to 30 s between tries);
                    # one that ran for a minute starts the count afresh.
                    if time.monotonic() - worker.started_at > 60:
                        worker.restarts = 0
                    await asyncio.sleep(min(RESTART_DELAY * 2 ** min(worker.restarts, 5), 30))
                    worker.restarts += 1
                    try:
                        worker.spawn()
                    except OSError:
                        log.exception("could not restart a worker", extra={
                            "context": worker.context, "port": worker.port})

    async def stop(self, grace: float = 10.0) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        for worker in self.workers:
            if worker.alive:
                assert worker.process is not None
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for worker in self.workers:
            process = worker.process
            if process is None:
                continue
            try:
                await asyncio.to_thread(process.wait, max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
