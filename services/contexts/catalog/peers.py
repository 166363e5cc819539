"""The catalog's port onto the library (a creator's own items): an
in-process call when this process serves the library, a gRPC call with a
service token when it does not."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc

from core.shared.errors import NotFound
from ports.catalog import LibraryItem
from services.api.creation import CONTENT_TYPE_FROM_PB
from services.api.peers import Peer, peer_error
from services.gen.waqup.library.v1 import library_pb2, library_pb2_grpc


class LocalLibrary:
    def __init__(self, service: Callable[[], Any]) -> None:
        self._service = service

    async def owned_item(self, user_id: uuid.UUID, content_id: uuid.UUID,
                         ) -> LibraryItem | None:
        try:
            item = await self._service().get(user_id, content_id)
        except NotFound:
            return None
        return LibraryItem(content_id=item.id, owner_id=item.user_id, title=item.title,
                           content_type=item.content_type, ready=item.state.value == "ready",
                           duration_ms=item.audio_duration_ms or 0)


class RemoteLibrary:
    def __init__(self, peer: Peer) -> None:
        self._peer = peer
        self._stub = library_pb2_grpc.CreationServiceStub(peer.channel)

    async def owned_item(self, user_id: uuid.UUID, content_id: uuid.UUID,
                         ) -> LibraryItem | None:
        try:
            content = await self._stub.GetCreation(
                library_pb2.GetCreationRequest(parent=f"users/{user_id}",
                                               name=f"contents/{content_id}"),
                metadata=self._peer.tokens.metadata(), timeout=self._peer.timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return None
            raise peer_error(error) from None
        return LibraryItem(
            content_id=content_id, owner_id=user_id, title=content.title,
            content_type=CONTENT_TYPE_FROM_PB[content.content_type],
            ready=content.state == library_pb2.CONTENT_STATE_READY,
            duration_ms=content.audio_duration.ToMilliseconds())
