"""The conversation's ports onto library (creations) and identity
(preferences): in-process calls when this process serves them, gRPC otherwise
(library's internal CreationService with a service token; identity's public
GetUser with the caller's own token)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc

from core.shared.creation import Brief
from core.shared.errors import DomainError
from ports.conversation import CreationStatus, KnownPreferences
from services.api.context import request_var
from services.api.creation import brief_pb
from services.api.peers import Peer, peer_error
from services.gen.waqup.identity.v1 import identity_pb2, identity_pb2_grpc
from services.gen.waqup.library.v1 import library_pb2, library_pb2_grpc

_STATE = {library_pb2.CONTENT_STATE_GENERATING_TEXT: "generating_text",
          library_pb2.CONTENT_STATE_RENDERING_AUDIO: "rendering_audio",
          library_pb2.CONTENT_STATE_READY: "ready", library_pb2.CONTENT_STATE_FAILED: "failed"}


def _status(item: Any) -> CreationStatus:
    return CreationStatus(content_id=item.id, state=item.state.value,
                          failure_reason=item.failure_reason, title=item.title)


class LocalCreations:
    def __init__(self, library: Callable[[], Any]) -> None:
        self._library = library

    async def start(self, user_id: uuid.UUID, request_id: str, brief: Brief,
                    conversation_id: uuid.UUID) -> CreationStatus:
        return _status(await self._library().start_creation(user_id, request_id, brief,
                                                            conversation_id))

    async def status(self, user_id: uuid.UUID, content_id: uuid.UUID) -> CreationStatus:
        return _status(await self._library().get(user_id, content_id))

    async def history(self, user_id: uuid.UUID, limit: int) -> list[str]:
        return await self._library().titles(user_id, limit)


class RemoteCreations:
    def __init__(self, peer: Peer) -> None:
        self._peer = peer
        self._stub = library_pb2_grpc.CreationServiceStub(peer.channel)

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, metadata=self._peer.tokens.metadata(),
                                timeout=self._peer.timeout)
        except grpc.aio.AioRpcError as error:
            raise peer_error(error) from None

    def _status(self, content: library_pb2.Content) -> CreationStatus:
        return CreationStatus(content_id=uuid.UUID(content.name.partition("/")[2]),
                              state=_STATE[content.state],
                              failure_reason=content.failure_reason, title=content.title)

    async def start(self, user_id: uuid.UUID, request_id: str, brief: Brief,
                    conversation_id: uuid.UUID) -> CreationStatus:
        return self._status(await self._call(self._stub.StartCreation,
                                             library_pb2.StartCreationRequest(
            parent=f"users/{user_id}", request_id=request_id, brief=brief_pb(brief),
            conversation=f"conversations/{conversation_id}")))

    async def status(self, user_id: uuid.UUID, content_id: uuid.UUID) -> CreationStatus:
        return self._status(await self._call(self._stub.GetCreation,
                                             library_pb2.GetCreationRequest(
            parent=f"users/{user_id}", name=f"contents/{content_id}")))

    async def history(self, user_id: uuid.UUID, limit: int) -> list[str]:
        response = await self._call(self._stub.ListCreationTitles,
                                    library_pb2.ListCreationTitlesRequest(
                                        parent=f"users/{user_id}", limit=min(limit, 50)))
        return list(response.titles)


def _known(voice: str, pace: str, tone: str, name: str) -> KnownPreferences:
    pace = "" if pace in ("unspecified", "") else pace
    tone = "" if tone in ("unspecified", "neutral", "") else tone
    return KnownPreferences(voice=voice, pace=pace, tone=tone, display_name=name)


class LocalPreferences:
    def __init__(self, identity: Callable[[], Any]) -> None:
        self._identity = identity

    async def get(self, user_id: uuid.UUID) -> KnownPreferences:
        try:
            profile = await self._identity().get_profile(user_id)
        except DomainError:  # no profile (yet): nothing known, the conversation asks
            return KnownPreferences()
        prefs = profile.preferences
        return _known(prefs.voice, prefs.pace.value, prefs.tone.value, profile.display_name)


class RemotePreferences:
    """Identity's public GetUser, called with the caller's own token (the one
    the current request carried): no internal API needed for a person's own
    preferences. Without a request (none here), or on any failure: nothing
    known, and the conversation asks."""

    _PACE = {identity_pb2.PACE_SLOW: "slow", identity_pb2.PACE_MEDIUM: "medium",
             identity_pb2.PACE_FAST: "fast"}

    def __init__(self, peer: Peer) -> None:
        self._peer = peer
        self._stub = identity_pb2_grpc.UserServiceStub(peer.channel)

    async def get(self, user_id: uuid.UUID) -> KnownPreferences:
        info = request_var.get()
        token = getattr(info, "bearer", "") if info is not None else ""
        if not token:
            return KnownPreferences()
        try:
            user = await self._stub.GetUser(identity_pb2.GetUserRequest(name="users/me"),
                                            metadata=(("authorization", f"Bearer {token}"),),
                                            timeout=3.0)
        except grpc.aio.AioRpcError:
            return KnownPreferences()
        prefs = user.preferences
        tone = identity_pb2.Tone.Name(prefs.tone).removeprefix("TONE_").lower()
        return _known(prefs.voice, self._PACE.get(prefs.pace, ""), tone, user.display_name)
