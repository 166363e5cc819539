"""The marketplace's search index in memory (the `memory://` mode), and the
text rules every SearchIndex adapter shares, so that memory, SQLite,
PostgreSQL and OpenSearch answer a query alike:

- words: text is folded (compatibility forms, accents dropped, case folded)
  and cut into runs of letters and digits; "Méditation" and "meditation" are
  one word, punctuation of any kind only separates words;
- a query word matches a document word it equals or begins;
- only when it matches no word of any document that way, a word of 4 to 7
  letters matches words one edit off, and a longer word words two edits off
  (an edit: a letter inserted, deleted, replaced, or two neighbours swapped;
  the "optimal string alignment" Damerau-Levenshtein distance). Shorter words
  are never corrected: too many words are one edit from "cat";
- scores: a field that holds the query word (or a corrected one) adds its
  weight, and adds it again when it holds that very word, not a longer one
  it begins: title 4, tags and creator name 2, description 1. So a title
  match outranks a tag or creator match, which outranks a description match.

`search_words_then_typos` is the order of work every adapter follows: typos
are looked for only when the plain query finds nothing, which keeps the
common case to one query.
"""

from __future__ import annotations

import bisect
import heapq
import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter, itemgetter

from core.catalog.search import (
    MAX_QUERY_LENGTH,
    PackDocument,
    SearchOrder,
    SearchPage,
    SearchQuery,
)

#: Weight of a match in each text field, in the order `document_fields` gives.
TITLE_WEIGHT, TAGS_WEIGHT, CREATOR_WEIGHT, DESCRIPTION_WEIGHT = 4, 2, 2, 1
FIELD_WEIGHTS = (TITLE_WEIGHT, TAGS_WEIGHT, CREATOR_WEIGHT, DESCRIPTION_WEIGHT)

_WORD = re.compile(r"[^\W_]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def fold(text: str) -> str:
    """`text` as it is compared: compatibility forms resolved ("ﬁ" -> "fi"),
    combining marks (accents) dropped, case folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    """The words of `text`, folded, in order (repeats kept)."""
    return _WORD.findall(fold(text))


def query_words(text: str) -> list[str]:
    """The distinct words of a query's text, in order, from its first
    MAX_QUERY_LENGTH characters (the service refuses longer ones; an adapter
    called directly still does not let a huge text cost a huge query)."""
    return list(dict.fromkeys(words(text[:MAX_QUERY_LENGTH])))


def document_fields(document: PackDocument) -> tuple[list[str], list[str], list[str], list[str]]:
    """The words of the document's title, tags, creator name and description."""
    return (words(document.title), words(" ".join(document.tags)),
            words(document.creator_name), words(document.description))


def typo_budget(word: str) -> int:
    """How many edits a query word may be off when nothing matches it as it is."""
    if len(word) < 4:
        return 0
    return 1 if len(word) <= 7 else 2


def within_edits(a: str, b: str, edits: int) -> bool:
    """Whether `a` becomes `b` in at most `edits` edits (insert, delete,
    replace a letter, or swap two neighbours), no letter edited twice. A
    bounded search rather than the full table: with a budget of one or two it
    does a handful of string comparisons."""
    start = 0
    end_a, end_b = len(a), len(b)
    while start < end_a and start < end_b and a[start] == b[start]:
        start += 1
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    a, b = a[start:end_a], b[start:end_b]
    if not a or not b:
        return max(len(a), len(b)) <= edits
    if edits == 0 or abs(len(a) - len(b)) > edits:
        return False
    left = edits - 1
    return (within_edits(a[1:], b[1:], left)  # replace
            or within_edits(a[1:], b, left)  # delete
            or within_edits(a, b[1:], left)  # insert
            or (len(a) > 1 and len(b) > 1 and a[0] == b[1] and a[1] == b[0]
                and within_edits(a[2:], b[2:], left)))  # swap


def length_window(word: str) -> tuple[int, int]:
    """Shortest and longest lengths of a word `word` may be a typo of."""
    budget = typo_budget(word)
    return len(word) - budget, len(word) + budget


def corrections(word: str, vocabulary: Iterable[str]) -> list[str]:
    """The words of `vocabulary` that `word` may be a typo of, sorted."""
    budget = typo_budget(word)
    shortest, longest = length_window(word)
    return sorted(w for w in vocabulary
                  if shortest <= len(w) <= longest and within_edits(word, w, budget))


@dataclass(frozen=True)
class Term:
    """A query word, and whether it is to be matched as a typo (it matched
    nothing as it is)."""

    word: str
    typo: bool = False


async def search_words_then_typos(
        query: SearchQuery, run: Callable[[list[Term]], Awaitable[SearchPage]],
        unmatched: Callable[[list[str]], Awaitable[set[str]]]) -> SearchPage:
    """Run the query with its words as they are; when that finds nothing,
    ask which words match nothing in the whole index (filters aside) and run
    it again with those as typos. A word too short to be corrected that
    matches nothing leaves nothing to find."""
    terms = [Term(w) for w in query_words(query.text)]
    page = await run(terms)
    if page.pack_ids or not terms:
        return page
    missing = await unmatched([t.word for t in terms])
    if not missing:
        return page
    if any(typo_budget(w) == 0 for w in missing):
        return SearchPage([], False)
    return await run([Term(t.word, t.word in missing) for t in terms])


def page_of(ranked: Sequence[uuid.UUID], query: SearchQuery) -> SearchPage:
    """The page of `ranked` (the page's hits plus at least one more if there
    are more) that `query` asks for, counted from its offset."""
    return SearchPage(list(ranked[:query.limit]), len(ranked) > query.limit)


#: The weight of a set of fields (bit i: field i of FIELD_WEIGHTS).
_MASK_WEIGHTS = [sum(w for i, w in enumerate(FIELD_WEIGHTS) if mask >> i & 1)
                 for mask in range(1 << len(FIELD_WEIGHTS))]


@dataclass
class _Entry:
    document: PackDocument
    #: Each word of the document -> the fields holding it (bit i: field i).
    masks: dict[str, int]
    tags: frozenset[str]
    #: Sort keys, largest first: (published, id) and (popularity, published,
    #: id); published in microseconds since 1970, exact as in the databases.
    newest: tuple[int, int]
    popular: tuple[int, int, int]

    def score(self, matched: list[tuple[set[str], str]]) -> int:
        """Each term adds the weights of the fields holding one of its words,
        and again those of the fields holding its very word."""
        score = 0
        for found, word in matched:
            exact = self.masks.get(word, 0)
            fields = exact
            if len(found) <= len(self.masks):
                for w in found:
                    fields |= self.masks.get(w, 0)
            else:
                for w, bits in self.masks.items():
                    if w in found:
                        fields |= bits
            score += _MASK_WEIGHTS[fields] + _MASK_WEIGHTS[exact]
        return score


class MemorySearchIndex:
    """SearchIndex in a dict: postings (word -> packs) and the sorted
    vocabulary for prefixes and typos. For memory:// and tests; one process."""

    def __init__(self) -> None:
        self._entries: dict[uuid.UUID, _Entry] = {}
        self._postings: dict[str, set[uuid.UUID]] = {}
        #: Every word of every document, sorted: a prefix is a range of it.
        self._vocabulary: list[str] = []

    async def upsert(self, document: PackDocument) -> None:
        self._forget(document.pack_id)
        masks: dict[str, int] = {}
        for i, field in enumerate(document_fields(document)):
            for word in field:
                masks[word] = masks.get(word, 0) | 1 << i
        published = (document.published_at - _EPOCH) // timedelta(microseconds=1)
        entry = _Entry(document, masks, frozenset(t.lower() for t in document.tags),
                       (published, document.pack_id.int),
                       (document.popularity, published, document.pack_id.int))
        self._entries[document.pack_id] = entry
        for word in masks:
            holders = self._postings.setdefault(word, set())
            if not holders:
                bisect.insort(self._vocabulary, word)
            holders.add(document.pack_id)

    async def remove(self, pack_id: uuid.UUID) -> None:
        self._forget(pack_id)

    def _forget(self, pack_id: uuid.UUID) -> None:
        entry = self._entries.pop(pack_id, None)
        if entry is None:
            return
        for word in entry.masks:
            holders = self._postings[word]
            holders.discard(pack_id)
            if not holders:
                del self._postings[word]
                del self._vocabulary[bisect.bisect_left(self._vocabulary, word)]

    def _starting_with(self, prefix: str) -> list[str]:
        first = bisect.bisect_left(self._vocabulary, prefix)
        last = bisect.bisect_left(self._vocabulary, prefix + "\U0010ffff", first)
        return self._vocabulary[first:last]

    async def _unmatched(self, query_words: list[str]) -> set[str]:
        return {w for w in query_words if not self._starting_with(w)}

    def _passes(self, entry: _Entry, query: SearchQuery) -> bool:
        d = entry.document
        return ((query.content_type is None or query.content_type in d.content_types)
                and (query.price_type is None or d.price_type == query.price_type)
                and (query.creator_id is None or d.creator_id == query.creator_id)
                and (query.tag is None or query.tag.lower() in entry.tags))

    async def _run(self, query: SearchQuery, terms: list[Term]) -> SearchPage:
        # Each term: the vocabulary words it matches, and its exact word.
        matched: list[tuple[set[str], str]] = []
        for term in terms:
            found = (corrections(term.word, self._vocabulary) if term.typo
                     else self._starting_with(term.word))
            if not found:
                return SearchPage([], False)
            matched.append((set(found), term.word))
        if matched:
            ids: set[uuid.UUID] | None = None
            for found, _ in matched:
                holders = set().union(*(self._postings[w] for w in found))
                ids = holders if ids is None else ids & holders
            candidates = [self._entries[i] for i in ids or ()]
        else:
            candidates = list(self._entries.values())
        entries = [e for e in candidates if self._passes(e, query)]
        wanted = query.offset + query.limit + 1
        if query.order is SearchOrder.POPULARITY:
            best = heapq.nlargest(wanted, entries, key=attrgetter("popular"))
        elif query.order is SearchOrder.RELEVANCE and matched:
            ranked = [((e.score(matched), e.newest), e) for e in entries]
            best = [e for _, e in heapq.nlargest(wanted, ranked, key=itemgetter(0))]
        else:
            best = heapq.nlargest(wanted, entries, key=attrgetter("newest"))
        return page_of([e.document.pack_id for e in best[query.offset:]], query)

    async def search(self, query: SearchQuery) -> SearchPage:
        return await search_words_then_typos(
            query, lambda terms: self._run(query, terms), self._unmatched)

    async def close(self) -> None:
        self._entries.clear()
        self._postings.clear()
        self._vocabulary.clear()
