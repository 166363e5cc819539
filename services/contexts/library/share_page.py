"""The page a share link opens: `GET /share/{token}` through the edge, no
account needed. It plays the one shared item with its captions and shows its
title; nothing else about the item or its owner is on it.

A token is the share's id and an HMAC of it (so links cannot be forged or
enumerated); the share itself is then looked up, so revoking or expiring it
takes effect at once (410, an error page). The audio is fetched from a
short-lived signed media URL like any playback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import uuid
from datetime import timedelta
from typing import Any

from aiohttp import web

from core.library.model import AudioFormat
from core.shared.audio import webvtt
from core.shared.errors import DomainError

SHARE_PREFIX = "/share/"
_TOKEN = re.compile(r"([0-9a-f]{32})([A-Za-z0-9_-]{22})")
#: The page's one script: captions from the track's active cue, and the
#: player's state on <body> (what the browser test reads).
_SCRIPT = """
const audio = document.getElementById("player");
const caption = document.getElementById("caption");
const track = audio.textTracks[0];
if (track) {
  track.mode = "hidden";
  track.addEventListener("cuechange", () => {
    const cue = track.activeCues && track.activeCues[0];
    if (cue) { caption.textContent = cue.text; document.body.dataset.captioned = "1"; }
  });
}
audio.addEventListener("playing", () => { document.body.dataset.playing = "1"; });
audio.addEventListener("timeupdate", () => {
  document.body.dataset.time = audio.currentTime.toFixed(1);
});
audio.addEventListener("error", () => { document.body.dataset.error = "1"; });
if (new URLSearchParams(location.search).has("autoplay")) {
  audio.play().catch(() => { document.body.dataset.blocked = "1"; });
}
""".strip()
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
_STYLE = ("body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;"
          "color:#1d2b36;background:#f6f4ef}h1{font-weight:500}audio{width:100%}"
          "#caption{min-height:3em;font-size:1.2rem;line-height:1.5}")
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()


class ShareLinks:
    """Tokens of share links: `{id hex}{hmac}`, 54 URL-safe characters."""

    def __init__(self, secret: bytes, base_url: str) -> None:
        self._key = hmac.new(secret, b"waqup share links", hashlib.sha256).digest()
        self._base_url = base_url.rstrip("/")

    def _mac(self, share_id: uuid.UUID) -> str:
        digest = hmac.new(self._key, share_id.bytes, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()[:22]

    def url(self, share_id: uuid.UUID) -> str:
        return f"{self._base_url}{SHARE_PREFIX}{share_id.hex}{self._mac(share_id)}"

    def share_id(self, token: str) -> uuid.UUID | None:
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        share_id = uuid.UUID(match.group(1))
        if not hmac.compare_digest(self._mac(share_id), match.group(2)):
            return None
        return share_id


def _headers(script: bool) -> dict[str, str]:
    scripts = f" script-src 'sha256-{_SCRIPT_HASH}';" if script else ""
    return {"Content-Security-Policy": f"default-src 'none'; media-src *; style-src "
                                       f"'sha256-{_STYLE_HASH}';{scripts} base-uri 'none'; "
                                       "form-action 'none'; frame-ancestors 'none'",
            "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store"}


def _page(status: int, title: str, body: str, *, script: bool = False) -> web.Response:
    document = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width,initial-scale=1">'
                f'<meta name="robots" content="noindex">'
                f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
                f"<body>{body}{f'<script>{_SCRIPT}</script>' if script else ''}</body></html>")
    return web.Response(status=status, text=document, content_type="text/html",
                        charset="utf-8", headers=_headers(script))


def _error(status: int, message: str) -> web.Response:
    return _page(status, "waQup", f'<h1 id="error">{html.escape(message)}</h1>'
                                  f"<p>Ask the person who shared it for a new link.</p>")


def share_handler(organiser: Any, library: Any, links: ShareLinks, ttl: timedelta) -> Any:
    async def serve(request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return _error(405, "This page is read only.")
        rest = request.path[len(SHARE_PREFIX):]
        token, _, tail = rest.partition("/")
        share_id = links.share_id(token)
        if share_id is None or tail not in ("", "captions.vtt"):
            return _error(404, "This link does not exist.")
        try:
            _share, item = await organiser.open_share(share_id)
        except DomainError as error:
            if error.reason == "SHARE_ENDED":
                return _error(410, "This link has ended.")
            return _error(404, "This link does not exist.")
        if tail == "captions.vtt":
            try:
                _, details = await library.details(item.user_id, item.id)
            except DomainError:
                return _error(404, "No captions.")
            return web.Response(text=webvtt(details.captions), content_type="text/vtt",
                                charset="utf-8", headers=_headers(False))
        sources = []
        for fmt in (AudioFormat.OGG_OPUS, AudioFormat.MP3):
            rendition = item.rendition(fmt)
            if rendition is not None:
                url = await library.audio_url(rendition.key, ttl)
                sources.append(f'<source src="{html.escape(url)}" '
                               f'type="{html.escape(rendition.mime_type)}">')
        minutes = round(item.audio_duration_ms / 60000)
        body = (f"<h1>{html.escape(item.title or 'A waQup piece')}</h1>"
                f"<p>{item.content_type.label.capitalize()} · {minutes} min</p>"
                f'<audio id="player" controls preload="auto">'
                f"{''.join(sources)}"
                f'<track kind="captions" srclang="en" label="Captions" default '
                f'src="{SHARE_PREFIX}{html.escape(token)}/captions.vtt"></audio>'
                f'<p id="caption" aria-live="polite"></p>')
        return _page(200, item.title or "waQup", body, script=True)

    return serve
