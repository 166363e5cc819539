"""Wires audio for one process: the voice (Piper or ElevenLabs), the MP3
encoder, the object store, its renders and the consumer of render jobs."""

from __future__ import annotations

import logging
import time
from typing import Any

from core.audio.service import AudioRenderer, RenderFailed, TransientRenderError
from ports.media import QueuedJob, RetryLater
from services.contexts.audio.events import decode_job
from services.contexts.audio.servicers import VoiceServicer
from services.contexts.declaration import BuiltContext
from services.runtime.infrastructure import Infrastructure
from services.runtime.metrics import creation_metrics

log = logging.getLogger(__name__)
RENDER_QUEUE = "audio-render"


def speech_for(infra: Infrastructure) -> Any:
    settings = infra.settings
    if "speech" in infra.overrides:
        return infra.overrides["speech"]
    choice = settings.speech or ("elevenlabs" if settings.elevenlabs_api_key else "piper")
    if choice == "elevenlabs":
        from adapters.elevenlabs.speech import ElevenLabsSynthesizer

        if not settings.elevenlabs_api_key:
            raise RuntimeError("WAQUP_SPEECH=elevenlabs needs WAQUP_ELEVENLABS_API_KEY")
        options: dict[str, Any] = {}
        if settings.elevenlabs_base_url:
            options["base_url"] = settings.elevenlabs_base_url
        return ElevenLabsSynthesizer(settings.elevenlabs_api_key,
                                     default_voice_id=settings.elevenlabs_voice_id,
                                     model_id=settings.elevenlabs_model, **options)
    from adapters.piper.speech import PiperSynthesizer

    return PiperSynthesizer(max_concurrency=settings.render_concurrency)


def build(infra: Infrastructure) -> BuiltContext:
    from adapters.audio.mp3 import LameMp3Encoder

    if infra.store is not None:
        from adapters.memory.audio import memory_audio_uow

        uow = memory_audio_uow(infra.store, infra.codec, infra.trace_context)
    else:
        from adapters.sql.audio import sql_audio_uow

        uow = sql_audio_uow(infra.engine, infra.codec, infra.trace_context)
    speech = speech_for(infra)
    infra.closers.append(speech.close)
    renderer = AudioRenderer(infra.notifying(uow), speech, LameMp3Encoder(), infra.objects,
                             infra.clock)
    measured = creation_metrics()

    async def render(job: QueuedJob) -> None:
        started = time.perf_counter()
        try:
            outcome = await renderer.render(decode_job(job.payload), job.attempts)
        except TransientRenderError as error:
            measured.render(time.perf_counter() - started, "retry")
            raise RetryLater(str(error), error.delay) from error
        except RenderFailed as error:
            measured.render(time.perf_counter() - started, "failed")
            log.warning("render failed for good", extra={"job": job.id, "reason": error.reason})
            return
        if outcome.fresh:
            measured.render(time.perf_counter() - started, "ok",
                            audio_seconds=outcome.render.duration_ms / 1000)

    infra.work_queue.consume(RENDER_QUEUE, render, concurrency=infra.settings.render_concurrency)
    return BuiltContext(service=renderer, uow=uow,
                        servicers={"VoiceService": VoiceServicer(speech)})
