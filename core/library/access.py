"""Who may play an item that is not theirs: the marketplace decides."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from core.shared.errors import NotFound, PermissionDenied

if TYPE_CHECKING:
    from ports.library import MarketAccess


async def require_access(access: MarketAccess | None, user_id: uuid.UUID,
                         content_id: uuid.UUID, not_found: NotFound) -> None:
    """Another person's item plays only when the marketplace says so (it is
    in a pack the caller bought, a members-only pack of their membership, or
    a free one). Otherwise: PERMISSION_DENIED when it is on sale (the caller
    may buy it), `not_found` when it is in no pack (as if it did not exist:
    the 404 rule)."""
    verdict = await access.check(user_id, content_id) if access is not None else "not_listed"
    if verdict == "allowed":
        return
    if verdict == "not_owned":
        raise PermissionDenied("buy the pack this item is in to play it",
                               reason="PACK_NOT_OWNED")
    raise not_found
