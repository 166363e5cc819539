"""Conversions of the shared creation vocabulary (waqup.common.v1) that
several contexts' servicers and clients use."""

from __future__ import annotations

import uuid

from google.protobuf import json_format, struct_pb2

from core.shared.creation import Background, Brief, ContentType, Depth, Pace, TimeOfDay, Tone
from core.shared.errors import InvalidArgument
from services.gen.waqup.common.v1 import creation_pb2 as common

CONTENT_TYPE_TO_PB = {ContentType.AFFIRMATION: common.CONTENT_TYPE_AFFIRMATION,
                      ContentType.GUIDED_MEDITATION: common.CONTENT_TYPE_GUIDED_MEDITATION,
                      ContentType.RITUAL: common.CONTENT_TYPE_RITUAL}
CONTENT_TYPE_FROM_PB = {v: k for k, v in CONTENT_TYPE_TO_PB.items()}
DEPTH_TO_PB = {Depth.SHALLOW: common.DEPTH_SHALLOW, Depth.MEDIUM: common.DEPTH_MEDIUM,
               Depth.DEEP: common.DEPTH_DEEP}
DEPTH_FROM_PB = {v: k for k, v in DEPTH_TO_PB.items()}
TIME_TO_PB = {TimeOfDay.MORNING: common.TIME_OF_DAY_MORNING,
              TimeOfDay.MIDDAY: common.TIME_OF_DAY_MIDDAY,
              TimeOfDay.EVENING: common.TIME_OF_DAY_EVENING,
              TimeOfDay.NIGHT: common.TIME_OF_DAY_NIGHT}
TIME_FROM_PB = {v: k for k, v in TIME_TO_PB.items()}


def brief_pb(brief: Brief) -> common.Brief:
    return common.Brief(
        content_type=CONTENT_TYPE_TO_PB[brief.content_type], intent=brief.intent,
        situation=brief.situation,
        time_of_day=TIME_TO_PB.get(brief.time_of_day, 0) if brief.time_of_day else 0,
        target_minutes=round(brief.target_minutes), focus=brief.focus, voice=brief.voice,
        pace=brief.pace.value if brief.pace else "", tone=brief.tone.value if brief.tone else "",
        display_name=brief.name, background=brief.background.value if brief.background else "")


def brief_from_pb(message: common.Brief) -> Brief:
    if message.content_type not in CONTENT_TYPE_FROM_PB:
        raise InvalidArgument("brief.content_type is required", reason="INVALID_ARGUMENT",
                              metadata={"field": "brief.content_type"})
    try:
        pace = Pace(message.pace) if message.pace else None
        tone = Tone(message.tone) if message.tone else None
        background = Background(message.background) if message.background else None
    except ValueError:
        raise InvalidArgument("brief.pace, brief.tone or brief.background is not a known value",
                              reason="INVALID_ARGUMENT") from None
    return Brief(content_type=CONTENT_TYPE_FROM_PB[message.content_type],
                 intent=message.intent, situation=message.situation,
                 time_of_day=TIME_FROM_PB.get(message.time_of_day),
                 target_minutes=float(message.target_minutes), focus=message.focus,
                 voice=message.voice, pace=pace, tone=tone, name=message.display_name,
                 background=background)


def struct(data: dict[str, object] | None) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    if data:
        json_format.ParseDict(data, message)
    return message


def struct_dict(message: struct_pb2.Struct) -> dict[str, object]:
    return json_format.MessageToDict(message)


def resource_id(name: str, collection: str, field: str = "name", suffix: str = "") -> uuid.UUID:
    """The id of `<collection>/{id}<suffix>`; INVALID_ARGUMENT otherwise."""
    prefix = f"{collection}/"
    if name.startswith(prefix) and name.endswith(suffix):
        try:
            return uuid.UUID(name[len(prefix):len(name) - len(suffix)])
        except ValueError:
            pass
    raise InvalidArgument(f"{field} must be {collection}/{{id}}{suffix}", reason="INVALID_NAME",
                          metadata={"field": field})
