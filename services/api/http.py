"""The HTTP side of a worker: the contexts' declared HttpRoutes (the
conversation WebSocket, signed media in embedded mode), served by aiohttp
beside the gRPC server, behind the edge. Also `/healthz` for the edge's
health check of this cluster."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


def status_response(http: int, code: int, reason: str, message: str) -> web.Response:
    """A google.rpc.Status JSON body with an ErrorInfo, as every error of the
    API looks (a plain HTTP route's errors too)."""
    body = {"code": code, "message": message, "details": [{
        "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
        "domain": "waqup.app", "metadata": {}}]}
    return web.Response(status=http, body=json.dumps(body).encode(),
                        content_type="application/json")


@dataclass
class RunningHttp:
    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        await self.runner.cleanup()


def http_routes(container: Any) -> list[tuple[re.Pattern[str], Any]]:
    routes = []
    for declaration in container.declarations:
        handlers = container.built[declaration.name].http
        for route in declaration.http_routes:
            if route.name in handlers:
                routes.append((re.compile(route.regex), handlers[route.name]))
    return routes


async def start_http_server(container: Any, host: str, port: int) -> RunningHttp | None:
    """Serve the declared HTTP routes on host:port (0 picks a free port); None
    when this process serves none."""
    routes = http_routes(container)
    if not routes:
        return None

    async def dispatch(request: web.Request) -> web.StreamResponse:
        for pattern, handler in routes:
            if pattern.fullmatch(request.path):
                return await handler(request)
        return web.json_response({"code": 5, "message": "not found", "details": []},
                                 status=404)

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_get("/healthz", healthz)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    log.info("http server listening", extra={"address": f"{host}:{bound}"})
    return RunningHttp(runner, bound)
