"""Every bounded context this build serves, each declared once.

Adding a context: create `services/contexts/<name>/` with `__init__.py` (its
DECLARATION), `servicers.py`, `wiring.py` (and `events.py` when it publishes),
then add the declaration below. The edge, the request path's access rules, the
servicer registration, the composition root and the relay follow from it.
"""

from __future__ import annotations

from services.contexts.audio import DECLARATION as AUDIO
from services.contexts.catalog import DECLARATION as CATALOG
from services.contexts.content import DECLARATION as CONTENT
from services.contexts.conversation import DECLARATION as CONVERSATION
from services.contexts.credits import DECLARATION as CREDITS
from services.contexts.declaration import ContextDeclaration
from services.contexts.identity import DECLARATION as IDENTITY
from services.contexts.library import DECLARATION as LIBRARY
from services.contexts.payments import DECLARATION as PAYMENTS
from services.contexts.rewards import DECLARATION as REWARDS

#: In serving order: the first serves the edge's health baseline, and mesh mode
#: numbers worker ports in this order. Identity comes first: it holds the keys.
CONTEXTS: tuple[ContextDeclaration, ...] = (IDENTITY, CREDITS, CONVERSATION, CONTENT, AUDIO,
                                            LIBRARY, CATALOG, PAYMENTS, REWARDS)
BY_NAME: dict[str, ContextDeclaration] = {c.name: c for c in CONTEXTS}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def declared(names: object = None) -> tuple[ContextDeclaration, ...]:
    """The declarations of `names` (all when None), in serving order; unknown names
    raise ValueError."""
    if names is None:
        return CONTEXTS
    wanted = set(names)  # type: ignore[call-overload]
    unknown = wanted - set(BY_NAME)
    if unknown or not wanted:
        raise ValueError(f"unknown contexts {sorted(unknown)}; known: {list(NAMES)}")
    return tuple(c for c in CONTEXTS if c.name in wanted)
