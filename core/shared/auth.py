"""Who is calling: taken from a verified access token, never from a request field.

Two kinds of principal exist. A user's token has a UUID subject (their user
id) and the `user` role; a service's token has the subject `service:<name>` and
the `service` role. `Principal.parse` refuses anything else, so no other
subject ever reaches a use case; methods that act for a user refuse a
service principal with PERMISSION_DENIED instead of guessing an id from it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from core.shared.errors import PermissionDenied, Unauthenticated

ROLE_USER = "user"
ROLE_SERVICE = "service"
SERVICE_PREFIX = "service:"
_SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]
    token_id: str = ""
    #: The user's id for a user principal; None for a service.
    user: uuid.UUID | None = None

    @classmethod
    def parse(cls, subject: str, roles: frozenset[str], token_id: str = "") -> Principal:
        """A principal from verified token claims; Unauthenticated (INVALID_TOKEN)
        when the subject is neither a canonical UUID nor `service:<name>` with
        the service role."""
        if _CANONICAL_UUID.fullmatch(subject):
            return cls(subject, roles, token_id, uuid.UUID(subject))
        name = subject.removeprefix(SERVICE_PREFIX)
        if (name != subject and _SERVICE_NAME.fullmatch(name) and ROLE_SERVICE in roles
                and ROLE_USER not in roles):
            return cls(subject, roles, token_id, None)
        raise Unauthenticated("the access token's subject is not valid", reason="INVALID_TOKEN")

    @property
    def user_id(self) -> uuid.UUID:
        """The caller's user id; PERMISSION_DENIED for a principal that is not a user."""
        if self.user is None:
            raise PermissionDenied("this method acts for a user; the caller is a service",
                                   reason="USER_PRINCIPAL_REQUIRED")
        return self.user

    def has_role(self, role: str) -> bool:
        return role in self.roles


def resolve_user(principal: Principal, user_segment: str) -> uuid.UUID:
    """The user id named by a resource segment (`me` or an id), which must be the caller."""
    caller = principal.user_id
    if user_segment == "me":
        return caller
    try:
        requested = uuid.UUID(user_segment)
    except ValueError:
        raise PermissionDenied("callers may only name themselves",
                               reason="NOT_RESOURCE_OWNER") from None
    if requested != caller:
        raise PermissionDenied("callers may only name themselves", reason="NOT_RESOURCE_OWNER")
    return requested
