"""gRPC servicers of the content context."""

from __future__ import annotations

import grpc

from core.content.service import ContentGenerator
from services.api.creation import DEPTH_TO_PB, brief_from_pb, resource_id, struct
from services.gen.waqup.content.v1 import content_pb2 as pb
from services.gen.waqup.content.v1 import content_pb2_grpc as rpc


class ContentGenerationServicer(rpc.ContentGenerationServiceServicer):
    """Internal: the request path admits only callers with the service role."""

    def __init__(self, generator: ContentGenerator) -> None:
        self._generator = generator

    async def GenerateContent(self, request: pb.GenerateContentRequest,
                              context: grpc.aio.ServicerContext) -> pb.GenerateContentResponse:
        text = await self._generator.generate(resource_id(request.parent, "users", "parent"),
                                              request.request_id, brief_from_pb(request.brief),
                                              list(request.history))
        return pb.GenerateContentResponse(
            title=text.title, depth=DEPTH_TO_PB[text.depth], structure=struct(text.structure),
            segments=[pb.ScriptSegment(text=s.text, pause_after_seconds=s.pause_after)
                      for s in text.script.segments],
            target_seconds=text.script.target_seconds, model=text.model)
