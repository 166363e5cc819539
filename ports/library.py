"""Ports of the library context: its items, and the other contexts a
creation needs (credits, text generation, audio rendering)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from core.library.model import (
    AudioDetails,
    ContentItem,
    Folder,
    ItemState,
    ListeningPreferences,
    Practice,
    Share,
)
from core.shared.audio import Silence
from core.shared.creation import Brief, ContentType, GeneratedText, Script
from ports.common import Outbox, ProcessedEvents, UnitOfWork


class ContentItems(Protocol):
    async def add(self, item: ContentItem) -> None:
        """Insert. Raises core.shared.errors.AlreadyExists when an item with the
        same `request_id` exists (a concurrent retry of the same creation)."""
        ...

    async def get(self, content_id: uuid.UUID) -> ContentItem | None: ...

    async def get_for_update(self, content_id: uuid.UUID) -> ContentItem | None:
        """The item, locked until the unit of work ends (SELECT ... FOR UPDATE)."""
        ...

    async def get_by_request(self, request_id: str) -> ContentItem | None: ...

    async def save(self, item: ContentItem) -> None: ...

    async def delete(self, content_id: uuid.UUID) -> None: ...

    async def list_for_user(self, user_id: uuid.UUID, *, content_type: ContentType | None,
                            before: uuid.UUID | None, limit: int, tag: str | None = None,
                            folder_id: uuid.UUID | None = None,
                            ) -> list[ContentItem]:
        """Newest first (ids are time-ordered), those older than `before`;
        only those with `tag`, or in `folder_id`, when given."""
        ...

    async def tag_counts(self, user_id: uuid.UUID) -> dict[str, int]:
        """Every tag of the person's items and how many carry it."""
        ...

    async def with_tag(self, user_id: uuid.UUID, tag: str) -> list[ContentItem]:
        """The person's items carrying `tag`, locked for update."""
        ...

    async def folder_counts(self, user_id: uuid.UUID) -> dict[uuid.UUID, int]: ...

    async def clear_folder(self, folder_id: uuid.UUID) -> None:
        """Take every item out of the folder."""
        ...

    async def count_created_since(self, user_id: uuid.UUID, since: datetime) -> int: ...

    async def list_stale(self, states: tuple[ItemState, ...], updated_before: datetime,
                         limit: int) -> list[ContentItem]:
        """Items in one of `states` untouched since `updated_before`, oldest first."""
        ...


class AudioDetailsStore(Protocol):
    """The report and captions of each item's playable version."""

    async def put(self, details: AudioDetails) -> None:
        """Insert or replace the item's details."""
        ...

    async def get(self, content_id: uuid.UUID) -> AudioDetails | None: ...


class Practices(Protocol):
    async def add(self, practice: Practice) -> None: ...

    async def get(self, practice_id: uuid.UUID) -> Practice | None: ...

    async def get_for_update(self, practice_id: uuid.UUID) -> Practice | None: ...

    async def save(self, practice: Practice) -> None: ...

    async def list_for_user(self, user_id: uuid.UUID, *, before: uuid.UUID | None,
                            limit: int) -> list[Practice]:
        """Newest first, those older than `before`."""
        ...

    async def all_for_user(self, user_id: uuid.UUID) -> list[Practice]: ...

    async def latest_moods(self, user_id: uuid.UUID, limit: int) -> list[Practice]:
        """The person's latest practices with a mood check-in, newest first."""
        ...


class Folders(Protocol):
    async def add(self, folder: Folder) -> None:
        """Raises AlreadyExists when the person has a folder of that name
        (case-insensitive)."""
        ...

    async def get(self, folder_id: uuid.UUID) -> Folder | None: ...

    async def save(self, folder: Folder) -> None:
        """Raises AlreadyExists like `add`."""
        ...

    async def delete(self, folder_id: uuid.UUID) -> None: ...

    async def list_for_user(self, user_id: uuid.UUID) -> list[Folder]:
        """By display name."""
        ...


class Shares(Protocol):
    async def add(self, share: Share) -> None: ...

    async def get(self, share_id: uuid.UUID) -> Share | None: ...

    async def save(self, share: Share) -> None: ...

    async def list_for_content(self, content_id: uuid.UUID) -> list[Share]:
        """Newest first."""
        ...


class Preferences(Protocol):
    async def get(self, user_id: uuid.UUID) -> ListeningPreferences | None: ...

    async def put(self, preferences: ListeningPreferences) -> None: ...


class LibraryUnitOfWork(UnitOfWork, Protocol):
    items: ContentItems
    details: AudioDetailsStore
    practices: Practices
    folders: Folders
    shares: Shares
    preferences: Preferences
    outbox: Outbox
    processed: ProcessedEvents


class LibraryUnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> LibraryUnitOfWork: ...


class CreditsPort(Protocol):
    """The credits context's ledger, idempotent by request id."""

    async def reserve(self, request_id: str, user_id: uuid.UUID, amount: int,
                      reason: str) -> uuid.UUID:
        """The hold's id. Raises FailedPrecondition(INSUFFICIENT_CREDITS)."""
        ...

    async def commit(self, request_id: str, user_id: uuid.UUID, hold_id: uuid.UUID) -> None:
        """Raises FailedPrecondition(RESERVATION_NOT_ACTIVE) for a released hold."""
        ...

    async def release(self, request_id: str, user_id: uuid.UUID, hold_id: uuid.UUID) -> None: ...


class TextWriter(Protocol):
    """The content context's text generation."""

    async def generate(self, user_id: uuid.UUID, request_id: str, brief: Brief,
                       history: list[str]) -> GeneratedText:
        """Raises core.shared.errors.Unavailable(TEXT_GENERATION_FAILED) when the
        text could not be written; any other exception is transient."""
        ...


class RenderRequests(Protocol):
    """Asks the audio context to render a script (a job on its work queue)."""

    async def request(self, content_id: uuid.UUID, user_id: uuid.UUID, version: int,
                      script: Script, voice: str, rate: float, background: str) -> None: ...


class TextJobs(Protocol):
    """Queues the text step of a creation (idempotent by content id)."""

    async def enqueue(self, content_id: uuid.UUID) -> None: ...


class AudioUrls(Protocol):
    """Signed URLs and deletion of stored audio (an ObjectStore)."""

    async def signed_url(self, key: str, expires_in_seconds: int,
                         download_name: str | None = None) -> str:
        """A URL reading the object until it expires; with `download_name`,
        answered as an attachment of that file name."""
        ...

    async def delete_prefix(self, prefix: str) -> int: ...

    async def get(self, key: str) -> bytes | None:
        """The object's bytes; None when there is none."""
        ...

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...


@dataclass(frozen=True)
class ImportedAudio:
    """What an uploaded recording measures."""

    duration_ms: int
    integrated_lufs: float
    sample_peak_dbfs: float
    true_peak_dbtp: float
    silences: tuple[Silence, ...]
    waveform: tuple[float, ...]


@dataclass(frozen=True)
class ImportedRendition:
    #: AudioFormat value (`mp3`, `ogg_opus`).
    format: str
    extension: str
    mime_type: str
    data: bytes


class AudioImport(Protocol):
    """Measures and encodes recordings people upload (audio adapters)."""

    async def analyze(self, data: bytes, max_seconds: float) -> ImportedAudio | None:
        """None when `data` is not decodable audio. A file longer than
        `max_seconds` may be measured by its length only."""
        ...

    async def encode(self, data: bytes) -> list[ImportedRendition]:
        """Every rendition of the recording (MP3, Ogg Opus)."""
        ...


class MarketAccess(Protocol):
    """The marketplace (catalog), as the library sees it: whether a person
    may play an item of someone else's."""

    async def check(self, user_id: uuid.UUID, content_id: uuid.UUID) -> str:
        """`allowed`; `not_owned` (on sale in a pack the person has not
        bought); or `not_listed` (in no pack: it does not exist to them)."""
        ...
