"""The marketplace's SearchIndex, for every adapter: memory, SQLite (FTS5),
PostgreSQL (tsvector and pg_trgm) and OpenSearch.

No OpenSearch server can run on the project's machines, so OpenSearch is
tested against `FakeOpenSearch`, an in-process fake of its HTTP API served
by aiohttp on the loopback: adapters/opensearch/search.py and opensearch-py
run unchanged (real requests, real JSON), and the fake interprets what they
send — the index settings (analyzers: the standard tokenizer, lowercase,
asciifolding and edge n-gram filters; normalizers), the strict mapping
(text with subfields, keyword, integer, date and date_nanos) and the query
DSL the adapter uses (bool, multi_match with boosts and fuzziness, term,
match_all, sort, from/size, the filters aggregation), refusing anything else
with OpenSearch's 400 errors. Its approximations: the standard tokenizer is
taken as runs of letters and digits (UAX #29 keeps "don't" or "1.5" whole),
asciifolding as dropping combining marks, and a score as the sum of the
boosts of the fields a word matches (no BM25 term statistics), which keeps
the order the contract asks for, not OpenSearch's numbers.
"""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.memory.search import MemorySearchIndex, within_edits
from adapters.opensearch.search import OpenSearchIndex
from adapters.sql.engine import create_engine
from adapters.sql.search import sql_search_index
from core.catalog.search import (
    MAX_QUERY_LENGTH,
    PackDocument,
    SearchOrder,
    SearchPage,
    SearchQuery,
)
from ports.catalog import SearchIndex

SEARCH_BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                   "opensearch"]

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ANN, BOB = uuid.UUID(int=0xA), uuid.UUID(int=0xB)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- the fake OpenSearch --------------------------------------------------------------

class _Refused(Exception):
    def __init__(self, status: int, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.kind, self.reason = status, kind, reason


def _refuse(kind: str, reason: str, status: int = 400) -> _Refused:
    return _Refused(status, kind, reason)


def _ascii_fold(token: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", token)
                   if not unicodedata.combining(c))


class _Analysis:
    """The analyzers and normalizers an index's settings define."""

    def __init__(self, settings: dict[str, Any]) -> None:
        analysis = settings.get("analysis", {})
        self.filters: dict[str, Callable[[list[str]], list[str]]] = {
            "lowercase": lambda tokens: [t.lower() for t in tokens],
            "asciifolding": lambda tokens: [_ascii_fold(t) for t in tokens],
        }
        for name, spec in analysis.get("filter", {}).items():
            if spec.get("type") != "edge_ngram":
                raise _refuse("illegal_argument_exception", f"unknown filter type {spec}")
            low, high = int(spec["min_gram"]), int(spec["max_gram"])
            self.filters[name] = lambda tokens, low=low, high=high: [
                t[:n] for t in tokens for n in range(low, min(high, len(t)) + 1)]
        self.analyzers: dict[str, list[str]] = {"standard": ["lowercase"]}
        for name, spec in analysis.get("analyzer", {}).items():
            if spec.get("type") != "custom" or spec.get("tokenizer") != "standard":
                raise _refuse("illegal_argument_exception", f"unsupported analyzer {spec}")
            self._known(spec.get("filter", []))
            self.analyzers[name] = spec.get("filter", [])
        self.normalizers: dict[str, list[str]] = {}
        for name, spec in analysis.get("normalizer", {}).items():
            self._known(spec.get("filter", []))
            self.normalizers[name] = spec.get("filter", [])

    def _known(self, filters: list[str]) -> None:
        for name in filters:
            if name not in self.filters:
                raise _refuse("illegal_argument_exception", f"unknown filter [{name}]")

    def analyze(self, analyzer: str, text: str) -> list[str]:
        tokens = re.findall(r"[^\W_]+", text)
        for name in self.analyzers[analyzer]:
            tokens = self.filters[name](tokens)
        return tokens

    def normalize(self, normalizer: str | None, value: str) -> str:
        tokens = [value]
        for name in self.normalizers[normalizer] if normalizer else []:
            tokens = self.filters[name](tokens)
        return tokens[0]


def _fuzziness(spec: Any, term: str) -> int:
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return int(spec)
    match = re.fullmatch(r"AUTO(?::(\d+),(\d+))?", str(spec))
    if match is None:
        raise _refuse("parsing_exception", f"bad fuzziness [{spec}]")
    low, high = (int(match[1]), int(match[2])) if match[1] else (3, 6)
    return 0 if len(term) < low else 1 if len(term) < high else 2


class _FakeIndex:
    MAX_RESULT_WINDOW = 10_000

    def __init__(self, body: dict[str, Any]) -> None:
        unknown = set(body) - {"settings", "mappings"}
        if unknown:
            raise _refuse("parsing_exception", f"unknown keys {unknown}")
        self.analysis = _Analysis(body.get("settings", {}))
        mappings = body.get("mappings", {})
        self.strict = mappings.get("dynamic") == "strict"
        #: Field path ("title", "title.prefix", "tags.text") -> its mapping.
        self.fields: dict[str, dict[str, Any]] = {}
        for name, spec in mappings.get("properties", {}).items():
            self._map(name, spec)
        self.docs: dict[str, dict[str, Any]] = {}
        self.indexed: dict[str, dict[str, list[Any]]] = {}

    def _map(self, path: str, spec: dict[str, Any]) -> None:
        kind = spec.get("type")
        if kind not in {"text", "keyword", "integer", "date", "date_nanos"}:
            raise _refuse("mapper_parsing_exception", f"no handler for type [{kind}]")
        for key in ("analyzer", "search_analyzer"):
            if key in spec and spec[key] not in self.analysis.analyzers:
                raise _refuse("mapper_parsing_exception", f"analyzer [{spec[key]}] not found")
        if spec.get("normalizer", None) not in (None, *self.analysis.normalizers):
            raise _refuse("mapper_parsing_exception", "normalizer not found")
        self.fields[path] = spec
        for sub, sub_spec in spec.get("fields", {}).items():
            self._map(f"{path}.{sub}", sub_spec)

    def _values(self, path: str, raw: Any) -> list[Any]:
        spec = self.fields[path]
        items = raw if isinstance(raw, list) else [raw]
        kind = spec["type"]
        if kind == "text":
            return [t for item in items
                    for t in self.analysis.analyze(spec.get("analyzer", "standard"), str(item))]
        if kind == "keyword":
            return [self.analysis.normalize(spec.get("normalizer"), str(i)) for i in items]
        if kind == "integer":
            if not all(isinstance(i, int) for i in items):
                raise _refuse("mapper_parsing_exception", f"failed to parse field [{path}]")
            return items
        try:  # date, date_nanos: kept as nanoseconds since 1970
            return [(datetime.fromisoformat(i) - _EPOCH) // timedelta(microseconds=1) * 1000
                    for i in items]
        except (TypeError, ValueError):
            raise _refuse("mapper_parsing_exception",
                          f"failed to parse date field [{path}]") from None

    def put(self, doc_id: str, source: dict[str, Any]) -> bool:
        indexed: dict[str, list[Any]] = {}
        for name, raw in source.items():
            if name not in self.fields:
                if self.strict:
                    raise _refuse("strict_dynamic_mapping_exception",
                                  f"mapping set to strict, dynamic introduction of [{name}]")
                continue
            for path in self.fields:
                if path == name or path.startswith(name + "."):
                    indexed[path] = self._values(path, raw)
        created = doc_id not in self.docs
        self.docs[doc_id], self.indexed[doc_id] = source, indexed
        return created

    # queries: each returns {doc id: score} of the documents it matches

    def query(self, clause: dict[str, Any], ids: list[str]) -> dict[str, float]:
        if len(clause) != 1:
            raise _refuse("parsing_exception", f"one query per object: {list(clause)}")
        kind, spec = next(iter(clause.items()))
        handler = {"bool": self._bool, "multi_match": self._multi_match, "term": self._term,
                   "match_all": lambda _spec, ids: dict.fromkeys(ids, 1.0)}.get(kind)
        if handler is None:
            raise _refuse("parsing_exception", f"unknown query [{kind}]")
        return handler(spec, ids)

    def _bool(self, spec: dict[str, Any], ids: list[str]) -> dict[str, float]:
        unknown = set(spec) - {"must", "filter", "should", "minimum_should_match"}
        if unknown:
            raise _refuse("parsing_exception", f"[bool] unknown keys {unknown}")

        def clauses(key: str) -> list[dict[str, Any]]:
            value = spec.get(key, [])
            return value if isinstance(value, list) else [value]

        scores = dict.fromkeys(ids, 0.0)
        for clause in clauses("filter"):
            hits = self.query(clause, list(scores))
            scores = {i: s for i, s in scores.items() if i in hits}
        for clause in clauses("must"):
            hits = self.query(clause, list(scores))
            scores = {i: s + hits[i] for i, s in scores.items() if i in hits}
        should = clauses("should")
        if should:
            required = spec.get("minimum_should_match",
                                0 if clauses("must") or clauses("filter") else 1)
            matched = dict.fromkeys(scores, 0)
            for clause in should:
                for i, score in self.query(clause, list(scores)).items():
                    scores[i] += score
                    matched[i] += 1
            scores = {i: s for i, s in scores.items() if matched[i] >= int(required)}
        return scores

    def _multi_match(self, spec: dict[str, Any], ids: list[str]) -> dict[str, float]:
        unknown = set(spec) - {"query", "fields", "type", "fuzziness", "fuzzy_transpositions",
                               "prefix_length"}
        if unknown or spec.get("type", "best_fields") != "best_fields":
            raise _refuse("parsing_exception", f"[multi_match] unsupported {unknown or spec}")
        if spec.get("fuzzy_transpositions", True) is not True or spec.get("prefix_length", 0):
            raise _refuse("parsing_exception", "only transpositions, no prefix_length")
        scores: dict[str, float] = {}
        for field in spec["fields"]:
            path, _, boost = field.partition("^")
            mapping = self.fields.get(path)
            if mapping is None or mapping["type"] != "text":
                raise _refuse("query_shard_exception", f"[{path}] is not a text field")
            analyzer = mapping.get("search_analyzer", mapping.get("analyzer", "standard"))
            terms = self.analysis.analyze(analyzer, str(spec["query"]))
            for doc_id in ids:
                held = self.indexed[doc_id].get(path, [])
                score = 0.0
                for term in terms:
                    if term in held:
                        score += 1.0
                    elif "fuzziness" in spec:
                        edits = _fuzziness(spec["fuzziness"], term)
                        if edits and any(within_edits(term, h, edits) for h in held):
                            score += 0.5  # a fuzzy match weighs less than an exact one
                score *= float(boost or 1)
                if score:  # best_fields: the best field's score
                    scores[doc_id] = max(scores.get(doc_id, 0.0), score)
        return scores

    def _term(self, spec: dict[str, Any], ids: list[str]) -> dict[str, float]:
        ((path, value),) = spec.items()
        mapping = self.fields.get(path)
        if mapping is None or mapping["type"] != "keyword" or isinstance(value, dict):
            raise _refuse("query_shard_exception", f"[term] on [{path}] is not supported here")
        wanted = self.analysis.normalize(mapping.get("normalizer"), str(value))
        return {i: 1.0 for i in ids if wanted in self.indexed[i].get(path, [])}

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - {"query", "sort", "from", "size", "_source", "track_total_hits",
                               "aggs"}
        if unknown:
            raise _refuse("parsing_exception", f"unknown keys {unknown}")
        start, size = int(body.get("from", 0)), int(body.get("size", 10))
        if start + size > self.MAX_RESULT_WINDOW:
            raise _refuse("illegal_argument_exception", "Result window is too large")
        scores = self.query(body.get("query", {"match_all": {}}), list(self.docs))
        ranked = sorted(scores, key=lambda i: self._sort_key(i, scores[i], body.get("sort")))
        hits = [{"_index": "fake", "_id": i, "_score": scores[i]}
                for i in ranked[start:start + size]]
        if body.get("_source", True) is not False:
            for hit in hits:
                hit["_source"] = self.docs[hit["_id"]]
        answer: dict[str, Any] = {"took": 1, "timed_out": False, "hits": {"hits": hits}}
        if "aggs" in body:
            answer["aggregations"] = {
                name: self._aggregate(spec, list(scores)) for name, spec in body["aggs"].items()}
        return answer

    def _sort_key(self, doc_id: str, score: float, sort: list[Any] | None) -> tuple[Any, ...]:
        key: list[Any] = []
        for item in sort or [{"_score": {"order": "desc"}}]:
            ((path, spec),) = (item.items() if isinstance(item, dict) else [(item, "asc")])
            order = spec.get("order", "asc") if isinstance(spec, dict) else spec
            if path == "_score":
                value: Any = score
            elif path in self.fields and self.fields[path]["type"] != "text":
                value = (self.indexed[doc_id].get(path) or [None])[0]
            else:
                raise _refuse("illegal_argument_exception", f"no sort on [{path}]")
            key.append(_Desc(value) if order == "desc" else value)
        return tuple(key)

    def _aggregate(self, spec: dict[str, Any], ids: list[str]) -> dict[str, Any]:
        if set(spec) != {"filters"} or set(spec["filters"]) != {"filters"}:
            raise _refuse("parsing_exception", f"unsupported aggregation {spec}")
        return {"buckets": {key: {"doc_count": len(self.query(clause, ids))}
                            for key, clause in spec["filters"]["filters"].items()}}


class _Desc:
    """Reverses the order of a sort value."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]


class FakeOpenSearch:
    """OpenSearch's REST API for indices, documents and search, in process."""

    def __init__(self) -> None:
        self.indices: dict[str, _FakeIndex] = {}
        self.app = web.Application()
        self.app.router.add_route("*", "/{index}", self._index)
        self.app.router.add_route("*", "/{index}/_doc/{id}", self._doc)
        self.app.router.add_route("*", "/{index}/_search", self._search)

    @staticmethod
    def _json(status: int, body: dict[str, Any]) -> web.Response:
        return web.json_response(body, status=status)

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise _refuse("illegal_argument_exception", "Content-Type must be JSON", 406)
        return json.loads(await request.text())

    @staticmethod
    def _refresh(request: web.Request) -> None:
        if request.query.get("refresh", "false") not in {"true", "false", "wait_for", ""}:
            raise _refuse("illegal_argument_exception", "bad refresh")

    def _existing(self, request: web.Request) -> _FakeIndex:
        index = self.indices.get(request.match_info["index"])
        if index is None:
            raise _refuse("index_not_found_exception", "no such index", 404)
        return index

    @staticmethod
    def _guarded(handler: Callable[..., Any]) -> Callable[..., Any]:
        async def run(self: FakeOpenSearch, request: web.Request) -> web.StreamResponse:
            try:
                return await handler(self, request)
            except _Refused as refused:
                return self._json(refused.status, {
                    "error": {"type": refused.kind, "reason": refused.reason},
                    "status": refused.status})
        return run

    @_guarded
    async def _index(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["index"]
        if request.method == "HEAD":
            return web.Response(status=200 if name in self.indices else 404)
        if request.method == "PUT":
            if name in self.indices:
                raise _refuse("resource_already_exists_exception", f"index [{name}] exists")
            self.indices[name] = _FakeIndex(await self._body(request))
            return self._json(200, {"acknowledged": True, "index": name})
        raise _refuse("illegal_argument_exception", f"{request.method} /{name}", 405)

    @_guarded
    async def _doc(self, request: web.Request) -> web.StreamResponse:
        index, doc_id = self._existing(request), request.match_info["id"]
        self._refresh(request)
        if request.method in ("PUT", "POST"):
            created = index.put(doc_id, await self._body(request))
            return self._json(201 if created else 200, {
                "_id": doc_id, "result": "created" if created else "updated"})
        if request.method == "DELETE":
            if index.docs.pop(doc_id, None) is None:
                return self._json(404, {"_id": doc_id, "result": "not_found"})
            del index.indexed[doc_id]
            return self._json(200, {"_id": doc_id, "result": "deleted"})
        raise _refuse("illegal_argument_exception", request.method, 405)

    @_guarded
    async def _search(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "POST"):
            raise _refuse("illegal_argument_exception", request.method, 405)
        return self._json(200, self._existing(request).search(await self._body(request)))


@pytest.fixture(scope="session")
async def opensearch_url() -> AsyncIterator[str]:
    fake = FakeOpenSearch()
    runner = web.AppRunner(fake.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


# --- the index under test -------------------------------------------------------------

@pytest.fixture(params=SEARCH_BACKENDS)
def where(request: pytest.FixtureRequest) -> tuple[str, Any]:
    """The backend and what it needs, resolved outside the event loop."""
    name = request.param
    needs = {"sqlite": "sqlite_url", "postgres": "pg_engine", "opensearch": "opensearch_url"}
    return name, request.getfixturevalue(needs[name]) if name in needs else None


@pytest.fixture
async def index(where: tuple[str, Any]) -> AsyncIterator[SearchIndex]:
    name, needs = where
    if name == "memory":
        yield MemorySearchIndex()
    elif name == "sqlite":
        engine = create_engine(needs)
        try:
            yield sql_search_index(engine)
        finally:
            await engine.dispose()
    elif name == "postgres":
        engine: AsyncEngine = needs
        async with engine.begin() as conn:
            await conn.exec_driver_sql("TRUNCATE pack_search, pack_search_words")
        yield sql_search_index(engine)
    else:
        opensearch = OpenSearchIndex(needs, index=f"packs-{uuid.uuid4().hex}")
        try:
            yield opensearch
        finally:
            await opensearch.close()


_next_id = iter(range(1, 1_000_000))


def pack(title: str, description: str = "", *, tags: tuple[str, ...] = (),
         creator: uuid.UUID = ANN, creator_name: str = "Ann Lee",
         content_types: tuple[str, ...] = ("guided_meditation",), price: str = "free",
         minutes: int = 0, popularity: int = 0, pack_id: uuid.UUID | None = None,
         ) -> PackDocument:
    return PackDocument(
        pack_id=pack_id or uuid.UUID(int=next(_next_id)), title=title, description=description,
        creator_id=creator, creator_name=creator_name, tags=tags,
        content_types=content_types, price_type=price,
        published_at=T0 + timedelta(minutes=minutes), popularity=popularity)


async def add(index: SearchIndex, *documents: PackDocument) -> None:
    for document in documents:
        await index.upsert(document)


async def ids(index: SearchIndex, text: str = "", **options: Any) -> list[uuid.UUID]:
    page = await index.search(SearchQuery(text=text, **options))
    assert not page.more, "a page of 20 holds every test's hits"
    return page.pack_ids


# --- words, prefixes, typos -----------------------------------------------------------

@pytest.fixture
async def library(index: SearchIndex) -> dict[str, PackDocument]:
    packs = {
        "sleep": pack("Deep Sleep Meditation", "Drift off with slow breathing",
                      tags=("sleep", "evening"), minutes=1),
        "anxiety": pack("Anxiety Relief", "Ease worry and calm the mind",
                        tags=("anxiety",), minutes=2),
        "morning": pack("Morning Energy", "Affirmations to start the day",
                        tags=("morning",), content_types=("affirmation",), minutes=3),
        "sheep": pack("Counting Sheep", "A children's story for bedtime",
                      tags=("kids",), minutes=4),
    }
    await add(index, *packs.values())
    return packs


async def test_a_title_word_finds_the_pack(index: SearchIndex,
                                           library: dict[str, PackDocument]) -> None:
    assert await ids(index, "meditation") == [library["sleep"].pack_id]
    assert await ids(index, "ENERGY") == [library["morning"].pack_id]
    assert await ids(index, "volcano") == []


@pytest.mark.parametrize(("typed", "meant"), [
    ("meditaton", "sleep"), ("sleap", "sleep"), ("anxeity", "anxiety"),
    ("medetatoin", "sleep"),  # two edits in a word of ten letters
    ("morninng energi", "morning"),
])
async def test_a_misspelt_word_finds_the_pack(index: SearchIndex,
                                              library: dict[str, PackDocument],
                                              typed: str, meant: str) -> None:
    assert await ids(index, typed) == [library[meant].pack_id]


@pytest.mark.parametrize("typed", [
    "ansyety",  # two edits in seven letters: one is the most
    "clm",  # under four letters: never corrected ("calm")
    "sleap volcano",  # a corrected word still needs the others
])
async def test_typos_are_forgiven_within_the_budget_only(
        index: SearchIndex, library: dict[str, PackDocument], typed: str) -> None:
    assert await ids(index, typed) == []


async def test_a_word_that_matches_is_not_corrected(index: SearchIndex,
                                                    library: dict[str, PackDocument]) -> None:
    # "sheep" is one edit from "sleep", but matches a pack as it is.
    assert await ids(index, "sheep") == [library["sheep"].pack_id]
    # A word that matches only as a prefix is not corrected either.
    assert await ids(index, "slee") == [library["sleep"].pack_id]


async def test_a_prefix_matches(index: SearchIndex, library: dict[str, PackDocument]) -> None:
    assert await ids(index, "medit") == [library["sleep"].pack_id]
    assert await ids(index, "anx reli") == [library["anxiety"].pack_id]
    assert set(await ids(index, "m")) == {library["sleep"].pack_id,  # meditation, mind,
                                          library["anxiety"].pack_id,  # morning
                                          library["morning"].pack_id}


async def test_every_query_word_must_match(index: SearchIndex,
                                           library: dict[str, PackDocument]) -> None:
    # in different fields of one pack: title and tags, title and description
    assert await ids(index, "evening meditation") == [library["sleep"].pack_id]
    assert await ids(index, "calm anxiety") == [library["anxiety"].pack_id]
    assert await ids(index, "sleep energy") == []


async def test_accents_case_and_compatibility_forms_fold(index: SearchIndex) -> None:
    serenity = pack("Sérénité du Soir", "Une méditation guidée", creator_name="Zoë Ångström")
    plain = pack("Evening meditation")
    await add(index, serenity, plain)
    assert await ids(index, "méditation") == [plain.pack_id, serenity.pack_id]
    assert await ids(index, "serenite") == [serenity.pack_id]
    assert await ids(index, "SÉRÉNITÉ soir") == [serenity.pack_id]
    assert await ids(index, "zoe angstrom") == [serenity.pack_id]
    fullwidth = "".join(chr(ord(c) - ord("a") + 0xFF41) for c in "meditation")
    assert await ids(index, fullwidth) == [plain.pack_id, serenity.pack_id]


# --- ranking --------------------------------------------------------------------------

async def test_title_ranks_above_tags_and_creator_above_description(index: SearchIndex) -> None:
    # Published in the opposite order, so newest-first would invert it.
    in_description = pack("Quiet Hour", "A gentle breathing practice", minutes=4)
    in_tags = pack("Quiet Hour", "Rest", tags=("breathing",), minutes=3)
    in_creator = pack("Quiet Hour", "Rest", creator_name="Breathing Studio", minutes=2)
    in_title = pack("Breathing Basics", "Rest", minutes=1)
    await add(index, in_description, in_tags, in_creator, in_title)
    found = await ids(index, "breathing")
    assert found[0] == in_title.pack_id
    assert set(found[1:3]) == {in_tags.pack_id, in_creator.pack_id}
    assert found[3] == in_description.pack_id
    # The same with a prefix of the word.
    assert await ids(index, "breath") == found


async def test_an_exact_word_ranks_above_a_longer_word_it_begins(index: SearchIndex) -> None:
    calming = pack("Calming Rain", minutes=2)
    calm = pack("Calm Lake", minutes=1)
    await add(index, calming, calm)
    assert await ids(index, "calm") == [calm.pack_id, calming.pack_id]


# --- filters --------------------------------------------------------------------------

@pytest.fixture
async def shelf(index: SearchIndex) -> dict[str, PackDocument]:
    packs = {
        "a": pack("Sleep Stories", tags=("sleep", "kids"), content_types=("affirmation",),
                  price="free", creator=ANN, minutes=1),
        "b": pack("Sleep Deeply", tags=("sleep",), content_types=("guided_meditation", "ritual"),
                  price="one_time", creator=BOB, minutes=2),
        "c": pack("Focus Ritual", tags=("focus",), content_types=("ritual",),
                  price="subscription", creator=ANN, minutes=3),
        "d": pack("Sleep Ritual", tags=("sleep", "evening"), content_types=("ritual",),
                  price="one_time", creator=ANN, minutes=4),
    }
    await add(index, *packs.values())
    return packs


def _named(shelf: dict[str, PackDocument], found: list[uuid.UUID]) -> str:
    names = {p.pack_id: name for name, p in shelf.items()}
    return "".join(names[i] for i in found)


@pytest.mark.parametrize(("text", "options", "expected"), [
    ("", {"content_type": "ritual"}, "dcb"),
    ("", {"price_type": "one_time"}, "db"),
    ("", {"creator_id": BOB}, "b"),
    ("", {"tag": "SLEEP"}, "dba"),  # tags: case-insensitive
    ("", {"tag": "slee"}, ""),  # but whole
    ("", {"content_type": "ritual", "price_type": "one_time", "creator_id": ANN}, "d"),
    ("sleep", {"content_type": "ritual"}, "db"),
    ("ritual", {"tag": "evening"}, "d"),
    ("sleap", {"price_type": "free"}, "a"),  # a typo and a filter
    ("focus", {"tag": "sleep"}, ""),
    ("", {"content_type": "affirmation", "tag": "kids", "price_type": "free"}, "a"),
])
async def test_filters_alone_and_with_text(index: SearchIndex, shelf: dict[str, PackDocument],
                                           text: str, options: dict[str, Any],
                                           expected: str) -> None:
    assert _named(shelf, await ids(index, text, order=SearchOrder.NEWEST, **options)) == expected


# --- orders and pages -----------------------------------------------------------------

async def test_orders_with_ties_newest_then_by_id(index: SearchIndex) -> None:
    low, high = uuid.UUID(int=0x100), uuid.UUID(int=0x200)
    old = pack("Rain Walk", minutes=0, popularity=9)
    tie_low = pack("Rain Song", minutes=5, popularity=3, pack_id=low)
    tie_high = pack("Rain Song", minutes=5, popularity=3, pack_id=high)
    new = pack("Rain Dance", minutes=9, popularity=3)
    await add(index, old, tie_low, tie_high, new)
    newest = [new.pack_id, high, low, old.pack_id]
    assert await ids(index, order=SearchOrder.NEWEST) == newest
    assert await ids(index, "rain", order=SearchOrder.NEWEST) == newest
    assert await ids(index, order=SearchOrder.POPULARITY) == [old.pack_id, *newest[:3]]
    assert await ids(index, "rain", order=SearchOrder.POPULARITY) == [old.pack_id, *newest[:3]]
    # Relevance: all four match "rain" alike, so ties decide; without text
    # relevance is newest first.
    assert await ids(index, "rain", order=SearchOrder.RELEVANCE) == newest
    assert await ids(index, order=SearchOrder.RELEVANCE) == newest


async def test_published_times_order_to_the_microsecond(index: SearchIndex) -> None:
    first = pack("Tide", pack_id=uuid.UUID(int=0x900))
    second = replace(pack("Tide", pack_id=uuid.UUID(int=0x800)),
                     published_at=first.published_at + timedelta(microseconds=1))
    await add(index, first, second)
    assert await ids(index, "tide", order=SearchOrder.NEWEST) == [second.pack_id, first.pack_id]


async def test_offset_and_limit_page_through_with_more(index: SearchIndex) -> None:
    documents = [pack(f"Ocean Waves {n}", minutes=n) for n in range(7)]
    await add(index, *documents)
    expected = [d.pack_id for d in reversed(documents)]
    for text in ("", "ocean"):
        seen: list[uuid.UUID] = []
        pages = []
        for offset in (0, 3, 6):
            page = await index.search(SearchQuery(text=text, offset=offset, limit=3,
                                                  order=SearchOrder.NEWEST))
            seen += page.pack_ids
            pages.append((len(page.pack_ids), page.more))
        assert seen == expected
        assert pages == [(3, True), (3, True), (1, False)]
        exact = await index.search(SearchQuery(text=text, offset=4, limit=3))
        assert (exact.pack_ids, exact.more) == (expected[4:], False)
        for offset in (7, 10_000):
            beyond = await index.search(SearchQuery(text=text, offset=offset, limit=3))
            assert (beyond.pack_ids, beyond.more) == ([], False)


# --- changes --------------------------------------------------------------------------

async def test_upsert_replaces_the_document(index: SearchIndex) -> None:
    original = pack("Meditation for Sleep", tags=("sleep",), price="free", popularity=1)
    other = pack("Walking Meditation", minutes=1)
    await add(index, original, other)
    changed = replace(original, title="Mountain Morning", tags=("focus",),
                      price_type="one_time", popularity=50)
    await index.upsert(changed)
    await index.upsert(changed)  # again: the same
    assert await ids(index, "sleep") == []
    assert await ids(index, "meditation") == [other.pack_id]
    assert await ids(index, "mountain") == [changed.pack_id]
    assert await ids(index, "mountian") == [changed.pack_id]
    assert await ids(index, tag="sleep") == []
    assert await ids(index, tag="focus") == [changed.pack_id]
    assert await ids(index, price_type="free") == [other.pack_id]
    assert await ids(index, order=SearchOrder.POPULARITY) == [changed.pack_id, other.pack_id]
    # Its old words are forgotten, typos included ("sleap" had "sleep").
    assert await ids(index, "sleap") == []


async def test_remove_forgets_and_unknown_is_a_no_op(index: SearchIndex) -> None:
    kept = pack("Gentle Yoga", minutes=1)
    gone = pack("Yoga Nidra", "Body scan")
    await add(index, kept, gone)
    await index.remove(gone.pack_id)
    await index.remove(gone.pack_id)
    await index.remove(uuid.UUID(int=0xDEAD))
    assert await ids(index) == [kept.pack_id]
    assert await ids(index, "yoga") == [kept.pack_id]
    assert await ids(index, "nidra") == []
    assert await ids(index, "nidar") == []  # no longer a word to correct to
    await index.upsert(gone)  # and it can come back
    assert await ids(index, "nidra") == [gone.pack_id]


async def test_empty_text_lists_every_pack_in_the_order(index: SearchIndex) -> None:
    documents = [pack(f"Pack {n}", minutes=n, popularity=n % 3) for n in range(5)]
    await add(index, *documents)
    newest = [d.pack_id for d in reversed(documents)]
    assert await ids(index) == newest
    assert await ids(index, "   ") == newest
    by_popularity = sorted(documents, key=lambda d: (d.popularity, d.published_at),
                           reverse=True)
    assert await ids(index, order=SearchOrder.POPULARITY) == [d.pack_id for d in by_popularity]


async def test_an_empty_index_answers_empty(index: SearchIndex) -> None:
    for text in ("", "meditation", "meditaton"):
        page = await index.search(SearchQuery(text=text))
        assert (page.pack_ids, page.more) == ([], False)


# --- hostile text ---------------------------------------------------------------------

HOSTILE = [
    '"', "'", "*", ":", "(", ")", "sleep*", "title:sleep", '"sleep', "sleep'", "(sleep",
    "AND OR NOT NEAR", "sleep AND", "NEAR(sleep calm)", "a & b | !c", "sleep <-> calm",
    "-sleep", "+sleep", "sleep\tcalm\x07", "\x1b[31m\x08\x7f", "\\", "%_", "sleep%",
    "'; DROP TABLE pack_search; --", "\u200b\u202e", "🧘 sleep", "x" * MAX_QUERY_LENGTH,
    ("sleep " * 40)[:MAX_QUERY_LENGTH], " ".join("abcdefghijklmnopqrstuvwxyz" * 4)[:200],
    "q" + "ü" * (MAX_QUERY_LENGTH - 1), "\ufffd", "\u0640\u0640\u0640",
    "\U0001d564\U0001d55d\U0001d556\U0001d556\U0001d561",  # "sleep" in double-struck
]


async def test_hostile_text_never_fails(index: SearchIndex,
                                        library: dict[str, PackDocument]) -> None:
    known = {p.pack_id for p in library.values()}
    for text in HOSTILE:
        page = await index.search(SearchQuery(text=text))
        assert isinstance(page, SearchPage), text
        assert set(page.pack_ids) <= known, text
    assert await ids(index, HOSTILE[-1]) == [library["sleep"].pack_id]


async def test_text_of_no_words_lists_everything(index: SearchIndex,
                                                 library: dict[str, PackDocument]) -> None:
    everything = await ids(index)
    assert len(everything) == len(library)
    for text in ("!!!", "'\"*:()", "&|!<->", "—…«»", "\t\x07", "\ufffd"):
        assert await ids(index, text) == everything, text


async def test_operators_in_text_are_words(index: SearchIndex,
                                           library: dict[str, PackDocument]) -> None:
    # Quotes, stars and colons separate words; query syntax has no effect.
    assert await ids(index, '"deep" sleep*') == [library["sleep"].pack_id]
    assert await ids(index, "title:anxiety") == []  # "title" is a word to match
    assert await ids(index, "anxiety OR morning") == []  # so is "or"


# --- OpenSearch only ------------------------------------------------------------------

async def test_opensearch_index_is_made_once_by_racing_adapters(opensearch_url: str) -> None:
    name = f"packs-{uuid.uuid4().hex}"
    adapters = [OpenSearchIndex(opensearch_url, index=name) for _ in range(3)]
    try:
        document = pack("Shared Index")
        await asyncio.gather(*(a.upsert(document) for a in adapters))
        for adapter in adapters:
            assert (await adapter.search(SearchQuery(text="shared"))).pack_ids == [
                document.pack_id]
    finally:
        for adapter in adapters:
            await adapter.close()


# --- PostgreSQL only ------------------------------------------------------------------

@pytest.mark.postgres
async def test_postgres_text_indexes_are_gin(pg_engine: AsyncEngine) -> None:
    """The indexes test_migrations leaves out of its comparison are there."""
    async with pg_engine.connect() as conn:
        rows = await conn.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN "
            "('ix_pack_search_search_vector', 'ix_pack_search_words_word_trgm')")
        found = dict(rows.all())
    assert "USING gin (search_vector)" in found["ix_pack_search_search_vector"]
    assert "USING gin (word gin_trgm_ops)" in found["ix_pack_search_words_word_trgm"]
