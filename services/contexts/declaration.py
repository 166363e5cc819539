"""What a bounded context declares about itself, once.

A `ContextDeclaration` names the context's gRPC services (public ones are
routed by the edge, internal ones only reachable service-to-service), the
methods callable without a token, the credential methods (stricter rate limit
at the edge), the events it publishes and consumes, and how to build it. The
edge config, the request path's access rules, the servicer registration, the
composition root and the outbox relay are all derived from the declarations in
`services.contexts.CONTEXTS`; nothing else lists contexts or methods.

Service and method names are checked against the context's proto file when the
declaration is made, so a typo fails at import, not in production.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from google.api import annotations_pb2
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from core.shared.events import DomainEvent

if TYPE_CHECKING:
    from services.runtime.infrastructure import Infrastructure
    from services.runtime.scheduler import Job


def _has_http_rule(method: MethodDescriptor) -> bool:
    return method.GetOptions().HasExtension(annotations_pb2.http)


@dataclass(frozen=True)
class Publishes:
    """An event the context writes to the outbox: its domain type and its wire
    message (`proto/waqup/<context>/v1/events.proto`)."""

    event: type[DomainEvent]
    message: type[Message]
    #: domain event -> wire message
    encode: Callable[[Any], Message]
    #: (wire message, event id) -> domain event
    decode: Callable[[Any, uuid.UUID], DomainEvent]

    @property
    def topic(self) -> str:
        return self.event.topic


@dataclass(frozen=True)
class Consumes:
    """An event of another context this one reacts to, by its wire message only
    (contexts never import each other's cores): `handle(built, event_id, message)`
    runs once per event for the durable consumer `consumer`, and must be
    idempotent (processed_events), since any event may arrive twice."""

    topic: str
    message: type[Message]
    consumer: str
    handle: Callable[[BuiltContext, uuid.UUID, Any], Awaitable[None]]


@dataclass(frozen=True)
class HttpRoute:
    """A plain HTTP route of the context (not gRPC): served by the worker's HTTP
    server (services/api/http.py) and routed by the edge to it.

    `regex` matches the whole path. `websocket`: an upgrade route (the edge
    checks the token from the Authorization header, the `access_token` query
    parameter or a `bearer.<token>` subprotocol). `token`: whether the edge
    requires an access token at all (a signed media URL carries its own proof).
    """

    name: str
    regex: str
    websocket: bool = False
    token: bool = True
    #: The edge's timeout for a plain request (a WebSocket has none: it ends
    #: when either side closes it or after the idle timeout).
    timeout_seconds: float = 60.0
    #: HTTP methods the edge routes to it (a WebSocket: its upgrade GET).
    methods: tuple[str, ...] = ("GET", "HEAD")
    #: Accepts an HTML form's body (application/x-www-form-urlencoded), which
    #: the edge otherwise refuses with 415 (bodies must be JSON); the body
    #: size limit still applies.
    forms: bool = False
    #: A large body streamed to the handler (an upload): the edge neither
    #: buffers it nor applies its body rules; the handler caps its size.
    stream_body: bool = False


@dataclass
class BuiltContext:
    """A context wired for one process: its core service, its servicers by
    short service name, and what it needs started or closed."""

    service: Any
    servicers: dict[str, Any]
    #: Long-running loops, started with the process and cancelled on close.
    loops: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: Periodic jobs, run by the process's scheduler (one runner per job
    #: across all processes: services/runtime/scheduler.py).
    jobs: list[Job] = field(default_factory=list)
    #: The context's unit-of-work factory (tests and jobs reach the store through it).
    uow: Any = None
    #: Handlers of the declared HttpRoutes, by route name: aiohttp handlers
    #: `async (request) -> response`.
    http: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ContextDeclaration:
    name: str
    #: The context's proto file (`<context>_pb2.DESCRIPTOR`).
    proto: FileDescriptor
    #: Short names of services the edge routes (REST and gRPC).
    public: tuple[str, ...]
    #: Short names of services only other waQup services call (`service` role).
    internal: tuple[str, ...] = ()
    #: `Service/Method` of public methods that need no access token.
    token_less: tuple[str, ...] = ()
    #: `Service/Method` of token-less methods that check or create credentials:
    #: the edge rate-limits them per client address.
    credentials: tuple[str, ...] = ()
    publishes: tuple[Publishes, ...] = ()
    consumes: tuple[Consumes, ...] = ()
    #: Holds the signing keys and issues access tokens (identity). A process
    #: without such a context verifies tokens with keys fetched from one.
    issues_tokens: bool = False
    #: Wires the context from the process's shared infrastructure.
    build: Callable[[Infrastructure], BuiltContext] | None = None
    #: Plain HTTP routes (WebSocket, signed media), served beside gRPC.
    http_routes: tuple[HttpRoute, ...] = ()

    def __post_init__(self) -> None:
        names = set(self.proto.services_by_name)
        for service in (*self.public, *self.internal):
            if service not in names:
                raise ValueError(f"{self.name}: no service {service} in {self.proto.name}")
        if set(self.public) & set(self.internal):
            raise ValueError(f"{self.name}: a service cannot be public and internal")
        # Public methods are REST too (streaming ones are reached as native
        # gRPC, or through an HttpRoute); internal ones must not be (the edge's
        # transcoder would expose them).
        for service in self.public:
            for method in self.service(service).methods:
                streaming = method.client_streaming or method.server_streaming
                if not streaming and not _has_http_rule(method):
                    raise ValueError(f"{self.name}: public {method.full_name} has no "
                                     "google.api.http rule")
        for service in self.internal:
            for method in self.service(service).methods:
                if _has_http_rule(method):
                    raise ValueError(f"{self.name}: internal {method.full_name} has a "
                                     "google.api.http rule")
        for method in self.token_less:
            service, _, name = method.partition("/")
            if service not in self.public:
                raise ValueError(f"{self.name}: token-less {method} is not in a public service")
            if name not in self.proto.services_by_name[service].methods_by_name:
                raise ValueError(f"{self.name}: no method {method}")
        if not set(self.credentials) <= set(self.token_less):
            raise ValueError(f"{self.name}: credential methods must be token-less")
        for event in self.publishes:
            if not event.topic.startswith(f"waqup.{self.name}."):
                raise ValueError(f"{self.name}: {event.topic} is not this context's topic")

    def service(self, short: str) -> ServiceDescriptor:
        return self.proto.services_by_name[short]

    def full_name(self, short: str) -> str:
        return self.proto.services_by_name[short].full_name

    @property
    def public_services(self) -> tuple[str, ...]:
        """Fully qualified names of the public services."""
        return tuple(self.full_name(s) for s in self.public)

    @property
    def internal_services(self) -> tuple[str, ...]:
        return tuple(self.full_name(s) for s in self.internal)

    def _paths(self, methods: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f"/{self.full_name(m.partition('/')[0])}/{m.partition('/')[2]}"
                     for m in methods)

    @property
    def token_less_paths(self) -> tuple[str, ...]:
        """gRPC paths (`/pkg.Service/Method`) callable without a token."""
        return self._paths(self.token_less)

    @property
    def credential_paths(self) -> tuple[str, ...]:
        return self._paths(self.credentials)
