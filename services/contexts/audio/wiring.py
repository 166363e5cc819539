"""Wires audio for one process: the voices (Piper, and ElevenLabs when
configured), the producer, the MP3 and Opus encoders, the analyzer,
the object store, its renders, the voice catalog and the consumer of render
jobs."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from core.audio.service import MP3, OGG_OPUS, AudioRenderer, RenderFailed, TransientRenderError
from core.audio.voices import VoiceCatalog
from ports.media import QueuedJob, RetryLater
from services.contexts.audio.events import decode_job
from services.contexts.audio.servicers import VoiceServicer
from services.contexts.declaration import BuiltContext
from services.runtime.infrastructure import Infrastructure
from services.runtime.metrics import creation_metrics

log = logging.getLogger(__name__)
RENDER_QUEUE = "audio-render"


def speech_for(infra: Infrastructure) -> Any:
    """The voices: the embedded Piper voice, plus ElevenLabs' when it is
    configured (WAQUP_SPEECH=elevenlabs puts ElevenLabs first: its default
    voice becomes the default; `piper` leaves ElevenLabs out)."""
    settings = infra.settings
    if "speech" in infra.overrides:
        return infra.overrides["speech"]
    from adapters.audio.router import VoiceRouter
    from adapters.piper.speech import PiperSynthesizer

    piper = PiperSynthesizer(max_concurrency=settings.render_concurrency)
    if settings.speech == "elevenlabs" and not settings.elevenlabs_api_key:
        raise RuntimeError("WAQUP_SPEECH=elevenlabs needs WAQUP_ELEVENLABS_API_KEY")
    if not settings.elevenlabs_api_key or settings.speech == "piper":
        return VoiceRouter([piper])
    from adapters.elevenlabs.speech import ElevenLabsSynthesizer

    options: dict[str, Any] = {}
    if settings.elevenlabs_base_url:
        options["base_url"] = settings.elevenlabs_base_url
    eleven = ElevenLabsSynthesizer(settings.elevenlabs_api_key,
                                   default_voice_id=settings.elevenlabs_voice_id,
                                   model_id=settings.elevenlabs_model,
                                   output_format=f"pcm_{piper.sample_rate}", **options)
    return VoiceRouter([eleven, piper] if settings.speech == "elevenlabs" else [piper, eleven])


def build(infra: Infrastructure) -> BuiltContext:
    from adapters.audio.analysis import PyAvAnalyzer
    from adapters.audio.mp3 import LameMp3Encoder
    from adapters.audio.opus import OpusEncoder
    from adapters.audio.production import NumpyAudioProducer

    if infra.store is not None:
        from adapters.memory.audio import memory_audio_uow

        uow = memory_audio_uow(infra.store, infra.codec, infra.trace_context)
    else:
        from adapters.sql.audio import sql_audio_uow

        uow = sql_audio_uow(infra.engine, infra.codec, infra.trace_context)
    speech = speech_for(infra)
    infra.closers.append(speech.close)
    producer = NumpyAudioProducer()
    mp3 = LameMp3Encoder()
    renderer = AudioRenderer(infra.notifying(uow), speech, producer,
                             {MP3: mp3, OGG_OPUS: OpusEncoder()}, PyAvAnalyzer(),
                             infra.objects, infra.clock)
    catalog = VoiceCatalog(speech, producer, mp3, infra.objects,
                           sample_ttl=timedelta(seconds=infra.settings.playback_url_ttl_seconds))
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
                        servicers={"VoiceService": VoiceServicer(catalog)})
