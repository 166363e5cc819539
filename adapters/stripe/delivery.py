"""Webhook delivery for the embedded simulator, the way Stripe delivers.

Each event is POSTed as JSON with a `Stripe-Signature` made at the moment of
each attempt (Stripe signs every attempt afresh, so a retry is never refused
as too old). A 5xx answer or a connection failure is retried, briefly:
Stripe itself retries for days, but the simulator's events come from someone
at a page waiting for the outcome, and the receiving service is local.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from core.payments.signature import sign

#: Stripe's own webhook User-Agent.
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
#: Waits before each retry; their number is the number of retries.
RETRY_DELAYS = (0.2, 0.5, 1.0)


class WebhookSender:
    """Signs and POSTs events to one webhook endpoint."""

    def __init__(self, url: str, secret: str, *, timeout: float = 10.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """`timeout` bounds each attempt; `sleep` waits between attempts
        (tests pass their own)."""
        self._url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never the secret
        return f"WebhookSender({self._url!r})"

    async def send(self, event: dict[str, Any]) -> int:
        """POST `event`; the HTTP status of the last attempt. After the last
        retry of a connection failure, ConnectionError."""
        if self._session is None:  # made here: a ClientSession wants a running loop
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = json.dumps(event).encode()
        retries = 0
        while True:
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": sign(body, self._secret, int(time.time())),
                "User-Agent": USER_AGENT,
            }
            last = retries == len(RETRY_DELAYS)
            try:
                async with self._session.post(self._url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status < 500 or last:
                        return response.status
            except (aiohttp.ClientError, TimeoutError) as error:
                if last:
                    raise ConnectionError(
                        f"webhook delivery to {self._url} failed: {type(error).__name__}"
                    ) from None
            await self._sleep(RETRY_DELAYS[retries])
            retries += 1

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
