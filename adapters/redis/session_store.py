"""ports.conversation.SessionStore on Redis.

Each session is a hash at `{key_prefix}session:{id}` with two fields, `v` (the
version, decimal) and `d` (the document, bytes as given). `save` is one Lua
script, atomic on the server: it compares the stored version, writes both
fields and sets the time to live (EXPIRE) in one step, so of many savers racing
from the same version exactly one wins. Expiry is Redis's own clock.
"""

from __future__ import annotations

import uuid

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from adapters.redis.cache import redact_url

# KEYS[1] the session; ARGV: new version, document, ttl in seconds.
# Writes when the stored version is ARGV[1] - 1, or nothing is stored and ARGV[1] is 1.
_SAVE = """
local want = tonumber(ARGV[1])
local have = redis.call('HGET', KEYS[1], 'v')
if have then
  if tonumber(have) + 1 ~= want then return 0 end
elseif want ~= 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


class RedisSessionStore:
    """Implements ports.conversation.SessionStore on Redis (see the module docstring).

    url: `redis://host:6379/0` (with a password as `redis://:secret@host...`).
    key_prefix: put before every key, e.g. to share one Redis between deployments.
    """

    def __init__(self, url: str, *, key_prefix: str = "", socket_timeout: float = 2.0,
                 connect_timeout: float = 2.0) -> None:
        self._url = redact_url(url)
        self._prefix = key_prefix
        self._client = redis.from_url(
            url, decode_responses=False, socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout, retry=Retry(NoBackoff(), 1))
        self._save = self._client.register_script(_SAVE)

    def key(self, session_id: uuid.UUID) -> str:
        """The Redis key of a session."""
        return f"{self._prefix}session:{session_id}"

    async def ping(self) -> None:
        """For startup checks: raises RuntimeError when Redis does not answer."""
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise RuntimeError(f"redis unreachable at {self._url}: {exc}") from exc

    async def load(self, session_id: uuid.UUID) -> tuple[int, bytes] | None:
        version, document = await self._client.hmget(self.key(session_id), ["v", "d"])
        if version is None or document is None:
            return None
        return int(version), bytes(document)

    async def save(self, session_id: uuid.UUID, version: int, document: bytes,
                   ttl_seconds: int) -> bool:
        if version < 1:
            raise ValueError("version must be at least 1")
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be at least 1")
        saved = await self._save(keys=[self.key(session_id)],
                                 args=[version, bytes(document), ttl_seconds])
        return bool(saved)

    async def delete(self, session_id: uuid.UUID) -> None:
        await self._client.delete(self.key(session_id))

    async def close(self) -> None:
        await self._client.aclose()
