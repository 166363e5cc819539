"""gRPC servicers of the identity context: protobuf <-> core."""

from __future__ import annotations

import uuid

import grpc

from core.identity.model import Pace, Preferences, Tone, UserProfile
from core.identity.service import AuthResult, IdentityService
from core.shared.auth import resolve_user
from services.api.context import current_principal, current_request_id
from services.api.convert import timestamp, user_segment
from services.gen.waqup.identity.v1 import identity_pb2 as pb
from services.gen.waqup.identity.v1 import identity_pb2_grpc as rpc

_PACE_TO_PB = {Pace.UNSPECIFIED: pb.PACE_UNSPECIFIED, Pace.SLOW: pb.PACE_SLOW,
               Pace.MEDIUM: pb.PACE_MEDIUM, Pace.FAST: pb.PACE_FAST}
_TONE_TO_PB = {Tone.UNSPECIFIED: pb.TONE_UNSPECIFIED, Tone.CALM: pb.TONE_CALM,
               Tone.WARM: pb.TONE_WARM, Tone.ENERGETIC: pb.TONE_ENERGETIC,
               Tone.NEUTRAL: pb.TONE_NEUTRAL}
_PACE_FROM_PB = {v: k for k, v in _PACE_TO_PB.items()}
_TONE_FROM_PB = {v: k for k, v in _TONE_TO_PB.items()}


def preferences_pb(user_id: uuid.UUID, prefs: Preferences) -> pb.Preferences:
    return pb.Preferences(name=f"users/{user_id}/preferences", voice=prefs.voice,
                          pace=_PACE_TO_PB[prefs.pace], tone=_TONE_TO_PB[prefs.tone])


def user_pb(profile: UserProfile) -> pb.User:
    return pb.User(name=f"users/{profile.id}", email=profile.email,
                   display_name=profile.display_name, roles=list(profile.roles),
                   preferences=preferences_pb(profile.id, profile.preferences),
                   create_time=timestamp(profile.created_at),
                   update_time=timestamp(profile.updated_at))


def _session(result: AuthResult) -> dict[str, object]:
    return {"access_token": result.access_token, "refresh_token": result.refresh_token,
            "expires_in": result.expires_in, "token_type": "Bearer",
            "user": user_pb(result.user)}


class AuthServicer(rpc.AuthServiceServicer):
    def __init__(self, identity: IdentityService) -> None:
        self._identity = identity

    async def Register(self, request: pb.RegisterRequest,
                       context: grpc.aio.ServicerContext) -> pb.RegisterResponse:
        result = await self._identity.register(request.email, request.password,
                                               request.display_name, current_request_id())
        return pb.RegisterResponse(**_session(result))

    async def Login(self, request: pb.LoginRequest,
                    context: grpc.aio.ServicerContext) -> pb.LoginResponse:
        result = await self._identity.login(request.email, request.password,
                                            current_request_id())
        return pb.LoginResponse(**_session(result))

    async def Refresh(self, request: pb.RefreshRequest,
                      context: grpc.aio.ServicerContext) -> pb.RefreshResponse:
        result = await self._identity.refresh(request.refresh_token, current_request_id())
        return pb.RefreshResponse(**_session(result))

    async def Logout(self, request: pb.LogoutRequest,
                     context: grpc.aio.ServicerContext) -> pb.LogoutResponse:
        await self._identity.logout(request.refresh_token, current_request_id())
        return pb.LogoutResponse()

    async def GetJwks(self, request: pb.GetJwksRequest,
                      context: grpc.aio.ServicerContext) -> pb.Jwks:
        return pb.Jwks(keys=[pb.Jwk(**key) for key in self._identity.jwks()])


class UserServicer(rpc.UserServiceServicer):
    def __init__(self, identity: IdentityService) -> None:
        self._identity = identity

    async def GetUser(self, request: pb.GetUserRequest,
                      context: grpc.aio.ServicerContext) -> pb.User:
        user_id = resolve_user(current_principal(), user_segment(request.name))
        return user_pb(await self._identity.get_profile(user_id))

    async def UpdatePreferences(self, request: pb.UpdatePreferencesRequest,
                                context: grpc.aio.ServicerContext) -> pb.Preferences:
        user_id = resolve_user(current_principal(),
                               user_segment(request.preferences.name, suffix="/preferences"))
        sent = request.preferences
        if request.HasField("update_mask") and request.update_mask.paths:
            fields = frozenset(request.update_mask.paths)
        else:  # AIP-134: no mask means every field that is set
            fields = frozenset(f.name for f, _ in sent.ListFields()) - {"name"}
        changes = Preferences(voice=sent.voice, pace=_PACE_FROM_PB[sent.pace],
                              tone=_TONE_FROM_PB[sent.tone])
        prefs = await self._identity.update_preferences(user_id, changes, fields)
        return preferences_pb(user_id, prefs)
