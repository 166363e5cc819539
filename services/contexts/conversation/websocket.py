"""The conversation as a WebSocket: `GET /v1/conversations/{id}:stream`
(through the edge, same port). JSON text frames of ConverseRequest in (proto
field names: `{"text": "..."}`, `{"confirm": true}`, `{"cancel": true}`) and
of ConverseResponse out.

Browsers cannot set headers on a WebSocket, so the access token may come as
the `Authorization` header, the `access_token` query parameter, or a
subprotocol `bearer.<token>` offered beside `waqup.v1` (which the server
selects). The edge checks the token; this bridge verifies it again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web
from google.protobuf import json_format

from core.shared.errors import DomainError, InvalidArgument, NotFound, Unauthenticated
from core.shared.text import first_forbidden
from services.api.context import RequestInfo, request_var
from services.api.errors import status_for
from services.contexts.conversation.servicers import converse
from services.gen.waqup.conversation.v1 import conversation_pb2 as pb

log = logging.getLogger(__name__)

PATH = re.compile(r"/v1/conversations/([0-9a-fA-F-]{36}):stream")
SUBPROTOCOL = "waqup.v1"
TOKEN_SUBPROTOCOL = "bearer."
#: Largest frame accepted (a message is at most 4000 characters).
MAX_FRAME_BYTES = 64 * 1024


def _token(request: web.Request) -> str:
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    if bearer and scheme.lower() == "bearer":
        return bearer.strip()
    if request.query.get("access_token"):
        return request.query["access_token"]
    for protocol in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        protocol = protocol.strip()
        if protocol.startswith(TOKEN_SUBPROTOCOL):
            return protocol[len(TOKEN_SUBPROTOCOL):]
    return ""


def _json_error(http: int, error: DomainError) -> web.Response:
    _code, status = status_for(error)
    body = json_format.MessageToJson(status, preserving_proto_field_name=True, indent=None)
    return web.Response(status=http, body=body.encode(), content_type="application/json")


def _frame(response: pb.ConverseResponse) -> str:
    return json.dumps(json_format.MessageToDict(response, preserving_proto_field_name=True),
                      separators=(",", ":"))


def websocket_handler(conversations: Any, verifier: Any, ttl: int) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        match = PATH.fullmatch(request.path)
        if match is None:
            return _json_error(404, NotFound("not found", reason="NOT_FOUND"))
        try:
            token = _token(request)
            if not token:
                raise Unauthenticated("an access token is required", reason="TOKEN_MISSING")
            principal = verifier.verify(token)
            user_id = principal.user_id
        except DomainError as error:
            return _json_error(401 if isinstance(error, Unauthenticated) else 403, error)
        request_var.set(RequestInfo(request.headers.get("x-request-id", "") or
                                    uuid.uuid4().hex, principal=principal, bearer=token))
        socket = web.WebSocketResponse(protocols=(SUBPROTOCOL,), heartbeat=30.0,
                                       max_msg_size=MAX_FRAME_BYTES)
        await socket.prepare(request)
        inbound: asyncio.Queue[pb.ConverseRequest | None] = asyncio.Queue()

        async def requests() -> AsyncIterator[pb.ConverseRequest]:
            while (item := await inbound.get()) is not None:
                yield item

        async def receive() -> None:
            try:
                async for message in socket:
                    if message.type != WSMsgType.TEXT:
                        if message.type == WSMsgType.BINARY:
                            await socket.send_str(_refusal("frames are JSON text"))
                        continue
                    try:
                        data = json.loads(message.data)
                        if not isinstance(data, dict):
                            raise ValueError("not an object")
                        frame = json_format.ParseDict(data, pb.ConverseRequest(),
                                                      ignore_unknown_fields=True)
                    except (json_format.ParseError, ValueError, RecursionError):
                        await socket.send_str(_refusal("a frame is a JSON ConverseRequest"))
                        continue
                    if frame.text and first_forbidden(frame.text) >= 0:
                        await socket.send_str(_refusal(
                            "text must not contain control or invisible characters",
                            "INVALID_CHARACTERS"))
                        continue
                    await inbound.put(frame)
            finally:
                await inbound.put(None)

        receiver = asyncio.create_task(receive())
        try:
            async for response in converse(conversations, ttl, user_id,
                                           f"conversations/{match.group(1)}", requests()):
                if socket.closed:
                    break
                await socket.send_str(_frame(response))
        except Exception:
            log.exception("conversation stream failed")
        finally:
            receiver.cancel()
            if not socket.closed:
                await socket.close()
        return socket

    return handle


def _refusal(message: str, reason: str = "MALFORMED_FRAME") -> str:
    return _frame(pb.ConverseResponse(error=status_for(
        InvalidArgument(message, reason=reason))[1]))
