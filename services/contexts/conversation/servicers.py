"""gRPC servicers of the conversation context, and the stream (Converse)
that both native gRPC clients and the WebSocket bridge use."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc

from core.conversation.model import Conversation, Message, State
from core.shared.errors import DomainError, InvalidArgument
from services.api.context import current_principal
from services.api.convert import timestamp
from services.api.creation import CONTENT_TYPE_FROM_PB, CONTENT_TYPE_TO_PB, brief_pb, resource_id
from services.api.errors import internal_status, status_for
from services.gen.waqup.conversation.v1 import conversation_pb2 as pb
from services.gen.waqup.conversation.v1 import conversation_pb2_grpc as rpc

log = logging.getLogger(__name__)

_STATE = {State.INTENT_DISCOVERY: pb.STATE_INTENT_DISCOVERY,
          State.CONTEXT_GATHERING: pb.STATE_CONTEXT_GATHERING,
          State.PRACTICE_DETAILS: pb.STATE_PRACTICE_DETAILS,
          State.PERSONALIZATION: pb.STATE_PERSONALIZATION,
          State.CONFIRMATION: pb.STATE_CONFIRMATION, State.GENERATING: pb.STATE_GENERATING,
          State.COMPLETED: pb.STATE_COMPLETED, State.FAILED: pb.STATE_FAILED,
          State.CANCELLED: pb.STATE_CANCELLED, State.EXPIRED: pb.STATE_EXPIRED}
_KIND = {"question": pb.MESSAGE_KIND_QUESTION, "summary": pb.MESSAGE_KIND_SUMMARY,
         "refusal": pb.MESSAGE_KIND_REFUSAL, "progress": pb.MESSAGE_KIND_PROGRESS}
#: How often a stream looks at a running creation.
PROGRESS_POLL_SECONDS = 0.5


def message_pb(message: Message) -> pb.Message:
    return pb.Message(role=pb.ROLE_USER if message.role == "user" else pb.ROLE_ASSISTANT,
                      text=message.text, kind=_KIND.get(message.kind, 0),
                      create_time=timestamp(message.time))


def conversation_pb(conversation: Conversation, ttl_seconds: int) -> pb.Conversation:
    details = conversation.details
    brief = brief_pb(details.to_brief(conversation.name)) if details.content_type else None
    return pb.Conversation(
        name=f"conversations/{conversation.id}", state=_STATE[conversation.state],
        content_type=CONTENT_TYPE_TO_PB.get(details.content_type, 0)
        if details.content_type else 0,
        messages=[message_pb(m) for m in conversation.messages], details=brief,
        content=f"contents/{conversation.content_id}" if conversation.content_id else "",
        failure_reason=conversation.failure_reason,
        create_time=timestamp(conversation.create_time),
        update_time=timestamp(conversation.update_time),
        expire_time=timestamp(conversation.update_time + timedelta(seconds=ttl_seconds)))


def _id(name: str) -> uuid.UUID:
    return resource_id(name, "conversations")


class ConversationServicer(rpc.ConversationServiceServicer):
    def __init__(self, conversations: Any, ttl_seconds: int) -> None:
        self._conversations = conversations
        self._ttl = ttl_seconds

    def _pb(self, conversation: Conversation) -> pb.Conversation:
        return conversation_pb(conversation, self._ttl)

    async def CreateConversation(self, request: pb.CreateConversationRequest,
                                 context: grpc.aio.ServicerContext) -> pb.Conversation:
        content_type = CONTENT_TYPE_FROM_PB.get(request.conversation.content_type)
        return self._pb(await self._conversations.start(current_principal().user_id,
                                                        content_type))

    async def GetConversation(self, request: pb.GetConversationRequest,
                              context: grpc.aio.ServicerContext) -> pb.Conversation:
        return self._pb(await self._conversations.get(current_principal().user_id,
                                                      _id(request.name)))

    async def SendMessage(self, request: pb.SendMessageRequest,
                          context: grpc.aio.ServicerContext) -> pb.Conversation:
        return self._pb(await self._conversations.send(current_principal().user_id,
                                                       _id(request.name), request.text))

    async def ConfirmConversation(self, request: pb.ConfirmConversationRequest,
                                  context: grpc.aio.ServicerContext) -> pb.Conversation:
        return self._pb(await self._conversations.confirm(current_principal().user_id,
                                                          _id(request.name)))

    async def CancelConversation(self, request: pb.CancelConversationRequest,
                                 context: grpc.aio.ServicerContext) -> pb.Conversation:
        return self._pb(await self._conversations.cancel(current_principal().user_id,
                                                         _id(request.name)))

    async def Converse(self, requests: AsyncIterator[pb.ConverseRequest],
                       context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ConverseResponse]:
        async for response in converse(self._conversations, self._ttl,
                                       current_principal().user_id, "", requests):
            yield response


def _error(error: BaseException) -> pb.ConverseResponse:
    if isinstance(error, DomainError):
        _code, status = status_for(error)
    else:
        log.error("unexpected error in a conversation stream", exc_info=error)
        _code, status = internal_status()
    return pb.ConverseResponse(error=status)


async def converse(conversations: Any, ttl: int, user_id: uuid.UUID, name: str,
                   requests: AsyncIterator[pb.ConverseRequest],
                   ) -> AsyncIterator[pb.ConverseResponse]:
    """The conversation `name` (or the first request's) as a stream: answers
    each request, and while the creation runs, reports each change of its
    stage until it is ready or failed. Refused requests answer with `error`;
    the stream ends when the requests end and no creation is being followed."""
    out: asyncio.Queue[pb.ConverseResponse | None] = asyncio.Queue()
    state = {"id": _id(name) if name else None, "following": False, "stage": ""}
    follower: list[asyncio.Task[None]] = []

    def snapshot(conversation: Conversation, reply: bool) -> pb.ConverseResponse:
        response = pb.ConverseResponse(conversation=conversation_pb(conversation, ttl))
        last = conversation.last_reply
        if reply and last is not None:
            response.reply.CopyFrom(message_pb(last))
        if conversation.content_id and conversation.creation_state:
            response.progress.CopyFrom(pb.CreationProgress(
                content=f"contents/{conversation.content_id}",
                stage=conversation.creation_state, failure_reason=conversation.failure_reason))
        return response

    async def follow() -> None:
        try:
            while True:
                conversation = await conversations.get(user_id, state["id"])
                stage = conversation.creation_state or conversation.state.value
                if stage != state["stage"]:
                    state["stage"] = stage
                    await out.put(snapshot(conversation, reply=False))
                if conversation.state is not State.GENERATING:
                    return
                await asyncio.sleep(PROGRESS_POLL_SECONDS)
        except Exception as error:
            await out.put(_error(error))
        finally:
            state["following"] = False

    def start_following(conversation: Conversation) -> None:
        if conversation.state is State.GENERATING and not state["following"]:
            state["following"] = True
            state["stage"] = conversation.creation_state or conversation.state.value
            follower.append(asyncio.create_task(follow()))

    async def read() -> None:
        try:
            if state["id"] is not None:
                try:
                    conversation = await conversations.get(user_id, state["id"])
                except DomainError as error:  # not theirs, expired: say so and end
                    await out.put(_error(error))
                    return
                await out.put(snapshot(conversation, reply=False))
                start_following(conversation)
            async for request in requests:
                try:
                    if request.name and state["id"] is None:
                        state["id"] = _id(request.name)
                    elif request.name and _id(request.name) != state["id"]:
                        raise InvalidArgument("one stream is one conversation",
                                              reason="CONVERSATION_MISMATCH")
                    if state["id"] is None:
                        raise InvalidArgument("the first request must name the conversation",
                                              reason="CONVERSATION_REQUIRED")
                    action = request.WhichOneof("action")
                    if action == "text":
                        conversation = await conversations.send(user_id, state["id"],
                                                                request.text)
                    elif action == "confirm" and request.confirm:
                        conversation = await conversations.confirm(user_id, state["id"])
                    elif action == "cancel" and request.cancel:
                        conversation = await conversations.cancel(user_id, state["id"])
                    else:
                        conversation = await conversations.get(user_id, state["id"])
                    await out.put(snapshot(conversation, reply=action is not None))
                    start_following(conversation)
                except DomainError as error:
                    await out.put(_error(error))
        finally:
            for task in follower:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await out.put(None)

    reader = asyncio.create_task(read())
    try:
        while (response := await out.get()) is not None:
            yield response
        await reader
    finally:
        reader.cancel()
        for task in follower:
            task.cancel()
