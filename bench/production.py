"""Produced audio, measured (issue 9's figures): for a set of pieces made
through the real pipeline (embedded: SQLite, offline composer, Piper, the
numpy producer, LAME and libopus), the render time and real-time factor,
the time to first audio (text ready -> first passage playable), and for every
rendition what the file measures: integrated loudness error against -16 LUFS,
true peak, and length error against what was asked.

    .venv/bin/python bench/production.py            # 12 pieces, 5 to 20 minutes
    .venv/bin/python bench/production.py --quick    # 4 short pieces

In process (no Envoy); playback through Envoy is a scenario of bench/run.py.
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
from core.shared.creation import Background, Brief, ContentType  # noqa: E402

M, R = ContentType.GUIDED_MEDITATION, ContentType.RITUAL
PIECES = [(M, 5, Background.RAIN), (M, 5, Background.BROWN_NOISE), (M, 5, Background.NONE),
          (R, 5, Background.DRONE), (M, 10, Background.RAIN), (R, 10, Background.DRONE),
          (M, 10, Background.BROWN_NOISE), (M, 15, Background.DRONE), (R, 15, Background.RAIN),
          (M, 20, Background.RAIN), (R, 20, Background.BROWN_NOISE), (M, 20, Background.NONE)]
QUICK = [(M, 5, Background.RAIN), (R, 5, Background.DRONE), (M, 10, Background.NONE),
         (M, 20, Background.RAIN)]


async def make(container: Any, user: uuid.UUID, brief: Brief) -> dict[str, Any]:
    library = container.service("library")
    started = time.perf_counter()
    item = await library.start_creation(user, f"bench:{uuid.uuid4()}", brief)
    text_ready = first_audio = None
    while item.state.busy:
        await asyncio.sleep(0.005)
        item = await library.get(user, item.id)
        now = time.perf_counter()
        if text_ready is None and item.state is not ItemState.GENERATING_TEXT:
            text_ready = now
        if first_audio is None and (item.preview_key or item.state is ItemState.READY):
            first_audio = now
    done = time.perf_counter()
    assert item.state is ItemState.READY, item
    return {"item": item, "total": done - started,
            "render": done - (text_ready or started),
            "first_audio": (first_audio or done) - (text_ready or started)}


async def main(args: argparse.Namespace) -> int:
    from adapters.audio.analysis import PyAvAnalyzer
    from adapters.piper.speech import PiperSynthesizer
    from adapters.sql.migrate import migrate
    from services.runtime.bootstrap import build
    from services.runtime.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="waqup-bench-production-"))
    url = f"sqlite+aiosqlite:///{work / 'waqup.db'}"
    migrate(url)
    piper = PiperSynthesizer()
    await piper.warm_up()
    container = build(Settings(database_url=url, data_dir=work, outbox_poll_seconds=0.05),
                      speech=piper)
    await container.start()
    analyzer = PyAvAnalyzer()
    rows = []
    try:
        user = uuid.uuid4()
        await container.service("credits").grant(f"bench:{user}", user, 1000,
                                                  TransactionType.PURCHASE, "bench")
        for kind, minutes, bed in (QUICK if args.quick else PIECES):
            made = await make(container, user, Brief(
                content_type=kind, intent="rest and let the day go", target_minutes=minutes,
                background=bed))
            item = made["item"]
            measured = {}
            for fmt, rendition in item.renditions.items():
                data = await container.built["library"].service._audio._objects.get(rendition.key)
                measured[fmt] = analyzer.analyze(data)
            audio_s = item.audio_duration_ms / 1000
            row = {"piece": f"{kind.value} {minutes} min, {bed.value}", "audio_s": audio_s,
                   "render_s": made["render"], "rtf": made["render"] / audio_s,
                   "first_audio_s": made["first_audio"],
                   "length_error": (audio_s - minutes * 60) / (minutes * 60),
                   **{f"{fmt}_lufs": r.integrated_lufs for fmt, r in measured.items()},
                   **{f"{fmt}_tp": r.true_peak_dbtp for fmt, r in measured.items()}}
            rows.append(row)
            print(f"{row['piece']:<36} audio {audio_s:6.1f} s  render {row['render_s']:5.1f} s "
                  f"(RTF {row['rtf']:.3f})  first audio {row['first_audio_s']:.2f} s  "
                  f"length {row['length_error'] * 100:+.1f}%  "
                  + "  ".join(f"{fmt} {r.integrated_lufs:.2f} LUFS / {r.true_peak_dbtp:.2f} dBTP"
                              for fmt, r in measured.items()), flush=True)
    finally:
        await container.close()
    lufs = [v for r in rows for k, v in r.items() if k.endswith("_lufs")]
    peaks = [v for r in rows for k, v in r.items() if k.endswith("_tp")]
    lengths = [abs(r["length_error"]) for r in rows]
    first = [r["first_audio_s"] for r in rows]
    print(f"\n{len(rows)} pieces, {len(lufs)} renditions")
    print(f"loudness error |LUFS + 16|: mean {statistics.mean(abs(v + 16) for v in lufs):.2f} "
          f"LU, max {max(abs(v + 16) for v in lufs):.2f} LU (target <= 1)")
    print(f"true peak: max {max(peaks):.2f} dBTP (target <= -1)")
    print(f"length error: mean {statistics.mean(lengths) * 100:.2f}%, "
          f"max {max(lengths) * 100:.2f}% (target <= 5%)")
    print(f"time to first audio after the text: p50 {statistics.median(first):.2f} s, "
          f"max {max(first):.2f} s (target <= 3)")
    for minutes in sorted({int(r['piece'].split()[1]) for r in rows}):
        subset = [r for r in rows if int(r["piece"].split()[1]) == minutes]
        render = statistics.mean(r["render_s"] for r in subset)
        rtf = statistics.mean(r["rtf"] for r in subset)
        print(f"{minutes:>2}-minute pieces: render {render:.1f} s on average, "
              f"real-time factor {rtf:.3f}")
    ok = (max(abs(v + 16) for v in lufs) <= 1 and max(peaks) <= -1
          and max(lengths) <= 0.05 and max(first) <= 3)
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 pieces instead of 12")
    sys.exit(asyncio.run(main(parser.parse_args())))
