"""Composition root: settings in, a wired application out.

`build()` picks the shared adapters (store, cache, event bus, token keys) from
the settings (or from `overrides`, which tests use), then lets each served
context's declaration wire its own core, and subscribes its consumers. It
touches no network: `start()` checks every configured backend (a configured but
unreachable one is a clear startup error, never a silent fallback) and starts
the outbox relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ports.common import Cache, Clock, EventBus, OutboxMessage
from ports.identity import TokenVerifier
from services.api.pagination import PageTokens, decode_key, load_or_create_key
from services.contexts import declared
from services.contexts.declaration import BuiltContext, Consumes, ContextDeclaration
from services.runtime import tracing
from services.runtime.events import ProtobufEventCodec
from services.runtime.infrastructure import Infrastructure
from services.runtime.metrics import CountingCache, EventMetrics
from services.runtime.relay import OutboxRelay
from services.runtime.retention import retention_for, shared_retention_jobs
from services.runtime.scheduler import Scheduler
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

MEMORY_URL = "memory://"
PAGE_TOKEN_KEY_FILE = "page-token.key"


@dataclass
class Container:
    settings: Settings
    declarations: tuple[ContextDeclaration, ...]
    clock: Clock
    cache: Cache
    verifier: TokenVerifier
    bus: EventBus
    relay: OutboxRelay | None
    built: dict[str, BuiltContext]
    #: Awaited by start(), in order: backend checks, then what needs them.
    checks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: Long-running loops, started by start() and cancelled by close().
    loops: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: The SQL engine (an AsyncEngine), or None on memory://: its pools are measured.
    engine: Any = None
    #: Deliveries to this process's consumers (services.runtime.metrics).
    events: EventMetrics = field(default_factory=EventMetrics)
    #: Runs the periodic jobs (one of its loops), or None when there are none.
    scheduler: Scheduler | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def contexts(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.declarations)

    def service(self, context: str) -> Any:
        """The core service of a context this process serves."""
        return self.built[context].service

    def uow(self, context: str) -> Any:
        """The unit-of-work factory of a context this process serves."""
        return self.built[context].uow

    async def start(self) -> None:
        for check in self.checks:
            await check()
        await self.bus.start()
        if self.relay is not None:
            self.relay.start()
        self._tasks = [asyncio.create_task(loop()) for loop in self.loops]  # type: ignore[arg-type]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.relay is not None:
            await self.relay.stop()
        try:
            await self.bus.close()
        except Exception:
            log.warning("error while closing the event bus", exc_info=True)
        for close in reversed(self.closers):
            try:
                await close()
            except Exception:
                log.warning("error while closing", exc_info=True)


def build(settings: Settings | None = None, contexts: Collection[str] | None = None,
          **overrides: Any) -> Container:
    """Wire the application for the given bounded contexts (all by default:
    embedded mode; some of them: a mesh process).

    Overrides: clock, cache, hasher, keyring, store (a MemoryStore, implies memory
    persistence), bus, jwks_source (for a process without the token issuer),
    leases (of the scheduled jobs).
    """
    from adapters.jwt.keys import KeyRing
    from adapters.jwt.tokens import JwtTokenVerifier
    from adapters.memory.cache import MemoryCache
    from adapters.memory.event_bus import InProcessEventBus
    from adapters.system.clock import SystemClock
    from services.contexts import CONTEXTS

    settings = settings or Settings()
    served = declared(contexts)
    partial = served != CONTEXTS
    codec = ProtobufEventCodec()
    clock: Clock = overrides.get("clock") or SystemClock()
    checks: list[Callable[[], Awaitable[None]]] = []
    closers: list[Callable[[], Awaitable[None]]] = []
    loops: list[Callable[[], Awaitable[None]]] = []
    infra = Infrastructure(settings=settings, clock=clock, cache=None,  # type: ignore[arg-type]
                           codec=codec, overrides=overrides,
                           page_tokens=PageTokens(page_token_key(settings)),
                           trace_context=tracing.current_traceparent)

    # Persistence: memory, SQLite or PostgreSQL.
    store = overrides.get("store")
    if store is not None or settings.database_url == MEMORY_URL:
        if partial:
            raise RuntimeError("a process serving only some contexts needs a shared "
                               "database (WAQUP_DATABASE_URL), not memory://")
        from adapters.memory.outbox import MemoryOutboxStore
        from adapters.memory.store import MemoryStore

        infra.store = store or MemoryStore()
        outbox_store: Any = MemoryOutboxStore(infra.store)
    else:
        from adapters.sql.engine import check_database, create_engine, dispose_engine
        from adapters.sql.outbox import SqlOutboxStore

        engine = infra.engine = create_engine(settings.database_url)
        outbox_store = SqlOutboxStore(engine)
        checks.append(lambda: check_database(engine))
        closers.append(lambda: dispose_engine(engine))

    # Cache: Redis when configured, else in-process.
    cache: Cache | None = overrides.get("cache")
    if cache is None and settings.redis_url:
        from adapters.redis.cache import RedisCache

        redis_cache = RedisCache(settings.redis_url)
        checks.append(redis_cache.ping)
        cache = redis_cache
    cache = cache or MemoryCache()
    if settings.metrics_port:  # hits and misses, for the metrics
        cache = CountingCache(cache)
    infra.cache = cache
    closers.append(cache.close)

    # Events: NATS JetStream when configured, else in-process. A process that
    # serves only some contexts cannot reach the others' consumers in-process.
    bus: EventBus | None = overrides.get("bus")
    names = "+".join(d.name for d in served)
    if bus is None and settings.nats_url:
        from adapters.nats.event_bus import NatsEventBus

        # De-duplicate by event id for longer than the relay's longest backoff
        # (5 min), so a retried publish that did arrive is not stored twice.
        bus = NatsEventBus(settings.nats_url, ack_wait=settings.nats_ack_wait_seconds,
                           duplicate_window=600.0, client_name=f"waqup-{names}-{os.getpid()}")
    if bus is None:
        if partial:
            raise RuntimeError("a process serving only some contexts needs NATS "
                               "(WAQUP_NATS_URL) to exchange events with the others")
        bus = InProcessEventBus()
    relay = None
    if any(d.publishes for d in served):
        relay = OutboxRelay(outbox_store, bus, clock, poll_seconds=settings.outbox_poll_seconds)
        infra.notify = relay.notify

    # Tokens: the token issuer (identity) holds the signing keys; the other
    # contexts verify with its public keys, fetched over gRPC (a port, so no
    # import of identity).
    keyring = overrides.get("keyring")
    if any(d.issues_tokens for d in served) and keyring is None:
        keyring = KeyRing.load_or_create(
            settings.key_dir, activation=timedelta(seconds=settings.jwt_key_activation_seconds))
        ring = keyring
        loops.append(lambda: _reload_keys(ring, settings.key_dir,
                                          settings.jwt_key_reload_seconds))
    infra.keyring = keyring
    if keyring is not None:
        verifier: TokenVerifier = JwtTokenVerifier(keyring, settings.jwt_issuer,
                                                   settings.jwt_audience)
    else:
        from adapters.jwt.remote import RemoteKeyVerifier

        source = overrides.get("jwks_source")
        if source is None:
            if not settings.identity_target:
                raise RuntimeError(f"a process serving {names} without identity needs "
                                   "WAQUP_IDENTITY_TARGET (identity's gRPC address)")
            from services.api.clients import IdentityJwksClient

            source = IdentityJwksClient(settings.identity_target)
            closers.append(source.close)
        remote = RemoteKeyVerifier(source, settings.jwt_issuer, settings.jwt_audience,
                                   refresh_seconds=settings.jwks_refresh_seconds)
        checks.append(remote.start)
        closers.append(remote.close)
        verifier = remote

    infra.verifier = verifier
    _creation_infrastructure(settings, infra, served, checks, closers)

    built: dict[str, BuiltContext] = infra.built
    infra.serving = tuple(d.name for d in served)
    events = EventMetrics()
    for declaration in served:
        assert declaration.build is not None, f"{declaration.name} declares no build"
        context = built[declaration.name] = declaration.build(infra)
        loops.extend(context.loops)
        for consumed in declaration.consumes:
            bus.subscribe(consumed.topic, consumed.consumer,
                          _handler(consumed, context, events))

    checks.extend(infra.checks)
    closers.extend(infra.closers)
    if infra.work_queue is not None:
        queue = infra.work_queue
        checks.append(queue.start)  # after the contexts registered their consumers
        closers.insert(0, queue.close)

    # Periodic jobs: retention of the shared tables and the contexts' own jobs,
    # in every worker, each run by one of them at a time (a lease per job).
    jobs = shared_retention_jobs(retention_for(infra.store, infra.engine), clock, settings)
    for context in built.values():
        jobs.extend(context.jobs)
    scheduler = None
    if jobs:
        scheduler = Scheduler(jobs, _job_leases(settings, infra, checks, closers))
        loops.append(scheduler.run)

    return Container(settings=settings, declarations=served, clock=clock, cache=cache,
                     verifier=verifier, bus=bus, relay=relay, built=built, checks=checks,
                     closers=closers, loops=loops, engine=infra.engine, events=events,
                     scheduler=scheduler)


#: What of the shared creation infrastructure each context needs (the
#: catalog: the object store's upload URLs).
_NEEDS_QUEUE = {"library", "audio"}
_NEEDS_OBJECTS = {"library", "audio", "catalog"}
_NEEDS_SESSIONS = {"conversation"}
MEDIA_KEY_FILE = "media-url.key"


def _creation_infrastructure(settings: Settings, infra: Infrastructure,
                             served: tuple[ContextDeclaration, ...],
                             checks: list[Callable[[], Awaitable[None]]],
                             closers: list[Callable[[], Awaitable[None]]]) -> None:
    """The work queue, object store and session store, for the contexts that
    need them (overrides: work_queue, objects, sessions)."""
    names = {d.name for d in served}
    overrides = infra.overrides
    label = "+".join(sorted(names))
    if names & _NEEDS_QUEUE:
        queue = overrides.get("work_queue")
        if queue is None and settings.nats_url:
            from adapters.nats.work_queue import JetStreamWorkQueue

            queue = JetStreamWorkQueue(settings.nats_url, ack_wait=settings.job_ack_wait_seconds,
                                       client_name=f"waqup-jobs-{label}-{os.getpid()}")
        if queue is None:
            from adapters.memory.work_queue import InProcessWorkQueue

            queue = InProcessWorkQueue(ack_wait=settings.job_ack_wait_seconds)
        infra.work_queue = queue
    if names & _NEEDS_OBJECTS:
        objects = overrides.get("objects")
        if objects is None and settings.s3_bucket:
            from adapters.s3.object_store import S3ObjectStore

            objects = S3ObjectStore(settings.s3_bucket, endpoint_url=settings.s3_endpoint_url,
                                    region=settings.s3_region,
                                    access_key=settings.s3_access_key_id,
                                    secret_key=settings.s3_secret_access_key,
                                    public_base_url=settings.cdn_base_url,
                                    create_bucket=settings.s3_create_bucket)
            checks.append(objects.check)
        if objects is None:
            from adapters.fs.object_store import FileObjectStore
            from adapters.fs.signing import UrlSigner

            # A CDN in front of the edge serves the same signed paths.
            signer = UrlSigner(media_url_key(settings), settings.cdn_base_url or settings.edge_url,
                               infra.clock)
            objects = FileObjectStore(settings.data_dir / "media", signer)
            infra.url_signer = signer
        else:
            infra.url_signer = getattr(objects, "signer", None)
        infra.objects = objects
        closers.append(objects.close)
    if names & _NEEDS_SESSIONS:
        sessions = overrides.get("sessions")
        if sessions is None and settings.redis_url:
            from adapters.redis.session_store import RedisSessionStore

            sessions = RedisSessionStore(settings.redis_url)
            checks.append(sessions.ping)
        if sessions is None and infra.engine is not None:
            # Worker processes share the database, not their memory.
            from adapters.sql.session_store import SqlSessionStore

            sessions = SqlSessionStore(infra.engine, infra.clock)
        if sessions is None:
            from adapters.memory.session_store import MemorySessionStore

            sessions = MemorySessionStore(infra.clock)
        infra.sessions = sessions
        closers.append(sessions.close)


def media_url_key(settings: Settings) -> bytes:
    """WAQUP_MEDIA_URL_KEY, else the key file in the data directory (created once)."""
    if settings.media_url_key:
        return decode_key(settings.media_url_key)
    return load_or_create_key(settings.data_dir / MEDIA_KEY_FILE)


def _job_leases(settings: Settings, infra: Infrastructure,
                checks: list[Callable[[], Awaitable[None]]],
                closers: list[Callable[[], Awaitable[None]]]) -> Any:
    """Where the scheduler's leases live: WAQUP_SCHEDULER_LOCK (the database by
    default, Redis on request), or the `leases` override."""
    leases = infra.overrides.get("leases")
    if leases is not None:
        return leases
    if settings.scheduler_lock == "redis":
        from adapters.redis.leases import RedisLeases

        redis_leases = RedisLeases(settings.redis_url or "")
        checks.append(redis_leases.ping)
        closers.append(redis_leases.close)
        return redis_leases
    if infra.store is not None:
        from adapters.memory.leases import MemoryLeases

        return MemoryLeases(infra.clock)
    from adapters.sql.leases import SqlLeases

    return SqlLeases(infra.engine, infra.clock)


def page_token_key(settings: Settings) -> bytes:
    """WAQUP_PAGE_TOKEN_KEY, else the key file in the data directory (created once)."""
    if settings.page_token_key:
        return decode_key(settings.page_token_key)
    return load_or_create_key(settings.data_dir / PAGE_TOKEN_KEY_FILE)


def _handler(consumed: Consumes, context: BuiltContext,
             events: EventMetrics) -> Callable[[OutboxMessage], Awaitable[None]]:
    """One consumer's handler: decodes the event and hands it to the context,
    in the trace the event carries, counted in the metrics."""
    measured = events.consumer(consumed.topic, consumed.consumer)

    async def handle(message: OutboxMessage) -> None:
        measured.delivered(message)
        try:
            with tracing.consuming(message, consumed.consumer):
                await consumed.handle(context, message.event_id,
                                      consumed.message.FromString(message.payload))
        except BaseException:
            measured.error.inc()
            raise
        measured.ok.inc()

    return handle


async def _reload_keys(keyring: Any, directory: Any, every: float) -> None:
    """Follow the key directory, so `waqup rotate-key` reaches running workers."""
    while True:
        await asyncio.sleep(every)
        try:
            if await asyncio.to_thread(keyring.reload, directory):
                log.info("signing keys reloaded", extra={"kids": keyring.kids()})
        except Exception:
            log.warning("could not reload the signing keys", exc_info=True)
