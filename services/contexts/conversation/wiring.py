"""Wires the conversation for one process: its sessions, the archive, its
peers (library for creations, identity for preferences), the servicer and
the WebSocket."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.conversation.service import ConversationService
from services.api.peers import Peer, ServiceTokens, peer_target
from services.contexts.conversation import peers
from services.contexts.conversation.servicers import ConversationServicer
from services.contexts.conversation.websocket import websocket_handler
from services.contexts.declaration import BuiltContext
from services.runtime.infrastructure import Infrastructure
from services.runtime.retention import retention_job


def build(infra: Infrastructure) -> BuiltContext:
    settings = infra.settings
    if infra.store is not None:
        from adapters.memory.conversations import MemoryConversationArchive

        archive: Any = MemoryConversationArchive(infra.store)
    else:
        from adapters.sql.conversations import SqlConversationArchive

        archive = SqlConversationArchive(infra.engine)
    library, identity = infra.local("library"), infra.local("identity")
    if library:
        creations: Any = peers.LocalCreations(library)
    else:
        creations = peers.RemoteCreations(infra.peer("conversation", "library"))
    if identity:
        preferences: Any = peers.LocalPreferences(identity)
    else:
        peer = Peer(settings.identity_target or peer_target(settings, "identity"),
                    infra.service_tokens or ServiceTokens(settings, "conversation"))
        infra.closers.append(peer.close)
        preferences = peers.RemotePreferences(peer)
    service = ConversationService(infra.sessions, creations, preferences, archive, infra.clock,
                                  session_ttl_seconds=settings.session_ttl_seconds)
    ttl = settings.session_ttl_seconds
    jobs = []
    sessions = infra.sessions
    if settings.retention_interval_seconds and hasattr(sessions, "delete_expired"):
        # Sessions kept in the database: expired rows are removed in batches
        # (a row's expiry is its own, hence no extra age).
        jobs.append(retention_job("retention.sessions", "sessions",
                                  lambda _cutoff, limit: sessions.delete_expired(limit),
                                  infra.clock, timedelta(0), settings))
    return BuiltContext(service=service, jobs=jobs, servicers={
        "ConversationService": ConversationServicer(service, ttl)},
        http={"stream": websocket_handler(service, infra.verifier, ttl)})
