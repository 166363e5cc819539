"""The marketplace's search index under load: N generated packs (seeded:
titles, descriptions, tags and creators from word lists, plus made-up place
and practice names for a vocabulary of a few thousand words) loaded into
each adapter, then the same mixed queries against each, one at a time:

  word      one or two words as they are in the packs
  prefix    the start of a word ("medit")
  typo      a word of five letters or more with one edit (two from eight)
  filtered  a word with a content type, price, tag or creator filter
  browse    no text: a filter or none, ordered by newest or popularity

and prints, per backend, the load rate and the latency of the queries
(p50/p95/p99 in ms) and queries per second, per kind and in all. Queries
ordered by newest or popularity must give the same page on every backend
(relevance may rank differently: bm25, ts_rank and the memory scores are
different formulas): the run checks it and says so.

    .venv/bin/python -m bench.search [--packs 10000] [--queries 1000]

PostgreSQL (127.0.0.1:5432, user postgres) is measured when it is there, in
a database made for the run and dropped after. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.memory.search import MemorySearchIndex, words  # noqa: E402
from adapters.sql.engine import create_engine, dispose_engine  # noqa: E402
from adapters.sql.migrate import migrate  # noqa: E402
from adapters.sql.search import sql_search_index  # noqa: E402
from core.catalog.search import PackDocument, SearchOrder, SearchQuery  # noqa: E402
from ports.catalog import SearchIndex  # noqa: E402

ADJECTIVES = """deep gentle calm quiet morning evening peaceful mindful restful healing
soothing guided daily simple slow bright grounded loving confident focused tender
radiant steady warm soft open clear golden silent sacred joyful""".split()
NOUNS = """sleep meditation breathing affirmations ritual journey practice reset retreat
visualization scan walk reflection gratitude release rest awakening balance clarity
stillness mantra chant stretch flow prayer intention journal sanctuary""".split()
GOALS = """anxiety stress focus confidence self-love sleep energy creativity resilience
letting-go healing forgiveness abundance motivation presence kids students parents
athletes grief anger burnout insomnia panic loneliness patience courage""".split()
VERBS = """release embrace find build welcome notice soften restore ease quiet ground
breathe return settle nourish strengthen awaken explore honour trust""".split()
OBJECTS = """tension worry your-breath inner-peace the-body the-mind your-heart old-habits
the-day racing-thoughts your-shoulders the-present-moment self-doubt your-voice
gratitude the-night""".split()
TAGS = """sleep anxiety focus morning evening kids stress gratitude confidence healing
breathwork yoga walking mantra journaling grief energy calm nature rain ocean forest
students beginners advanced short long""".split()
FIRST = """Ann Bob Chloe Dara Elif Femi Gita Hugo Ines Jonas Kemal Lea Mira Noah Olu
Priya Quinn Rosa Sven Tomas Uma Vera Wen Xavi Yara Zoe Amara Bruno Céline Dmitri""".split()
LAST = """Lee Moreau Okafor Tanaka Schmidt Rossi Novak Silva Haddad Kowalski Nguyen
Larsen Dubois Costa Fischer Ibrahim Jensen Kaur Lopez Mendes""".split()
SYLLABLES = "ka lo mi re na su ta vi ro el an or is ur al en sha tho ven dri mor qua".split()
CONTENT_TYPES = ("affirmation", "guided_meditation", "ritual")
PRICES = ("free", "one_time", "subscription")
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def made_up(rng: random.Random) -> str:
    """A place or practice name: the long tail of a real vocabulary."""
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def generate(n: int, rng: random.Random) -> list[PackDocument]:
    names = [made_up(rng) for _ in range(max(50, n // 4))]
    creators = [(uuid.UUID(int=rng.getrandbits(128)), f"{rng.choice(FIRST)} {rng.choice(LAST)}")
                for _ in range(max(10, n // 50))]
    packs = []
    for _ in range(n):
        title = (f"{rng.choice(ADJECTIVES).capitalize()} {rng.choice(NOUNS).capitalize()} "
                 f"for {rng.choice(GOALS).replace('-', ' ').title()}")
        if rng.random() < 0.3:
            title += f" in {rng.choice(names)}"
        sentences = [
            f"A {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} to {rng.choice(VERBS)} "
            f"{rng.choice(OBJECTS).replace('-', ' ')}."
            for _ in range(rng.randint(2, 4))]
        if rng.random() < 0.5:
            sentences.append(f"Recorded in {rng.choice(names)} with {rng.choice(names)}.")
        creator_id, creator_name = rng.choice(creators)
        packs.append(PackDocument(
            pack_id=uuid.UUID(int=rng.getrandbits(128)), title=title,
            description=" ".join(sentences), creator_id=creator_id, creator_name=creator_name,
            tags=tuple(rng.sample(TAGS, rng.randint(1, 4))),
            content_types=tuple(sorted(rng.sample(CONTENT_TYPES, rng.randint(1, 2)))),
            price_type=rng.choices(PRICES, (5, 3, 2))[0],
            published_at=T0 + timedelta(seconds=rng.randint(0, 2 * 365 * 86400)),
            popularity=int(rng.paretovariate(1.2)) - 1))
    return packs


def misspell(word: str, rng: random.Random) -> str:
    """`word` with one edit (two when it has eight letters or more) that
    leaves it matching no word of the packs as it is or as a prefix."""
    for _ in range(2 if len(word) >= 8 else 1):
        i = rng.randrange(len(word) - 1)
        kind = rng.choice("swap replace delete insert".split())
        if kind == "swap":
            word = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        elif kind == "replace":
            word = word[:i] + rng.choice("aeioutrnsl") + word[i + 1:]
        elif kind == "delete":
            word = word[:i] + word[i + 1:]
        else:
            word = word[:i] + rng.choice("aeioutrnsl") + word[i:]
    return word


@dataclass(frozen=True)
class Query:
    kind: str
    query: SearchQuery


def queries(packs: list[PackDocument], n: int, rng: random.Random) -> list[Query]:
    vocabulary = sorted({w for p in packs for w in words(
        f"{p.title} {p.description} {p.creator_name} {' '.join(p.tags)}")})
    known = set(vocabulary)
    long_words = [w for w in vocabulary if len(w) >= 5 and w.isalpha()]
    made: list[Query] = []
    while len(made) < n:
        kind = rng.choices(["word", "prefix", "typo", "filtered", "browse"], (3, 2, 2, 2, 1))[0]
        source = rng.choice(packs)
        own = words(f"{source.title} {source.description}")
        if kind == "word":
            text = " ".join(rng.sample(own, min(len(own), rng.randint(1, 2))))
            made.append(Query(kind, SearchQuery(text=text)))
        elif kind == "prefix":
            word = rng.choice([w for w in own if len(w) >= 4] or own)
            made.append(Query(kind, SearchQuery(text=word[:max(2, len(word) * 2 // 3)])))
        elif kind == "typo":
            typo = misspell(rng.choice(long_words), rng)
            if typo in known or any(w.startswith(typo) for w in vocabulary):
                continue  # still a word: not a typo
            made.append(Query(kind, SearchQuery(text=typo)))
        elif kind == "filtered":
            option = rng.choice([
                {"content_type": rng.choice(CONTENT_TYPES)}, {"price_type": rng.choice(PRICES)},
                {"tag": rng.choice(source.tags)}, {"creator_id": source.creator_id}])
            made.append(Query(kind, SearchQuery(text=rng.choice(own), order=rng.choice(
                list(SearchOrder)), **option)))
        else:
            option = rng.choice([{}, {"content_type": rng.choice(CONTENT_TYPES)},
                                 {"tag": rng.choice(TAGS)}, {"price_type": rng.choice(PRICES)}])
            made.append(Query(kind, SearchQuery(
                order=rng.choice([SearchOrder.NEWEST, SearchOrder.POPULARITY]),
                offset=rng.choice([0, 0, 0, 20, 100]), **option)))
    return made


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


@dataclass
class Measured:
    backend: str
    load_seconds: float
    #: Seconds per query, by kind.
    seconds: dict[str, list[float]]
    pages: list[list[uuid.UUID]]


async def measure(name: str, index: SearchIndex, packs: list[PackDocument],
                  load_concurrency: int, asked: list[Query]) -> Measured:
    started = time.perf_counter()
    todo = iter(packs)

    async def loader() -> None:
        for document in todo:
            await index.upsert(document)

    await asyncio.gather(*(loader() for _ in range(load_concurrency)))
    load_seconds = time.perf_counter() - started
    for q in asked[:20]:  # warm-up: connections, statement caches
        await index.search(q.query)
    seconds: dict[str, list[float]] = defaultdict(list)
    pages = []
    for q in asked:
        started = time.perf_counter()
        page = await index.search(q.query)
        seconds[q.kind].append(time.perf_counter() - started)
        pages.append(page.pack_ids)
    return Measured(name, load_seconds, seconds, pages)


@asynccontextmanager
async def memory() -> AsyncIterator[SearchIndex]:
    yield MemorySearchIndex()


@asynccontextmanager
async def sqlite() -> AsyncIterator[SearchIndex]:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/bench.db"
        migrate(url)
        engine = create_engine(url)
        try:
            yield sql_search_index(engine)
        finally:
            await dispose_engine(engine)


@asynccontextmanager
async def postgres() -> AsyncIterator[SearchIndex]:
    import psycopg

    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    name = f"waqup_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        migrate(url)
        engine = create_engine(url)
        try:
            yield sql_search_index(engine)
        finally:
            await dispose_engine(engine)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_reachable() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def report(result: Measured, packs: int) -> None:
    every = [s for spent in result.seconds.values() for s in spent]
    print(f"\n{result.backend}: loaded {packs} packs in {result.load_seconds:.1f} s "
          f"({packs / result.load_seconds:.0f} packs/s)")
    print(f"  {'queries':<10} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'q/s':>8}")
    for kind, spent in [*sorted(result.seconds.items()), ("all", every)]:
        print(f"  {kind:<10} {len(spent):>5} {pct(spent, 50) * 1e3:>8.2f} "
              f"{pct(spent, 95) * 1e3:>8.2f} {pct(spent, 99) * 1e3:>8.2f} "
              f"{len(spent) / sum(spent):>8.0f}")


async def main(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    packs = generate(args.packs, rng)
    asked = queries(packs, args.queries, rng)
    vocabulary = {w for p in packs for w in words(
        f"{p.title} {p.description} {p.creator_name} {' '.join(p.tags)}")}
    print(f"{len(packs)} packs, {len(vocabulary)} distinct words; {len(asked)} queries "
          f"(seed {args.seed})")
    backends: list[tuple[str, Callable[[], AbstractAsyncContextManager[SearchIndex]], int]] = [
        ("memory", memory, 1), ("sqlite", sqlite, 1)]
    if postgres_reachable():
        backends.append(("postgres", postgres, 8))
    else:
        print("PostgreSQL is not reachable on 127.0.0.1:5432: not measured")
    results = []
    for name, opened, concurrency in backends:
        async with opened() as index:
            results.append(await measure(name, index, packs, concurrency, asked))
        report(results[-1], len(packs))
    ordered = [i for i, q in enumerate(asked) if q.query.order is not SearchOrder.RELEVANCE]
    reference = results[0]
    failed = 0
    for result in results[1:]:
        differ = [i for i in ordered if result.pages[i] != reference.pages[i]]
        failed += len(differ)
        print(f"\n{result.backend}: {len(ordered) - len(differ)}/{len(ordered)} pages ordered "
              f"by newest or popularity identical to memory's")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packs", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    sys.exit(asyncio.run(main(parser.parse_args())))
