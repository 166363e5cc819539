"""The numpy all-MiniLM-L6-v2 against what sentence-transformers publishes for
that model, then the properties recommendations rely on: unit vectors, batch
results equal to single ones, long texts truncated where the model's config
says, and the event loop kept free while it works."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest

from adapters.embeddings import DIMENSION, MiniLmEmbedder

MEDITATION = ("A calm guided meditation to help you relax your body and fall asleep "
              "at the end of a long day.")
PARAPHRASE = "An evening meditation that eases tension and guides you gently into sleep."
UNRELATED = "Quarterly revenue grew by eight percent thanks to strong sales of trucks."


@pytest.fixture(scope="session")
def embedder() -> MiniLmEmbedder:
    """One embedder for the session: loading the weights is the slow part."""
    return MiniLmEmbedder()


def cos(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))


async def test_it_reproduces_the_published_similarities_of_the_model(
        embedder: MiniLmEmbedder) -> None:
    # sentence-transformers' README prints this matrix for all-MiniLM-L6-v2.
    e = await embedder.embed(["The weather is lovely today.", "It's so sunny outside!",
                              "He drove to the stadium."])
    expected = [[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]]
    got = [[cos(a, b) for b in e] for a in e]
    assert np.allclose(got, expected, atol=1e-3), got
    # The first components of "hello world", as fastembed's tests hold them
    # for this model (pooling, normalisation and tokenizer all show here).
    (hello,) = await embedder.embed(["hello world"])
    assert np.allclose(hello[:5], [-0.034478, 0.03102, 0.00673, 0.02611, -0.039362], atol=1e-4)


async def test_vectors_are_unit_length_and_384_wide(embedder: MiniLmEmbedder) -> None:
    vectors = await embedder.embed(["", "a", MEDITATION, "ünïcödé ✨ 🙂 text"])
    assert [len(v) for v in vectors] == [DIMENSION] * 4
    assert all(math.isclose(float(np.linalg.norm(v)), 1.0, abs_tol=1e-5) for v in vectors)
    assert await embedder.embed([]) == []


async def test_similar_meanings_are_closer_than_different_ones(embedder: MiniLmEmbedder) -> None:
    food, bread, horse = await embedder.embed([
        "A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse."])
    assert cos(food, bread) > cos(food, horse) + 0.3
    meditation, paraphrase, unrelated = await embedder.embed([MEDITATION, PARAPHRASE, UNRELATED])
    assert cos(meditation, paraphrase) > 0.5
    assert cos(meditation, unrelated) < 0.15


async def test_a_batch_gives_what_each_text_gives_alone_in_order(
        embedder: MiniLmEmbedder) -> None:
    # 40 texts of different lengths: two batches, each padded to its longest.
    texts = [f"{MEDITATION[: 10 + 3 * n]} {n}" for n in range(40)]
    together = np.array(await embedder.embed(texts))
    alone = np.array([(await embedder.embed([text]))[0] for text in texts])
    assert np.abs(together - alone).max() < 1e-5
    assert np.array_equal(together, np.array(await embedder.embed(texts)))  # deterministic


async def test_texts_are_read_up_to_256_tokens(embedder: MiniLmEmbedder) -> None:
    filler = " ".join(["breathe"] * 200)  # one token each
    early, early_other, late, late_other = await embedder.embed([
        f"{filler} and rest", f"{filler} and run",  # differ at token ~202: past 128, read
        f"{filler} {filler} and rest", f"{filler} {filler} and run",  # differ past 256: cut
    ])
    assert cos(early, early_other) < 0.9999
    assert np.allclose(late, late_other, atol=1e-6)


async def test_the_event_loop_keeps_running_while_it_embeds(embedder: MiniLmEmbedder) -> None:
    await embedder.warm_up()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    before = ticks
    await embedder.embed([MEDITATION * 4] * 16)
    ticker.cancel()
    assert ticks - before >= 5


async def test_it_loads_the_model_on_first_use(tmp_path: Path) -> None:
    missing = MiniLmEmbedder(tmp_path / "no-model")  # constructing reads nothing
    with pytest.raises(FileNotFoundError):
        await missing.embed(["hello"])
