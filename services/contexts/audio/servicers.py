"""gRPC servicers of the audio context."""

from __future__ import annotations

from typing import Any

import grpc

from services.gen.waqup.audio.v1 import audio_pb2 as pb
from services.gen.waqup.audio.v1 import audio_pb2_grpc as rpc


class VoiceServicer(rpc.VoiceServiceServicer):
    def __init__(self, catalog: Any) -> None:
        self._catalog = catalog

    async def ListVoices(self, request: pb.ListVoicesRequest,
                         context: grpc.aio.ServicerContext) -> pb.ListVoicesResponse:
        return pb.ListVoicesResponse(voices=[
            pb.Voice(name=f"voices/{v.id}", display_name=v.display_name,
                     language_code=v.language, sample_uri=url, paces=list(v.paces),
                     provider=v.provider) for v, url in await self._catalog.voices()])
