"""The shared request path as a hostile client meets it, over real gRPC, on every
store: principals that are not users, tokens with malformed subjects, forged
page tokens, control and invisible characters, malformed and compressed
messages. Each answer is a 4xx-class status with an ErrorInfo reason; nothing
reaches a database and fails there."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from adapters.jwt.tokens import JwtTokenIssuer
from services.gen.waqup.credits.v1 import credits_pb2 as cr
from services.gen.waqup.identity.v1 import identity_pb2 as pb
from tests.integration.conftest import App, bearer, start_app, stop_app
from tests.integration.status import details


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def any_app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    url = {"memory": "memory://", "sqlite": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"}.get(
        request.param) or request.getfixturevalue("pg_url")
    if request.param == "sqlite":
        from adapters.sql.migrate import migrate

        migrate(url)
    running = await start_app(tmp_path, url)
    yield running
    await stop_app(running)


async def fails(call, code: grpc.StatusCode) -> tuple[str, list[str], str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value
    reason, _, fields = details(caught.value)
    return reason, fields, caught.value.details() or ""


def token_for(app: App, subject: str, roles: tuple[str, ...]) -> str:
    settings = app.container.settings
    issuer = JwtTokenIssuer(app.keyring, settings.jwt_issuer, settings.jwt_audience, 300)
    return issuer.issue(subject, roles, app.container.clock.now()).token


# --- who is calling -----------------------------------------------------------


async def test_a_service_principal_is_refused_on_user_methods(app: App) -> None:
    service = bearer(app.service_token())
    calls = [
        app.users.GetUser(pb.GetUserRequest(name="users/me"), metadata=service),
        app.users.UpdatePreferences(pb.UpdatePreferencesRequest(
            preferences=pb.Preferences(name="users/me/preferences", voice="x"),
            update_mask=FieldMask(paths=["voice"])), metadata=service),
        app.accounts.GetCreditAccount(cr.GetCreditAccountRequest(
            name="users/me/creditAccount"), metadata=service),
        app.accounts.ListCreditTransactions(cr.ListCreditTransactionsRequest(
            parent="users/me"), metadata=service),
    ]
    for call in calls:
        reason, _, _ = await fails(call, grpc.StatusCode.PERMISSION_DENIED)
        assert reason == "USER_PRINCIPAL_REQUIRED"


@pytest.mark.parametrize("subject, roles", [
    ("not-a-uuid", ("user",)),
    ("0190ABCD-0000-7000-8000-000000000000", ("user",)),  # not canonical
    ("service:x", ("user",)),            # a service name without the service role
    ("service:x", ("service", "user")),  # both at once
    ("service:", ("service",)),
    ("service:Bad Name", ("service",)),
    ("", ("user",)),
])
async def test_tokens_with_malformed_subjects_are_refused(app: App, subject: str,
                                                         roles: tuple[str, ...]) -> None:
    reason, _, _ = await fails(
        app.users.GetUser(pb.GetUserRequest(name="users/me"),
                          metadata=bearer(token_for(app, subject, roles))),
        grpc.StatusCode.UNAUTHENTICATED)
    assert reason == "INVALID_TOKEN"


# --- page tokens --------------------------------------------------------------


async def test_forged_page_tokens_are_invalid_argument(app: App) -> None:
    user = await app.register()
    me = bearer(user.access_token)
    uid = user.user.name.removeprefix("users/")
    forged = [base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
              for body in ({"u": uid, "b": 1}, [uid], {"u": {}, "b": {}}, {"u": uid})]
    forged += ["garbage", "e30", "A" * 400, "!!!", "\u00e9t\u00e9"]
    for token in forged:
        reason, fields, message = await fails(app.accounts.ListCreditTransactions(
            cr.ListCreditTransactionsRequest(parent="users/me", page_token=token), metadata=me),
            grpc.StatusCode.INVALID_ARGUMENT)
        assert reason in {"INVALID_PAGE_TOKEN", "INVALID_REQUEST"}, (token, reason)
        assert fields == ["page_token"]
        assert "Error" not in message and "Traceback" not in message


# --- the text rule ------------------------------------------------------------


@pytest.mark.parametrize("email, display_name, field", [
    ("nul\x00@example.com", "Ann", "email"),
    ("ann@example.com", "A\x00nn", "display_name"),
    ("ann@example.com", "A\x01nn", "display_name"),
    ("ann@example.com", "Ann\x7f", "display_name"),
    ("ann@example.com", "A\u200bnn", "display_name"),       # zero-width space
    ("ann@example.com", "\u202eAnn", "display_name"),       # right-to-left override
    ("ann@example.com", "Ann\u0085", "display_name"),       # C1 control
    ("a\u200bnn@example.com", "Ann", "email"),
])
async def test_control_and_invisible_characters_are_refused(
        any_app: App, email: str, display_name: str, field: str) -> None:
    reason, fields, _ = await fails(any_app.auth.Register(pb.RegisterRequest(
        email=email, password="correct horse", display_name=display_name)),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert reason == "INVALID_CHARACTERS" and fields == [field]


async def test_a_nul_in_a_login_email_is_invalid_argument(any_app: App) -> None:
    reason, fields, _ = await fails(any_app.auth.Login(pb.LoginRequest(
        email="ann\x00@example.com", password="correct horse")),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert reason == "INVALID_CHARACTERS" and fields == ["email"]


async def test_a_line_break_in_a_name_is_refused_by_the_core(app: App) -> None:
    reason, fields, _ = await fails(app.auth.Register(pb.RegisterRequest(
        email=f"{uuid.uuid4().hex}@example.com", password="correct horse",
        display_name="Ann\nAdmin")), grpc.StatusCode.INVALID_ARGUMENT)
    assert reason == "INVALID_CHARACTERS" and fields == ["display_name"]


async def test_names_are_nfc_normalised(any_app: App) -> None:
    decomposed = "Ame\u0301lie  "  # e + combining acute, as some keyboards send it
    user = await any_app.auth.Register(pb.RegisterRequest(
        email=f"{uuid.uuid4().hex}@example.com", password="correct horse",
        display_name=decomposed))
    assert user.user.display_name == "Am\u00e9lie"


async def test_a_look_alike_email_is_refused(app: App) -> None:
    # Cyrillic a (U+0430) instead of Latin a: the email rule is printable ASCII.
    reason, fields, _ = await fails(app.auth.Register(pb.RegisterRequest(
        email="\u0430nn@example.com", password="correct horse")),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert reason == "INVALID_EMAIL" and fields == ["email"]


# --- malformed messages ---------------------------------------------------------


def raw_call(app: App, method: str):
    return app.channel.unary_unary(method, request_serializer=None,
                                   response_deserializer=None)


@pytest.mark.parametrize("body", [
    b"\xff\xff\xff\xff\xff",                      # not protobuf
    b"\x0a\x02\xff\xfe\x12\x02ab",                # email: invalid UTF-8
    b"\x0a\x10abc",                               # a length past the end
    gzip.compress(b"\x0a\x02\xff\xfe")[:-3],      # a truncated gzip frame
    b"\x1f\x8b\x08\x00garbage",                   # a corrupt gzip frame
])
async def test_malformed_messages_are_invalid_argument_without_internals(app: App,
                                                                         body: bytes) -> None:
    reason, _, message = await fails(
        raw_call(app, "/waqup.identity.v1.AuthService/Login")(body),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert reason == "MALFORMED_REQUEST"
    for internal in ("Error", "Exception", "google.", "_pb2", "Traceback", "waqup.identity"):
        assert internal not in message


async def test_compressed_messages_are_served(app: App) -> None:
    user = await app.register()
    request = cr.GetCreditAccountRequest(name="users/me/creditAccount").SerializeToString()
    reply = await raw_call(app, "/waqup.credits.v1.CreditAccountService/GetCreditAccount")(
        gzip.compress(request), metadata=bearer(user.access_token))
    assert cr.CreditAccount.FromString(reply).name.endswith("/creditAccount")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.port}",
                                         compression=grpc.Compression.Gzip) as channel:
        from services.gen.waqup.credits.v1 import credits_pb2_grpc

        account = await credits_pb2_grpc.CreditAccountServiceStub(channel).GetCreditAccount(
            cr.GetCreditAccountRequest(name="users/me/creditAccount"),
            metadata=bearer(user.access_token))
        assert account.name.endswith("/creditAccount")


async def test_a_decompression_bomb_stops_at_the_message_limit(app: App) -> None:
    bomb = gzip.compress(b"\x0a" + b"\x80" * 9 + b"\x00" * (6 * 1024 * 1024))
    reason, _, _ = await fails(raw_call(app, "/waqup.identity.v1.AuthService/Login")(bomb),
                               grpc.StatusCode.INVALID_ARGUMENT)
    assert reason == "REQUEST_TOO_LARGE"


async def test_long_request_ids_are_cut(app: App) -> None:
    await app.auth.GetJwks(pb.GetJwksRequest(), metadata=(("x-request-id", "x" * 500),))
    assert [line["request_id"] for line in app.access_lines()] == ["x" * 128]


async def test_every_call_has_one_access_line_with_its_outcome(app: App) -> None:
    user = await app.register()
    await fails(app.users.GetUser(pb.GetUserRequest(name="users/me"),
                                  metadata=bearer("nope")), grpc.StatusCode.UNAUTHENTICATED)
    await app.users.GetUser(pb.GetUserRequest(name="users/me"),
                            metadata=bearer(user.access_token))
    lines = [(line["method"].rsplit("/", 1)[1], line["code"], line["reason"], line["user_id"])
             for line in app.access_lines()]
    uid = user.user.name.removeprefix("users/")
    assert lines == [("Register", "OK", "", ""),
                     ("GetUser", "UNAUTHENTICATED", "INVALID_TOKEN", ""),
                     ("GetUser", "OK", "", uid)]


# --- streaming methods --------------------------------------------------------


async def test_health_watch_streams_through_the_request_path(app: App) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stream = health_pb2_grpc.HealthStub(app.channel).Watch(
        health_pb2.HealthCheckRequest(service=""))
    first = await stream.read()
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    stream.cancel()


@pytest.fixture
async def echo(app: App) -> AsyncIterator[tuple[grpc.aio.Channel, str]]:
    """A server with one bidi and one client-streaming method through the same
    request path (the protos declare none yet): User(display_name=name) per
    GetUserRequest received."""
    from services.api.handlers import Access, RequestPath

    path = RequestPath(app.container.verifier)

    async def chat(requests, context):
        async for request in requests:
            yield pb.User(display_name=request.name)

    async def count(requests, context):
        return pb.User(display_name=str(len([r async for r in requests])))

    handlers = {
        "Chat": path.stream("/test.Echo/Chat", chat, pb.GetUserRequest, pb.User, Access.USER,
                            client_streaming=True, server_streaming=True),
        "Count": path.stream("/test.Echo/Count", count, pb.GetUserRequest, pb.User,
                             Access.USER, client_streaming=True, server_streaming=False),
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    user = await app.register()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel, user.access_token
    await server.stop(0)


async def test_bidi_streams_are_authenticated_and_checked_per_message(echo) -> None:
    channel, token = echo
    chat = channel.stream_stream("/test.Echo/Chat", request_serializer=None,
                                 response_deserializer=pb.User.FromString)

    async def say(*raws: bytes):
        for raw in raws:
            yield raw

    good = pb.GetUserRequest(name="users/hello").SerializeToString()
    replies = [r.display_name async for r in chat(say(good, good), metadata=bearer(token))]
    assert replies == ["users/hello", "users/hello"]

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        [r async for r in chat(say(good))]  # no token
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    for bad, reason in ((b"\xff\xff", "MALFORMED_REQUEST"),
                        (pb.GetUserRequest(name="users/a\x00").SerializeToString(),
                         "INVALID_CHARACTERS")):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            [r async for r in chat(say(good, bad), metadata=bearer(token))]
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(raised.value)[0] == reason


async def test_client_streams_are_checked_per_message(echo) -> None:
    channel, token = echo
    count = channel.stream_unary("/test.Echo/Count", request_serializer=None,
                                 response_deserializer=pb.User.FromString)
    good = pb.GetUserRequest(name="users/x").SerializeToString()

    async def send(*raws: bytes):
        for raw in raws:
            yield raw

    assert (await count(send(good, good, good), metadata=bearer(token))).display_name == "3"
    reason, _, _ = await fails(count(send(good, b"\xff"), metadata=bearer(token)),
                               grpc.StatusCode.INVALID_ARGUMENT)
    assert reason == "MALFORMED_REQUEST"
