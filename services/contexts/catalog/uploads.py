"""Uploads in embedded mode: `PUT /v1/uploads/{key}?expires=&signature=`
through the edge (no token: the URL, handed out by CreateUpload, is the
proof), stored in the file object store. The body is streamed (the edge does
not buffer this route) and capped at MAX_UPLOAD_BYTES: 413 beyond. With S3,
upload URLs are presigned PUTs to the bucket and this route is not used."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.api.http import status_response

UPLOAD_PREFIX = "/v1/uploads/"
#: Largest recording accepted (about 40 minutes of 128 kb/s MP3).
MAX_UPLOAD_BYTES = 40 * 1024 * 1024


def upload_handler(objects: Any, signer: Any) -> Any:
    async def receive(request: web.Request) -> web.StreamResponse:
        if request.method != "PUT":
            return status_response(405, 12, "METHOD_NOT_ALLOWED", "uploads are PUT")
        key = request.path[len(UPLOAD_PREFIX):]
        if not key.startswith("uploads/"):
            return status_response(404, 5, "NOT_FOUND", "not found")
        refusal = signer.verify_upload(key, request.query.get("expires", ""),
                                       request.query.get("signature", ""))
        if refusal is not None:
            return status_response(403, 7, f"UPLOAD_URL_{refusal.upper()}",
                                   "this upload URL is not valid")
        if (request.content_length or 0) > MAX_UPLOAD_BYTES:
            return status_response(413, 3, "REQUEST_TOO_LARGE",
                                   f"a recording is at most {MAX_UPLOAD_BYTES} bytes")
        chunks, size = [], 0
        async for chunk in request.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                return status_response(413, 3, "REQUEST_TOO_LARGE",
                                       f"a recording is at most {MAX_UPLOAD_BYTES} bytes")
            chunks.append(chunk)
        if not size:
            return status_response(400, 3, "EMPTY_UPLOAD", "the upload has no bytes")
        await objects.put(key, b"".join(chunks),
                          request.headers.get("Content-Type", "application/octet-stream"))
        return web.json_response({"size": size}, status=201)

    return receive
