"""The catalog's port onto the library (a creator's own items): an
in-process call when this process serves the library, a gRPC call with a
service token when it does not."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc

from core.shared.creation import ContentType
from core.shared.errors import NotFound
from ports.catalog import LibraryItem
from services.api.creation import CONTENT_TYPE_FROM_PB, CONTENT_TYPE_TO_PB
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
        return _item(item)


    async def import_audio(self, user_id: uuid.UUID, request_id: str, object_key: str,
                           title: str, content_type: ContentType) -> LibraryItem:
        item = await self._service().import_audio(user_id, request_id, object_key, title,
                                                  content_type)
        return _item(item)


def _item(item: Any) -> LibraryItem:
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
        return _remote_item(content, user_id)

    async def import_audio(self, user_id: uuid.UUID, request_id: str, object_key: str,
                           title: str, content_type: ContentType) -> LibraryItem:
        try:
            content = await self._stub.ImportAudio(
                library_pb2.ImportAudioRequest(
                    parent=f"users/{user_id}", request_id=request_id, object_key=object_key,
                    title=title, content_type=CONTENT_TYPE_TO_PB[content_type]),
                metadata=self._peer.tokens.metadata(), timeout=120)
        except grpc.aio.AioRpcError as error:
            raise peer_error(error) from None
        return _remote_item(content, user_id)


def _remote_item(content: Any, user_id: uuid.UUID) -> LibraryItem:
    return LibraryItem(
        content_id=uuid.UUID(content.name.rpartition("/")[2]), owner_id=user_id,
        title=content.title, content_type=CONTENT_TYPE_FROM_PB[content.content_type],
        ready=content.state == library_pb2.CONTENT_STATE_READY,
        duration_ms=content.audio_duration.ToMilliseconds())
