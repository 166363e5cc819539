"""Object storage on the local file system (embedded mode) and the signed media
URLs a local HTTP server checks before streaming a file."""

from adapters.fs.object_store import FileObjectStore, check_key, check_prefix
from adapters.fs.signing import UrlSigner

__all__ = ["FileObjectStore", "UrlSigner", "check_key", "check_prefix"]
