"""Settings select adapters; configured backends are real and checked at startup."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import pytest
import redis.asyncio as redis
from google.protobuf.field_mask_pb2 import FieldMask

from adapters.jwt.keys import KeyRing
from services.api.server import start_server
from services.gen.waqup.identity.v1 import identity_pb2 as pb
from services.gen.waqup.identity.v1 import identity_pb2_grpc
from services.runtime.bootstrap import build
from services.runtime.settings import Settings
from tests.integration.conftest import bearer


@pytest.mark.parametrize(("overrides", "named"), [
    ({"redis_url": "redis://127.0.0.1:1/0"}, "redis unreachable"),
    ({"database_url": "postgresql://postgres@127.0.0.1:1/waqup"}, "database unreachable"),
])
async def test_an_unreachable_backend_stops_startup(tmp_path: Path, overrides: dict[str, str],
                                                    named: str) -> None:
    settings = Settings(**{"database_url": "memory://", "data_dir": tmp_path, **overrides})
    container = build(settings, keyring=KeyRing.generate())
    with pytest.raises(RuntimeError, match=named):
        await container.start()
    await container.close()


def test_settings_come_from_waqup_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAQUP_GRPC_PORT", "6000")
    monkeypatch.setenv("WAQUP_REDIS_URL", "")
    monkeypatch.setenv("WAQUP_ACCESS_TOKEN_TTL_SECONDS", "600")
    settings = Settings()
    assert (settings.grpc_port, settings.redis_url, settings.access_token_ttl_seconds) == (
        6000, None, 600)
    monkeypatch.setenv("WAQUP_ACCESS_TOKEN_TTL_SECONDS", "3600")
    with pytest.raises(ValueError, match="900"):
        Settings()


async def test_profile_cache_lives_in_redis_for_15_minutes(tmp_path: Path,
                                                          redis_url: str) -> None:
    settings = Settings(database_url="memory://", redis_url=redis_url, data_dir=tmp_path)
    container = build(settings, keyring=KeyRing.generate())
    await container.start()
    server = await start_server(container, "127.0.0.1", 0)
    client = redis.from_url(redis_url)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            auth = identity_pb2_grpc.AuthServiceStub(channel)
            users = identity_pb2_grpc.UserServiceStub(channel)
            session = await auth.Register(pb.RegisterRequest(
                email=f"{uuid.uuid4().hex}@example.com", password="long-enough"))
            key = f"user:{session.user.name.removeprefix('users/')}:profile"
            await users.GetUser(pb.GetUserRequest(name="users/me"),
                                metadata=bearer(session.access_token))
            assert await client.exists(key)
            assert 890 <= await client.ttl(key) <= 900
            await users.UpdatePreferences(pb.UpdatePreferencesRequest(
                preferences=pb.Preferences(name="users/me/preferences", pace=pb.PACE_FAST),
                update_mask=FieldMask(paths=["pace"])), metadata=bearer(session.access_token))
            assert not await client.exists(key)
            me = await users.GetUser(pb.GetUserRequest(name="users/me"),
                                     metadata=bearer(session.access_token))
            assert me.preferences.pace == pb.PACE_FAST
    finally:
        await client.delete(key)
        await client.aclose()
        await server.stop(0)
        await container.close()


def test_key_activation_must_outlast_key_propagation() -> None:
    from pydantic import ValidationError

    from services.runtime.settings import Settings

    Settings(jwt_key_activation_seconds=0)  # no delay: allowed
    Settings(jwt_key_activation_seconds=40, jwt_key_reload_seconds=10,
             edge_jwks_cache_seconds=30, jwks_refresh_seconds=20)
    with pytest.raises(ValidationError, match="jwt_key_activation_seconds"):
        Settings(jwt_key_activation_seconds=30, jwt_key_reload_seconds=10,
                 edge_jwks_cache_seconds=30)
