"""Signed media URLs in embedded mode: `GET /v1/media/{key}?expires=&signature=`
through the edge, served from the file object store with HTTP Range. A URL
that expired or was altered is refused (403) with the same JSON status body
as every other error; a key without an object is 404."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

MEDIA_PREFIX = "/v1/media/"


def _status(http: int, code: int, reason: str, message: str) -> web.Response:
    body = {"code": code, "message": message, "details": [{
        "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
        "domain": "waqup.app", "metadata": {}}]}
    return web.Response(status=http, body=json.dumps(body).encode(),
                        content_type="application/json")


def media_handler(objects: Any, signer: Any) -> Any:
    async def serve(request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return _status(405, 12, "METHOD_NOT_ALLOWED", "media URLs are read with GET")
        key = request.path[len(MEDIA_PREFIX):]
        refusal = signer.verify(key, request.query.get("expires", ""),
                                request.query.get("signature", ""))
        if refusal is not None:
            return _status(403, 7, f"MEDIA_URL_{refusal.upper()}",
                           "this media URL has expired or is not valid")
        try:
            path = objects.path_for(key)
        except ValueError:
            return _status(403, 7, "MEDIA_URL_MALFORMED", "this media URL is not valid")
        if not path.is_file():
            return _status(404, 5, "MEDIA_NOT_FOUND", "no such media")
        response = web.FileResponse(path, chunk_size=64 * 1024, headers={
            "Content-Type": "audio/mpeg" if key.endswith(".mp3") else "application/octet-stream",
            "Cache-Control": "private, max-age=300"})
        return response

    return serve
