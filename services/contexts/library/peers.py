"""The library's ports onto other contexts: credits (ledger), content (text)
and audio (render jobs) — an in-process call when this process serves the
other context, a gRPC call with a service token when it does not. No other
context's code is imported: in-process peers are called by their methods."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc

from core.shared.creation import Brief, GeneratedText, Script, Segment
from services.api.creation import DEPTH_FROM_PB, brief_pb, struct_dict
from services.api.peers import Peer, peer_error
from services.gen.waqup.audio.v1 import events_pb2 as audio_pb
from services.gen.waqup.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from services.gen.waqup.content.v1 import content_pb2, content_pb2_grpc
from services.gen.waqup.credits.v1 import credits_pb2, credits_pb2_grpc

TEXT_QUEUE = "library-text"
RENDER_QUEUE = "audio-render"


class LocalCredits:
    def __init__(self, service: Callable[[], Any]) -> None:
        self._service = service

    async def reserve(self, request_id: str, user_id: uuid.UUID, amount: int,
                      reason: str) -> uuid.UUID:
        return (await self._service().reserve(request_id, user_id, amount, reason)).id

    async def commit(self, request_id: str, user_id: uuid.UUID, hold_id: uuid.UUID) -> None:
        await self._service().commit(request_id, user_id, hold_id)

    async def release(self, request_id: str, user_id: uuid.UUID, hold_id: uuid.UUID) -> None:
        await self._service().release(request_id, user_id, hold_id)


class RemoteCredits:
    def __init__(self, peer: Peer) -> None:
        self._peer = peer
        self._stub = credits_pb2_grpc.CreditLedgerServiceStub(peer.channel)

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, metadata=self._peer.tokens.metadata(),
                                timeout=self._peer.timeout)
        except grpc.aio.AioRpcError as error:
            raise peer_error(error) from None

    async def reserve(self, request_id: str, user_id: uuid.UUID, amount: int,
                      reason: str) -> uuid.UUID:
        reservation = await self._call(self._stub.ReserveCredits, credits_pb2.ReserveCreditsRequest(
            parent=f"users/{user_id}", request_id=request_id, amount=amount, reason=reason))
        return uuid.UUID(reservation.name.rpartition("/")[2])

    async def commit(self, request_id: str, user_id: uuid.UUID, hold_id: uuid.UUID) -> None:
        await self._call(self._stub.CommitReservation, credits_pb2.CommitReservationRequest(
            name=f"users/{user_id}/reservations/{hold_id}", request_id=request_id))

    async def release(self, request_id: str, user_id: uuid.UUID, hold_id: uuid.UUID) -> None:
        await self._call(self._stub.ReleaseReservation, credits_pb2.ReleaseReservationRequest(
            name=f"users/{user_id}/reservations/{hold_id}", request_id=request_id))


class LocalWriter:
    def __init__(self, service: Callable[[], Any]) -> None:
        self._service = service

    async def generate(self, user_id: uuid.UUID, request_id: str, brief: Brief,
                       history: list[str]) -> GeneratedText:
        return await self._service().generate(user_id, request_id, brief, history)


class RemoteWriter:
    def __init__(self, peer: Peer) -> None:
        self._peer = peer
        self._stub = content_pb2_grpc.ContentGenerationServiceStub(peer.channel)

    async def generate(self, user_id: uuid.UUID, request_id: str, brief: Brief,
                       history: list[str]) -> GeneratedText:
        try:
            response = await self._stub.GenerateContent(
                content_pb2.GenerateContentRequest(parent=f"users/{user_id}",
                                                   request_id=request_id, brief=brief_pb(brief),
                                                   history=history[:50]),
                metadata=self._peer.tokens.metadata(), timeout=self._peer.timeout)
        except grpc.aio.AioRpcError as error:
            raise peer_error(error) from None
        script = Script(tuple(Segment(s.text, s.pause_after_seconds) for s in response.segments),
                        target_seconds=response.target_seconds)
        return GeneratedText(title=response.title, depth=DEPTH_FROM_PB[response.depth],
                             structure=struct_dict(response.structure), script=script,
                             model=response.model)


class QueuedRenders:
    """RenderRequests on audio's work queue (idempotent by content and version)."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    async def request(self, content_id: uuid.UUID, user_id: uuid.UUID, version: int,
                      script: Script, voice: str, rate: float, background: str) -> None:
        job = audio_pb.RenderJob(
            content=f"contents/{content_id}", user=f"users/{user_id}", version=version,
            segments=[audio_pb.Segment(text=s.text, pause_after_seconds=s.pause_after)
                      for s in script.segments],
            voice=voice, rate=rate, target_seconds=script.target_seconds,
            background=background)
        await self._queue.enqueue(RENDER_QUEUE, f"render-{content_id}-{version}",
                                  job.SerializeToString())


class QueuedTextJobs:
    def __init__(self, queue: Any) -> None:
        self._queue = queue

    async def enqueue(self, content_id: uuid.UUID) -> None:
        await self._queue.enqueue(TEXT_QUEUE, f"text-{content_id}", str(content_id).encode())


class StoredAudio:
    """AudioUrls over the object store."""

    def __init__(self, objects: Any) -> None:
        self._objects = objects

    async def signed_url(self, key: str, expires_in_seconds: int,
                         download_name: str | None = None) -> str:
        from datetime import timedelta

        return await self._objects.signed_url(key, timedelta(seconds=expires_in_seconds),
                                              download_name)

    async def delete_prefix(self, prefix: str) -> int:
        return await self._objects.delete_prefix(prefix)

    async def get(self, key: str) -> bytes | None:
        return await self._objects.get(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self._objects.put(key, data, content_type)


class LocalMarket:
    """The catalog's CheckAccess, in process."""

    def __init__(self, service: Callable[[], Any]) -> None:
        self._service = service

    async def check(self, user_id: uuid.UUID, content_id: uuid.UUID) -> str:
        decision = await self._service().check_access(user_id, content_id)
        return _verdict(decision.allowed, decision.access.value == "not_owned")


class RemoteMarket:
    """The catalog's internal CheckAccess, over gRPC."""

    def __init__(self, peer: Peer) -> None:
        self._peer = peer
        self._stub = catalog_pb2_grpc.AccessServiceStub(peer.channel)

    async def check(self, user_id: uuid.UUID, content_id: uuid.UUID) -> str:
        try:
            answer = await self._stub.CheckAccess(
                catalog_pb2.CheckAccessRequest(user=f"users/{user_id}",
                                               content=f"contents/{content_id}"),
                metadata=self._peer.tokens.metadata(), timeout=self._peer.timeout)
        except grpc.aio.AioRpcError as error:
            raise peer_error(error) from None
        return _verdict(answer.allowed, answer.reason == catalog_pb2.ACCESS_REASON_NOT_OWNED)


def _verdict(allowed: bool, on_sale: bool) -> str:
    return "allowed" if allowed else ("not_owned" if on_sale else "not_listed")
