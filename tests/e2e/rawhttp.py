"""Raw HTTP/1.x for the edge tests: what httpx will not send (HTTP/1.0, bodies
that stop coming or come in chunks), and the response headers that must not
leave the edge."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    status: int
    #: lower-case names; a repeated header keeps its last value
    headers: dict[str, str]
    body: bytes
    #: seconds from the first byte sent to the response read
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def raw_request(port: int, head: bytes, chunks: Sequence[bytes] = (), *,
                      pause: float = 0.0, within: float = 15.0) -> RawResponse:
    """Send `head` (request line and headers, as given), then each of `chunks`
    `pause` seconds apart, stopping when the response arrives or the edge
    stops reading; return the (first) response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.monotonic()
    response = asyncio.ensure_future(asyncio.wait_for(_read_response(reader), within))
    try:
        writer.write(head)
        for chunk in chunks:
            if response.done():
                break
            if pause:
                await asyncio.sleep(pause)
            writer.write(chunk)
            try:
                await writer.drain()
            except (ConnectionError, OSError):
                break
        status, headers, body = await response
        return RawResponse(status, headers, body, time.monotonic() - start)
    finally:
        response.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


def chunked(body: bytes, size: int) -> list[bytes]:
    """`body` in HTTP/1.1 chunked encoding, `size` bytes a chunk, then the end."""
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    return [b"%x\r\n%s\r\n" % (len(part), part) for part in parts] + [b"0\r\n\r\n"]


def edge_headers(headers: Any) -> list[str]:
    """The names of the headers that must not leave the edge (x-envoy-*, server)."""
    return [name for name in (k.lower() for k in headers.keys())
            if name.startswith("x-envoy-") or name == "server"]
