"""A local stand-in for an OpenAI-compatible chat completions API (aiohttp.web).

`POST /v1/chat/completions` answers from a script: tests queue what the next
requests get, in order:

- `ok(content)`: a completion whose message content is `content` (a dict is
  sent as its JSON text, a string as it is: malformed or schema-breaking
  output is just a string or a dict of the wrong shape);
- `rate_limited(retry_after)`: 429 with a Retry-After header;
- `status(code)`: an error status with an OpenAI-style error body;
- `slow(delay)`: wait `delay` seconds (or until the server stops) before
  answering (past a client's timeout), then answer with `then` content;
- `refusal()`, `truncated()`: a refused or cut-off answer.

When the script is empty a request gets 500 ("nothing scripted"), so a test
never passes by accident. Every request is recorded (headers, JSON body).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class RecordedRequest:
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))


@dataclass
class _Step:
    kind: str  # "ok" | "status" | "slow" | "refusal" | "truncated"
    status: int = 200
    content: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def _text(content: str | dict[str, Any]) -> str:
    return content if isinstance(content, str) else json.dumps(content)


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._script: deque[_Step] = deque()
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()
        self.url = ""

    # -- the script -----------------------------------------------------------

    def ok(self, content: str | dict[str, Any]) -> None:
        self._script.append(_Step("ok", content=_text(content)))

    def rate_limited(self, retry_after: str | None = "1") -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._script.append(_Step("status", 429, headers=headers))

    def status(self, code: int) -> None:
        self._script.append(_Step("status", code))

    def slow(self, delay: float, then: str | dict[str, Any] = "{}") -> None:
        self._script.append(_Step("slow", content=_text(then), delay=delay))

    def refusal(self) -> None:
        self._script.append(_Step("refusal"))

    def truncated(self, content: str = '{"title": "cut') -> None:
        self._script.append(_Step("truncated", content=content))

    @property
    def pending(self) -> int:
        """Scripted answers not yet given."""
        return len(self._script)

    def reset(self) -> None:
        self._script.clear()
        self.requests.clear()

    # -- the server -----------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on `host` (any free port by default); returns the base URL (…/v1)."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound_port}/v1"
        return self.url

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = {}
        self.requests.append(RecordedRequest(
            headers={k.lower(): v for k, v in request.headers.items()}, body=body))
        if not self._script:
            return self._error(500, "nothing scripted", {})
        step = self._script.popleft()
        if step.kind == "status":
            return self._error(step.status, "scripted failure", step.headers)
        if step.kind == "slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), step.delay)
        message: dict[str, Any] = {"role": "assistant", "content": step.content,
                                   "refusal": None}
        finish = "stop"
        if step.kind == "refusal":
            message = {"role": "assistant", "content": None,
                       "refusal": "I can't help with that."}
        elif step.kind == "truncated":
            finish = "length"
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
        completion_tokens = max(1, len(step.content) // 4)
        return web.json_response({
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "unknown"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish,
                         "logprobs": None}],
            "usage": {"prompt_tokens": prompt_chars // 4, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_chars // 4 + completion_tokens},
        })

    @staticmethod
    def _error(status: int, message: str, headers: dict[str, str]) -> web.Response:
        kind = "rate_limit_exceeded" if status == 429 else "server_error" if status >= 500 \
            else "invalid_request_error"
        return web.json_response(
            {"error": {"message": message, "type": kind, "param": None, "code": kind}},
            status=status, headers=headers)
