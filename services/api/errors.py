"""The one place where errors become gRPC statuses (AIP-193).

Domain errors map by category to a gRPC code; the response carries a
google.rpc.Status with an ErrorInfo (reason, domain, metadata) and, for
request validation, a BadRequest listing the offending fields. Anything
unexpected is logged with its stack and answered INTERNAL without details.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from core.shared import errors as e

log = logging.getLogger(__name__)

DOMAIN = "waqup.app"

_CODES: tuple[tuple[type[e.DomainError], grpc.StatusCode], ...] = (
    (e.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (e.NotFound, grpc.StatusCode.NOT_FOUND),
    (e.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (e.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (e.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (e.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (e.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (e.Unavailable, grpc.StatusCode.UNAVAILABLE),
)


class RequestInvalid(e.InvalidArgument):
    """A request broke its rules (protovalidate, the text rule): one
    (field path, description) per offending field."""

    reason = "INVALID_REQUEST"

    def __init__(self, violations: list[tuple[str, str]], *, reason: str | None = None) -> None:
        summary = "; ".join(f"{field}: {desc}" for field, desc in violations)
        super().__init__(f"invalid request: {summary}", reason=reason)
        self.violations = violations


def code_for(error: e.DomainError) -> grpc.StatusCode:
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.FAILED_PRECONDITION


def status_for(error: e.DomainError) -> tuple[grpc.StatusCode, status_pb2.Status]:
    code = code_for(error)
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN,
                                       metadata=error.metadata)
    details: list[Any] = [info]
    violations = _violations(error)
    if violations:
        details.append(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=desc)
            for field, desc in violations]))
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    return code, status_pb2.Status(code=code.value[0], message=error.message, details=packed)


def _violations(error: e.DomainError) -> list[tuple[str, str]]:
    """The field violations of an invalid argument: those of a RequestInvalid, or
    the one field a domain error names in its metadata."""
    if isinstance(error, RequestInvalid):
        return error.violations
    if isinstance(error, e.InvalidArgument) and "field" in error.metadata:
        return [(error.metadata["field"], error.message)]
    return []


def internal_status() -> tuple[grpc.StatusCode, status_pb2.Status]:
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=DOMAIN)
    holder = any_pb2.Any()
    holder.Pack(info)
    return grpc.StatusCode.INTERNAL, status_pb2.Status(
        code=code_pb2.INTERNAL, message="internal error", details=[holder])


async def abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode,
                status: status_pb2.Status) -> None:
    await context.abort(code, status.message,
                        trailing_metadata=(("grpc-status-details-bin",
                                            status.SerializeToString()),))
