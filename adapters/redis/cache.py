"""ports.common.Cache on Redis. Short timeouts and a single retry: a dead Redis
fails a cache call fast, and callers fall back to the database."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError


def redact_url(url: str) -> str:
    """`url` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


class RedisCache:
    def __init__(self, url: str, *, key_prefix: str = "", socket_timeout: float = 0.5,
                 connect_timeout: float = 0.5) -> None:
        self._url = redact_url(url)
        self._prefix = key_prefix
        self._client = redis.from_url(
            url, decode_responses=False, socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout, retry=Retry(NoBackoff(), 1))

    async def ping(self) -> None:
        """For startup checks: raises RuntimeError when Redis does not answer."""
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise RuntimeError(f"redis unreachable at {self._url}: {exc}") from exc

    async def get(self, key: str) -> bytes | None:
        return await self._client.get(self._prefix + key)

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        await self._client.set(self._prefix + key, value, ex=ttl_seconds)

    async def delete(self, key: str) -> None:
        await self._client.delete(self._prefix + key)

    async def close(self) -> None:
        await self._client.aclose()
