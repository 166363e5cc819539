"""gRPC servicers of the library context: protobuf <-> core."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
from google.api import httpbody_pb2
from google.protobuf import empty_pb2

from core.library.model import (
    AudioDetails,
    AudioFormat,
    ContentItem,
    Folder,
    ItemState,
    ListeningPreferences,
    Mood,
    Practice,
    PracticeState,
    Share,
)
from core.library.organiser import Organiser, background
from core.library.practice import PracticeService
from core.library.service import UNCHANGED, LibraryService
from core.library.stats import DayActivity
from core.shared.audio import webvtt
from core.shared.auth import resolve_user
from core.shared.creation import ContentType
from core.shared.errors import InvalidArgument
from services.api.audio import encode_measurement, encode_silence
from services.api.context import current_principal
from services.api.convert import duration, timestamp, update_paths, user_segment
from services.api.creation import (
    CONTENT_TYPE_FROM_PB,
    CONTENT_TYPE_TO_PB,
    DEPTH_TO_PB,
    brief_from_pb,
    resource_id,
    struct,
)
from services.api.filters import filter_terms
from services.api.pagination import PageTokens
from services.contexts.library.share_page import ShareLinks
from services.gen.waqup.common.v1 import creation_pb2 as common
from services.gen.waqup.library.v1 import library_pb2 as pb
from services.gen.waqup.library.v1 import library_pb2_grpc as rpc

_STATE_TO_PB = {ItemState.GENERATING_TEXT: pb.CONTENT_STATE_GENERATING_TEXT,
                ItemState.RENDERING_AUDIO: pb.CONTENT_STATE_RENDERING_AUDIO,
                ItemState.READY: pb.CONTENT_STATE_READY,
                ItemState.FAILED: pb.CONTENT_STATE_FAILED}
_PRACTICE_STATE_TO_PB = {PracticeState.STARTED: pb.PRACTICE_STATE_STARTED,
                         PracticeState.COMPLETED: pb.PRACTICE_STATE_COMPLETED,
                         PracticeState.ABANDONED: pb.PRACTICE_STATE_ABANDONED}
_FORMAT_FROM_PB = {pb.FORMAT_UNSPECIFIED: AudioFormat.MP3, pb.FORMAT_MP3: AudioFormat.MP3,
                   pb.FORMAT_OGG_OPUS: AudioFormat.OGG_OPUS}
_FORMAT_TO_PB = {AudioFormat.MP3: pb.FORMAT_MP3, AudioFormat.OGG_OPUS: pb.FORMAT_OGG_OPUS}
#: AIP-160 (services/api/filters.py): content_type (a ContentType name), tag
#: or folder.
_FILTER_HELP = ('filter must be terms `content_type = CONTENT_TYPE_...`, `tag = "..."`, '
                '`folder = "folders/..."` joined by AND')


def content_pb(item: ContentItem) -> pb.Content:
    return pb.Content(
        name=f"contents/{item.id}", content_type=CONTENT_TYPE_TO_PB[item.content_type],
        title=item.title, text=item.text, structure=struct(item.structure),
        depth=DEPTH_TO_PB[item.depth] if item.depth else 0, state=_STATE_TO_PB[item.state],
        failure_reason=item.failure_reason,
        audio_duration=duration(item.audio_duration_ms) if item.audio_duration_ms else None,
        voice=item.voice, tags=item.tags, cost=item.cost, play_count=item.play_count,
        conversation=f"conversations/{item.conversation_id}" if item.conversation_id else "",
        create_time=timestamp(item.created_at), update_time=timestamp(item.updated_at),
        folder=f"folders/{item.folder_id}" if item.folder_id else "",
        background=item.background, version=item.audio_version,
        last_play_time=timestamp(item.last_played_at) if item.last_played_at else None,
        render_failure_reason=item.render_failure_reason)


@dataclass(frozen=True)
class ListFilter:
    content_type: ContentType | None = None
    tag: str | None = None
    folder_id: uuid.UUID | None = None

    @property
    def key(self) -> str:
        """What a page token is bound to."""
        return f"{self.content_type or ''}:{self.tag or ''}:{self.folder_id or ''}"


def parse_filter(text: str) -> ListFilter:
    found = filter_terms(text, ("content_type", "tag", "folder"), _FILTER_HELP)
    content_type = None
    if "content_type" in found:
        name = found["content_type"]
        value = common.ContentType.Value(name) if name in common.ContentType.keys() else None
        if value not in CONTENT_TYPE_FROM_PB:
            raise InvalidArgument(_FILTER_HELP, reason="INVALID_FILTER",
                                  metadata={"field": "filter"})
        content_type = CONTENT_TYPE_FROM_PB[value]
    folder_id = resource_id(found["folder"], "folders", "filter") if "folder" in found else None
    tag = found.get("tag")
    if tag is not None and not 1 <= len(tag) <= 40:
        raise InvalidArgument("a tag is 1 to 40 characters", reason="INVALID_FILTER",
                              metadata={"field": "filter"})
    return ListFilter(content_type, tag, folder_id)


def _me(parent: str) -> uuid.UUID:
    return resolve_user(current_principal(), user_segment(parent))


def _mood_from_pb(message: pb.Mood, given: bool) -> Mood | None:
    return Mood(message.score, message.words) if given else None


def _mood_pb(mood: Mood | None) -> pb.Mood | None:
    return pb.Mood(score=mood.score, words=mood.words) if mood else None


def practice_pb(p: Practice) -> pb.Practice:
    return pb.Practice(
        name=f"practices/{p.id}", content=f"contents/{p.content_id}",
        content_type=CONTENT_TYPE_TO_PB[p.content_type], state=_PRACTICE_STATE_TO_PB[p.state],
        start_time=timestamp(p.started_at),
        complete_time=timestamp(p.completed_at) if p.completed_at else None,
        listened_duration=duration(round(p.listened_seconds * 1000)),
        local_date=p.local_date.isoformat(), device=p.device, context=p.context,
        mood_before=_mood_pb(p.mood_before), mood_after=_mood_pb(p.mood_after))


def _day_pb(day: DayActivity) -> pb.DayActivity:
    return pb.DayActivity(date=day.date.isoformat(), completed=day.completed,
                          minutes=day.minutes)


def folder_pb(folder: Folder) -> pb.Folder:
    return pb.Folder(name=f"folders/{folder.id}", display_name=folder.display_name,
                     item_count=folder.item_count, create_time=timestamp(folder.created_at))


def _measurement_pb(details: AudioDetails,
                    fmt: AudioFormat) -> common.AudioMeasurement | None:
    found = details.measurements.get(fmt.value)
    return encode_measurement(found) if found else None



class LibraryServicer(rpc.LibraryServiceServicer):
    def __init__(self, library: LibraryService, practice: PracticeService,
                 organiser: Organiser, page_tokens: PageTokens, links: ShareLinks) -> None:
        self._library = library
        self._practice = practice
        self._organiser = organiser
        self._pages = page_tokens
        self._links = links

    async def ListContents(self, request: pb.ListContentsRequest,
                           context: grpc.aio.ServicerContext) -> pb.ListContentsResponse:
        user_id = _me(request.parent)
        wanted = parse_filter(request.filter)
        listing = f"library.ListContents:{user_id}:{wanted.key}"
        before = self._pages.read_uuid(listing, request.page_token, "before")
        items, after = await self._library.list(user_id, wanted.content_type,
                                                request.page_size, before, tag=wanted.tag,
                                                folder_id=wanted.folder_id)
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
        given = request.content
        paths = update_paths(request.update_mask.paths, {"title", "tags", "folder"},
                      {"title": bool(given.title), "tags": bool(given.tags),
                       "folder": bool(given.folder)})
        folder: Any = UNCHANGED
        if "folder" in paths:
            folder = (resource_id(given.folder, "folders", "content.folder") if given.folder
                      else None)
        item = await self._library.update(
            user_id, content_id, title=given.title if "title" in paths else None,
            tags=list(given.tags) if "tags" in paths else None, folder_id=folder)
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
        found = await self._library.playback(user_id, content_id,
                                             _FORMAT_FROM_PB[request.format])
        return pb.Playback(name=request.name, uri=found.url,
                           expire_time=timestamp(found.expires_at), mime_type=found.mime_type,
                           duration=duration(found.duration_ms),
                           format=_FORMAT_TO_PB[found.format], preview=found.preview)

    async def GetDownload(self, request: pb.GetDownloadRequest,
                          context: grpc.aio.ServicerContext) -> pb.Download:
        user_id = current_principal().user_id
        content_id = resource_id(request.name, "contents", suffix="/download")
        found = await self._library.download(user_id, content_id,
                                             _FORMAT_FROM_PB[request.format])
        return pb.Download(name=request.name, uri=found.url,
                           expire_time=timestamp(found.expires_at), filename=found.filename,
                           size_bytes=found.size)

    async def GetCaptions(self, request: pb.GetCaptionsRequest,
                          context: grpc.aio.ServicerContext) -> httpbody_pb2.HttpBody:
        user_id = current_principal().user_id
        content_id = resource_id(request.name, "contents", suffix="/captions")
        _, details = await self._library.details(user_id, content_id)
        return httpbody_pb2.HttpBody(content_type="text/vtt; charset=utf-8",
                                     data=webvtt(details.captions).encode())

    async def GetAudioReport(self, request: pb.GetAudioReportRequest,
                             context: grpc.aio.ServicerContext) -> pb.AudioReport:
        user_id = current_principal().user_id
        content_id = resource_id(request.name, "contents", suffix="/audioReport")
        _, details = await self._library.details(user_id, content_id)
        return pb.AudioReport(
            name=request.name, version=details.version,
            measurement=_measurement_pb(details, AudioFormat.MP3),
            opus_measurement=_measurement_pb(details, AudioFormat.OGG_OPUS),
            silences=[encode_silence(s) for s in details.silences],
            waveform=details.waveform, background=details.background, voice=details.voice)

    async def RenderContent(self, request: pb.RenderContentRequest,
                            context: grpc.aio.ServicerContext) -> pb.Content:
        user_id = current_principal().user_id
        item = await self._library.rerender(
            user_id, resource_id(request.name, "contents"), request.request_id,
            voice=request.voice, background=background(request.background))
        return content_pb(item)

    # --- practice -------------------------------------------------------------------

    async def CreatePractice(self, request: pb.CreatePracticeRequest,
                             context: grpc.aio.ServicerContext) -> pb.Practice:
        user_id = current_principal().user_id
        given = request.practice
        practice = await self._practice.start(
            user_id, resource_id(request.parent, "contents", "parent"),
            time_zone=given.time_zone, device=given.device, context=given.context,
            mood_before=_mood_from_pb(given.mood_before, given.HasField("mood_before")))
        return practice_pb(practice)

    async def CompletePractice(self, request: pb.CompletePracticeRequest,
                               context: grpc.aio.ServicerContext) -> pb.Practice:
        user_id = current_principal().user_id
        practice = await self._practice.complete(
            user_id, resource_id(request.name, "practices"),
            request.listened_duration.ToMilliseconds() / 1000,
            _mood_from_pb(request.mood_after, request.HasField("mood_after")))
        return practice_pb(practice)

    async def GetPractice(self, request: pb.GetPracticeRequest,
                          context: grpc.aio.ServicerContext) -> pb.Practice:
        user_id = current_principal().user_id
        return practice_pb(await self._practice.get(user_id,
                                                    resource_id(request.name, "practices")))

    async def ListPractices(self, request: pb.ListPracticesRequest,
                            context: grpc.aio.ServicerContext) -> pb.ListPracticesResponse:
        user_id = _me(request.parent)
        listing = f"library.ListPractices:{user_id}"
        before = self._pages.read_uuid(listing, request.page_token, "before")
        found, after = await self._practice.list(user_id, request.page_size, before)
        token = self._pages.issue(listing, {"before": str(after)}) if after else ""
        return pb.ListPracticesResponse(practices=[practice_pb(p) for p in found],
                                        next_page_token=token)

    async def GetPracticeStats(self, request: pb.GetPracticeStatsRequest,
                               context: grpc.aio.ServicerContext) -> pb.PracticeStats:
        if not request.name.endswith("/practiceStats"):
            raise InvalidArgument("name must be users/me/practiceStats", reason="INVALID_NAME",
                                  metadata={"field": "name"})
        user_id = _me(request.name.removesuffix("/practiceStats"))
        stats, zone_used = await self._practice.stats(user_id, request.time_zone)
        return pb.PracticeStats(
            name=request.name, started=stats.started, completed=stats.completed,
            abandoned=stats.abandoned, minutes=stats.minutes,
            by_type=[pb.TypeStats(content_type=CONTENT_TYPE_TO_PB[t.content_type],
                                  completed=t.completed, minutes=t.minutes)
                     for t in stats.by_type],
            current_streak_days=stats.current_streak,
            longest_streak_days=stats.longest_streak,
            last_7_days=[_day_pb(d) for d in stats.last_7_days],
            last_30_days=[_day_pb(d) for d in stats.last_30_days],
            average_mood_before=stats.average_mood_before,
            average_mood_after=stats.average_mood_after,
            average_mood_change=stats.average_mood_change, mood_words=stats.mood_words,
            time_zone=zone_used)

    # --- folders and tags -----------------------------------------------------------

    async def CreateFolder(self, request: pb.CreateFolderRequest,
                           context: grpc.aio.ServicerContext) -> pb.Folder:
        user_id = _me(request.parent)
        return folder_pb(await self._organiser.create_folder(user_id,
                                                             request.folder.display_name))

    async def ListFolders(self, request: pb.ListFoldersRequest,
                          context: grpc.aio.ServicerContext) -> pb.ListFoldersResponse:
        user_id = _me(request.parent)
        return pb.ListFoldersResponse(folders=[folder_pb(f) for f in
                                               await self._organiser.folders(user_id)])

    async def UpdateFolder(self, request: pb.UpdateFolderRequest,
                           context: grpc.aio.ServicerContext) -> pb.Folder:
        user_id = current_principal().user_id
        folder_id = resource_id(request.folder.name, "folders", "folder.name")
        paths = update_paths(request.update_mask.paths, {"display_name"},
                      {"display_name": bool(request.folder.display_name)})
        if not paths:
            raise InvalidArgument("nothing to change: give display_name",
                                  reason="INVALID_UPDATE_MASK", metadata={"field": "update_mask"})
        return folder_pb(await self._organiser.rename_folder(user_id, folder_id,
                                                             request.folder.display_name))

    async def DeleteFolder(self, request: pb.DeleteFolderRequest,
                           context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        user_id = current_principal().user_id
        await self._organiser.delete_folder(user_id, resource_id(request.name, "folders"))
        return empty_pb2.Empty()

    @staticmethod
    def _tags_pb(tags: dict[str, int]) -> pb.ListTagsResponse:
        return pb.ListTagsResponse(tags=[pb.TagCount(tag=t, item_count=n)
                                         for t, n in tags.items()])

    async def ListTags(self, request: pb.ListTagsRequest,
                       context: grpc.aio.ServicerContext) -> pb.ListTagsResponse:
        return self._tags_pb(await self._organiser.tags(_me(request.parent)))

    async def RenameTag(self, request: pb.RenameTagRequest,
                        context: grpc.aio.ServicerContext) -> pb.ListTagsResponse:
        return self._tags_pb(await self._organiser.rename_tag(_me(request.parent), request.tag,
                                                              request.new_tag))

    async def DeleteTag(self, request: pb.DeleteTagRequest,
                        context: grpc.aio.ServicerContext) -> pb.ListTagsResponse:
        return self._tags_pb(await self._organiser.delete_tag(_me(request.parent),
                                                              request.tag))

    # --- shares and preferences -----------------------------------------------------

    def _share_pb(self, share: Share) -> pb.Share:
        return pb.Share(name=f"shares/{share.id}", content=f"contents/{share.content_id}",
                        uri=self._links.url(share.id), expire_time=timestamp(share.expires_at),
                        revoke_time=timestamp(share.revoked_at) if share.revoked_at else None,
                        create_time=timestamp(share.created_at))

    async def CreateShare(self, request: pb.CreateShareRequest,
                          context: grpc.aio.ServicerContext) -> pb.Share:
        user_id = current_principal().user_id
        ttl = (timedelta(milliseconds=request.share.ttl.ToMilliseconds())
               if request.share.HasField("ttl") else None)
        share = await self._organiser.create_share(
            user_id, resource_id(request.parent, "contents", "parent"), ttl)
        return self._share_pb(share)

    async def ListShares(self, request: pb.ListSharesRequest,
                         context: grpc.aio.ServicerContext) -> pb.ListSharesResponse:
        user_id = current_principal().user_id
        found = await self._organiser.shares(user_id,
                                             resource_id(request.parent, "contents", "parent"))
        return pb.ListSharesResponse(shares=[self._share_pb(s) for s in found])

    async def DeleteShare(self, request: pb.DeleteShareRequest,
                          context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        user_id = current_principal().user_id
        await self._organiser.revoke_share(user_id, resource_id(request.name, "shares"))
        return empty_pb2.Empty()

    @staticmethod
    def _preferences_pb(prefs: ListeningPreferences) -> pb.ListeningPreferences:
        return pb.ListeningPreferences(name="users/me/listeningPreferences", voice=prefs.voice,
                                       background=prefs.background)

    async def GetListeningPreferences(self, request: pb.GetListeningPreferencesRequest,
                                      context: grpc.aio.ServicerContext,
                                      ) -> pb.ListeningPreferences:
        user_id = _me(request.name.removesuffix("/listeningPreferences"))
        return self._preferences_pb(await self._organiser.preferences(user_id))

    async def UpdateListeningPreferences(self, request: pb.UpdateListeningPreferencesRequest,
                                         context: grpc.aio.ServicerContext,
                                         ) -> pb.ListeningPreferences:
        given = request.preferences
        user_id = _me(given.name.removesuffix("/listeningPreferences"))
        paths = update_paths(request.update_mask.paths, {"voice", "background"},
                      {"voice": bool(given.voice), "background": bool(given.background)})
        prefs = await self._organiser.update_preferences(
            user_id, voice=given.voice if "voice" in paths else None,
            background_name=given.background if "background" in paths else None)
        return self._preferences_pb(prefs)


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

    async def ImportAudio(self, request: pb.ImportAudioRequest,
                          context: grpc.aio.ServicerContext) -> pb.Content:
        content_type = CONTENT_TYPE_FROM_PB.get(request.content_type)
        if content_type is None:
            raise InvalidArgument("content_type must be a ContentType", reason="INVALID_ARGUMENT",
                                  metadata={"field": "content_type"})
        item = await self._library.import_audio(
            resource_id(request.parent, "users", "parent"), request.request_id,
            request.object_key, request.title, content_type)
        return content_pb(item)

    async def ListCreationTitles(self, request: pb.ListCreationTitlesRequest,
                                 context: grpc.aio.ServicerContext,
                                 ) -> pb.ListCreationTitlesResponse:
        user_id = resource_id(request.parent, "users", "parent")
        return pb.ListCreationTitlesResponse(
            titles=await self._library.titles(user_id, request.limit or 10))
