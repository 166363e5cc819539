"""The marketplace's SearchIndex on OpenSearch, through the official
asyncio client (`opensearchpy.AsyncOpenSearch`).

The index follows the text rules of adapters/memory/search.py with
OpenSearch's own means:

- the `folded` analyzer (standard tokenizer, lowercase, asciifolding) on
  title, tags, creator name and description; a `prefix` subfield of each,
  indexed as edge n-grams (1 to 20 letters) and searched as whole words, so
  a query word matches the words it begins. The query is cut into words as
  the other adapters cut it; documents as the standard tokenizer (UAX #29)
  does, which keeps "don't" or "1.5" whole where the others split them;
- each query word is a clause of its own, all required: `multi_match` over
  `title^4 tags^2 creator_name^2 description` (best field) plus the
  same over the prefix subfields, so a word met exactly scores twice;
- only the words that match nothing in the index (asked with a `filters`
  aggregation, one bucket per word, when the plain query finds nothing) are
  sent with `fuzziness: "AUTO:4,8"`: no edit under 4 letters, one up to 7,
  two from 8, transpositions counted as one edit;
- filters are `term` queries on keyword fields (tags: the `keyword`
  subfield, with a lowercase normalizer); orders sort on `_score`,
  `popularity` and `published_at` (`date_nanos`: the microseconds the
  databases keep), ties by `pack_id` (a keyword, the UUID's text, which
  sorts as the UUIDs do).

Writes wait for the index's refresh (`refresh=wait_for`): the event that
brought a pack is acknowledged only once the pack can be found.

Tested (tests/contract/test_search_index.py) against an in-process fake of
OpenSearch's HTTP API that interprets the mapping and query bodies this
module sends; the client and this module run unchanged, over real HTTP on
the loopback.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any

from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import RequestError

from adapters.memory.search import Term, page_of, search_words_then_typos
from core.catalog.search import PackDocument, SearchOrder, SearchPage, SearchQuery

#: Longest prefix a query word is matched as (the edge n-grams' longest).
LONGEST_PREFIX = 20
#: How deep into a query's hits OpenSearch serves pages (the index setting
#: `max_result_window`; deeper, it refuses the request): pages past it are
#: empty, and the page that reaches it says no more follow.
MAX_RESULT_WINDOW = 10_000

_TEXT_FIELDS = {"title": 4, "tags": 2, "creator_name": 2, "description": 1}


def _boosted(suffix: str = "") -> list[str]:
    return [f"{field}{suffix}^{boost}" for field, boost in _TEXT_FIELDS.items()]


def _text(**subfields: Any) -> dict[str, Any]:
    return {"type": "text", "analyzer": "folded",
            "fields": {"prefix": {"type": "text", "analyzer": "folded_prefixes",
                                  "search_analyzer": "folded"}, **subfields}}


SETTINGS = {
    "analysis": {
        "filter": {"prefixes": {"type": "edge_ngram", "min_gram": 1,
                                "max_gram": LONGEST_PREFIX}},
        "analyzer": {
            "folded": {"type": "custom", "tokenizer": "standard",
                       "filter": ["lowercase", "asciifolding"]},
            "folded_prefixes": {"type": "custom", "tokenizer": "standard",
                                "filter": ["lowercase", "asciifolding", "prefixes"]},
        },
        "normalizer": {"lowercased": {"type": "custom", "filter": ["lowercase"]}},
    },
}

MAPPINGS = {
    "dynamic": "strict",
    "properties": {
        "pack_id": {"type": "keyword"},
        "title": _text(),
        "description": _text(),
        "creator_id": {"type": "keyword"},
        "creator_name": _text(),
        "tags": _text(keyword={"type": "keyword", "normalizer": "lowercased"}),
        "content_types": {"type": "keyword"},
        "price_type": {"type": "keyword"},
        "published_at": {"type": "date_nanos"},
        "popularity": {"type": "integer"},
    },
}


def _source(document: PackDocument) -> dict[str, Any]:
    return {
        "pack_id": str(document.pack_id), "title": document.title,
        "description": document.description, "creator_id": str(document.creator_id),
        "creator_name": document.creator_name, "tags": [t.lower() for t in document.tags],
        "content_types": list(document.content_types), "price_type": document.price_type,
        "published_at": document.published_at.astimezone(UTC).isoformat(),
        "popularity": document.popularity,
    }


def _word(word: str) -> dict[str, Any]:
    """The clause of a word matched as it is: as a word or as a prefix."""
    return {"bool": {"should": [
        {"multi_match": {"query": word, "fields": _boosted()}},
        {"multi_match": {"query": word, "fields": _boosted(".prefix")}},
    ], "minimum_should_match": 1}}


def _typo(word: str) -> dict[str, Any]:
    """The clause of a word that matched nothing: the words it is a typo of."""
    return {"multi_match": {"query": word, "fields": _boosted(), "fuzziness": "AUTO:4,8",
                            "fuzzy_transpositions": True, "prefix_length": 0}}


def _filters(query: SearchQuery) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    if query.content_type is not None:
        filters.append({"term": {"content_types": query.content_type}})
    if query.price_type is not None:
        filters.append({"term": {"price_type": query.price_type}})
    if query.creator_id is not None:
        filters.append({"term": {"creator_id": str(query.creator_id)}})
    if query.tag is not None:
        filters.append({"term": {"tags.keyword": query.tag.lower()}})
    return filters


def _sort(query: SearchQuery, terms: list[Term]) -> list[Any]:
    tail = [{"published_at": {"order": "desc"}}, {"pack_id": {"order": "desc"}}]
    if query.order is SearchOrder.POPULARITY:
        return [{"popularity": {"order": "desc"}}, *tail]
    if query.order is SearchOrder.RELEVANCE and terms:
        return [{"_score": {"order": "desc"}}, *tail]
    return tail


class OpenSearchIndex:
    """SearchIndex on the OpenSearch index `index` (made with its mapping on
    first use when missing). `client_options` go to AsyncOpenSearch (auth,
    TLS, timeouts)."""

    def __init__(self, url: str, *, index: str = "waqup-packs",
                 **client_options: Any) -> None:
        self._client = AsyncOpenSearch(hosts=[url], **client_options)
        self._index = index
        self._ready = False

    async def _ensure_index(self) -> None:
        if self._ready:
            return
        if not await self._client.indices.exists(index=self._index):
            try:
                await self._client.indices.create(
                    index=self._index, body={"settings": SETTINGS, "mappings": MAPPINGS})
            except RequestError as error:  # another process made it meanwhile
                if error.error != "resource_already_exists_exception":
                    raise
        self._ready = True

    async def upsert(self, document: PackDocument) -> None:
        await self._ensure_index()
        await self._client.index(index=self._index, id=str(document.pack_id),
                                 body=_source(document), refresh="wait_for")

    async def remove(self, pack_id: uuid.UUID) -> None:
        await self._ensure_index()
        await self._client.delete(index=self._index, id=str(pack_id), refresh="wait_for",
                                  ignore=404)

    async def search(self, query: SearchQuery) -> SearchPage:
        await self._ensure_index()
        return await search_words_then_typos(
            query, lambda terms: self._run(query, terms), self._unmatched)

    async def _run(self, query: SearchQuery, terms: list[Term]) -> SearchPage:
        size = min(query.limit + 1, MAX_RESULT_WINDOW - query.offset)
        if size <= 0:
            return SearchPage([], False)
        must = [_typo(t.word) if t.typo else _word(t.word) for t in terms]
        body = {
            "query": {"bool": {"must": must, "filter": _filters(query)}},
            "sort": _sort(query, terms),
            "from": query.offset, "size": size,
            "_source": False, "track_total_hits": False,
        }
        found = await self._client.search(index=self._index, body=body)
        return page_of([uuid.UUID(hit["_id"]) for hit in found["hits"]["hits"]], query)

    async def _unmatched(self, words: list[str]) -> set[str]:
        body = {
            "size": 0, "track_total_hits": False,
            "aggs": {"words": {"filters": {"filters": {
                str(i): _word(w) for i, w in enumerate(words)}}}},
        }
        found = await self._client.search(index=self._index, body=body)
        buckets = found["aggregations"]["words"]["buckets"]
        return {w for i, w in enumerate(words) if buckets[str(i)]["doc_count"] == 0}

    async def close(self) -> None:
        await self._client.close()
