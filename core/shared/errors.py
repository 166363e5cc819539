"""Domain errors. Each names its category; the serving layer maps categories to
gRPC codes once, and `reason` becomes the ErrorInfo reason (AIP-193)."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the core raises on purpose."""

    reason = "DOMAIN_ERROR"

    def __init__(self, message: str, *, reason: str | None = None,
                 metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata = metadata or {}


class InvalidArgument(DomainError):
    reason = "INVALID_ARGUMENT"


class NotFound(DomainError):
    reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    reason = "FAILED_PRECONDITION"


class Unauthenticated(DomainError):
    reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    reason = "PERMISSION_DENIED"


class ResourceExhausted(DomainError):
    reason = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    reason = "UNAVAILABLE"
