"""Wires the library for one process: its items, its peers (credits, content,
audio), the text step's consumer, the sweep of stuck creations and the
signed media route (embedded object store)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from core.library.organiser import Organiser
from core.library.practice import PracticeService
from core.library.service import LibraryService
from core.shared.creation import ContentType
from ports.media import QueuedJob
from services.api.peers import optional_peer_target
from services.contexts.declaration import BuiltContext
from services.contexts.library import peers
from services.contexts.library.media import media_handler
from services.contexts.library.servicers import CreationServicer, LibraryServicer
from services.contexts.library.share_page import ShareLinks, share_handler
from services.runtime.infrastructure import Infrastructure
from services.runtime.metrics import creation_metrics
from services.runtime.scheduler import Job


def _importer() -> Any:
    """Uploaded recordings are measured and encoded like rendered audio."""
    from adapters.audio.importer import PyAvImporter
    from adapters.audio.mp3 import LameMp3Encoder
    from adapters.audio.opus import OpusEncoder

    return PyAvImporter({"mp3": LameMp3Encoder(), "ogg_opus": OpusEncoder()})


def build(infra: Infrastructure) -> BuiltContext:
    if infra.store is not None:
        from adapters.memory.library import memory_library_uow

        uow = memory_library_uow(infra.store, infra.codec, infra.trace_context)
    else:
        from adapters.sql.library import sql_library_uow

        uow = sql_library_uow(infra.engine, infra.codec, infra.trace_context)
    settings = infra.settings
    local_credits, local_content = infra.local("credits"), infra.local("content")
    credits: Any = (peers.LocalCredits(local_credits) if local_credits
                    else peers.RemoteCredits(infra.peer("library", "credits")))
    writer: Any = (peers.LocalWriter(local_content) if local_content
                   else peers.RemoteWriter(infra.peer("library", "content")))
    local_catalog = infra.local("catalog")
    # Without the catalog (a mesh that runs no marketplace), items play for
    # their owners only.
    market: Any = (peers.LocalMarket(local_catalog) if local_catalog
                   else peers.RemoteMarket(infra.peer("library", "catalog"))
                   if optional_peer_target("catalog") else None)
    service = LibraryService(
        infra.notifying(uow), infra.clock, creation_metrics().counting(infra.cache), credits,
        writer,
        peers.QueuedRenders(infra.work_queue), peers.QueuedTextJobs(infra.work_queue),
        peers.StoredAudio(infra.objects),
        costs={ContentType.AFFIRMATION: settings.credit_cost_affirmation,
               ContentType.GUIDED_MEDITATION: settings.credit_cost_guided_meditation,
               ContentType.RITUAL: settings.credit_cost_ritual},
        creations_per_hour=settings.creations_per_hour,
        playback_ttl_seconds=settings.playback_url_ttl_seconds,
        rerender_cost=settings.credit_cost_rerender,
        metadata_ttl_seconds=settings.playback_cache_seconds, access=market,
        importer=_importer())
    practice = PracticeService(infra.notifying(uow), infra.clock, access=market)
    organiser = Organiser(infra.notifying(uow), infra.clock)
    from services.runtime.bootstrap import media_url_key  # (bootstrap imports the contexts)

    links = ShareLinks(media_url_key(settings), settings.edge_url)

    async def write_text(job: QueuedJob) -> None:
        await service.write_text(uuid.UUID(job.payload.decode()))

    infra.work_queue.consume(peers.TEXT_QUEUE, write_text, concurrency=settings.text_concurrency)
    jobs = []
    if settings.creation_sweep_interval_seconds:
        idle = timedelta(seconds=settings.creation_resume_after_seconds)
        deadline = timedelta(seconds=settings.creation_deadline_seconds)
        jobs.append(Job("library.resume-stale", settings.creation_sweep_interval_seconds,
                        lambda: service.resume_stale(idle=idle, deadline=deadline),
                        counts="creations resumed"))
    http = {"share": share_handler(organiser, service, links,
                                   timedelta(seconds=settings.playback_url_ttl_seconds))}
    if infra.url_signer is not None and hasattr(infra.objects, "path_for"):
        http["media"] = media_handler(infra.objects, infra.url_signer)
    return BuiltContext(service=service, uow=uow, jobs=jobs, http=http, servicers={
        "LibraryService": LibraryServicer(service, practice, organiser, infra.page_tokens,
                                          links),
        "CreationService": CreationServicer(service)})
