"""ports.common.Leases on Redis: a key per lease, `SET key owner NX PX ttl`.

Renewing and releasing check the owner in the same step (Lua scripts, atomic
on the server), so an owner whose lease expired and was taken over never
extends or deletes its successor's. Expiry is Redis's own clock.
"""

from __future__ import annotations

from datetime import timedelta

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from adapters.redis.cache import redact_url

# Take the lease if free (SET NX PX), else renew it if it is ours.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLeases:
    def __init__(self, url: str, *, key_prefix: str = "lock:", socket_timeout: float = 2.0,
                 connect_timeout: float = 2.0) -> None:
        self._url = redact_url(url)
        self._prefix = key_prefix
        self._client = redis.from_url(
            url, decode_responses=False, socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout, retry=Retry(NoBackoff(), 1))
        self._acquire = self._client.register_script(_ACQUIRE)
        self._release = self._client.register_script(_RELEASE)

    async def ping(self) -> None:
        """For startup checks: raises RuntimeError when Redis does not answer."""
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise RuntimeError(f"redis unreachable at {self._url}: {exc}") from exc

    async def acquire(self, name: str, owner: str, ttl: timedelta) -> bool:
        milliseconds = int(ttl.total_seconds() * 1000)
        if milliseconds <= 0:
            raise ValueError("ttl must be positive")
        return bool(await self._acquire(keys=[self._prefix + name],
                                        args=[owner, milliseconds]))

    async def release(self, name: str, owner: str) -> None:
        await self._release(keys=[self._prefix + name], args=[owner])

    async def close(self) -> None:
        await self._client.aclose()
