"""A local stand-in for the ElevenLabs text-to-speech endpoint (aiohttp.web).

`POST /v1/text-to-speech/{voice_id}` answers with scripted responses: tests
queue what the next requests get (`ok()`, `rate_limited()`, `status()`,
`slow()`), and once the script is empty every request gets PCM. The PCM is a
quiet tone whose length follows the text and `voice_settings.speed` (about
65 ms per character at speed 1.0), so a slower speed gives longer audio like
the real service. Every request is recorded (path, query, headers, JSON body).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

SECONDS_PER_CHARACTER = 0.065


@dataclass
class RecordedRequest:
    voice_id: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class _Step:
    kind: str  # "ok" | "status" | "slow"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def tone(seconds: float, sample_rate: int) -> bytes:
    """16-bit mono PCM: a quiet 220 Hz tone."""
    count = max(1, round(seconds * sample_rate))
    return b"".join(struct.pack("<h", int(3000 * math.sin(2 * math.pi * 220 * i / sample_rate)))
                    for i in range(count))


class FakeElevenLabs:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._script: deque[_Step] = deque()
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()
        self.url = ""

    # -- the script -----------------------------------------------------------

    def ok(self) -> None:
        self._script.append(_Step("ok"))

    def rate_limited(self, retry_after: str | None = "7") -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._script.append(_Step("status", 429, headers))

    def status(self, code: int) -> None:
        self._script.append(_Step("status", code))

    def slow(self, delay: float = 5.0) -> None:
        """The next request waits `delay` seconds (or until the server stops)
        before it answers."""
        self._script.append(_Step("slow", delay=delay))

    def reset(self) -> None:
        self._script.clear()
        self.requests.clear()

    # -- the server -----------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/v1/text-to-speech/{voice_id}", self._convert)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _convert(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = {}
        self.requests.append(RecordedRequest(
            voice_id=request.match_info["voice_id"], query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()}, body=body))
        step = self._script.popleft() if self._script else _Step("ok")
        if step.kind == "status":
            return web.json_response({"detail": {"status": "scripted", "code": step.status}},
                                     status=step.status, headers=step.headers)
        if step.kind == "slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), step.delay)
        output_format = request.query.get("output_format", "pcm_22050")
        sample_rate = int(output_format.partition("_")[2] or 22050)
        speed = float((body.get("voice_settings") or {}).get("speed") or 1.0)
        seconds = len(str(body.get("text", ""))) * SECONDS_PER_CHARACTER / speed
        return web.Response(body=tone(seconds, sample_rate),
                            content_type="application/octet-stream")
