"""What every context of a process shares: settings, time, the store, the
cache, the event codec and the token keys. Built once by the composition root
(services.runtime.bootstrap) and handed to each context's `build`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ports.common import Cache, Clock, EventCodec, TraceContext, no_trace_context
from services.runtime.settings import Settings


@dataclass
class Infrastructure:
    settings: Settings
    clock: Clock
    cache: Cache
    codec: EventCodec
    #: memory:// persistence (adapters.memory.store.MemoryStore), or None.
    store: Any = None
    #: SQL persistence (an AsyncEngine), or None.
    engine: Any = None
    #: Signing keys (adapters.jwt.keys.KeyRing) in a process that issues tokens.
    keyring: Any = None
    #: Seals and opens the page tokens of every list method.
    page_tokens: Any = None
    #: Test doubles by name (hasher, ...), from build(**overrides).
    overrides: dict[str, Any] = field(default_factory=dict)
    #: Wakes the outbox relay; a no-op in a process without one.
    notify: Callable[[], None] = lambda: None
    #: The current W3C traceparent, which the outbox stores with each event
    #: (services.runtime.tracing.current_traceparent).
    trace_context: TraceContext = no_trace_context
    #: Jobs with explicit acks (ports.media.WorkQueue): JetStream or in-process.
    work_queue: Any = None
    #: Audio objects (ports.media.ObjectStore): S3 or files.
    objects: Any = None
    #: Verifies signed media URLs (embedded object store only), or None.
    url_signer: Any = None
    #: Live conversations (ports.conversation.SessionStore): Redis or in-process.
    sessions: Any = None
    #: Contexts built so far in this process, by name (in-process peers).
    built: dict[str, Any] = field(default_factory=dict)
    #: The gRPC targets of contexts served elsewhere (mesh), by name.
    targets: dict[str, str] = field(default_factory=dict)
    #: Mints service tokens for calls to other contexts' internal methods.
    service_tokens: Any = None
    #: Registered by contexts: awaited at start (after the backend checks).
    checks: list[Callable[[], Any]] = field(default_factory=list)
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def local(self, context: str) -> Callable[[], Any] | None:
        """A getter of `context`'s core service when this process serves it
        (resolved at call time: contexts are built in declaration order), or
        None when it is served elsewhere."""
        if context not in self.serving:
            return None
        return lambda: self.built[context].service

    #: Verifies access tokens (the request path's verifier).
    verifier: Any = None
    #: Names of the contexts this process serves.
    serving: tuple[str, ...] = ()

    def peer(self, caller: str, context: str) -> Any:
        """A gRPC channel to `context`, served by another process
        (WAQUP_<CONTEXT>_TARGET), with service tokens naming `caller` (the
        process's first caller names them all); closed with the process."""
        from services.api.peers import Peer, ServiceTokens, peer_target

        if self.service_tokens is None:
            self.service_tokens = ServiceTokens(self.settings, caller, self.keyring)
        peer = Peer(peer_target(self.settings, context), self.service_tokens)
        self.closers.append(peer.close)
        return peer

    def notifying(self, factory: Callable[..., Any]) -> Callable[..., Any]:
        """A unit-of-work factory whose units wake the relay when they commit, so
        that events written to the outbox leave at once, not at the next poll."""
        notify = self.notify
        return lambda read_only=False: _NotifyOnCommit(factory(read_only=read_only), notify)


class _NotifyOnCommit:
    def __init__(self, inner: Any, notify: Callable[[], None]) -> None:
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
