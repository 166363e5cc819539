"""ports.media.ObjectStore on the local file system.

An object with key `a/b/c.mp3` is the file `{root}/a/b/c.mp3`. Writes go to a
hidden temporary file next to the target, are flushed to disk and renamed over
it, so a reader sees the old object or the new one, never half of one. File
operations block, so they run in `asyncio.to_thread`.

The key rules (`check_key`) are shared with the S3 store so that both accept
the same keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.fs.signing import UrlSigner

#: Longest key accepted (S3 allows 1024 bytes of UTF-8).
MAX_KEY_BYTES = 1024


def _check_text(value: str, what: str) -> None:
    if "\\" in value:
        raise ValueError(f"{what} must not contain a backslash: {value!r}")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError(f"{what} must not contain NUL or other control characters: {value!r}")
    if value.startswith("/"):
        raise ValueError(f"{what} must be relative (no leading '/'): {value!r}")
    if len(value.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"{what} is longer than {MAX_KEY_BYTES} bytes")


def _check_segment(segment: str, what: str, value: str) -> None:
    if segment == "":
        raise ValueError(f"{what} has an empty segment: {value!r}")
    if segment.startswith("."):
        # "." and ".." would escape or alias; other dot-names are the fs store's
        # temporary files.
        raise ValueError(f"{what} segments must not start with '.': {value!r}")


def check_key(key: str) -> str:
    """`key` if it is a valid object key (`a/b/c.ext`), else ValueError.

    Refused: empty keys, absolute keys, empty segments (`a//b`, `a/`), segments
    starting with a dot (`..`, `.`, hidden names), backslashes, NUL and other
    control characters.
    """
    if not isinstance(key, str) or key == "":
        raise ValueError("an object key must be a non-empty string")
    _check_text(key, "object key")
    for segment in key.split("/"):
        _check_segment(segment, "object key", key)
    return key


def check_prefix(prefix: str) -> str:
    """`prefix` if it is a valid key prefix, else ValueError. A prefix is a plain
    string prefix of keys (`audio/u1/` or `audio/u1/c`); "" means every key.
    Every complete segment of it follows the key rules."""
    if not isinstance(prefix, str):
        raise ValueError("a key prefix must be a string")
    if prefix == "":
        return prefix
    _check_text(prefix, "key prefix")
    segments = prefix.split("/")
    for segment in segments[:-1]:
        _check_segment(segment, "key prefix", prefix)
    if segments[-1].startswith("."):
        raise ValueError(f"key prefix segments must not start with '.': {prefix!r}")
    return prefix


class FileObjectStore:
    def __init__(self, root: Path, signer: UrlSigner) -> None:
        self._root = Path(root).resolve()
        self._signer = signer

    @property
    def root(self) -> Path:
        return self._root

    @property
    def signer(self) -> UrlSigner:
        return self._signer

    def path_for(self, key: str) -> Path:
        """The file that holds `key` (which may not exist). ValueError for an
        invalid key. For the media server, after `signer.verify`."""
        path = self._root.joinpath(*check_key(key).split("/"))
        # Belt and braces: the key rules already keep paths inside the root.
        if not path.is_relative_to(self._root):
            raise ValueError(f"object key escapes the store: {key!r}")
        return path

    # -- writes ---------------------------------------------------------------

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key`, replacing any object there. The content
        type is not kept: the media server derives it from the extension."""
        path = self.path_for(key)
        await asyncio.to_thread(self._write, path, bytes(data))

    def _write(self, path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise ValueError(f"object key conflicts with an existing object: {path}") from exc
        if path.is_dir():
            raise ValueError(f"object key names a prefix of other objects: {path}")
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(temp, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix` (not "": that would
        be everything, refused with ValueError); how many were deleted."""
        if check_prefix(prefix) == "":
            raise ValueError("delete_prefix needs a non-empty prefix")
        return await asyncio.to_thread(self._delete_prefix, prefix)

    def _delete_prefix(self, prefix: str) -> int:
        deleted = 0
        for _key, path in self._walk(prefix):
            try:
                path.unlink()
                deleted += 1
            except FileNotFoundError:  # deleted concurrently
                continue
            self._prune_empty_dirs(path.parent)
        return deleted

    def _prune_empty_dirs(self, directory: Path) -> None:
        while directory != self._root and directory.is_relative_to(self._root):
            try:
                directory.rmdir()
            except OSError:  # not empty (or gone): stop
                return
            directory = directory.parent

    # -- reads ----------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        path = self.path_for(key)
        return await asyncio.to_thread(self._read, path)

    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    async def exists(self, key: str) -> bool:
        path = self.path_for(key)
        return await asyncio.to_thread(path.is_file)

    async def list_keys(self, prefix: str) -> list[str]:
        """Keys starting with `prefix`, sorted."""
        check_prefix(prefix)
        return await asyncio.to_thread(lambda: sorted(key for key, _ in self._walk(prefix)))

    def _walk(self, prefix: str) -> list[tuple[str, Path]]:
        """(key, path) of every object whose key starts with `prefix`."""
        # Only the directory named by the prefix's complete segments can hold
        # matching keys.
        directory_part = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self._root.joinpath(*directory_part.split("/")) if directory_part else self._root
        if not start.is_dir():
            return []
        found: list[tuple[str, Path]] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [name for name in dirnames if not name.startswith(".")]
            base = Path(dirpath)
            for name in filenames:
                if name.startswith("."):  # temporary files of writes in progress
                    continue
                path = base / name
                key = path.relative_to(self._root).as_posix()
                if key.startswith(prefix):
                    found.append((key, path))
        return found

    async def signed_url(self, key: str, expires_in: timedelta,
                         download_name: str | None = None) -> str:
        return self._signer.sign(check_key(key), expires_in, download_name or "")

    async def upload_url(self, key: str, expires_in: timedelta) -> str:
        return self._signer.sign_upload(check_key(key), expires_in)

    async def close(self) -> None:
        return None
