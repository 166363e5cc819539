"""gRPC servicers of the library context: protobuf <-> core."""

from __future__ import annotations

import re
import uuid

import grpc
from google.protobuf import duration_pb2, empty_pb2

from core.library.model import ContentItem, ItemState
from core.library.service import LibraryService
from core.shared.auth import resolve_user
from core.shared.errors import InvalidArgument
from services.api.context import current_principal
from services.api.convert import timestamp, user_segment
from services.api.creation import (
    CONTENT_TYPE_FROM_PB,
    CONTENT_TYPE_TO_PB,
    DEPTH_TO_PB,
    brief_from_pb,
    resource_id,
    struct,
)
from services.api.pagination import PageTokens
from services.gen.waqup.common.v1 import creation_pb2 as common
from services.gen.waqup.library.v1 import library_pb2 as pb
from services.gen.waqup.library.v1 import library_pb2_grpc as rpc

_STATE_TO_PB = {ItemState.GENERATING_TEXT: pb.CONTENT_STATE_GENERATING_TEXT,
                ItemState.RENDERING_AUDIO: pb.CONTENT_STATE_RENDERING_AUDIO,
                ItemState.READY: pb.CONTENT_STATE_READY,
                ItemState.FAILED: pb.CONTENT_STATE_FAILED}
#: AIP-160, the one form accepted. `+` counts as a space: some clients encode
#: spaces in the query string that way, and the edge passes it on as it is.
_FILTER = re.compile(r"[\s+]*content_type[\s+]*=[\s+]*\"?([A-Z_]+)\"?[\s+]*")


def duration(ms: int) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromMilliseconds(ms)
    return value


def content_pb(item: ContentItem) -> pb.Content:
    return pb.Content(
        name=f"contents/{item.id}", content_type=CONTENT_TYPE_TO_PB[item.content_type],
        title=item.title, text=item.text, structure=struct(item.structure),
        depth=DEPTH_TO_PB[item.depth] if item.depth else 0, state=_STATE_TO_PB[item.state],
        failure_reason=item.failure_reason,
        audio_duration=duration(item.audio_duration_ms) if item.audio_duration_ms else None,
        voice=item.voice, tags=item.tags, cost=item.cost, play_count=item.play_count,
        conversation=f"conversations/{item.conversation_id}" if item.conversation_id else "",
        create_time=timestamp(item.created_at), update_time=timestamp(item.updated_at))


def _content_type_filter(text: str) -> object:
    if not text.strip():
        return None
    match = _FILTER.fullmatch(text)
    value = common.ContentType.Value(match.group(1)) if match and match.group(1) in (
        common.ContentType.keys()) else None
    if value not in CONTENT_TYPE_FROM_PB:
        raise InvalidArgument("filter must be `content_type = <CONTENT_TYPE_...>`",
                              reason="INVALID_FILTER", metadata={"field": "filter"})
    return CONTENT_TYPE_FROM_PB[value]


def _me(parent: str) -> uuid.UUID:
    return resolve_user(current_principal(), user_segment(parent))


class LibraryServicer(rpc.LibraryServiceServicer):
    def __init__(self, library: LibraryService, page_tokens: PageTokens) -> None:
        self._library = library
        self._pages = page_tokens

    async def ListContents(self, request: pb.ListContentsRequest,
                           context: grpc.aio.ServicerContext) -> pb.ListContentsResponse:
        user_id = _me(request.parent)
        content_type = _content_type_filter(request.filter)
        listing = f"library.ListContents:{user_id}:{content_type or ''}"
        before = self._pages.read_uuid(listing, request.page_token, "before")
        items, after = await self._library.list(user_id, content_type,  # type: ignore[arg-type]
                                                request.page_size, before)
        token = self._pages.issue(listing, {"before": str(after)}) if after else ""
        return pb.ListContentsResponse(contents=[content_pb(i) for i in items],
                                       next_page_token=token)

    async def GetContent(self, request: pb.GetContentRequest,
                         context: grpc.aio.ServicerContext) -> pb.Content:
        user_id = current_principal().user_id
        return content_pb(await self._library.get(user_id, resource_id(request.name,
                                                                        "contents")))

    async def UpdateContent(self, request: pb.UpdateContentRequest,
                            context: grpc.aio.ServicerContext) -> pb.Content:
        user_id = current_principal().user_id
        content_id = resource_id(request.content.name, "contents", "content.name")
        paths = set(request.update_mask.paths)
        unknown = paths - {"title", "tags"}
        if unknown:
            raise InvalidArgument(f"update_mask may name title and tags, not {sorted(unknown)}",
                                  reason="INVALID_UPDATE_MASK",
                                  metadata={"field": "update_mask"})
        if not paths:
            # No mask (AIP-134): the fields that were sent, i.e. have a value.
            # Clearing the tags needs the mask `tags`.
            paths = {name for name, given in (("title", bool(request.content.title)),
                                              ("tags", bool(request.content.tags))) if given}
        title = request.content.title if "title" in paths else None
        tags = list(request.content.tags) if "tags" in paths else None
        item = await self._library.update(user_id, content_id, title=title, tags=tags)
        return content_pb(item)

    async def DeleteContent(self, request: pb.DeleteContentRequest,
                            context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        user_id = current_principal().user_id
        await self._library.delete(user_id, resource_id(request.name, "contents"))
        return empty_pb2.Empty()

    async def GetPlayback(self, request: pb.GetPlaybackRequest,
                          context: grpc.aio.ServicerContext) -> pb.Playback:
        user_id = current_principal().user_id
        content_id = resource_id(request.name, "contents", suffix="/playback")
        url, expires, mime, ms = await self._library.playback(user_id, content_id)
        return pb.Playback(name=request.name, uri=url, expire_time=timestamp(expires),
                           mime_type=mime, duration=duration(ms))


class CreationServicer(rpc.CreationServiceServicer):
    """Internal: the request path admits only callers with the service role."""

    def __init__(self, library: LibraryService) -> None:
        self._library = library

    async def StartCreation(self, request: pb.StartCreationRequest,
                            context: grpc.aio.ServicerContext) -> pb.Content:
        user_id = resource_id(request.parent, "users", "parent")
        conversation = (resource_id(request.conversation, "conversations", "conversation")
                        if request.conversation else None)
        item = await self._library.start_creation(user_id, request.request_id,
                                                  brief_from_pb(request.brief), conversation)
        return content_pb(item)

    async def GetCreation(self, request: pb.GetCreationRequest,
                          context: grpc.aio.ServicerContext) -> pb.Content:
        user_id = resource_id(request.parent, "users", "parent")
        return content_pb(await self._library.get(user_id, resource_id(request.name,
                                                                        "contents")))

    async def ListCreationTitles(self, request: pb.ListCreationTitlesRequest,
                                 context: grpc.aio.ServicerContext,
                                 ) -> pb.ListCreationTitlesResponse:
        user_id = resource_id(request.parent, "users", "parent")
        return pb.ListCreationTitlesResponse(
            titles=await self._library.titles(user_id, request.limit or 10))
