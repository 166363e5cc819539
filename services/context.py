"""Per-request context: the request id and the caller, visible to logs."""

from __future__ import annotations

from contextvars import ContextVar

from core.shared.auth import Principal

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
principal_var: ContextVar[Principal | None] = ContextVar("principal", default=None)


def current_principal() -> Principal:
    principal = principal_var.get()
    if principal is None:  # the auth interceptor guarantees one on non-public methods
        from core.shared.errors import Unauthenticated

        raise Unauthenticated("an access token is required", reason="TOKEN_MISSING")
    return principal
