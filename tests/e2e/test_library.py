"""Produced audio and the library, end to end through the real Envoy in front
of the real server (SQLite file, offline composer, Piper voice, files served
by signed URLs through the edge):

- a 5-minute guided meditation with a rain bed: its first part plays before it
  is READY; then MP3 and Ogg Opus both decode, measure -16 ±1 LUFS and at most
  -1 dBTP, last 5 minutes ±5%; captions parse and cover the speech; the report
  and a download are there;
- practices, mood check-ins and stats, with a streak across a time-zone change;
- folders and tags; a new version with another bed (what it costs);
- a share link's page in headless Chromium: it loads, plays, shows captions;
  revoked, it is an error page;
- nobody reads another person's practice, folder, report or share.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from adapters.audio.analysis import PyAvAnalyzer
from core.credits.model import TransactionType
from tests.e2e.browser import browser_page
from tests.e2e.conftest import RealEdge, real_edge
from tests.e2e.test_creation import reason, register, until_done

pytestmark = pytest.mark.envoy

MEDITATION = ["I want to unwind after work and let the day go",
              "Evenings at home are when my mind keeps racing",
              "Make it 5 minutes, with rain sounds in the background, focus on breathing",
              "No preference, that's fine", "that's fine", "yes, that's all"]
_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)")


@pytest.fixture(scope="module")
async def edge(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RealEdge]:
    from adapters.sql.migrate import migrate

    tmp = tmp_path_factory.mktemp("library")
    url = f"sqlite+aiosqlite:///{tmp / 'waqup.db'}"
    migrate(url)
    async with real_edge(tmp, url, credential_rate_limit=1000) as running:
        yield running


async def grant(edge: RealEdge, headers: dict[str, str], amount: int) -> uuid.UUID:
    me = (await edge.client.get("/v1/users/me", headers=headers)).json()
    user_id = uuid.UUID(me["name"].rpartition("/")[2])
    await edge.app.container.service("credits").grant(
        f"test:{uuid.uuid4()}", user_id, amount, TransactionType.PURCHASE, "test bundle")
    return user_id


async def confirm_meditation(edge: RealEdge, headers: dict[str, str]) -> str:
    created = (await edge.client.post("/v1/conversations", headers=headers, json={
        "content_type": "CONTENT_TYPE_GUIDED_MEDITATION"})).json()
    name = created["name"]
    conversation = created
    for text in MEDITATION:
        if conversation["state"] == "STATE_CONFIRMATION":
            break
        conversation = (await edge.client.post(f"/v1/{name}:send", headers=headers,
                                               json={"text": text})).json()
    assert conversation["state"] == "STATE_CONFIRMATION", conversation["messages"][-2:]
    confirmed = await edge.client.post(f"/v1/{name}:confirm", headers=headers, json={})
    assert confirmed.status_code == 200, confirmed.text
    return str(confirmed.json()["content"])


def cues(vtt: str) -> list[tuple[float, float, str]]:
    lines = vtt.splitlines()
    assert lines[0] == "WEBVTT"
    found = []
    for index, line in enumerate(lines):
        match = _CUE.fullmatch(line)
        if match:
            h1, m1, s1, f1, h2, m2, s2, f2 = (int(g) for g in match.groups())
            found.append((h1 * 3600 + m1 * 60 + s1 + f1 / 1000,
                          h2 * 3600 + m2 * 60 + s2 + f2 / 1000, lines[index + 1]))
    return found


@pytest.fixture(scope="module")
async def meditation(edge: RealEdge) -> dict[str, Any]:
    """A person's 5-minute meditation with a rain bed, followed from confirm:
    what playback answered before READY, and the READY item."""
    headers, _ = await register(edge)
    await grant(edge, headers, 4)
    content = await confirm_meditation(edge, headers)
    confirmed_at = time.monotonic()
    previews: list[tuple[float, dict[str, Any]]] = []
    deadline = confirmed_at + 120
    while True:
        item = (await edge.client.get(f"/v1/{content}", headers=headers)).json()
        if item["state"] in ("CONTENT_STATE_READY", "CONTENT_STATE_FAILED"):
            break
        answer = await edge.client.get(f"/v1/{content}/playback", headers=headers)
        if answer.status_code == 200:
            previews.append((time.monotonic() - confirmed_at, answer.json()))
        assert time.monotonic() < deadline, item
        await asyncio.sleep(0.1)
    return {"headers": headers, "content": content, "item": item, "previews": previews}


async def fetch(url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=20) as player:
        return await player.get(url, headers=headers)


async def test_first_audio_plays_before_the_item_is_ready(meditation: dict[str, Any]) -> None:
    assert meditation["item"]["state"] == "CONTENT_STATE_READY", meditation["item"]
    previews = [p for _, p in meditation["previews"] if p["preview"]]
    assert previews, "no playable first part before READY"
    first = previews[0]
    assert first["mime_type"] == "audio/mpeg"
    part = await fetch(first["uri"])
    if part.status_code == 200:  # (it may already be replaced by the final file)
        report = PyAvAnalyzer().analyze(part.content)
        assert report.duration_ms > 1000


async def test_mp3_and_opus_meet_loudness_length_and_peak(edge: RealEdge,
                                                          meditation: dict[str, Any]) -> None:
    headers, content, item = meditation["headers"], meditation["content"], meditation["item"]
    assert item["background"] == "rain" and item["version"] == 1
    analyzer = PyAvAnalyzer()
    for fmt, mime in (("FORMAT_MP3", "audio/mpeg"), ("FORMAT_OGG_OPUS", "audio/ogg")):
        playback = (await edge.client.get(f"/v1/{content}/playback", headers=headers,
                                          params={"format": fmt})).json()
        assert playback["mime_type"] == mime and playback["preview"] is False
        assert playback["format"] == fmt
        audio = await fetch(playback["uri"])
        assert audio.status_code == 200 and audio.headers["content-type"] == mime
        assert "immutable" in audio.headers["cache-control"]
        ranged = await fetch(playback["uri"], Range="bytes=0-99")
        assert ranged.status_code == 206 and ranged.content == audio.content[:100]
        report = analyzer.analyze(audio.content)
        assert abs(report.integrated_lufs + 16) <= 1.0, (fmt, report.integrated_lufs)
        assert report.true_peak_dbtp <= -1.0, (fmt, report.true_peak_dbtp)
        assert abs(report.duration_ms / 1000 - 300) <= 15, (fmt, report.duration_ms)


async def test_captions_cover_the_speech(edge: RealEdge, meditation: dict[str, Any]) -> None:
    headers, content, item = meditation["headers"], meditation["content"], meditation["item"]
    answer = await edge.client.get(f"/v1/{content}/captions", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/vtt")
    found = cues(answer.text)
    assert len(found) >= 10
    duration = float(item["audio_duration"].rstrip("s"))
    assert all(0 <= start < end <= duration + 0.01 for start, end, _ in found)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(found))  # in order
    spoken = " ".join(text for _, _, text in found)
    words = re.findall(r"[a-z']+", item["text"].lower())
    assert set(words) <= set(re.findall(r"[a-z']+", spoken.lower()))


async def test_the_audio_report_and_a_download(edge: RealEdge,
                                               meditation: dict[str, Any]) -> None:
    headers, content = meditation["headers"], meditation["content"]
    report = (await edge.client.get(f"/v1/{content}/audioReport", headers=headers)).json()
    assert report["name"] == f"{content}/audioReport" and report["version"] == 1
    assert len(report["waveform"]) == 200 and max(report["waveform"]) > 0.1
    assert abs(report["measurement"]["integrated_loudness_lufs"] + 16) <= 1
    assert report["opus_measurement"]["true_peak_dbtp"] <= -1
    assert report["background"] == "rain"
    download = (await edge.client.get(f"/v1/{content}/download", headers=headers)).json()
    assert download["filename"].endswith(".mp3")
    got = await fetch(download["uri"])
    assert got.status_code == 200
    assert got.headers["content-disposition"] == f'attachment; filename="{download["filename"]}"'
    assert len(got.content) == int(download["size_bytes"])
    altered = download["uri"].replace("download=", "download=x")
    assert (await fetch(altered)).status_code == 403


async def test_practices_moods_and_a_streak_across_time_zones(
        edge: RealEdge, meditation: dict[str, Any]) -> None:
    headers, content = meditation["headers"], meditation["content"]
    # The same instant is one day in Kiritimati (UTC+14) and the day before in
    # Pago Pago (UTC-11): a person flying across the date line practised on
    # two consecutive local days.
    names = []
    for zone, before, after in (("Pacific/Pago_Pago", 2, 4), ("Pacific/Kiritimati", 3, 5)):
        started = await edge.client.post(f"/v1/{content}/practices", headers=headers, json={
            "device": "ios", "context": "evening", "time_zone": zone,
            "mood_before": {"score": before, "words": "tense"}})
        assert started.status_code == 200, started.text
        practice = started.json()
        assert practice["state"] == "PRACTICE_STATE_STARTED"
        done = await edge.client.post(f"/v1/{practice['name']}:complete", headers=headers,
                                      json={"listened_duration": "2s",
                                            "mood_after": {"score": after, "words": "lighter"}})
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "PRACTICE_STATE_COMPLETED"
        names.append(practice["name"])
    again = await edge.client.post(f"/v1/{names[0]}:complete", headers=headers,
                                   json={"listened_duration": "100s"})
    assert again.status_code == 400 and reason(again) == "PRACTICE_ALREADY_ENDED"
    item = (await edge.client.get(f"/v1/{content}", headers=headers)).json()
    assert item["play_count"] == 2 and item["last_play_time"]

    stats = (await edge.client.get("/v1/users/me/practiceStats", headers=headers,
                                   params={"time_zone": "Pacific/Kiritimati"})).json()
    assert stats["completed"] == 2 and stats["started"] == 2
    assert stats["current_streak_days"] == 2 and stats["longest_streak_days"] == 2
    assert len(stats["last_7_days"]) == 7 and len(stats["last_30_days"]) == 30
    assert sum(d.get("completed", 0) for d in stats["last_7_days"]) == 2
    assert stats["average_mood_change"] == 2 and stats["mood_words"] == ["lighter"]
    assert stats["by_type"][0]["content_type"] == "CONTENT_TYPE_GUIDED_MEDITATION"
    behind = (await edge.client.get("/v1/users/me/practiceStats", headers=headers,
                                    params={"time_zone": "Pacific/Pago_Pago"})).json()
    assert behind["longest_streak_days"] == 2 and behind["current_streak_days"] == 1
    bad = await edge.client.get("/v1/users/me/practiceStats", headers=headers,
                                params={"time_zone": "Mars/Olympus"})
    assert bad.status_code == 400 and reason(bad) == "INVALID_TIME_ZONE"


async def test_folders_and_tags(edge: RealEdge, meditation: dict[str, Any]) -> None:
    headers, content = meditation["headers"], meditation["content"]
    folder = (await edge.client.post("/v1/users/me/folders", headers=headers,
                                     json={"display_name": "Evenings"})).json()
    twin = await edge.client.post("/v1/users/me/folders", headers=headers,
                                  json={"display_name": "evenings"})
    assert twin.status_code == 409 and reason(twin) == "FOLDER_EXISTS"
    moved = await edge.client.patch(f"/v1/{content}", headers=headers, params={
        "update_mask": "folder,tags"}, json={"folder": folder["name"], "tags": ["sleep", "rain"]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["folder"] == folder["name"]
    for query in (f'folder = "{folder["name"]}"', 'tag = "sleep"',
                  f'tag = "rain" AND folder = "{folder["name"]}"'):
        listed = (await edge.client.get("/v1/users/me/contents", headers=headers,
                                        params={"filter": query})).json()
        assert [c["name"] for c in listed["contents"]] == [content], query
    none = (await edge.client.get("/v1/users/me/contents", headers=headers,
                                  params={"filter": 'tag = "work"'})).json()
    assert none.get("contents", []) == []
    renamed = (await edge.client.post("/v1/users/me/tags:rename", headers=headers,
                                      json={"tag": "sleep", "new_tag": "rest"})).json()
    assert {t["tag"]: t["item_count"] for t in renamed["tags"]} == {"rain": 1, "rest": 1}
    folders = (await edge.client.get("/v1/users/me/folders", headers=headers)).json()
    assert folders["folders"][0]["item_count"] == 1
    bad = await edge.client.get("/v1/users/me/contents", headers=headers,
                                params={"filter": "tag = 'x' OR 1=1"})
    assert bad.status_code == 400 and reason(bad) == "INVALID_FILTER"
    deleted = await edge.client.delete(f"/v1/{folder['name']}", headers=headers)
    assert deleted.status_code == 200
    item = (await edge.client.get(f"/v1/{content}", headers=headers)).json()
    assert item.get("folder", "") == "" and item["state"] == "CONTENT_STATE_READY"


async def test_the_shared_page_plays_with_captions_and_ends_when_revoked(
        edge: RealEdge, meditation: dict[str, Any]) -> None:
    headers, content = meditation["headers"], meditation["content"]
    share = (await edge.client.post(f"/v1/{content}/shares", headers=headers,
                                    json={"ttl": "3600s"})).json()
    assert share["uri"].startswith(f"{edge.url}/share/")
    page = await edge.client.get(share["uri"].removeprefix(edge.url))
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "Content-Security-Policy" in page.headers
    assert "@" not in page.text and "users/" not in page.text  # nothing about the owner
    async with browser_page() as browser:
        await browser.goto(share["uri"] + "?autoplay=1")
        assert await browser.wait_for("document.body.dataset.playing === '1'")
        assert float(await browser.wait_for(
            "Number(document.body.dataset.time || 0) > 0.5 && document.body.dataset.time",
            within=30)) > 0.5
        caption = await browser.wait_for("document.getElementById('caption').textContent",
                                         within=30)
        assert len(caption) > 3
        revoked = await edge.client.delete(f"/v1/{share['name']}", headers=headers)
        assert revoked.status_code == 200
        await browser.goto(share["uri"])
        message = await browser.wait_for(
            "document.getElementById('error') && document.getElementById('error').textContent")
        assert "ended" in message
    gone = await edge.client.get(share["uri"].removeprefix(edge.url))
    assert gone.status_code == 410
    forged = share["uri"][:-4] + "AAAA"
    assert (await edge.client.get(forged.removeprefix(edge.url))).status_code == 404


async def test_a_new_version_with_another_bed_costs_one_credit(
        edge: RealEdge, meditation: dict[str, Any]) -> None:
    headers, content = meditation["headers"], meditation["content"]
    before = (await edge.client.get("/v1/users/me/creditAccount", headers=headers)).json()
    old = (await edge.client.get(f"/v1/{content}/playback", headers=headers)).json()
    answer = await edge.client.post(f"/v1/{content}:render", headers=headers, json={
        "background": "drone", "request_id": str(uuid.uuid4())})
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "CONTENT_STATE_RENDERING_AUDIO"
    # The current version keeps playing meanwhile.
    during = (await edge.client.get(f"/v1/{content}/playback", headers=headers)).json()
    assert during["preview"] is False
    item = await until_done(edge, headers, content)
    assert item["state"] == "CONTENT_STATE_READY" and item["version"] == 2
    assert item["background"] == "drone"
    after = (await edge.client.get("/v1/users/me/creditAccount", headers=headers)).json()
    assert after["balance"] == before["balance"] - 1
    # The replaced version stays until the next one (a cached URL may name it).
    assert (await fetch(old["uri"])).status_code == 200
    bad = await edge.client.post(f"/v1/{content}:render", headers=headers, json={
        "background": "jackhammer", "request_id": str(uuid.uuid4())})
    assert bad.status_code == 400 and reason(bad) == "INVALID_BACKGROUND"


async def test_voices_with_samples(edge: RealEdge) -> None:
    headers, _ = await register(edge)
    voices = (await edge.client.get("/v1/voices", headers=headers)).json()["voices"]
    joe = voices[0]
    assert joe["name"] == "voices/joe" and joe["language_code"] == "en-US"
    assert set(joe["paces"]) == {"slow", "medium", "fast"} and joe["provider"] == "piper"
    sample = await fetch(joe["sample_uri"])
    assert sample.status_code == 200 and PyAvAnalyzer().analyze(sample.content).duration_ms > 2000


async def test_nobody_reads_what_another_person_owns(edge: RealEdge,
                                                     meditation: dict[str, Any]) -> None:
    owner, content = meditation["headers"], meditation["content"]
    practice = (await edge.client.post(f"/v1/{content}/practices", headers=owner,
                                       json={})).json()
    folder = (await edge.client.post("/v1/users/me/folders", headers=owner,
                                     json={"display_name": "Mine"})).json()
    share = (await edge.client.post(f"/v1/{content}/shares", headers=owner, json={})).json()
    other, _ = await register(edge)
    attempts = [
        edge.client.get(f"/v1/{practice['name']}", headers=other),
        edge.client.post(f"/v1/{practice['name']}:complete", headers=other,
                         json={"listened_duration": "1s"}),
        edge.client.post(f"/v1/{content}/practices", headers=other, json={}),
        edge.client.patch(f"/v1/{folder['name']}", headers=other,
                          json={"display_name": "Theirs"}),
        edge.client.delete(f"/v1/{folder['name']}", headers=other),
        edge.client.get("/v1/users/me/contents", headers=other,
                        params={"filter": f'folder = "{folder["name"]}"'}),
        edge.client.get(f"/v1/{content}/audioReport", headers=other),
        edge.client.get(f"/v1/{content}/captions", headers=other),
        edge.client.get(f"/v1/{content}/download", headers=other),
        edge.client.get(f"/v1/{content}/shares", headers=other),
        edge.client.post(f"/v1/{content}/shares", headers=other, json={}),
        edge.client.delete(f"/v1/{share['name']}", headers=other),
        edge.client.post(f"/v1/{content}:render", headers=other,
                         json={"request_id": "x"}),
    ]
    for answer in await asyncio.gather(*attempts):
        assert answer.status_code == 404, (answer.request.url, answer.text)
    # The share still works for everyone else: the other person's revoke did nothing.
    assert (await edge.client.get(share["uri"].removeprefix(edge.url))).status_code == 200


async def test_a_hostile_client_gets_clean_refusals(edge: RealEdge,
                                                    meditation: dict[str, Any]) -> None:
    """Malformed, oversized, out-of-range and forged input on every new call:
    a 4xx with an ErrorInfo reason, never a 5xx, and nothing changed."""
    headers, content = meditation["headers"], meditation["content"]
    before = (await edge.client.get(f"/v1/{content}", headers=headers)).json()
    practice = (await edge.client.post(f"/v1/{content}/practices", headers=headers,
                                       json={})).json()
    ugly = ["\x00", "\u202e", "x" * 5000, "../../etc/passwd", "folders/../../x"]
    calls = [
        ("post", f"/v1/{content}/practices", {"time_zone": "../../etc/passwd"}),
        ("post", f"/v1/{content}/practices", {"time_zone": "x" * 65}),
        ("post", f"/v1/{content}/practices", {"mood_before": {"score": 9}}),
        ("post", f"/v1/{content}/practices", {"mood_before": {"score": 3, "words": "w" * 201}}),
        ("post", f"/v1/{content}/practices", {"device": "d" * 65}),
        ("post", f"/v1/{practice['name']}:complete", {"listened_duration": "-5s"}),
        ("post", f"/v1/{practice['name']}:complete", {"listened_duration": "999999999s"}),
        ("post", f"/v1/{practice['name']}:complete", {"listened_duration": "banana"}),
        ("post", "/v1/practices/not-a-uuid:complete", {"listened_duration": "1s"}),
        ("get", "/v1/users/me/practiceStats?time_zone=%00", None),
        ("get", "/v1/users/me/practices?page_token=forged", None),
        ("post", "/v1/users/me/folders", {"display_name": ""}),
        ("post", "/v1/users/me/folders", {"display_name": "a\x00b"}),
        ("post", "/v1/users/me/folders", {"display_name": "f" * 61}),
        ("patch", "/v1/folders/nope", {"display_name": "x"}),
        ("post", "/v1/users/me/tags:rename", {"tag": "", "new_tag": "x"}),
        ("post", "/v1/users/me/tags:rename", {"tag": "never-used", "new_tag": "x"}),
        ("post", "/v1/users/me/tags:delete", {"tag": "t" * 41}),
        ("post", f"/v1/{content}/shares", {"ttl": "1s"}),
        ("post", f"/v1/{content}/shares", {"ttl": "99999999s"}),
        ("delete", f"/v1/shares/{uuid.uuid4()}", None),
        ("get", f"/v1/{content}/playback?format=FORMAT_FLAC", None),
        ("get", f"/v1/{content}/download?format=7", None),
        ("post", f"/v1/{content}:render", {"request_id": ""}),
        ("post", f"/v1/{content}:render", {"request_id": "r", "voice": "v" * 65}),
        ("patch", f"/v1/{content}?update_mask=folder", {"folder": "folders/" + "9" * 36}),
        ("patch", f"/v1/{content}?update_mask=state", {"state": "CONTENT_STATE_READY"}),
        ("patch", "/v1/users/me/listeningPreferences", {"background": "jackhammer"}),
        *[("get", "/v1/users/me/contents?filter=" + quote(f'tag = "{u}"'), None)
          for u in ugly],
    ]
    for method, path, body in calls:
        answer = await edge.client.request(method, path, headers=headers,
                                           **({"json": body} if body is not None else {}))
        assert 400 <= answer.status_code < 500 or (
            "filter" in path and answer.status_code == 200), (path, body, answer.text)
        if answer.status_code != 200:
            assert reason(answer), (path, answer.text)
    after = (await edge.client.get(f"/v1/{content}", headers=headers)).json()
    assert {k: v for k, v in after.items() if k not in ("play_count", "last_play_time",
                                                         "update_time")} == {
        k: v for k, v in before.items() if k not in ("play_count", "last_play_time",
                                                     "update_time")}
    # Forged share links: the page's own refusal (a page), or the edge's 404
    # for paths no route matches; never a stack trace.
    for path in ("/share/" + "a" * 54, "/share/x", "/share/" + "0" * 32 + "A" * 22):
        page = await edge.client.get(path)
        assert page.status_code == 404 and '<h1 id="error">' in page.text, path
    for path in ("/share/" + "0" * 32 + "A" * 22 + "/x", "/share/%00", "/share/a/../../v1"):
        assert (await edge.client.get(path)).status_code == 404, path


async def test_nothing_answered_5xx(edge: RealEdge) -> None:
    bad_http = [line for line in edge.log_lines()
                if int(line["response_code"]) >= 500
                or (line["response_code"] == 200 and line["grpc_status"] in (2, 13, 15))]
    assert not bad_http, bad_http[:5]
    bad_rpc = [line for line in edge.app.access_lines()
               if line["code"] in ("UNKNOWN", "INTERNAL", "DATA_LOSS")]
    assert not bad_rpc, bad_rpc[:5]
