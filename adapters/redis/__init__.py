"""Redis adapters (redis.asyncio): cache (and later sessions, locks, rate limits)."""

from adapters.redis.cache import RedisCache

__all__ = ["RedisCache"]
