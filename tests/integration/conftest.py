"""Services over real gRPC channels, built by the same build() as production."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from adapters.jwt.keys import KeyRing
from adapters.jwt.tokens import JwtTokenIssuer
from services.api.access_log import AccessLog
from services.api.http import start_http_server
from services.api.server import RunningServer, start_server
from services.gen.waqup.credits.v1 import credits_pb2_grpc
from services.gen.waqup.identity.v1 import identity_pb2 as id_pb
from services.gen.waqup.identity.v1 import identity_pb2_grpc
from services.runtime.bootstrap import Container, build
from services.runtime.settings import Settings


@dataclass
class App:
    container: Container
    server: RunningServer
    channel: grpc.aio.Channel
    keyring: KeyRing
    access_log: io.StringIO
    #: The HTTP side (WebSocket, signed media), when a served context has routes.
    http: Any = None

    def access_lines(self) -> list[dict[str, Any]]:
        """The access log lines written so far (flushed first)."""
        assert self.server.access_log is not None
        self.server.access_log.flush()
        return [json.loads(line) for line in self.access_log.getvalue().splitlines()]

    @property
    def auth(self) -> identity_pb2_grpc.AuthServiceStub:
        return identity_pb2_grpc.AuthServiceStub(self.channel)

    @property
    def users(self) -> identity_pb2_grpc.UserServiceStub:
        return identity_pb2_grpc.UserServiceStub(self.channel)

    @property
    def accounts(self) -> credits_pb2_grpc.CreditAccountServiceStub:
        return credits_pb2_grpc.CreditAccountServiceStub(self.channel)

    @property
    def ledger(self) -> credits_pb2_grpc.CreditLedgerServiceStub:
        return credits_pb2_grpc.CreditLedgerServiceStub(self.channel)

    def service_token(self) -> str:
        settings = self.container.settings
        issuer = JwtTokenIssuer(self.keyring, settings.jwt_issuer, settings.jwt_audience, 300)
        return issuer.issue("service:tests", ("service",), self.container.clock.now()).token

    async def register(self, email: str | None = None,
                       password: str = "correct horse") -> id_pb.RegisterResponse:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        return await self.auth.Register(id_pb.RegisterRequest(
            email=email, password=password, display_name="Test Person"))


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def start_app(tmp: Path, database_url: str = "memory://", *,
                    settings: dict[str, Any] | None = None, **overrides) -> App:
    """The app on a free port; `settings` adds Settings fields, `overrides`
    goes to build()."""
    keyring = overrides.pop("keyring", None) or KeyRing.load_or_create(tmp / "keys")
    settings = Settings(**{"database_url": database_url, "data_dir": tmp,
                           "outbox_poll_seconds": 0.2, **(settings or {})})
    container = build(settings, keyring=keyring, **overrides)
    await container.start()
    access_log = io.StringIO()
    server = await start_server(container, "127.0.0.1", 0,
                                access_log=AccessLog("test", access_log))
    http = await start_http_server(container, "127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    return App(container, server, channel, keyring, access_log, http)


async def stop_app(app: App) -> None:
    await app.channel.close()
    if app.http is not None:
        await app.http.stop()
    await app.server.stop(0)
    await app.container.close()


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    running = await start_app(tmp_path)
    yield running
    await stop_app(running)
