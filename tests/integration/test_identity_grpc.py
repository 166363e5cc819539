"""Identity over a real gRPC channel."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import jwt
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_health.v1 import health_pb2, health_pb2_grpc

from core.identity.model import AuditAction
from services.gen.waqup.identity.v1 import identity_pb2 as pb
from tests.integration.conftest import App, bearer
from tests.integration.status import details


async def fails(call, code: grpc.StatusCode) -> tuple[str, dict[str, str], list[str], str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value
    reason, metadata, fields = details(caught.value)
    return reason, metadata, fields, caught.value.details()


async def test_register_normalises_email_and_signs_in(app: App) -> None:
    email = f"  Mixed.Case-{uuid.uuid4().hex[:6]}@Example.COM "
    response = await app.register(email)
    assert response.user.email == email.strip().lower()
    assert response.user.name.startswith("users/")
    assert response.user.display_name == "Test Person"
    assert response.expires_in == 900 and response.token_type == "Bearer"
    assert response.access_token and response.refresh_token

    header = jwt.get_unverified_header(response.access_token)
    claims = jwt.decode(response.access_token, options={"verify_signature": False})
    assert header["alg"] == "ES256" and header["kid"]
    assert claims["sub"] == response.user.name.removeprefix("users/")
    assert claims["exp"] - claims["iat"] <= 900
    assert {"iss", "aud", "jti", "roles"} <= claims.keys()

    me = await app.users.GetUser(pb.GetUserRequest(name="users/me"),
                                 metadata=bearer(response.access_token))
    assert me.email == response.user.email


async def test_duplicate_email_is_already_exists(app: App) -> None:
    first = await app.register()
    reason, *_ = await fails(app.register(first.user.email.upper()),
                             grpc.StatusCode.ALREADY_EXISTS)
    assert reason == "EMAIL_TAKEN"


@pytest.mark.parametrize(("email", "password", "reason", "field"), [
    ("not-an-email", "long enough", "INVALID_EMAIL", ""),
    ("a@b", "long enough", "INVALID_EMAIL", ""),
    ("ok@example.com", "short", "INVALID_REQUEST", "password"),
    ("ok@example.com", "x" * 129, "INVALID_REQUEST", "password"),
    ("", "long enough", "INVALID_REQUEST", "email"),
])
async def test_register_rejects_bad_input(app: App, email: str, password: str, reason: str,
                                          field: str) -> None:
    got, _, fields, _ = await fails(
        app.auth.Register(pb.RegisterRequest(email=email, password=password)),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert got == reason
    if field:
        assert fields == [field]


async def test_login_gives_one_answer_for_unknown_email_and_wrong_password(app: App) -> None:
    user = await app.register(password="the right one")
    wrong = await fails(app.auth.Login(pb.LoginRequest(email=user.user.email,
                                                       password="the wrong one")),
                        grpc.StatusCode.UNAUTHENTICATED)
    unknown = await fails(app.auth.Login(pb.LoginRequest(email="nobody@example.com",
                                                         password="the wrong one")),
                          grpc.StatusCode.UNAUTHENTICATED)
    assert wrong == unknown
    assert wrong[0] == "INVALID_CREDENTIALS"
    ok = await app.auth.Login(pb.LoginRequest(email=user.user.email.upper(),
                                              password="the right one"))
    assert ok.user.name == user.user.name


async def test_refresh_rotates_and_reuse_revokes_the_family(app: App) -> None:
    first = await app.register()
    second = await app.auth.Refresh(pb.RefreshRequest(refresh_token=first.refresh_token))
    assert second.refresh_token != first.refresh_token
    assert second.user.name == first.user.name
    third = await app.auth.Refresh(pb.RefreshRequest(refresh_token=second.refresh_token))

    reason, *_ = await fails(app.auth.Refresh(pb.RefreshRequest(
        refresh_token=first.refresh_token)), grpc.StatusCode.UNAUTHENTICATED)
    assert reason == "REFRESH_TOKEN_REUSED"
    # the whole family is gone, including the newest token
    reason, *_ = await fails(app.auth.Refresh(pb.RefreshRequest(
        refresh_token=third.refresh_token)), grpc.StatusCode.UNAUTHENTICATED)
    assert reason == "INVALID_REFRESH_TOKEN"
    # another login is another family, unaffected
    other = await app.auth.Login(pb.LoginRequest(email=first.user.email,
                                                 password="correct horse"))
    await app.auth.Refresh(pb.RefreshRequest(refresh_token=other.refresh_token))


async def test_concurrent_refresh_with_one_token_succeeds_once(app: App) -> None:
    session = await app.register()
    results = await asyncio.gather(
        *(app.auth.Refresh(pb.RefreshRequest(refresh_token=session.refresh_token))
          for _ in range(8)), return_exceptions=True)
    assert sum(isinstance(r, pb.RefreshResponse) for r in results) == 1
    assert all(r.code() == grpc.StatusCode.UNAUTHENTICATED
               for r in results if isinstance(r, grpc.aio.AioRpcError))


async def test_logout_revokes_the_session_and_is_repeatable(app: App) -> None:
    session = await app.register()
    await app.auth.Logout(pb.LogoutRequest(refresh_token=session.refresh_token))
    await app.auth.Logout(pb.LogoutRequest(refresh_token=session.refresh_token))
    reason, *_ = await fails(app.auth.Refresh(pb.RefreshRequest(
        refresh_token=session.refresh_token)), grpc.StatusCode.UNAUTHENTICATED)
    assert reason == "INVALID_REFRESH_TOKEN"


@pytest.mark.parametrize(("metadata", "reason"), [
    ((), "TOKEN_MISSING"),
    ((("authorization", "Basic abc"),), "TOKEN_MISSING"),
    ((("authorization", "Bearer not.a.jwt"),), "INVALID_TOKEN"),
])
async def test_user_methods_need_a_valid_token(app: App, metadata, reason: str) -> None:
    got, *_ = await fails(app.users.GetUser(pb.GetUserRequest(name="users/me"),
                                            metadata=metadata),
                          grpc.StatusCode.UNAUTHENTICATED)
    assert got == reason


async def test_token_signed_with_hs256_is_rejected(app: App) -> None:
    user = await app.register()
    claims = jwt.decode(user.access_token, options={"verify_signature": False})
    forged = jwt.encode(claims, "an-hmac-secret-of-32-bytes-or-more", algorithm="HS256",
                        headers={"kid": jwt.get_unverified_header(user.access_token)["kid"]})
    unsigned = jwt.encode(claims, None, algorithm="none")
    for token in (forged, unsigned):
        reason, *_ = await fails(app.users.GetUser(pb.GetUserRequest(name="users/me"),
                                                   metadata=bearer(token)),
                                 grpc.StatusCode.UNAUTHENTICATED)
        assert reason == "INVALID_TOKEN"


async def test_a_user_cannot_read_another_user(app: App) -> None:
    alice, bob = await app.register(), await app.register()
    reason, *_ = await fails(app.users.GetUser(pb.GetUserRequest(name=bob.user.name),
                                               metadata=bearer(alice.access_token)),
                             grpc.StatusCode.PERMISSION_DENIED)
    assert reason == "NOT_RESOURCE_OWNER"
    mine = await app.users.GetUser(pb.GetUserRequest(name=alice.user.name),
                                   metadata=bearer(alice.access_token))
    assert mine.name == alice.user.name


async def test_update_preferences_with_mask_and_cache_invalidation(app: App) -> None:
    user = await app.register()
    auth = bearer(user.access_token)
    before = await app.users.GetUser(pb.GetUserRequest(name="users/me"), metadata=auth)
    assert before.preferences.pace == pb.PACE_UNSPECIFIED  # now cached

    prefs = await app.users.UpdatePreferences(pb.UpdatePreferencesRequest(
        preferences=pb.Preferences(name="users/me/preferences", voice="aria",
                                   pace=pb.PACE_SLOW, tone=pb.TONE_WARM),
        update_mask=FieldMask(paths=["voice", "pace"])), metadata=auth)
    assert (prefs.voice, prefs.pace, prefs.tone) == ("aria", pb.PACE_SLOW, pb.TONE_UNSPECIFIED)

    after = await app.users.GetUser(pb.GetUserRequest(name="users/me"), metadata=auth)
    assert (after.preferences.voice, after.preferences.pace) == ("aria", pb.PACE_SLOW)

    # no mask: every field that is set
    prefs = await app.users.UpdatePreferences(pb.UpdatePreferencesRequest(
        preferences=pb.Preferences(name="users/me/preferences", tone=pb.TONE_CALM)),
        metadata=auth)
    assert (prefs.voice, prefs.pace, prefs.tone) == ("aria", pb.PACE_SLOW, pb.TONE_CALM)


@pytest.mark.parametrize(("prefs", "mask", "reason"), [
    (pb.Preferences(name="users/me/preferences", voice="Not Valid!"), ["voice"],
     "INVALID_REQUEST"),
    (pb.Preferences(name="users/me/preferences", pace=42), ["pace"], "INVALID_REQUEST"),
    (pb.Preferences(name="users/me/preferences"), ["display_name"], "INVALID_UPDATE_MASK"),
])
async def test_update_preferences_rejects_bad_input(app: App, prefs, mask, reason) -> None:
    user = await app.register()
    got, *_ = await fails(app.users.UpdatePreferences(
        pb.UpdatePreferencesRequest(preferences=prefs, update_mask=FieldMask(paths=mask)),
        metadata=bearer(user.access_token)), grpc.StatusCode.INVALID_ARGUMENT)
    assert got == reason


async def test_jwks_lists_the_signing_key(app: App) -> None:
    user = await app.register()
    jwks = await app.auth.GetJwks(pb.GetJwksRequest())
    kid = jwt.get_unverified_header(user.access_token)["kid"]
    assert next(k.kid for k in jwks.keys) == kid
    key = jwks.keys[0]
    assert (key.kty, key.crv, key.alg, key.use) == ("EC", "P-256", "ES256", "sig")


async def test_audit_log_records_security_events_without_secrets(app: App) -> None:
    user = await app.register(password="audit password")
    with pytest.raises(grpc.aio.AioRpcError):
        await app.auth.Login(pb.LoginRequest(email=user.user.email, password="wrong password"))
    login = await app.auth.Login(pb.LoginRequest(email=user.user.email,
                                                 password="audit password"))
    await app.auth.Refresh(pb.RefreshRequest(refresh_token=login.refresh_token))
    with pytest.raises(grpc.aio.AioRpcError):
        await app.auth.Refresh(pb.RefreshRequest(refresh_token=login.refresh_token))
    await app.auth.Logout(pb.LogoutRequest(refresh_token=user.refresh_token))

    user_id = uuid.UUID(user.user.name.removeprefix("users/"))
    async with app.container.uow("identity")() as uow:
        entries = await uow.audit.list_for_user(user_id)
    actions = [entry.action for entry in entries]
    for action in AuditAction:
        assert action in actions, action
    secrets = {"audit password", "wrong password", user.access_token, user.refresh_token,
               login.refresh_token}
    for entry in entries:
        text = repr(entry)
        assert not any(secret in text for secret in secrets)


async def test_health_and_reflection(app: App) -> None:
    health = health_pb2_grpc.HealthStub(app.channel)
    for service in ("", "waqup.identity.v1.AuthService", "waqup.credits.v1.CreditAccountService"):
        response = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    # Internal services are not for outsiders to discover: no health status.
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await health.Check(health_pb2.HealthCheckRequest(
            service="waqup.credits.v1.CreditLedgerService"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND

    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(app.channel)

    async def one_request():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for reply in stub.ServerReflectionInfo(one_request()):
        names = {s.name for s in reply.list_services_response.service}
        assert {"waqup.identity.v1.UserService", "waqup.credits.v1.CreditAccountService",
                "grpc.health.v1.Health"} <= names
        break


async def test_request_id_reaches_the_logs(app: App) -> None:
    await app.auth.GetJwks(pb.GetJwksRequest(), metadata=(("x-request-id", "req-abc-123"),))
    [line] = [line for line in app.access_lines() if line["method"].endswith("/GetJwks")]
    assert line["request_id"] == "req-abc-123" and line["code"] == "OK"
    assert line["logger"] == "waqup.access" and line["context"] == "test"
