"""The shared request path: one handler per RPC, built once at start-up.

For every method of every declared service, `RequestPath.unary()` wraps the
servicer's method in a single coroutine that, per call:

1. reads the request headers once (`x-request-id`, `authorization`,
   `traceparent`) and sets the request id (the client's, else a new one);
2. checks access: token-less methods pass; every other method needs a valid
   bearer token, and methods of internal services also need the `service` role;
3. parses the request bytes itself (the server hands over raw bytes), so that
   garbage protobuf or invalid UTF-8 is INVALID_ARGUMENT (MALFORMED_REQUEST),
   never an UNKNOWN that names a Python class;
4. applies the text rule (core.shared.text) to every string of the request and
   the protovalidate rules of the request message (skipped for messages that
   have none);
5. calls the servicer, maps domain errors to a status with ErrorInfo (AIP-193)
   and anything unexpected to INTERNAL without details;
6. reports the call to the Observer (metrics, traces) and writes its access
   log line (services/api/access_log.py) when the access log is on.

No grpc.aio ServerInterceptor is involved: interceptors run their chain on
every call (an `intercept_service` coroutine each, before the handler is even
known), which cost more than everything else the path does.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from enum import Enum
from typing import Any

import grpc
import protovalidate
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from core.shared.auth import ROLE_SERVICE
from core.shared.errors import DomainError, InvalidArgument, PermissionDenied, Unauthenticated
from core.shared.text import first_forbidden
from ports.identity import TokenVerifier
from services.api.access_log import AccessLog
from services.api.context import RequestInfo, request_var
from services.api.errors import RequestInvalid, abort, code_for, internal_status, status_for

log = logging.getLogger(__name__)

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]

#: Longest client-sent request id kept; longer ones are cut.
MAX_REQUEST_ID = 128


class Access(Enum):
    TOKEN_LESS = "token-less"
    USER = "token"
    INTERNAL = "service token"


class MalformedRequest(InvalidArgument):
    reason = "MALFORMED_REQUEST"


class Observer:
    """What the request path reports each call to (metrics, traces). The default
    does nothing. `begin` runs before anything else of a call (it may read
    `info.traceparent` and set `info.trace_id`) and returns a token that `end`
    gets back with the outcome; both must be cheap: they run on every call."""

    def begin(self, method: str, info: RequestInfo) -> Any:
        return None

    def end(self, method: str, token: Any, code: grpc.StatusCode, reason: str,
            seconds: float) -> None:
        pass


def _read_headers(context: grpc.aio.ServicerContext) -> tuple[str, str, str]:
    request_id = authorization = traceparent = ""
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and not request_id:
            request_id = value
        elif key == "authorization" and not authorization:
            authorization = value
        elif key == "traceparent" and not traceparent:
            traceparent = value
    return request_id, authorization, traceparent


#: Largest request message accepted once decompressed (grpc's default limit).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


def _decompressed(raw: bytes) -> bytes:
    """The message itself, when the client compressed it.

    The server leaves per-message decompression to the request path
    (`grpc.per_message_decompression` off), so that a corrupt compressed
    frame is INVALID_ARGUMENT like any other malformed request, and a
    decompression bomb stops at MAX_MESSAGE_BYTES. A protobuf message never
    starts with the gzip magic (0x1f is field 3 with the invalid wire type 7);
    a zlib header (deflate) is tried and the bytes parsed as they are if it is
    not one.
    """
    if raw[:2] == _GZIP_MAGIC:
        return _inflate(raw, 31)
    if raw[:1] == b"\x78" and len(raw) > 2 and int.from_bytes(raw[:2], "big") % 31 == 0:
        try:
            return _inflate(raw, 15)
        except MalformedRequest:
            return raw
    return raw


def _inflate(raw: bytes, wbits: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(raw, MAX_MESSAGE_BYTES + 1)
    except zlib.error:
        raise MalformedRequest("the compressed request message is corrupt") from None
    if len(out) > MAX_MESSAGE_BYTES:
        raise MalformedRequest("the request message is larger than 4 MiB once decompressed",
                               reason="REQUEST_TOO_LARGE")
    if not inflater.eof:
        raise MalformedRequest("the compressed request message is truncated")
    return out


def _clean_request_id(raw: str) -> str:
    """The client's request id if it is printable ASCII (cut to MAX_REQUEST_ID),
    else a new one: ids reach logs and other services verbatim."""
    if raw and raw.isascii() and raw.isprintable():
        return raw[:MAX_REQUEST_ID]
    return uuid.uuid4().hex


_Chain = tuple[FieldDescriptor, ...]


def _string_paths(descriptor: Descriptor, prefix: str = "",
                  seen: frozenset[str] = frozenset()) -> list[tuple[str, _Chain]]:
    """Every string field reachable from `descriptor`, as (dotted path, field chain)."""
    found: list[tuple[str, _Chain]] = []
    if descriptor.full_name in seen:
        return found
    seen = seen | {descriptor.full_name}
    for field in descriptor.fields:
        path = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_STRING:
            found.append((path, (field,)))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            for sub_path, chain in _string_paths(field.message_type, path + ".", seen):
                found.append((sub_path, (field, *chain)))
    return found


def _strings(message: Message, chain: tuple[FieldDescriptor, ...]) -> Iterator[str]:
    field, rest = chain[0], chain[1:]
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        values = getattr(message, field.name)
        if not rest:
            return
        for key, value in values.items():  # map<string, X>: keys and values
            if isinstance(key, str):
                yield key
            if isinstance(value, str):
                yield value
            elif len(rest) > 1:
                yield from _strings(value, rest[1:])
        return
    if _repeated(field):
        items = getattr(message, field.name)
        if not rest:
            yield from items
        else:
            for item in items:
                yield from _strings(item, rest)
        return
    if not rest:
        yield getattr(message, field.name)
    elif message.HasField(field.name):
        yield from _strings(getattr(message, field.name), rest)


class _TextRule:
    """The text rule over every string field of one request type."""

    def __init__(self, descriptor: Descriptor) -> None:
        self._fields = _string_paths(descriptor)
        # Flat singular strings, the common case, read without the generic walk.
        self._flat = [(path, chain[0].name) for path, chain in self._fields
                      if len(chain) == 1 and not _repeated(chain[0])]
        self._nested = [(path, chain) for path, chain in self._fields
                        if len(chain) > 1 or _repeated(chain[0])]

    def __bool__(self) -> bool:
        return bool(self._fields)

    def violations(self, message: Message) -> list[tuple[str, str]]:
        found = []
        for path, name in self._flat:
            value = getattr(message, name)
            if value and first_forbidden(value) >= 0:
                found.append((path, "must not contain control or invisible characters"))
        for path, chain in self._nested:
            if any(first_forbidden(value) >= 0 for value in _strings(message, chain)):
                found.append((path, "must not contain control or invisible characters"))
        return found


def _repeated(field: FieldDescriptor) -> bool:
    return field.is_repeated


_VALIDATE_EXTENSIONS = ("buf.validate.field", "buf.validate.message", "buf.validate.oneof")


def _has_rules(descriptor: Descriptor, seen: frozenset[str] = frozenset()) -> bool:
    """Whether protovalidate has anything to check on `descriptor` (or below it)."""
    if descriptor.full_name in seen:
        return False
    seen = seen | {descriptor.full_name}

    def has(options: Any) -> bool:
        return any(ext.full_name in _VALIDATE_EXTENSIONS for ext, _ in options.ListFields()
                   if ext.is_extension)

    if has(descriptor.GetOptions()):
        return True
    if any(has(oneof.GetOptions()) for oneof in descriptor.oneofs):
        return True
    for field in descriptor.fields:
        if has(field.GetOptions()):
            return True
        if field.message_type is not None and _has_rules(field.message_type, seen):
            return True
    return False


def _field_path(violation: Any) -> str:
    elements = violation.proto.field.elements if violation.proto.field else []
    return ".".join(element.field_name for element in elements) or "request"


class RequestPath:
    """Builds the handlers of one server. `verifier` checks bearer tokens."""

    def __init__(self, verifier: TokenVerifier, observer: Observer | None = None,
                 access_log: AccessLog | None = None) -> None:
        self._verifier = verifier
        self._validator = protovalidate.Validator()
        self._observer = observer or Observer()
        self._access_log = access_log

    def _admission(self, request_type: type[Message], access: Access) -> tuple[
            Callable[[RequestInfo, str], None], Callable[[bytes], Message]]:
        """(authenticate, read) for one method: `authenticate(info, authorization)`
        sets the caller or raises; `read(raw)` parses and checks one request
        message or raises."""
        parse = request_type.FromString
        verify = self._verifier.verify
        text = _TextRule(request_type.DESCRIPTOR)
        collect = (self._validator.collect_violations
                   if _has_rules(request_type.DESCRIPTOR) else None)
        needs_token = access is not Access.TOKEN_LESS
        internal = access is Access.INTERNAL

        def authenticate(info: RequestInfo, authorization: str) -> None:
            if not needs_token:
                return
            scheme, _, bearer = authorization.partition(" ")
            if not bearer or scheme.lower() != "bearer":
                raise Unauthenticated("an access token is required "
                                      "(Authorization: Bearer <token>)", reason="TOKEN_MISSING")
            info.principal = principal = verify(bearer.strip())
            info.bearer = bearer.strip()
            if internal and not principal.has_role(ROLE_SERVICE):
                raise PermissionDenied("this method is internal to waQup services",
                                       reason="INTERNAL_METHOD")

        def read(raw: bytes) -> Message:
            try:
                request = parse(_decompressed(raw))
            except (DecodeError, ValueError, RuntimeError):
                raise MalformedRequest("the request is not a valid protobuf message "
                                       "of this method's request type") from None
            if text:
                found = text.violations(request)
                if found:
                    raise RequestInvalid(found, reason="INVALID_CHARACTERS")
            if collect is not None:
                violations = collect(request)
                if violations:
                    raise RequestInvalid([(_field_path(v), v.proto.message)
                                          for v in violations])
            return request

        return authenticate, read

    def _start(self, method: str, context: grpc.aio.ServicerContext,
               ) -> tuple[RequestInfo, str, Any]:
        """Per call: the request info (set for logs and servicers), the
        authorization header and the observer's token."""
        request_id, authorization, traceparent = _read_headers(context)
        info = RequestInfo(_clean_request_id(request_id), traceparent=traceparent)
        request_var.set(info)
        return info, authorization, self._observer.begin(method, info)

    @staticmethod
    async def _fail(method: str, context: grpc.aio.ServicerContext,
                    error: BaseException) -> tuple[grpc.StatusCode, str]:
        """End a failed call with its status (AIP-193); (code, reason) for the
        records. Re-raises the AbortError of a servicer that aborted itself."""
        if isinstance(error, DomainError):
            code, status = status_for(error)
            await abort(context, code, status)
        if isinstance(error, grpc.aio.AbortError | asyncio.CancelledError | GeneratorExit) or (
                not isinstance(error, Exception)):
            raise error  # already a status, a cancelled call, or the process stopping
        log.error("unhandled error in %s", method, exc_info=error)
        code, status = internal_status()
        await abort(context, code, status)
        raise AssertionError("abort() returned")  # pragma: no cover

    def _finish(self, method: str, info: RequestInfo, token: Any, code: grpc.StatusCode,
                reason: str, started: float, logged: bool) -> None:
        elapsed = time.perf_counter() - started
        self._observer.end(method, token, code, reason, elapsed)
        if logged and self._access_log is not None:
            self._access_log.write(method, info, code.name, reason, elapsed)

    def _answer_once(self, method: str, behavior: Callable[..., Any],
                     authenticate: Callable[[RequestInfo, str], None],
                     parse: Callable[[Any], Any], logged: bool) -> Callable[..., Any]:
        """The coroutine serving one call that ends with one answer (a unary
        call, or a stream whose behaviour writes its responses and returns)."""
        start, fail, finish = self._start, self._fail, self._finish

        async def handle(incoming: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            info, authorization, token = start(method, context)
            code, reason = grpc.StatusCode.OK, ""
            try:
                authenticate(info, authorization)
                return await behavior(parse(incoming), context)
            except BaseException as error:
                code, reason = _outcome(error, context)
                await fail(method, context, error)
            finally:
                finish(method, info, token, code, reason, started, logged)

        return handle

    def unary(self, method: str, behavior: Behavior, request_type: type[Message],
              response_type: type[Message], access: Access, *,
              logged: bool = True) -> grpc.RpcMethodHandler:
        """The handler of the unary method `method` (`/pkg.Service/Method`)."""
        authenticate, read = self._admission(request_type, access)
        return grpc.unary_unary_rpc_method_handler(
            self._answer_once(method, behavior, authenticate, read, logged),
            request_deserializer=None,
            response_serializer=response_type.SerializeToString)

    def stream(self, method: str, behavior: Callable[..., Any], request_type: type[Message],
               response_type: type[Message], access: Access, *, client_streaming: bool,
               server_streaming: bool, logged: bool = True) -> grpc.RpcMethodHandler:
        """The handler of a streaming method: the same access rule, request id,
        message checks (each message a client streams is parsed and checked as
        it arrives) and error mapping as unary calls; one record per call."""
        authenticate, read = self._admission(request_type, access)
        start, fail, finish = self._start, self._fail, self._finish

        async def messages(raws: AsyncIterator[bytes]) -> AsyncIterator[Message]:
            async for raw in raws:
                yield read(raw)

        def requests(incoming: Any) -> Any:
            return messages(incoming) if client_streaming else read(incoming)

        async def respond_many(incoming: Any, context: grpc.aio.ServicerContext,
                               ) -> AsyncIterator[Any]:
            started = time.perf_counter()
            info, authorization, token = start(method, context)
            code, reason = grpc.StatusCode.OK, ""
            try:
                authenticate(info, authorization)
                async for response in behavior(requests(incoming), context):
                    yield response
            except BaseException as error:
                code, reason = _outcome(error, context)
                await fail(method, context, error)
            finally:
                finish(method, info, token, code, reason, started, logged)

        respond_once = self._answer_once(method, behavior, authenticate, requests, logged)

        serialize = response_type.SerializeToString
        # A server-streaming behaviour either yields its responses or writes them
        # with `await context.write(...)` and returns.
        streams = respond_many if inspect.isasyncgenfunction(behavior) else respond_once
        if client_streaming and server_streaming:
            return grpc.stream_stream_rpc_method_handler(streams, None, serialize)
        if client_streaming:
            return grpc.stream_unary_rpc_method_handler(respond_once, None, serialize)
        return grpc.unary_stream_rpc_method_handler(streams, None, serialize)


def _outcome(error: BaseException, context: grpc.aio.ServicerContext,
             ) -> tuple[grpc.StatusCode, str]:
    """The (code, reason) a failed call is recorded with."""
    if isinstance(error, DomainError):
        return code_for(error), error.reason
    if isinstance(error, grpc.aio.AbortError):
        return context.code() or grpc.StatusCode.UNKNOWN, "ABORTED"
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED, "CANCELLED"
    return grpc.StatusCode.INTERNAL, "INTERNAL"
