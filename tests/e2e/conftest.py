"""Helpers for the e2e tests: the real Envoy in front of the real server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from services.edge import (
    EnvoyProcess,
    embedded_http_upstreams,
    embedded_upstreams,
    write_envoy_config,
)
from tests.backends import free_port
from tests.integration.conftest import App, start_app, stop_app


@dataclass
class RealEdge:
    """Envoy (REST + native gRPC on http_port) in front of a running App."""

    app: App
    envoy: EnvoyProcess
    http_port: int
    access_log: Path
    client: httpx.AsyncClient

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def client_from(self, local_address: str) -> httpx.AsyncClient:
        """A client whose connections come from `local_address` (127.0.0.0/8 is all
        loopback on Linux): Envoy sees it as another client address."""
        return httpx.AsyncClient(
            base_url=self.url, timeout=10,
            transport=httpx.AsyncHTTPTransport(local_address=local_address))

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.access_log.read_text().splitlines()
                if line.startswith("{")]

    async def logged_ids(self, request_ids: Collection[str],
                         within: float = 5.0) -> dict[str, dict[str, Any]]:
        """The access log line of each request id (the first line when several)."""
        deadline = time.monotonic() + within
        while True:
            found: dict[str, dict[str, Any]] = {}
            for line in self.log_lines():
                if line["request_id"] in request_ids:
                    found.setdefault(line["request_id"], line)
            if len(found) == len(set(request_ids)):
                return found
            if time.monotonic() > deadline:
                missing = set(request_ids) - set(found)
                raise AssertionError(f"no access log line within {within} s for {missing}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def real_edge(tmp: Path, database_url: str = "memory://", *,
                    app: App | None = None, keyring: Any = None,
                    app_settings: dict[str, Any] | None = None,
                    app_overrides: dict[str, Any] | None = None,
                    **render: Any) -> AsyncIterator[RealEdge]:
    """Start the app (unless given) and Envoy in front of it, with `render` passed to
    render_envoy_config; ready once /healthz is 200 and the JWKS has been fetched.
    `tmp` must exist."""
    own_app = app is None
    http_port, admin_port = free_port(), free_port()
    if app is None:
        overrides = {"keyring": keyring} if keyring is not None else {}
        overrides.update(app_overrides or {})
        app = await start_app(tmp, database_url, settings={
            "public_base_url": f"http://127.0.0.1:{http_port}", **(app_settings or {})},
            **overrides)
    config = write_envoy_config(tmp / "envoy.yaml", listen_port=http_port,
                                admin_port=admin_port,
                                upstreams=embedded_upstreams("127.0.0.1", app.server.port),
                                http_upstreams=(embedded_http_upstreams("127.0.0.1", app.http.port)
                                                if app.http is not None else None),
                                **render)
    envoy = EnvoyProcess(admin_port=admin_port)
    access_log, envoy_log = tmp / "access.log", tmp / "envoy.log"
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=10)
    try:
        with access_log.open("wb") as out, envoy_log.open("wb") as err:
            envoy.start(config, concurrency=2, stdout=out, stderr=err)
        await envoy.wait_ready_async(timeout=20)
        for _ in range(100):  # the first health check round is part of /ready; be sure
            if (await client.get("/healthz")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        await envoy.wait_jwks_async(timeout=10)
        yield RealEdge(app, envoy, http_port, access_log, client)
    finally:
        await client.aclose()
        envoy.stop()
        if own_app:
            await stop_app(app)
        print(envoy_log.read_text()[-4000:])  # shown by pytest when a test failed
