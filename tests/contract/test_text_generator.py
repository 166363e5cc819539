"""The TextGenerator contract, held by every writer: the offline composer and
the OpenAI adapter (against a local OpenAI-compatible server the test scripts,
tests/fakes/openai_server.py). Both must give valid pieces of all three types
through ContentGenerator. Then the OpenAI adapter's failures, through
ContentGenerator: rate limits, server errors, timeouts, malformed and
schema-breaking answers, fallback, and the AI history of every call."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from adapters.memory.ai_history import MemoryAiHistory
from adapters.offline_llm import OfflineComposer
from adapters.offline_llm.composer import compose
from adapters.openai import OpenAITextGenerator
from adapters.openai.generator import retry_after, strict_schema
from adapters.system.clock import SystemClock
from core.content.model import GenerationError, GenerationFailed
from core.content.prompts import render_prompt
from core.content.service import ContentGenerator
from core.content.structures import SCHEMAS, schema_errors, validate
from core.shared.creation import Brief, ContentType, Pace, TimeOfDay, Tone
from ports.content import TextGenerator
from tests.fakes.openai_server import FakeOpenAI

USER = uuid.UUID("0190a000-0000-7000-8000-0000000000aa")
API_KEY = "sk-test-secret-key-123"
PRIMARY, FALLBACK = "gpt-test", "gpt-test-fallback"
#: The OpenAI client's timeout in these tests (the server's slow answers exceed it).
TIMEOUT = 0.5

BRIEFS = {
    ContentType.AFFIRMATION: Brief(ContentType.AFFIRMATION, intent="more confidence at work",
                                   time_of_day=TimeOfDay.MORNING, tone=Tone.ENERGETIC),
    ContentType.GUIDED_MEDITATION: Brief(ContentType.GUIDED_MEDITATION,
                                         intent="I want to sleep better", name="Anna",
                                         time_of_day=TimeOfDay.NIGHT, pace=Pace.SLOW,
                                         target_minutes=8),
    ContentType.RITUAL: Brief(ContentType.RITUAL, intent="let go of a hard week",
                              focus="my shoulders", time_of_day=TimeOfDay.EVENING,
                              tone=Tone.WARM),
}


@dataclass
class Kit:
    """A writer under test and how to make it answer a request."""

    name: str
    writer: TextGenerator
    #: Makes the next answer a valid piece for (generator, request_id, brief, history).
    prepare: Callable[[ContentGenerator, str, Brief, list[str]], None]
    server: FakeOpenAI | None = None
    history: MemoryAiHistory = field(default_factory=MemoryAiHistory)
    sleeps: list[float] = field(default_factory=list)

    def generator(self) -> ContentGenerator:
        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        return ContentGenerator(self.writer, self.history, SystemClock(), sleep=sleep,
                                random=lambda: 0.5)


@pytest.fixture
async def openai_server() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def openai_writer(openai_server: FakeOpenAI) -> AsyncIterator[OpenAITextGenerator]:
    writer = OpenAITextGenerator(API_KEY, openai_server.url, PRIMARY, FALLBACK, timeout=TIMEOUT)
    yield writer
    await writer.close()


def valid_piece(generator: ContentGenerator, request_id: str, brief: Brief,
                history: list[str]) -> dict[str, Any]:
    """What a good model would answer to this request."""
    return compose(generator.request_for(request_id, brief, history))


@pytest.fixture(params=["offline", "openai"])
async def kit(request: pytest.FixtureRequest) -> AsyncIterator[Kit]:
    if request.param == "offline":
        yield Kit("offline", OfflineComposer(), lambda *_: None)
        return
    server = FakeOpenAI()
    await server.start()
    writer = OpenAITextGenerator(API_KEY, server.url, PRIMARY, FALLBACK, timeout=TIMEOUT)

    def prepare(generator: ContentGenerator, request_id: str, brief: Brief,
                history: list[str]) -> None:
        server.ok(valid_piece(generator, request_id, brief, history))

    try:
        yield Kit("openai", writer, prepare, server)
    finally:
        await writer.close()
        await server.stop()


# --- the contract -----------------------------------------------------------------------------

def test_models_are_named(kit: Kit) -> None:
    assert kit.writer.models
    assert all(isinstance(m, str) and m for m in kit.writer.models)


@pytest.mark.parametrize("content_type", list(ContentType))
async def test_valid_piece_of_every_type(kit: Kit, content_type: ContentType) -> None:
    brief = BRIEFS[content_type]
    generator = kit.generator()
    history = ["Ritual of Calm", "The Still Lake"]
    kit.prepare(generator, "req-contract", brief, history)
    piece = await generator.generate(USER, "req-contract", brief, history)
    request = generator.request_for("req-contract", brief, history)
    assert validate(content_type, piece.structure, target_seconds=request.target_seconds,
                    pace=brief.pace) == []
    assert schema_errors(piece.structure, SCHEMAS[content_type]) == []
    assert piece.model == kit.writer.models[0]
    assert piece.script.segments
    [call] = await kit.history.list_for(USER, 10)
    assert (call.outcome, call.template, call.template_version) == ("ok", content_type.value,
                                                                    "v1")
    assert call.model == kit.writer.models[0]
    assert call.input_tokens > 0 and call.output_tokens > 0
    assert call.latency_ms >= 0
    assert kit.sleeps == []


async def test_completion_is_json_per_the_prompts_schema(kit: Kit) -> None:
    brief = BRIEFS[ContentType.RITUAL]
    generator = kit.generator()
    kit.prepare(generator, "req-direct", brief, [])
    prompt = render_prompt(generator.request_for("req-direct", brief, []))
    completion = await kit.writer.generate(prompt, kit.writer.models[0])
    assert schema_errors(json.loads(completion.text), prompt.schema) == []
    assert completion.model == kit.writer.models[0]
    assert completion.input_tokens > 0 and completion.output_tokens > 0


# --- OpenAI: what is sent -------------------------------------------------------------------------

async def test_openai_request_shape(openai_server: FakeOpenAI,
                                    openai_writer: OpenAITextGenerator) -> None:
    brief = BRIEFS[ContentType.GUIDED_MEDITATION]
    generator = ContentGenerator(openai_writer, MemoryAiHistory(), SystemClock())
    openai_server.ok(valid_piece(generator, "req-shape", brief, []))
    await generator.generate(USER, "req-shape", brief, [])
    [sent] = openai_server.requests
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    body = sent.body
    assert body["model"] == PRIMARY
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "sleep better" in body["messages"][1]["content"]
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["name"] == "guided_meditation_v1"
    schema = response_format["json_schema"]["schema"]
    assert schema == strict_schema(SCHEMAS[ContentType.GUIDED_MEDITATION])
    assert "maxLength" not in json.dumps(schema)
    assert body["max_completion_tokens"] >= 1024


def test_strict_schema_closes_every_object() -> None:
    schema = strict_schema({"type": "object", "properties": {
        "a": {"type": "string", "maxLength": 3, "pattern": "x"},
        "b": {"type": "array", "minItems": 2, "items": {
            "type": "object", "properties": {"c": {"type": "number", "minimum": 1}},
            "required": []}}}, "required": ["a"]})
    assert schema == {"type": "object", "additionalProperties": False, "required": ["a", "b"],
                      "properties": {
                          "a": {"type": "string"},
                          "b": {"type": "array", "items": {
                              "type": "object", "additionalProperties": False,
                              "required": ["c"], "properties": {"c": {"type": "number"}}}}}}


@pytest.mark.parametrize(("headers", "seconds"), [
    ({}, 0.0), ({"retry-after": "7"}, 7.0), ({"retry-after": "1.5"}, 1.5),
    ({"retry-after-ms": "250"}, 0.25), ({"retry-after": "soon"}, 0.0),
    ({"retry-after": "-3"}, 0.0), ({"retry-after": "99999999"}, 3600.0),
])
def test_retry_after(headers: dict[str, str], seconds: float) -> None:
    assert retry_after(headers) == seconds


def test_retry_after_as_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < retry_after({"retry-after": when}) <= 30


# --- OpenAI: failures through ContentGenerator ----------------------------------------------------

@pytest.fixture
def openai_kit(openai_server: FakeOpenAI, openai_writer: OpenAITextGenerator) -> Kit:
    return Kit("openai", openai_writer, lambda *_: None, openai_server)


BRIEF = BRIEFS[ContentType.GUIDED_MEDITATION]


async def _outcomes(kit: Kit) -> list[tuple[str, str]]:
    return [(c.model, c.outcome) for c in reversed(await kit.history.list_for(USER, 50))]


async def test_rate_limited_then_ok(openai_kit: Kit) -> None:
    server, generator = openai_kit.server, openai_kit.generator()
    assert server is not None
    server.rate_limited(retry_after="2")
    server.ok(valid_piece(generator, "req-429", BRIEF, []))
    piece = await generator.generate(USER, "req-429", BRIEF, [])
    assert piece.model == PRIMARY
    assert await _outcomes(openai_kit) == [(PRIMARY, "rate_limited"), (PRIMARY, "ok")]
    assert openai_kit.sleeps == [2.0]  # Retry-After honoured (longer than the jitter's 0.25)
    assert len(server.requests) == 2  # the SDK does not retry on its own


async def test_server_errors_then_fallback(openai_kit: Kit) -> None:
    server, generator = openai_kit.server, openai_kit.generator()
    assert server is not None
    for _ in range(3):
        server.status(500)
    server.ok(valid_piece(generator, "req-500", BRIEF, []))
    piece = await generator.generate(USER, "req-500", BRIEF, [])
    assert piece.model == FALLBACK
    assert [r.model for r in server.requests] == [PRIMARY] * 3 + [FALLBACK]
    assert await _outcomes(openai_kit) == [(PRIMARY, "server_error")] * 3 + [(FALLBACK, "ok")]
    assert openai_kit.sleeps == [0.25, 0.5]  # backoff between the primary's attempts only


async def test_timeout_is_retried(openai_kit: Kit) -> None:
    server, generator = openai_kit.server, openai_kit.generator()
    assert server is not None
    good = valid_piece(generator, "req-slow", BRIEF, [])
    server.slow(TIMEOUT * 6, then=good)
    server.ok(good)
    piece = await generator.generate(USER, "req-slow", BRIEF, [])
    assert piece.model == PRIMARY
    assert await _outcomes(openai_kit) == [(PRIMARY, "timeout"), (PRIMARY, "ok")]


async def test_malformed_json_is_invalid_output(openai_kit: Kit) -> None:
    server, generator = openai_kit.server, openai_kit.generator()
    assert server is not None
    server.ok('{"title": "Half an answer", "phases": [')
    server.ok(valid_piece(generator, "req-bad", BRIEF, []))
    await generator.generate(USER, "req-bad", BRIEF, [])
    assert await _outcomes(openai_kit) == [(PRIMARY, "invalid_output"), (PRIMARY, "ok")]
    assert openai_kit.sleeps == []


async def test_schema_invalid_answer_is_retried(openai_kit: Kit) -> None:
    server, generator = openai_kit.server, openai_kit.generator()
    assert server is not None
    good = valid_piece(generator, "req-shape", BRIEF, [])
    wrong_order = dict(good, phases=list(reversed(good["phases"])))
    server.ok({"title": "No phases"})
    server.ok(wrong_order)
    server.ok(good)
    piece = await generator.generate(USER, "req-shape", BRIEF, [])
    assert piece.structure == good
    assert await _outcomes(openai_kit) == [(PRIMARY, "invalid_output")] * 2 + [(PRIMARY, "ok")]
    # Each call's tokens are counted, the refused ones too.
    assert all(c.output_tokens > 0 for c in await openai_kit.history.list_for(USER, 10))


async def test_refused_and_cut_off_answers_are_retried(openai_kit: Kit) -> None:
    server, generator = openai_kit.server, openai_kit.generator()
    assert server is not None
    server.refusal()
    server.truncated()
    server.ok(valid_piece(generator, "req-refusal", BRIEF, []))
    await generator.generate(USER, "req-refusal", BRIEF, [])
    assert await _outcomes(openai_kit) == [(PRIMARY, "invalid_output")] * 2 + [(PRIMARY, "ok")]


async def test_client_error_skips_to_the_fallback(openai_kit: Kit) -> None:
    server, generator = openai_kit.server, openai_kit.generator()
    assert server is not None
    server.status(400)
    server.ok(valid_piece(generator, "req-400", BRIEF, []))
    piece = await generator.generate(USER, "req-400", BRIEF, [])
    assert piece.model == FALLBACK
    assert await _outcomes(openai_kit) == [(PRIMARY, "error"), (FALLBACK, "ok")]
    assert openai_kit.sleeps == []


async def test_everything_failing(openai_kit: Kit) -> None:
    server, generator = openai_kit.server, openai_kit.generator()
    assert server is not None
    server.status(503)
    server.rate_limited(retry_after="1")
    server.ok("not json at all")
    server.status(500)
    server.ok({"title": "wrong shape"})
    server.status(502)
    with pytest.raises(GenerationFailed) as caught:
        await generator.generate(USER, "req-fail", BRIEF, [])
    assert caught.value.reason == "TEXT_GENERATION_FAILED"
    assert await _outcomes(openai_kit) == [
        (PRIMARY, "server_error"), (PRIMARY, "rate_limited"), (PRIMARY, "invalid_output"),
        (FALLBACK, "server_error"), (FALLBACK, "invalid_output"), (FALLBACK, "server_error")]
    assert len(server.requests) == 6
    assert server.pending == 0


async def test_errors_carry_no_secrets(openai_server: FakeOpenAI,
                                       openai_writer: OpenAITextGenerator) -> None:
    generator = ContentGenerator(openai_writer, MemoryAiHistory(), SystemClock())
    prompt = render_prompt(generator.request_for("req-401", BRIEF, []))
    for status in (401, 429, 500):
        openai_server.status(status)
        with pytest.raises(GenerationError) as caught:
            await openai_writer.generate(prompt, PRIMARY)
        error = caught.value
        assert API_KEY not in str(error) and API_KEY not in repr(error)
        assert error.__cause__ is None and error.__suppress_context__
        assert str(status) in str(error)
    assert API_KEY not in repr(openai_writer)


async def test_unreachable_server_is_a_retryable_timeout() -> None:
    from tests.backends import free_port

    writer = OpenAITextGenerator(API_KEY, f"http://127.0.0.1:{free_port()}/v1", PRIMARY,
                                 timeout=TIMEOUT)
    generator = ContentGenerator(writer, MemoryAiHistory(), SystemClock())
    prompt = render_prompt(generator.request_for("req-down", BRIEF, []))
    try:
        with pytest.raises(GenerationError) as caught:
            await writer.generate(prompt, PRIMARY)
    finally:
        await writer.close()
    assert caught.value.retryable and caught.value.kind == "timeout"
    assert writer.models == (PRIMARY,)
