"""Composition root: settings in, a wired application out.

`build()` picks one adapter per port from the settings (or from `overrides`,
which tests use) and connects the cores. It touches no network: `start()`
checks every configured backend (a configured but unreachable one is a clear
startup error, never a silent fallback) and starts the outbox relay.
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

from core.credits.service import CreditsService
from core.identity.model import UserRegistered
from core.identity.service import IdentityService
from ports.common import Cache, Clock, EventBus, OutboxMessage, OutboxStore
from ports.credits import CreditsUnitOfWorkFactory
from ports.identity import (
    IdentityUnitOfWork,
    IdentityUnitOfWorkFactory,
    PasswordHasher,
    TokenVerifier,
)
from services.events import ProtobufEventCodec
from services.relay import OutboxRelay
from services.settings import Settings

log = logging.getLogger(__name__)

MEMORY_URL = "memory://"


#: The bounded contexts this build knows, in serving order.
CONTEXTS = ("identity", "credits")
#: Contexts whose changes others react to: a process serving one runs the outbox relay.
PUBLISHING_CONTEXTS = frozenset({"identity"})


@dataclass
class Container:
    settings: Settings
    contexts: tuple[str, ...]
    clock: Clock
    cache: Cache
    verifier: TokenVerifier
    bus: EventBus
    identity: IdentityService | None
    credits: CreditsService | None
    relay: OutboxRelay | None
    identity_uow: IdentityUnitOfWorkFactory
    credits_uow: CreditsUnitOfWorkFactory
    #: Awaited by start(), in order: backend checks, then what needs them.
    checks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: Long-running loops, started by start() and cancelled by close().
    loops: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

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


class _NotifyOnCommit:
    """Wraps a unit of work so that the relay wakes as soon as it commits."""

    def __init__(self, inner: IdentityUnitOfWork, notify: Callable[[], None]) -> None:
        self._inner = inner
        self._notify = notify

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __aenter__(self) -> _NotifyOnCommit:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)

    async def commit(self) -> None:
        await self._inner.commit()
        self._notify()


def build(settings: Settings | None = None, contexts: Collection[str] = CONTEXTS,
          **overrides: Any) -> Container:
    """Wire the application for the given bounded contexts (all by default:
    embedded mode; one of them: a mesh process).

    Overrides: clock, cache, hasher, keyring, store (a MemoryStore, implies memory
    persistence), bus, jwks_source (for a process without identity).
    """
    from adapters.argon2.hasher import Argon2PasswordHasher
    from adapters.jwt.keys import KeyRing
    from adapters.jwt.tokens import JwtTokenIssuer, JwtTokenVerifier
    from adapters.memory.cache import MemoryCache
    from adapters.memory.event_bus import InProcessEventBus
    from adapters.system.clock import SystemClock

    settings = settings or Settings()
    served = tuple(name for name in CONTEXTS if name in set(contexts))
    unknown = set(contexts) - set(CONTEXTS)
    if unknown or not served:
        raise ValueError(f"unknown contexts {sorted(unknown)}; known: {list(CONTEXTS)}")
    partial = served != CONTEXTS
    codec = ProtobufEventCodec()
    clock: Clock = overrides.get("clock") or SystemClock()
    checks: list[Callable[[], Awaitable[None]]] = []
    closers: list[Callable[[], Awaitable[None]]] = []

    # Persistence: memory, SQLite or PostgreSQL.
    store = overrides.get("store")
    if store is not None or settings.database_url == MEMORY_URL:
        if partial:
            raise RuntimeError("a process serving only some contexts needs a shared "
                               "database (WAQUP_DATABASE_URL), not memory://")
        from adapters.memory.credits import memory_credits_uow
        from adapters.memory.identity import memory_identity_uow
        from adapters.memory.outbox import MemoryOutboxStore
        from adapters.memory.store import MemoryStore

        store = store or MemoryStore()
        identity_uow = memory_identity_uow(store, codec)
        credits_uow = memory_credits_uow(store)
        outbox_store: OutboxStore = MemoryOutboxStore(store)
    else:
        from adapters.sql.credits import sql_credits_uow
        from adapters.sql.engine import check_database, create_engine, dispose_engine
        from adapters.sql.identity import sql_identity_uow
        from adapters.sql.outbox import SqlOutboxStore

        engine = create_engine(settings.database_url)
        identity_uow = sql_identity_uow(engine, codec)
        credits_uow = sql_credits_uow(engine)
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
    closers.append(cache.close)

    # Events: NATS JetStream when configured, else in-process. A process that
    # serves only some contexts cannot reach the others' consumers in-process.
    bus: EventBus | None = overrides.get("bus")
    if bus is None and settings.nats_url:
        from adapters.nats.event_bus import NatsEventBus

        # De-duplicate by event id for longer than the relay's longest backoff
        # (5 min), so a retried publish that did arrive is not stored twice.
        bus = NatsEventBus(settings.nats_url, ack_wait=settings.nats_ack_wait_seconds,
                           duplicate_window=600.0,
                           client_name=f"waqup-{'+'.join(served)}-{os.getpid()}")
    if bus is None:
        if partial:
            raise RuntimeError("a process serving only some contexts needs NATS "
                               "(WAQUP_NATS_URL) to exchange events with the others")
        bus = InProcessEventBus()
    relay = None
    if PUBLISHING_CONTEXTS & set(served):
        relay = OutboxRelay(outbox_store, bus, clock, poll_seconds=settings.outbox_poll_seconds)

    # Tokens: identity holds the signing keys; the other contexts verify with
    # identity's public keys, fetched over gRPC (a port, so no import of identity).
    identity = None
    keyring = overrides.get("keyring")
    loops: list[Callable[[], Awaitable[None]]] = []
    if "identity" in served and keyring is None:
        keyring = KeyRing.load_or_create(
            settings.key_dir, activation=timedelta(seconds=settings.jwt_key_activation_seconds))
        loops.append(lambda: _reload_keys(keyring, settings.key_dir,
                                          settings.jwt_key_reload_seconds))
    if keyring is not None:
        verifier: TokenVerifier = JwtTokenVerifier(keyring, settings.jwt_issuer,
                                                   settings.jwt_audience)
    else:
        from adapters.jwt.remote import RemoteKeyVerifier

        source = overrides.get("jwks_source")
        if source is None:
            if not settings.identity_target:
                raise RuntimeError("a process serving credits without identity needs "
                                   "WAQUP_IDENTITY_TARGET (identity's gRPC address)")
            from services.clients import IdentityJwksClient

            source = IdentityJwksClient(settings.identity_target)
            closers.append(source.close)
        remote = RemoteKeyVerifier(source, settings.jwt_issuer, settings.jwt_audience,
                                   refresh_seconds=settings.jwks_refresh_seconds)
        checks.append(remote.start)
        closers.append(remote.close)
        verifier = remote

    if "identity" in served:
        assert keyring is not None and relay is not None
        issuer = JwtTokenIssuer(keyring, settings.jwt_issuer, settings.jwt_audience,
                                settings.access_token_ttl_seconds)
        hasher: PasswordHasher = overrides.get("hasher") or Argon2PasswordHasher()
        notify = relay.notify
        identity = IdentityService(
            lambda read_only=False: _NotifyOnCommit(identity_uow(read_only=read_only), notify),
            hasher, issuer, clock, cache,
            refresh_ttl=timedelta(days=settings.refresh_token_ttl_days))

    credits = None
    if "credits" in served:
        credits = CreditsService(credits_uow, clock)
        signup = credits

        async def grant_signup_bonus(message: OutboxMessage) -> None:
            event = codec.decode(message.topic, message.payload, message.event_id)
            assert isinstance(event, UserRegistered)
            await signup.grant_signup_bonus(event.event_id, event.user_id)

        bus.subscribe(UserRegistered.topic, "credits", grant_signup_bonus)

    return Container(settings=settings, contexts=served, clock=clock, cache=cache,
                     verifier=verifier, bus=bus, identity=identity, credits=credits,
                     relay=relay, identity_uow=identity_uow, credits_uow=credits_uow,
                     checks=checks, closers=closers, loops=loops)


async def _reload_keys(keyring: Any, directory: Any, every: float) -> None:
    """Follow the key directory, so `waqup rotate-key` reaches running workers."""
    while True:
        await asyncio.sleep(every)
        try:
            if await asyncio.to_thread(keyring.reload, directory):
                log.info("signing keys reloaded", extra={"kids": keyring.kids()})
        except Exception:
            log.warning("could not reload the signing keys", exc_info=True)
