"""What the request path knows about the call being served: its request id,
the caller (from the verified token only) and the incoming trace context.
One context variable, set once per call, read by servicers and log lines."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from core.shared.auth import Principal
from core.shared.errors import Unauthenticated


@dataclass(slots=True)
class RequestInfo:
    request_id: str
    principal: Principal | None = None
    #: The W3C `traceparent` header the call arrived with, if any.
    traceparent: str = ""
    #: The trace this call belongs to (32 hex digits), once known.
    trace_id: str = ""
    #: The caller's verified access token, for a call made on their behalf
    #: (never logged).
    bearer: str = ""


request_var: ContextVar[RequestInfo | None] = ContextVar("request", default=None)


def current_principal() -> Principal:
    info = request_var.get()
    if info is None or info.principal is None:  # the request path guarantees one
        raise Unauthenticated("an access token is required", reason="TOKEN_MISSING")
    return info.principal


def current_request_id() -> str:
    info = request_var.get()
    return info.request_id if info is not None else ""
