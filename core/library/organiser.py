"""How a person organises and shares their library: folders, tags, share
links and their listening preferences. Everything is the owner's alone:
another person's folder or share is NOT_FOUND, like one that does not exist."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from core.library.model import Folder, ListeningPreferences, Share
from core.library.service import normalise_tags
from core.shared.creation import Background
from core.shared.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from core.shared.ids import uuid7

if TYPE_CHECKING:
    from core.library.model import ContentItem
    from ports.common import Clock
    from ports.library import LibraryUnitOfWork, LibraryUnitOfWorkFactory

MAX_FOLDER_NAME = 60
MAX_FOLDERS = 200
DEFAULT_SHARE_TTL = timedelta(days=7)
MAX_SHARE_TTL = timedelta(days=30)
MIN_SHARE_TTL = timedelta(minutes=1)


class FolderExists(AlreadyExists):
    reason = "FOLDER_EXISTS"


def _folder_name(name: str) -> str:
    clean = " ".join(name.split())
    if not clean or len(clean) > MAX_FOLDER_NAME or any(ord(c) < 32 for c in name):
        raise InvalidArgument(f"a folder name is 1 to {MAX_FOLDER_NAME} printable characters",
                              reason="INVALID_FOLDER_NAME", metadata={"field": "display_name"})
    return clean


def _tag(tag: str) -> str:
    clean = normalise_tags([tag])
    if not clean or len(clean[0]) > 40:
        raise InvalidArgument("a tag is 1 to 40 characters", reason="INVALID_TAG",
                              metadata={"field": "tag"})
    return clean[0]


def background(value: str) -> Background | None:
    """A Background from its name ("" = None); INVALID_ARGUMENT otherwise."""
    if not value:
        return None
    try:
        return Background(value)
    except ValueError:
        names = ", ".join(b.value for b in Background)
        raise InvalidArgument(f"background must be one of {names}",
                              reason="INVALID_BACKGROUND",
                              metadata={"field": "background"}) from None


class Organiser:
    def __init__(self, uow: LibraryUnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    # --- folders ------------------------------------------------------------------

    async def create_folder(self, user_id: uuid.UUID, display_name: str) -> Folder:
        folder = Folder(id=uuid7(), user_id=user_id, display_name=_folder_name(display_name),
                        created_at=self._clock.now())
        async with self._uow() as uow:
            if len(await uow.folders.list_for_user(user_id)) >= MAX_FOLDERS:
                raise FailedPrecondition(f"at most {MAX_FOLDERS} folders",
                                         reason="TOO_MANY_FOLDERS")
            try:
                await uow.folders.add(folder)
            except AlreadyExists:
                raise FolderExists("you have a folder of that name") from None
            await uow.commit()
        return folder

    async def folders(self, user_id: uuid.UUID) -> list[Folder]:
        async with self._uow(read_only=True) as uow:
            found = await uow.folders.list_for_user(user_id)
            counts = await uow.items.folder_counts(user_id)
        for folder in found:
            folder.item_count = counts.get(folder.id, 0)
        return found

    async def rename_folder(self, user_id: uuid.UUID, folder_id: uuid.UUID,
                            display_name: str) -> Folder:
        name = _folder_name(display_name)
        async with self._uow() as uow:
            folder = await self._own_folder(uow, user_id, folder_id)
            folder.display_name = name
            try:
                await uow.folders.save(folder)
            except AlreadyExists:
                raise FolderExists("you have a folder of that name") from None
            folder.item_count = (await uow.items.folder_counts(user_id)).get(folder.id, 0)
            await uow.commit()
        return folder

    async def delete_folder(self, user_id: uuid.UUID, folder_id: uuid.UUID) -> None:
        """The folder goes; its items stay, in no folder."""
        async with self._uow() as uow:
            await self._own_folder(uow, user_id, folder_id)
            await uow.items.clear_folder(folder_id)
            await uow.folders.delete(folder_id)
            await uow.commit()

    @staticmethod
    async def _own_folder(uow: LibraryUnitOfWork, user_id: uuid.UUID,
                          folder_id: uuid.UUID) -> Folder:
        folder = await uow.folders.get(folder_id)
        if folder is None or folder.user_id != user_id:
            raise NotFound("no such folder", reason="FOLDER_NOT_FOUND")
        return folder

    # --- tags ---------------------------------------------------------------------

    async def tags(self, user_id: uuid.UUID) -> dict[str, int]:
        async with self._uow(read_only=True) as uow:
            return dict(sorted((await uow.items.tag_counts(user_id)).items(),
                               key=lambda kv: kv[0].casefold()))

    async def rename_tag(self, user_id: uuid.UUID, tag: str, new_tag: str) -> dict[str, int]:
        old, new = _tag(tag), _tag(new_tag)
        await self._retag(user_id, old, lambda tags: [new if t == old else t for t in tags])
        return await self.tags(user_id)

    async def delete_tag(self, user_id: uuid.UUID, tag: str) -> dict[str, int]:
        old = _tag(tag)
        await self._retag(user_id, old, lambda tags: [t for t in tags if t != old])
        return await self.tags(user_id)

    async def _retag(self, user_id: uuid.UUID, tag: str,
                     change: Callable[[list[str]], list[str]]) -> None:
        async with self._uow() as uow:
            items: list[ContentItem] = await uow.items.with_tag(user_id, tag)
            if not items:
                raise NotFound("no item has this tag", reason="TAG_NOT_FOUND")
            for item in items:
                item.tags = normalise_tags(change(item.tags))
                await uow.items.save(item)
            await uow.commit()

    # --- shares -------------------------------------------------------------------

    async def create_share(self, user_id: uuid.UUID, content_id: uuid.UUID,
                           ttl: timedelta | None = None) -> Share:
        ttl = ttl or DEFAULT_SHARE_TTL
        if not MIN_SHARE_TTL <= ttl <= MAX_SHARE_TTL:
            raise InvalidArgument("a share lasts from a minute to 30 days",
                                  reason="INVALID_TTL", metadata={"field": "ttl"})
        now = self._clock.now()
        async with self._uow() as uow:
            item = await uow.items.get(content_id)
            if item is None or item.user_id != user_id:
                raise NotFound("no such content", reason="CONTENT_NOT_FOUND")
            if not item.playable:
                raise FailedPrecondition("only an item with audio can be shared",
                                         reason="AUDIO_NOT_READY")
            # A random id (not time-ordered): the link must not be guessable
            # from another one.
            share = Share(id=uuid.uuid4(), user_id=user_id, content_id=content_id,
                          created_at=now, expires_at=now + ttl)
            await uow.shares.add(share)
            await uow.commit()
        return share

    async def shares(self, user_id: uuid.UUID, content_id: uuid.UUID) -> list[Share]:
        async with self._uow(read_only=True) as uow:
            item = await uow.items.get(content_id)
            if item is None or item.user_id != user_id:
                raise NotFound("no such content", reason="CONTENT_NOT_FOUND")
            return await uow.shares.list_for_content(content_id)

    async def revoke_share(self, user_id: uuid.UUID, share_id: uuid.UUID) -> None:
        """Revoked at once; revoking again is a no-op."""
        async with self._uow() as uow:
            share = await uow.shares.get(share_id)
            if share is None or share.user_id != user_id:
                raise _share_not_found()
            if share.revoked_at is None:
                share.revoked_at = self._clock.now()
                await uow.shares.save(share)
            await uow.commit()

    async def open_share(self, share_id: uuid.UUID) -> tuple[Share, ContentItem]:
        """What a share link's page shows: NOT_FOUND for an unknown link,
        FAILED_PRECONDITION(SHARE_ENDED) for a revoked or expired one."""
        async with self._uow(read_only=True) as uow:
            share = await uow.shares.get(share_id)
            item = await uow.items.get(share.content_id) if share else None
        if share is None or item is None:
            raise _share_not_found()
        if not share.usable_at(self._clock.now()) or not item.playable:
            raise FailedPrecondition("this link has ended", reason="SHARE_ENDED")
        return share, item

    # --- preferences --------------------------------------------------------------

    async def preferences(self, user_id: uuid.UUID) -> ListeningPreferences:
        async with self._uow(read_only=True) as uow:
            return await uow.preferences.get(user_id) or ListeningPreferences(user_id)

    async def update_preferences(self, user_id: uuid.UUID, *, voice: str | None,
                                 background_name: str | None) -> ListeningPreferences:
        async with self._uow() as uow:
            prefs = await uow.preferences.get(user_id) or ListeningPreferences(user_id)
            if voice is not None:
                prefs.voice = voice.strip()[:64]
            if background_name is not None:
                bed = background(background_name)
                prefs.background = bed.value if bed else ""
            await uow.preferences.put(prefs)
            await uow.commit()
        return prefs


def _share_not_found() -> NotFound:
    return NotFound("no such share", reason="SHARE_NOT_FOUND")


__all__ = ["Organiser", "background"]
