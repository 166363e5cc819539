"""Who is calling: taken from a verified access token, never from a request field."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from core.shared.errors import PermissionDenied

ROLE_USER = "user"
ROLE_SERVICE = "service"


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]
    token_id: str = ""

    @property
    def user_id(self) -> uuid.UUID:
        return uuid.UUID(self.subject)

    def has_role(self, role: str) -> bool:
        return role in self.roles


def resolve_user(principal: Principal, user_segment: str) -> uuid.UUID:
    """The user id named by a resource segment (`me` or an id), which must be the caller."""
    if user_segment == "me":
        return principal.user_id
    try:
        requested = uuid.UUID(user_segment)
    except ValueError:
        raise PermissionDenied("callers may only name themselves",
                               reason="NOT_RESOURCE_OWNER") from None
    if requested != principal.user_id:
        raise PermissionDenied("callers may only name themselves", reason="NOT_RESOURCE_OWNER")
    return requested
