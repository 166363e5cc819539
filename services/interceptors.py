"""Server interceptors, outermost first:

1. RequestContextInterceptor - request id (from `x-request-id` or new), the
   error mapping (domain errors -> status + ErrorInfo), one JSON access line.
2. AuthInterceptor - verifies the bearer token; the caller comes from the
   token only. Public methods are an explicit allow-list; internal methods
   also need the `service` role.
3. ValidationInterceptor - protovalidate rules of the request message.

Each wraps a method's handler once and caches it; per request the cost is a
few function calls. Streaming methods (health Watch, reflection) are public
and pass through untouched.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import grpc
import protovalidate

from core.shared.auth import ROLE_SERVICE
from core.shared.errors import DomainError, PermissionDenied, Unauthenticated
from ports.identity import TokenVerifier
from services.context import principal_var, request_id_var
from services.errors import RequestInvalid, abort, internal_status, status_for

log = logging.getLogger("waqup.access")

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]

PUBLIC_METHODS = frozenset({
    "/waqup.identity.v1.AuthService/Register",
    "/waqup.identity.v1.AuthService/Login",
    "/waqup.identity.v1.AuthService/Refresh",
    "/waqup.identity.v1.AuthService/Logout",
    "/waqup.identity.v1.AuthService/GetJwks",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
})

#: Services other waQup services call; the edge never routes them.
INTERNAL_SERVICES = ("/waqup.credits.v1.CreditLedgerService/",)


class _UnaryInterceptor(grpc.aio.ServerInterceptor):
    """Wraps the behaviour of unary-unary handlers, once per method."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        wrapped = grpc.unary_unary_rpc_method_handler(
            self.wrap(method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
        self._wrapped[method] = wrapped
        return wrapped

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        raise NotImplementedError


#: The request headers the interceptors read, taken from the metadata in one
#: pass by the outermost interceptor (each invocation_metadata() call builds a
#: new tuple of every header).
_HEADERS = ("x-request-id", "authorization")
_headers_var: ContextVar[dict[str, str] | None] = ContextVar("headers", default=None)


def _read_headers(context: grpc.aio.ServicerContext) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if key in _HEADERS and key not in found:  # the first occurrence counts
            found[key] = value if isinstance(value, str) else value.decode()
    return found


def _header(context: grpc.aio.ServicerContext, key: str) -> str:
    headers = _headers_var.get()
    if headers is None:
        headers = _read_headers(context)
    return headers.get(key, "")


#: Probed every second by Envoy: served without an access line.
UNLOGGED_METHODS = frozenset({"/grpc.health.v1.Health/Check"})


class RequestContextInterceptor(_UnaryInterceptor):
    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        if method in UNLOGGED_METHODS:
            return behavior

        async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
            headers = _read_headers(context)
            _headers_var.set(headers)
            request_id = headers.get("x-request-id", "")[:128] or uuid.uuid4().hex
            request_id_var.set(request_id)
            principal_var.set(None)
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                return await behavior(request, context)
            except DomainError as error:
                code, status = status_for(error)
                await abort(context, code, status)
            except grpc.aio.AbortError:  # raised by context.abort: already a status
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception:
                code, status = internal_status()
                log.exception("unhandled error in %s", method)
                await abort(context, code, status)
            finally:
                if log.isEnabledFor(logging.INFO):
                    principal = principal_var.get()
                    log.info("rpc", extra={
                        "request_id": request_id,
                        "user_id": principal.subject if principal else "",
                        "method": method, "code": code.name,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2)})

        return handle


class AuthInterceptor(_UnaryInterceptor):
    def __init__(self, verifier: TokenVerifier) -> None:
        super().__init__()
        self._verifier = verifier

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        if method in PUBLIC_METHODS:
            return behavior
        internal = method.startswith(INTERNAL_SERVICES)
        verify = self._verifier.verify

        async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
            header = _header(context, "authorization")
            scheme, _, token = header.partition(" ")
            if not token or scheme.lower() != "bearer":
                raise Unauthenticated("an access token is required "
                                      "(Authorization: Bearer <token>)", reason="TOKEN_MISSING")
            principal = verify(token.strip())
            if internal and not principal.has_role(ROLE_SERVICE):
                raise PermissionDenied("this method is internal to waQup services",
                                       reason="INTERNAL_METHOD")
            principal_var.set(principal)
            return await behavior(request, context)

        return handle


class ValidationInterceptor(_UnaryInterceptor):
    def __init__(self) -> None:
        super().__init__()
        self._validator = protovalidate.Validator()

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        collect = self._validator.collect_violations

        async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
            violations = collect(request)
            if violations:
                raise RequestInvalid([(_field_path(v), v.proto.message) for v in violations])
            return await behavior(request, context)

        return handle


def _field_path(violation: Any) -> str:
    elements = violation.proto.field.elements if violation.proto.field else []
    return ".".join(element.field_name for element in elements) or "request"


def interceptors(verifier: TokenVerifier) -> list[grpc.aio.ServerInterceptor]:
    return [RequestContextInterceptor(), AuthInterceptor(verifier), ValidationInterceptor()]
