"""Embeddings kept in the cache: a pack's text is embedded once, then read
back (a recommendation embeds every candidate pack; without this each request
would pay ~20 ms per pack)."""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Awaitable, Callable

from ports.common import Cache

#: Embeddings do not change for a given text and model: kept for a week.
TTL_SECONDS = 7 * 24 * 3600


class CachedEmbedder:
    def __init__(self, embed: Callable[[list[str]], Awaitable[list[list[float]]]],
                 cache: Cache, model: str) -> None:
        self._embed = embed
        self._cache = cache
        self._model = model

    def _key(self, text: str) -> str:
        return f"embedding:{self._model}:{hashlib.sha256(text.encode()).hexdigest()[:32]}"

    async def embed(self, texts: list[str]) -> list[list[float]]:
        found: dict[int, list[float]] = {}
        for i, text in enumerate(texts):
            raw = await self._cache.get(self._key(text))
            if raw is not None:
                found[i] = array("f", raw).tolist()
        missing = [i for i in range(len(texts)) if i not in found]
        if missing:
            fresh = await self._embed([texts[i] for i in missing])
            for i, vector in zip(missing, fresh, strict=True):
                found[i] = vector
                await self._cache.set(self._key(texts[i]), array("f", vector).tobytes(),
                                      TTL_SECONDS)
        return [found[i] for i in range(len(texts))]
