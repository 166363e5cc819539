"""Creation, stage by stage (issue 8's figures): conversation turn latency,
text generation (the offline composer; and an OpenAI-compatible server, the
scripted one of the tests, for the client's own overhead), render time and
real-time factor, upload, and the pipeline's own overhead excluding the
writer and the voice; then a 10-minute guided meditation with the embedded
voice, from confirm to READY.

In-process (no Envoy): the stages are timed where they run. Playback
through Envoy is a scenario of bench/run.py.

    .venv/bin/python bench/creation.py [--turns 40] [--texts 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.credits.model import TransactionType  # noqa: E402
from core.library.model import ItemState  # noqa: E402
from core.shared.creation import Brief, ContentType  # noqa: E402


class Timed:
    """Wraps a writer or a voice and adds up the seconds spent inside it."""

    def __init__(self, inner: Any, method: str) -> None:
        self._inner = inner
        self._method = method
        self.seconds = 0.0
        self.calls: list[float] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name != self._method:
            return attribute

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await attribute(*args, **kwargs)
            finally:
                spent = time.perf_counter() - started
                self.seconds += spent
                self.calls.append(spent)

        return timed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def create(container: Any, user: uuid.UUID, brief: Brief) -> tuple[float, Any]:
    library = container.service("library")
    started = time.perf_counter()
    item = await library.start_creation(user, f"bench:{uuid.uuid4()}", brief)
    while item.state.busy:
        await asyncio.sleep(0.005)
        item = await library.get(user, item.id)
    return time.perf_counter() - started, item


async def main(args: argparse.Namespace) -> int:
    from adapters.audio import mp3
    from adapters.offline_llm.composer import OfflineComposer
    from adapters.piper.speech import PiperSynthesizer
    from adapters.sql.migrate import migrate
    from services.runtime.bootstrap import build
    from services.runtime.settings import Settings

    encoding = {"seconds": 0.0}
    plain_encode = mp3.LameMp3Encoder.encode

    def timed_encode(self: Any, pcm: bytes, sample_rate: int) -> Any:
        started = time.perf_counter()
        try:
            return plain_encode(self, pcm, sample_rate)
        finally:
            encoding["seconds"] += time.perf_counter() - started

    mp3.LameMp3Encoder.encode = timed_encode  # type: ignore[method-assign]
    work = Path(tempfile.mkdtemp(prefix="waqup-bench-creation-"))
    url = f"sqlite+aiosqlite:///{work / 'waqup.db'}"
    migrate(url)
    writer = Timed(OfflineComposer(), "generate")
    piper = PiperSynthesizer()
    await piper.warm_up()
    voice = Timed(piper, "synthesize")
    container = build(Settings(database_url=url, data_dir=work, outbox_poll_seconds=0.05),
                      writer=writer, speech=voice)
    await container.start()
    try:
        user = uuid.uuid4()
        await container.service("credits").grant(f"bench:{user}", user, 1000,
                                                  TransactionType.PURCHASE, "bench")
        conversations = container.service("conversation")
        turns: list[float] = []
        for _ in range(max(1, args.turns // 4)):
            conversation = await conversations.start(user, None)
            for text in ("I'd like a guided meditation to sleep better",
                         "I lie awake thinking about work", "15 minutes, before bed",
                         "no preference"):
                started = time.perf_counter()
                await conversations.send(user, conversation.id, text)
                turns.append(time.perf_counter() - started)
        print(f"conversation turn: p50 {pct(turns, 50) * 1000:.1f} ms, "
              f"p99 {pct(turns, 99) * 1000:.1f} ms ({len(turns)} turns)")

        content = container.service("content")
        for kind in ContentType:
            spent = []
            for i in range(args.texts):
                started = time.perf_counter()
                await content.generate(user, f"bench-{kind}-{i}",
                                       Brief(content_type=kind, intent="feel calmer"), [])
                spent.append(time.perf_counter() - started)
            print(f"text generation, offline composer, {kind.value}: "
                  f"p50 {pct(spent, 50) * 1000:.1f} ms")

        # The OpenAI client's own cost: the SDK against the tests' scripted
        # OpenAI-compatible server, answering at once with a valid piece (the
        # offline composer's, so that it validates).
        from adapters.openai.generator import OpenAITextGenerator
        from core.content.prompts import render_prompt
        from core.content.service import ContentGenerator
        from tests.fakes.openai_server import FakeOpenAI

        server = FakeOpenAI()
        base = await server.start()
        remote = OpenAITextGenerator("bench-key", base_url=base, model="bench-model",
                                     fallback_model=None, timeout=10)
        composer = OfflineComposer()
        history = container.built["content"].service._history
        scripted = ContentGenerator(remote, history, container.clock)
        spent = []
        for i in range(args.texts):
            brief = Brief(content_type=ContentType.GUIDED_MEDITATION, intent="sleep")
            prompt = render_prompt(scripted.request_for(f"bench-openai-{i}", brief, []))
            server.ok((await composer.generate(prompt, "offline-composer")).text)
            started = time.perf_counter()
            await scripted.generate(user, f"bench-openai-{i}", brief, [])
            spent.append(time.perf_counter() - started)
        await remote.close()
        await server.stop()
        print(f"text generation, OpenAI SDK against the scripted server (answers at once), "
              f"guided_meditation: p50 {pct(spent, 50) * 1000:.1f} ms")

        rows = []
        for kind, minutes in ((ContentType.AFFIRMATION, 3), (ContentType.RITUAL, 5),
                              (ContentType.GUIDED_MEDITATION, 10)):
            writer.seconds = voice.seconds = encoding["seconds"] = 0.0
            total, item = await create(container, user, Brief(
                content_type=kind, intent="feel grounded", target_minutes=minutes))
            assert item.state is ItemState.READY, item
            audio = item.audio_duration_ms / 1000
            encode = encoding["seconds"]
            overhead = total - writer.seconds - voice.seconds - encode
            rows.append((kind.value, minutes, total, writer.seconds, voice.seconds, audio,
                         overhead))
            print(f"{kind.value} ({minutes} min asked): confirm->READY {total:.1f} s; "
                  f"text {writer.seconds * 1000:.0f} ms; speech {voice.seconds:.1f} s for "
                  f"{audio:.0f} s of audio (real-time factor {voice.seconds / audio:.3f}); "
                  f"MP3 encoding {encode * 1000:.0f} ms; pipeline overhead (upload, queues, "
                  f"events, stores, polling) {overhead * 1000:.0f} ms", flush=True)

        # Playback in process: the metadata from the cache (hit) or from the
        # database (miss: the key deleted before each call).
        library, cache = container.service("library"), container.cache
        item_id = rows and (await library.list(user, None, 1, None))[0][0].id
        for label, evict in (("hit", False), ("miss", True)):
            spent, cpu = [], time.process_time()
            for _ in range(args.playbacks):
                if evict:
                    await cache.delete(f"ritual:{item_id}:metadata")
                started = time.perf_counter()
                await library.playback(user, item_id)
                spent.append(time.perf_counter() - started)
            cpu = (time.process_time() - cpu) / args.playbacks
            print(f"playback in process, cache {label}: p50 {pct(spent, 50) * 1e6:.0f} us, "
                  f"CPU {cpu * 1e6:.0f} us/call")

        objects = container.built["library"].service._audio._objects
        blob = b"\x00" * 4_800_000  # a 10-minute 64 kbps MP3
        spent = []
        for i in range(5):
            started = time.perf_counter()
            await objects.put(f"audio/bench/{i}.mp3", blob, "audio/mpeg")
            spent.append(time.perf_counter() - started)
        print(f"upload of 4.8 MB to the file object store: p50 {pct(spent, 50) * 1000:.1f} ms")
        meditation = rows[-1]
        print(f"\n10-minute guided meditation, confirm -> READY: {meditation[2]:.1f} s "
              f"(target < 60 s): {'met' if meditation[2] < 60 else 'NOT met'}")
        print(f"pipeline overhead p50 over the three: "
              f"{statistics.median(r[6] for r in rows) * 1000:.0f} ms (target < 50 ms)")
    finally:
        await container.close()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--texts", type=int, default=20)
    parser.add_argument("--playbacks", type=int, default=2000)
    sys.exit(asyncio.run(main(parser.parse_args())))
