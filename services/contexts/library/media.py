"""Signed media URLs in embedded mode: `GET /v1/media/{key}?expires=&signature=`
(and `&download=`) through the edge, served from the file object store with
HTTP Range. A URL that expired or was altered is refused (403) with the same
JSON status body as every other error; a key without an object is 404.

A key names one version of one object, never rewritten: responses may be
cached for a year (`immutable`). A download is answered as an attachment."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.api.http import status_response

MEDIA_PREFIX = "/v1/media/"
IMMUTABLE = "public, max-age=31536000, immutable"
MIME_TYPES = {".mp3": "audio/mpeg", ".opus": "audio/ogg", ".ogg": "audio/ogg"}


def mime_type(key: str) -> str:
    dot = key.rfind(".")
    return MIME_TYPES.get(key[dot:], "application/octet-stream") if dot >= 0 else (
        "application/octet-stream")


def media_handler(objects: Any, signer: Any) -> Any:
    async def serve(request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return status_response(405, 12, "METHOD_NOT_ALLOWED", "media URLs are read with GET")
        key = request.path[len(MEDIA_PREFIX):]
        download = request.query.get("download", "")
        refusal = signer.verify(key, request.query.get("expires", ""),
                                request.query.get("signature", ""), download)
        if refusal is not None:
            return status_response(403, 7, f"MEDIA_URL_{refusal.upper()}",
                                   "this media URL has expired or is not valid")
        try:
            path = objects.path_for(key)
        except ValueError:
            return status_response(403, 7, "MEDIA_URL_MALFORMED", "this media URL is not valid")
        if not path.is_file():
            return status_response(404, 5, "MEDIA_NOT_FOUND", "no such media")
        headers = {"Content-Type": mime_type(key), "Cache-Control": IMMUTABLE}
        if download:  # checked by the signer: letters, digits and `._-` only
            headers["Content-Disposition"] = f'attachment; filename="{download}"'
        return web.FileResponse(path, chunk_size=64 * 1024, headers=headers)

    return serve
