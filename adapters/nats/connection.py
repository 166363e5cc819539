"""The NATS connection both JetStream adapters share (the event bus and the
work queue): connecting with a deadline, checking JetStream, and logging
outages once. A subclass sets `_link_error` and, in its __init__, the
attributes read here: `_url`, `_safe_url`, `_client_name`, `_connect_timeout`,
`_reconnect_time_wait`, `_last_error`, `_connected_once`, `_errors_since_connect`
and, before `_check_jetstream`, `_js`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client

log = logging.getLogger("adapters.nats")


class NatsLink:
    #: The adapter's own error type for connection failures.
    _link_error: type[Exception] = RuntimeError
    _url: str
    _safe_url: str
    _client_name: str
    _connect_timeout: float
    _reconnect_time_wait: float
    _last_error: BaseException | None
    _connected_once: bool
    _errors_since_connect: int
    _js: Any

    # -- connection ---------------------------------------------------------

    async def _connect(self) -> Client:
        nc = Client()
        self._last_error = None
        connect = nc.connect(
            servers=[s.strip() for s in self._url.split(",")],
            name=self._client_name,
            connect_timeout=self._connect_timeout,
            reconnect_time_wait=self._reconnect_time_wait,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        # With max_reconnect_attempts=-1 nats-py retries the first connection
        # forever too; the deadline turns that into a startup error.
        try:
            await asyncio.wait_for(connect, timeout=self._connect_timeout)
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            cause = self._last_error or exc
            raise self._link_error(
                f"NATS unreachable at {self._safe_url} (gave up after "
                f"{self._connect_timeout:g}s): {cause!r}") from exc
        self._connected_once = True
        return nc

    async def _check_jetstream(self) -> None:
        assert self._js is not None
        try:
            await self._js.account_info()
        except nats.js.errors.ServiceUnavailableError as exc:
            raise self._link_error(
                f"JetStream is not enabled on the NATS server at {self._safe_url} "
                "(start nats-server with -js)") from exc
        except (TimeoutError, nats.errors.Error) as exc:
            raise self._link_error(
                f"JetStream at {self._safe_url} did not answer: {exc!r}") from exc

    async def _on_error(self, error: Exception) -> None:
        self._last_error = error
        if not self._connected_once:
            return
        # Reconnection attempts fail every reconnect_time_wait during an outage:
        # warn about the first, keep the rest for debug logs.
        self._errors_since_connect += 1
        level = logging.WARNING if self._errors_since_connect == 1 else logging.DEBUG
        log.log(level, "nats connection error", extra={
            "url": self._safe_url, "error": repr(error)})

    async def _on_disconnected(self) -> None:
        if self._connected_once:
            log.warning("nats disconnected; reconnecting", extra={"url": self._safe_url})

    async def _on_reconnected(self) -> None:
        self._errors_since_connect = 0
        log.info("nats reconnected", extra={"url": self._safe_url})
