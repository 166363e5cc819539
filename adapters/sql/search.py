"""The marketplace's SearchIndex on SQL: PostgreSQL full-text search (a
weighted tsvector and GIN indexes, pg_trgm for typos) and SQLite FTS5.

Both follow the text rules of adapters/memory/search.py. The adapter folds
and splits the text into words in Python (one definition of a word for all
adapters) and hands the database words only: the user's text never reaches
a tsquery or FTS5 query as syntax, each word goes in quoted, so quotes,
operators (`& | ! : * ( )`, AND/OR/NOT/NEAR) and control characters cannot
cause a syntax error; every value is a bound parameter.

A query runs once with each word matched as a word or a prefix. Only when
that finds nothing are the words that match nothing in the whole index
looked up in the vocabulary (`pack_search_words`) for the words they may be
typos of, and the query runs again with those. PostgreSQL finds the
candidates through the vocabulary's trigram index (`%`, with the similarity
threshold lowered to the least similarity a word that many edits away can
have); SQLite, which has no similarity index, reads the words of a near
length. Python keeps the candidates within the edit budget.

Writes keep the vocabulary's counts: each document stores its distinct
words, so a change adds the new words and takes back the old ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    Text,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    select,
    table,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.memory.search import (
    FIELD_WEIGHTS,
    Term,
    corrections,
    document_fields,
    length_window,
    page_of,
    search_words_then_typos,
    typo_budget,
    within_edits,
)
from adapters.sql.schema import pack_search, pack_search_words
from adapters.sql.uow import SqlUnitOfWork, upsert_insert
from core.catalog.search import PackDocument, SearchOrder, SearchPage, SearchQuery


def sql_search_index(engine: AsyncEngine) -> SqlSearchIndex:
    """The SearchIndex of `engine`'s database (PostgreSQL or SQLite)."""
    if engine.dialect.name == "postgresql":
        return PostgresSearchIndex(engine)
    if engine.dialect.name == "sqlite":
        return SqliteSearchIndex(engine)
    raise NotImplementedError(f"no search index on {engine.dialect.name}")


class _Read(SqlUnitOfWork):
    """A read-only unit of work (SQLite's readers on the loop's thread,
    PostgreSQL's autocommit connections), for the search queries."""

    reader: Any

    def _open(self, conn: AsyncConnection) -> None:
        self.reader = conn


def _values(document: PackDocument, words: Sequence[str]) -> dict[str, Any]:
    return {"pack_id": document.pack_id, "title": document.title,
            "description": document.description, "creator_id": document.creator_id,
            "creator_name": document.creator_name,
            "tags": [t.lower() for t in document.tags],
            "content_types": list(document.content_types), "price_type": document.price_type,
            "published_at": document.published_at, "popularity": document.popularity,
            "words": " ".join(words)}


def _count_statement(conn: AsyncConnection) -> Any:
    """An upsert adding `documents` to a word's count, run with one row of
    parameters per word (executemany: compiled once, whatever the count)."""
    t = pack_search_words
    stmt = upsert_insert(conn, t).values(word=bindparam("word"),
                                         documents=bindparam("documents"))
    return stmt.on_conflict_do_update(
        index_elements=[t.c.word], set_={"documents": t.c.documents + stmt.excluded.documents})


class SqlSearchIndex:
    """What both dialects share: the order of work, the vocabulary's counts,
    the filters and the orders. Subclasses hold the text index's statements."""

    #: pack_search as the dialect has it.
    table: Any = pack_search

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    # --- writes ---------------------------------------------------------------------

    async def upsert(self, document: PackDocument) -> None:
        fields = document_fields(document)
        distinct = sorted(set().union(*fields))
        async with self._engine.begin() as conn:
            old = await self._write(conn, _values(document, distinct), fields)
            old_words = set(old.split()) if old is not None else set()
            await self._count(conn, added=set(distinct) - old_words,
                              removed=old_words - set(distinct))

    async def remove(self, pack_id: uuid.UUID) -> None:
        async with self._engine.begin() as conn:
            old = await self._delete(conn, pack_id)
            if old is not None:
                await self._count(conn, added=set(), removed=set(old.split()))

    async def _write(self, conn: AsyncConnection, values: dict[str, Any],
                     fields: tuple[list[str], ...]) -> str | None:
        """Write the document (row and text index); the words it had, if any."""
        raise NotImplementedError

    async def _delete(self, conn: AsyncConnection, pack_id: uuid.UUID) -> str | None:
        """Delete the document (row and text index); the words it had, if any."""
        raise NotImplementedError

    @staticmethod
    async def _count(conn: AsyncConnection, *, added: set[str], removed: set[str]) -> None:
        """Move the vocabulary's counts, the rows in word order (concurrent
        writers lock shared words in the same order, so they cannot
        deadlock), then drop the words no document holds any more."""
        if not added and not removed:
            return
        deltas = sorted([(w, 1) for w in added] + [(w, -1) for w in removed])
        await conn.execute(_count_statement(conn),
                           [{"word": w, "documents": d} for w, d in deltas])
        if removed:
            t = pack_search_words
            await conn.execute(delete(t).where(t.c.word.in_(sorted(removed)),
                                               t.c.documents <= 0))

    # --- reads ----------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> SearchPage:
        async with _Read(self._engine, read_only=True) as read:
            return await search_words_then_typos(
                query, lambda terms: self._run(read.reader, query, terms),
                lambda words: self._unmatched(read.reader, words))

    async def _run(self, conn: Any, query: SearchQuery, terms: list[Term]) -> SearchPage:
        found: dict[str, list[str]] = {}
        typos = [t.word for t in terms if t.typo]
        if typos:
            found = await self._corrections(conn, typos)
            if any(not found.get(w) for w in typos):
                return SearchPage([], False)
        statement = self._select(query, terms, found)
        statement = statement.limit(query.limit + 1).offset(query.offset)
        return page_of([row[0] for row in await conn.execute(statement)], query)

    def _select(self, query: SearchQuery, terms: list[Term],
                found: dict[str, list[str]]) -> Any:
        """The page's statement, without limit and offset: text match and
        relevance from the subclass, filters and orders from here."""
        s = self.table
        statement = select(s.c.pack_id)
        if query.price_type is not None:
            statement = statement.where(s.c.price_type == query.price_type)
        if query.creator_id is not None:
            statement = statement.where(s.c.creator_id == query.creator_id)
        if query.content_type is not None:
            statement = statement.where(self._holds(s.c.content_types, query.content_type))
        if query.tag is not None:
            statement = statement.where(self._holds(s.c.tags, query.tag.lower()))
        relevance = None
        if terms:
            statement, relevance = self._match(statement, terms, found)
        tail = (s.c.published_at.desc(), s.c.pack_id.desc())
        if query.order is SearchOrder.POPULARITY:
            return statement.order_by(s.c.popularity.desc(), *tail)
        if query.order is SearchOrder.RELEVANCE and relevance is not None:
            return statement.order_by(relevance, *tail)
        return statement.order_by(*tail)

    def _holds(self, column: Any, value: str) -> Any:
        """Whether the JSON list in `column` holds `value`."""
        raise NotImplementedError

    def _match(self, statement: Any, terms: list[Term],
               found: dict[str, list[str]]) -> tuple[Any, Any]:
        """`statement` kept to the documents every term matches, and the
        ORDER BY expression of relevance (best first)."""
        raise NotImplementedError

    async def _unmatched(self, conn: Any, words: list[str]) -> set[str]:
        """The words that match no document as a word or a prefix."""
        raise NotImplementedError

    async def _corrections(self, conn: Any, words: list[str]) -> dict[str, list[str]]:
        """For each word, the vocabulary's words it may be a typo of."""
        raise NotImplementedError

    async def close(self) -> None:
        """Nothing to close: the engine is the caller's."""


# --- PostgreSQL -------------------------------------------------------------------------

_SIMPLE = literal_column("'simple'::regconfig")
#: ts_rank's weights of D, C, B, A: description (C) 1, tags and creator (B) 2,
#: title (A) 4, as FIELD_WEIGHTS says (scaled to at most 1); D is unused.
_C, _B = (FIELD_WEIGHTS[3] / FIELD_WEIGHTS[0], FIELD_WEIGHTS[1] / FIELD_WEIGHTS[0])
_RANK_WEIGHTS = literal_column(f"'{{0.1, {_C:.3f}, {_B:.3f}, 1.0}}'::float4[]")

#: pack_search as PostgreSQL has it: with the text index's column.
_pg_search = pack_search.to_metadata(MetaData())
_pg_search.append_column(Column("search_vector", postgresql.TSVECTOR, nullable=False))

_UNMATCHED_PG = text(
    "SELECT q.word FROM unnest(CAST(:words AS text[]), CAST(:queries AS text[])) "
    "AS q(word, query) WHERE NOT EXISTS (SELECT 1 FROM pack_search "
    "WHERE search_vector @@ to_tsquery('simple', q.query))")
_SIMILAR_PG = text(
    "SELECT q.word, v.word FROM unnest(CAST(:words AS text[]), CAST(:shortest AS int[]), "
    "CAST(:longest AS int[])) AS q(word, shortest, longest) "
    "JOIN pack_search_words AS v ON v.word % q.word "
    "AND length(v.word) BETWEEN q.shortest AND q.longest")


def _lexeme(word: str) -> str:
    """`word` quoted as a tsquery lexeme."""
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def least_similarity(word: str) -> float:
    """The least pg_trgm similarity a word within `word`'s edit budget can
    have with it. pg_trgm pads a word of n letters into n + 1 trigrams; an
    edit changes at most four of them (a swap of neighbours; a replacement
    three), so `budget` edits leave at least n + 1 - 4 * budget in common
    (at least one, for the budgets typo_budget gives), of at most
    2n + 2 + budget distinct trigrams in all. (It takes the trigrams to be
    distinct, as they are unless a word repeats three letters in a row.)"""
    n, budget = len(word), typo_budget(word)
    shared = max(1, n + 1 - 4 * budget)
    return shared / (2 * n + 2 + budget - shared)


class PostgresSearchIndex(SqlSearchIndex):
    table = _pg_search

    def _vector(self, fields: tuple[list[str], ...]) -> Any:
        title, tags, creator, description = (" ".join(f) for f in fields)

        def weighted(words: str, weight: str) -> Any:
            return func.setweight(func.to_tsvector(_SIMPLE, literal(words, Text)),
                                  literal_column(f"'{weight}'"))

        return (weighted(title, "A").op("||")(weighted(f"{tags} {creator}", "B"))
                .op("||")(weighted(description, "C")))

    async def _write(self, conn: AsyncConnection, values: dict[str, Any],
                     fields: tuple[list[str], ...]) -> str | None:
        t = _pg_search
        values = {**values, "search_vector": self._vector(fields)}
        # A new document goes in at once; ON CONFLICT waits for a concurrent
        # writer of the same pack, so two never both take it for new. A row
        # there is locked before it is read and replaced; if a concurrent
        # remove took it meanwhile, the document goes in as new after all.
        while True:
            added = (await conn.execute(postgresql.insert(t).values(**values)
                                        .on_conflict_do_nothing(index_elements=[t.c.pack_id])
                                        .returning(t.c.pack_id))).first()
            if added is not None:
                return None
            old = await conn.scalar(select(t.c.words)
                                    .where(t.c.pack_id == values["pack_id"]).with_for_update())
            if old is not None:
                await conn.execute(update(t).where(t.c.pack_id == values["pack_id"])
                                   .values(**values))
                return old

    async def _delete(self, conn: AsyncConnection, pack_id: uuid.UUID) -> str | None:
        t = pack_search
        return await conn.scalar(delete(t).where(t.c.pack_id == pack_id).returning(t.c.words))

    def _holds(self, column: Any, value: str) -> Any:
        return column.op("@>")(func.jsonb_build_array(literal(value, Text)))

    def _match(self, statement: Any, terms: list[Term],
               found: dict[str, list[str]]) -> tuple[Any, Any]:
        vector = _pg_search.c.search_vector
        matches, prefixes, exact = [], [], []
        for term in terms:
            if term.typo:
                lexemes = [_lexeme(w) for w in found[term.word]]
                matches.append("(" + " | ".join(lexemes) + ")")
                exact.extend(lexemes)
            else:
                matches.append(_lexeme(term.word) + ":*")
                prefixes.append(_lexeme(term.word) + ":*")
                exact.append(_lexeme(term.word))

        def query(parts: list[str], operator: str) -> Any:
            return func.to_tsquery(_SIMPLE, literal(f" {operator} ".join(parts), Text))

        statement = statement.where(vector.op("@@")(query(matches, "&")))
        # Ranked with OR queries (ts_rank weighs an AND query by how close its
        # words stand, which means nothing across fields); a word met exactly
        # counts again on top of the prefix match, as in the other adapters.
        relevance = func.ts_rank(_RANK_WEIGHTS, vector, query(exact, "|"))
        if prefixes:
            relevance = relevance + func.ts_rank(_RANK_WEIGHTS, vector, query(prefixes, "|"))
        return statement, relevance.desc()

    async def _unmatched(self, conn: Any, words: list[str]) -> set[str]:
        rows = await conn.execute(_UNMATCHED_PG, {
            "words": words, "queries": [_lexeme(w) + ":*" for w in words]})
        return {row[0] for row in rows}

    async def _corrections(self, conn: Any, words: list[str]) -> dict[str, list[str]]:
        windows = [length_window(w) for w in words]
        # The threshold is a setting, local to this transaction: a connection
        # of its own (read connections are in autocommit), rolled back on close.
        async with self._engine.connect() as own:
            await own.execute(text("SELECT set_config('pg_trgm.similarity_threshold', "
                                   ":threshold, true)"),
                              {"threshold": f"{min(map(least_similarity, words)) - 1e-4:.4f}"})
            rows = (await own.execute(_SIMILAR_PG, {
                "words": words, "shortest": [lo for lo, _ in windows],
                "longest": [hi for _, hi in windows]})).all()
        found: dict[str, list[str]] = {w: [] for w in words}
        for word, candidate in rows:
            if within_edits(word, candidate, typo_budget(word)):
                found[word].append(candidate)
        return found


# --- SQLite -----------------------------------------------------------------------------

_fts = table("pack_search_fts", Column("rowid", BigInteger))
_BM25 = text("bm25(pack_search_fts, {:.1f}, {:.1f}, {:.1f}, {:.1f})".format(*FIELD_WEIGHTS))
_FTS_INSERT = text("INSERT INTO pack_search_fts (rowid, title, tags, creator_name, description) "
                   "VALUES (:doc, :title, :tags, :creator_name, :description)")
_FTS_DELETE = text("DELETE FROM pack_search_fts WHERE rowid = :doc")
_FTS_ANY = text("SELECT 1 FROM pack_search_fts WHERE pack_search_fts MATCH :match LIMIT 1")
_NEAR_LENGTH = text("SELECT word FROM pack_search_words WHERE length(word) BETWEEN :shortest "
                    "AND :longest")


def _phrase(word: str) -> str:
    """`word` quoted as an FTS5 string (no bareword, so no operator)."""
    return '"' + word.replace('"', '""') + '"'


class SqliteSearchIndex(SqlSearchIndex):
    async def _write(self, conn: AsyncConnection, values: dict[str, Any],
                     fields: tuple[list[str], ...]) -> str | None:
        # Writers hold SQLite's write lock from BEGIN IMMEDIATE: no one else
        # takes a doc number or changes the row meanwhile.
        t = pack_search
        old = (await conn.execute(select(t.c.doc, t.c.words)
                                  .where(t.c.pack_id == values["pack_id"]))).first()
        if old is None:
            doc = (await conn.scalar(select(func.coalesce(func.max(t.c.doc), 0)))) + 1
            await conn.execute(insert(t).values(**values, doc=doc))
        else:
            doc = old.doc
            await conn.execute(update(t).where(t.c.pack_id == values["pack_id"])
                               .values(**values))
            await conn.execute(_FTS_DELETE, {"doc": doc})
        title, tags, creator, description = (" ".join(f) for f in fields)
        await conn.execute(_FTS_INSERT, {"doc": doc, "title": title, "tags": tags,
                                         "creator_name": creator, "description": description})
        return old.words if old is not None else None

    async def _delete(self, conn: AsyncConnection, pack_id: uuid.UUID) -> str | None:
        t = pack_search
        old = (await conn.execute(delete(t).where(t.c.pack_id == pack_id)
                                  .returning(t.c.doc, t.c.words))).first()
        if old is None:
            return None
        await conn.execute(_FTS_DELETE, {"doc": old.doc})
        return old.words

    def _holds(self, column: Any, value: str) -> Any:
        items = func.json_each(column).table_valued("value")
        return exists().where(items.c.value == value)

    def _match(self, statement: Any, terms: list[Term],
               found: dict[str, list[str]]) -> tuple[Any, Any]:
        parts = []
        for term in terms:
            if term.typo:
                parts.append("(" + " OR ".join(_phrase(w) for w in found[term.word]) + ")")
            else:
                # The word again beside its prefix: bm25 counts an exact match twice.
                parts.append(f"({_phrase(term.word)} OR {_phrase(term.word)}*)")
        joined = pack_search.join(_fts, _fts.c.rowid == pack_search.c.doc)
        statement = statement.select_from(joined).where(
            text("pack_search_fts MATCH :match").bindparams(
                bindparam("match", " AND ".join(parts))))
        return statement, _BM25  # bm25: the lower, the better

    async def _unmatched(self, conn: Any, words: list[str]) -> set[str]:
        missing = set()
        for word in words:
            if (await conn.execute(_FTS_ANY, {"match": _phrase(word) + "*"})).first() is None:
                missing.add(word)
        return missing

    async def _corrections(self, conn: Any, words: list[str]) -> dict[str, list[str]]:
        found = {}
        for word in words:
            shortest, longest = length_window(word)
            rows = await conn.execute(_NEAR_LENGTH, {"shortest": shortest, "longest": longest})
            found[word] = corrections(word, (row[0] for row in rows))
        return found

