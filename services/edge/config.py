"""The edge config: renders the Envoy bootstrap for the declared contexts.

The config is `envoy/envoy.yaml.tmpl` (a string.Template). The fixed shape of the
bootstrap lives there; what varies per bounded context (its upstream cluster, its
routes, its health percentage, the services the transcoder may expose) and the
filter settings that depend on parameters (JWT provider, rate limits, CORS) are
built here and inserted as JSON (valid YAML flow style).

Each context has its own upstream cluster, named after the context, listing one
endpoint per process serving it (round robin, health-checked per endpoint). In
embedded mode every cluster points at the same process; in mesh mode each points
at its own worker processes. Only the public services of a context are routed;
internal services (for example `waqup.credits.v1.CreditLedgerService`) get the
catch-all 404.

Access control at the edge (see envoy/README.md): every routed method needs a
valid access token except the declared token-less methods and the
health check; Login and Register also have a per-client-address rate limit
(their routes carry it, as route metadata). Request bodies are limited in size
(per route when a method takes more) and must be JSON or gRPC; slow clients are
cut off; every error the edge answers itself is a google.rpc.Status JSON body
with an ErrorInfo (LOCAL_REPLIES).

Rendering imports the context declarations (protobuf descriptors), nothing
that starts or connects; services/edge/process.py runs the binary.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from services.contexts import CONTEXTS as DECLARED
from services.contexts.declaration import ContextDeclaration

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "envoy" / "envoy.yaml.tmpl"
DESCRIPTOR_PATH = ROOT / "envoy" / "build" / "waqup.pb"


#: The jwt_authn provider name; its stats are `http.edge.jwt_authn.*`.
JWT_PROVIDER = "waqup_identity"
#: The same keys, for WebSocket upgrades (token also from a query parameter
#: or subprotocol).
JWT_WEBSOCKET_PROVIDER = "waqup_identity_websocket"
#: Where identity publishes its JWK set (AuthService.GetJwks, transcoded).
JWKS_PATH = "/.well-known/jwks.json"
#: The cluster through which Envoy fetches the JWKS from its own listener.
SELF_CLUSTER = "edge_self"
#: Admin stat counting successful JWKS fetches (HCM stat_prefix `edge`).
JWKS_FETCH_SUCCESS_STAT = "http.edge.jwt_authn.jwks_fetch_success"
#: The no-op request of the benchmark baseline: gRPC health check, transcoded
#: (`POST /grpc.health.v1.Health/Check` with body `{}`), public.
HEALTH_SERVICE = "grpc.health.v1.Health"
HEALTH_CHECK_METHOD = f"/{HEALTH_SERVICE}/Check"

#: Upstream circuit breaker thresholds (Envoy's defaults are 1024): HTTP/2
#: multiplexes, so `max_requests` bounds the requests in flight to a context,
#: and a benchmark with a few thousand concurrent streams must not trip it.
UPSTREAM_MAX_REQUESTS = 10_000
#: Streams per upstream HTTP/2 connection before Envoy opens another one.
UPSTREAM_MAX_CONCURRENT_STREAMS = 1024

Endpoint = tuple[str, int]


#: The contexts as the edge sees them: each one's public services are routed
#: (REST and gRPC), token-less methods need no token, credential methods get the
#: per-address rate limit (services/contexts: each context declared once).
CONTEXTS: dict[str, ContextDeclaration] = {c.name: c for c in DECLARED}


def embedded_http_upstreams(host: str = "127.0.0.1", port: int = 51051,
                            workers: int = 1) -> dict[str, list[Endpoint]]:
    """The HTTP servers of embedded workers (port, port+1, ...), for every
    context that declares HttpRoutes."""
    return {name: [(host, port + i) for i in range(workers)]
            for name, context in CONTEXTS.items() if context.http_routes}


def embedded_upstreams(host: str = "127.0.0.1", port: int = 50051,
                       workers: int = 1) -> dict[str, list[Endpoint]]:
    """Every context served by the same process(es): `workers` processes listening
    on host:port, host:port+1, ... (embedded mode; one port per worker)."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    return {name: [(host, port + i) for i in range(workers)] for name in CONTEXTS}


def _endpoints(context: str, value: Endpoint | Sequence[Endpoint]) -> list[Endpoint]:
    """One (host, port) tuple or a sequence of them -> a non-empty list."""
    if (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
            and not isinstance(value[1], (tuple, list))):
        items: Sequence[Any] = [value]
    else:
        items = list(value)
    endpoints = []
    for item in items:
        host, port = item
        if not isinstance(host, str) or not host or not 0 < int(port) < 65536:
            raise ValueError(f"bad endpoint {item!r} for context {context!r}")
        endpoints.append((host, int(port)))
    if not endpoints:
        raise ValueError(f"context {context!r} has no endpoints")
    return endpoints


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _seconds(value: float) -> str:
    """A protobuf JSON Duration."""
    if value <= 0:
        raise ValueError(f"durations must be positive, not {value}")
    return f"{value:.3f}s"


_HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def _cluster(name: str, endpoints: Sequence[Endpoint], *, grpc: bool = True) -> dict[str, Any]:
    discovery = "STATIC" if all(_is_ip(host) for host, _ in endpoints) else "STRICT_DNS"
    cluster: dict[str, Any] = {
        "name": name,
        "type": discovery,
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": host,
                                                             "port_value": port}}}}
                for host, port in endpoints
            ]}],
        },
    }
    if discovery == "STRICT_DNS":
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    if not grpc:
        return cluster
    cluster.update({
        # gRPC needs HTTP/2 to the upstream. No max_requests_per_connection:
        # connections live until the upstream closes them. No HTTP/2 keepalive
        # pings either: gRPC servers answer frequent pings on idle connections
        # with GOAWAY (too_many_pings).
        "typed_extension_protocol_options": {
            _HTTP_PROTOCOL_OPTIONS: {
                "@type": f"type.googleapis.com/{_HTTP_PROTOCOL_OPTIONS}",
                "explicit_http_config": {"http2_protocol_options": {
                    "max_concurrent_streams": UPSTREAM_MAX_CONCURRENT_STREAMS,
                }},
            }
        },
        "circuit_breakers": {"thresholds": [{
            "priority": "DEFAULT",
            "max_connections": UPSTREAM_MAX_REQUESTS,
            "max_pending_requests": UPSTREAM_MAX_REQUESTS,
            "max_requests": UPSTREAM_MAX_REQUESTS,
            "max_retries": 3,
            "track_remaining": True,
        }]},
        # grpc.health.v1.Health/Check with service "" (the whole server), for
        # each endpoint. no_traffic_interval matters: /healthz probes are not
        # traffic, and its default (60 s) would make /healthz slow to follow
        # the upstream.
        "health_checks": [{
            "timeout": "1s",
            "interval": "1s",
            "no_traffic_interval": "1s",
            "unhealthy_threshold": 2,
            "healthy_threshold": 1,
            "grpc_health_check": {},
        }],
    })
    return cluster


def _min_healthy_percent(endpoints: int) -> float:
    """/healthz is 200 while every context has at least one healthy endpoint:
    one worker of several restarting must not take the whole edge out of its
    load balancer. (With one endpoint: 100%.)"""
    return math.floor(100_000 / endpoints) / 1000


def _self_address(listen_host: str) -> str:
    """Where Envoy reaches its own listener (for the JWKS fetch)."""
    if listen_host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if listen_host == "::":
        return "::1"
    return listen_host


# --- local replies ------------------------------------------------------------

_ERROR_DOMAIN = "waqup.app"
#: Native gRPC content types, as Envoy recognises them (application/grpc,
#: application/grpc+proto, application/grpc;...; not grpc-web).
_GRPC_TYPES = r"application/grpc(?:[+;].*)?"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
#: One message for every refused token: which check failed is the edge's
#: business (access log: response_code_details), not the caller's.
TOKEN_MESSAGE = "the access token is missing, expired or not valid"


@dataclass(frozen=True)
class LocalReply:
    """How the edge answers one kind of error it produces itself.

    status: the HTTP status Envoy (or a filter) chose; details: a prefix of the
    response code details that must match too (None: any); answer: the HTTP
    status sent; code and reason: the google.rpc.Status code and ErrorInfo
    reason of the JSON body; message: fixed (never the client's input, proto
    type names or upstream addresses); grpc_status: what native gRPC callers
    get when Envoy's own mapping of `answer` would be UNKNOWN or wrong.
    """

    status: int
    details: str | None
    answer: int
    code: int
    reason: str
    message: str
    grpc_status: int | None = None


_JWT_DENIED = "jwt_authn_access_denied{"
_TRANSCODE_EARLY = "early_grpc_json_transcode_failure"
_TRANSCODE = "grpc_json_transcode_failure"
#: The request rules (RBAC filters) answer 403 with these details.
_NOT_JSON_POLICY, _TOO_LARGE_POLICY = "not_json", "too_large"
_RBAC_DENIED = "rbac_access_denied_matched_policy["

#: Every error the edge answers itself, first match wins; then any other
#: status >= 400 (INVALID_ARGUMENT / INTERNAL). google.rpc.Code numbers:
#: 3 INVALID_ARGUMENT, 4 DEADLINE_EXCEEDED, 5 NOT_FOUND, 7 PERMISSION_DENIED,
#: 8 RESOURCE_EXHAUSTED, 12 UNIMPLEMENTED, 13 INTERNAL, 14 UNAVAILABLE,
#: 16 UNAUTHENTICATED.
LOCAL_REPLIES: tuple[LocalReply, ...] = (
    # The transcoder's own refusals: the path/query (early) or the body.
    # Their text echoes the client's input and names proto types: replaced.
    LocalReply(400, _TRANSCODE_EARLY, 400, 3, "MALFORMED_REQUEST",
               "the path or query string is not valid for this method"),
    LocalReply(400, _TRANSCODE, 400, 3, "MALFORMED_REQUEST",
               "the request body is not valid JSON for this method"),
    LocalReply(400, None, 400, 3, "MALFORMED_REQUEST", "the request is not valid HTTP"),
    LocalReply(401, _JWT_DENIED + "Jwt_is_missing", 401, 16, "TOKEN_MISSING", TOKEN_MESSAGE),
    LocalReply(401, _JWT_DENIED + "Jwt_is_expired", 401, 16, "TOKEN_EXPIRED", TOKEN_MESSAGE),
    LocalReply(401, None, 401, 16, "INVALID_TOKEN", TOKEN_MESSAGE),
    # jwt_authn answers a token for another audience with 403; to the client
    # it is an invalid token like any other (RFC 6750 invalid_token: 401).
    LocalReply(403, _JWT_DENIED, 401, 16, "INVALID_TOKEN", TOKEN_MESSAGE),
    LocalReply(403, _RBAC_DENIED + _NOT_JSON_POLICY + "]", 415, 3, "UNSUPPORTED_MEDIA_TYPE",
               "a request body must be JSON: send Content-Type: application/json"),
    LocalReply(403, _RBAC_DENIED + _TOO_LARGE_POLICY + "]", 413, 3, "REQUEST_TOO_LARGE",
               "the request body is larger than this method accepts", 3),
    LocalReply(403, None, 403, 7, "PERMISSION_DENIED", "forbidden"),
    LocalReply(404, None, 404, 5, "NOT_FOUND", "not found"),
    LocalReply(405, None, 405, 12, "METHOD_NOT_ALLOWED", "method not allowed"),
    LocalReply(408, None, 408, 4, "REQUEST_TIMEOUT",
               "the request was not received in time", 4),
    # The body filter's limit (a body over it arrives piece by piece), and
    # the transcoder's own.
    LocalReply(413, None, 413, 3, "REQUEST_TOO_LARGE",
               "the request body is larger than this method accepts", 3),
    LocalReply(426, None, 426, 3, "HTTP_VERSION_NOT_SUPPORTED",
               "HTTP/1.0 is not supported: use HTTP/1.1 or HTTP/2"),
    LocalReply(429, None, 429, 8, "RATE_LIMITED", "too many requests: retry later"),
    LocalReply(431, None, 431, 3, "REQUEST_HEADERS_TOO_LARGE",
               "the request headers are too large"),
    LocalReply(500, None, 500, 13, "INTERNAL", "internal error"),
    LocalReply(502, None, 502, 14, "UNAVAILABLE", "the service is unavailable: retry later"),
    LocalReply(503, None, 503, 14, "UNAVAILABLE", "the service is unavailable: retry later"),
    LocalReply(504, None, 504, 4, "DEADLINE_EXCEEDED", "the service did not answer in time", 4),
)
#: Any other error status Envoy answers with (>= 400): (code, reason, message).
_OTHER_CLIENT_ERROR = (3, "BAD_REQUEST", "the request was refused")
_OTHER_SERVER_ERROR = (13, "INTERNAL", "internal error")


def _status_filter(status: int, op: str = "EQ") -> dict[str, Any]:
    return {"status_code_filter": {"comparison": {"op": op, "value": {
        "default_value": status, "runtime_key": f"waqup.local_reply.{status}"}}}}


def _cel_filter(expression: str) -> dict[str, Any]:
    return {"extension_filter": {
        "name": "envoy.access_loggers.extension_filters.cel",
        "typed_config": {
            "@type": "type.googleapis.com/"
                     "envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
            "expression": expression,
        },
    }}


def _status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"json_format": {
                "code": code, "message": message,
                "details": [{"@type": _ERROR_INFO, "reason": reason, "domain": _ERROR_DOMAIN}],
            },
            "content_type": "application/json"}


def _local_reply_config() -> dict[str, Any]:
    # REST callers (plain HTTP requests, or gRPC requests the transcoder made:
    # they carry x-envoy-original-path, which clients cannot send since the
    # edge strips x-envoy-* request headers) get a google.rpc.Status JSON body
    # with an ErrorInfo. Native gRPC callers get a trailers-only reply: the
    # message becomes grpc-message, and grpc-status follows the HTTP status
    # (Envoy's mapping) unless the table says otherwise.
    for_rest = {"or_filter": {"filters": [
        {"header_filter": {"header": {
            "name": "content-type", "string_match": {"safe_regex": {"regex": _GRPC_TYPES}},
            "invert_match": True, "treat_missing_header_as_empty": True}}},
        {"header_filter": {"header": {"name": "x-envoy-original-path", "present_match": True}}},
    ]}}
    rest: list[dict[str, Any]] = []
    grpc: list[dict[str, Any]] = []
    for reply in LOCAL_REPLIES:
        condition = [_status_filter(reply.status)]
        if reply.details is not None:
            condition.append(_cel_filter(
                f"response.code_details.startsWith({json.dumps(reply.details)})"))
        changed = {"status_code": reply.answer} if reply.answer != reply.status else {}
        rest.append({"filter": {"and_filter": {"filters": [*condition, for_rest]}},
                     "body_format_override": _status_body(reply.code, reply.reason,
                                                          reply.message),
                     **changed})
        mapper: dict[str, Any] = {
            "filter": condition[0] if len(condition) == 1
            else {"and_filter": {"filters": condition}},
            "body_format_override": {"text_format_source": {"inline_string": reply.message}},
            **changed,
        }
        if reply.grpc_status is not None:
            mapper["headers_to_add"] = [{
                "header": {"key": "grpc-status", "value": str(reply.grpc_status)},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]
        grpc.append(mapper)
    # Any other error: 5xx first (a 5xx also matches ">= 400").
    for low, (code, reason, message) in ((500, _OTHER_SERVER_ERROR),
                                         (400, _OTHER_CLIENT_ERROR)):
        rest.append({"filter": {"and_filter": {"filters": [
                        _status_filter(low, "GE"), for_rest]}},
                     "body_format_override": _status_body(code, reason, message)})
    return {"mappers": [*rest, *grpc]}


# --- routes -------------------------------------------------------------------

_JWT_FILTER = "envoy.filters.http.jwt_authn"
_JWT_PER_ROUTE = "envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig"
_JWT_REQUIREMENT = "access_token"
_JWT_WEBSOCKET = "websocket_token"
_TRANSCODER = "envoy.filters.http.grpc_json_transcoder"


def _jwt_per_route(*, required: bool) -> dict[str, Any]:
    config: dict[str, Any] = {"@type": f"type.googleapis.com/{_JWT_PER_ROUTE}"}
    if required:
        config["requirement_name"] = _JWT_REQUIREMENT
    else:
        config["disabled"] = True
    return {_JWT_FILTER: config}


#: Route metadata (filter_metadata namespace) the edge's filters read.
ROUTE_METADATA = "waqup.edge"
#: The route metadata value that puts a route under the per-address limit.
_CREDENTIALS = "credentials"
#: The (optional) filter that applies each route's own body limit.
_ROUTE_BODY_LIMIT = "waqup.route_body_limit"


def _route(name: str, match: dict[str, Any], cluster: str, *, timeout: float,
           token_required: bool, credentials: bool = False,
           body_limit: int | None = None) -> dict[str, Any]:
    upstream_deadline = f"{round(timeout * 1000) + 1000}m"  # grpc-timeout: milliseconds
    timeout_text = _seconds(timeout)
    per_filter = _jwt_per_route(required=token_required)
    if body_limit is not None:
        per_filter[_ROUTE_BODY_LIMIT] = {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute",
            "rbac": {"rules": _too_large_rbac(body_limit)}}
    route: dict[str, Any] = {
        "name": name,
        # Transcoded REST calls arrive here too: the transcoder has already
        # rewritten them to the gRPC path with content-type application/grpc.
        "match": {**match, "grpc": {}},
        "route": {
            "cluster": cluster,
            # The router's timeout: 504 from the edge. (No max_stream_duration:
            # with it, Envoy ignores `timeout` for gRPC requests, which every
            # routed request is once transcoded, and sends the upstream a
            # grpc-timeout equal to its own, so the service's own
            # DEADLINE_EXCEEDED, without an ErrorInfo, could win the race.)
            "timeout": timeout_text,
        },
        # The service's deadline, when the client set none (REST calls): a
        # second after the edge's, so that the edge answers a slow call (and
        # cancels the upstream stream). A native gRPC client's own
        # grpc-timeout is kept, and its own deadline ends the call.
        "request_headers_to_add": [{
            "header": {"key": "grpc-timeout", "value": upstream_deadline},
            "append_action": "ADD_IF_ABSENT"}],
        "typed_per_filter_config": per_filter,
    }
    if credentials:
        # The local rate limit reads this (a metadata action on the route
        # entry): the per-address limit belongs to the route, whatever query
        # string or REST form the request came with.
        route["metadata"] = {"filter_metadata": {ROUTE_METADATA: {"rate_limit": _CREDENTIALS}}}
    return route


def http_cluster(context: str) -> str:
    return f"{context}_http"


def _http_routes(contexts: Sequence[str], http_contexts: Collection[str],
                 ) -> list[dict[str, Any]]:
    """The contexts' plain HTTP routes (WebSocket, signed media), before the
    gRPC ones: matched on the request's own path (the transcoder leaves them
    alone: it is disabled on these routes)."""
    routes: list[dict[str, Any]] = []
    for name in contexts:
        if name not in http_contexts:
            continue
        for http in CONTEXTS[name].http_routes:
            off = {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
                   "disabled": True}
            # Not gRPC: no transcoding. A WebSocket's request never ends, so
            # the body buffers (which wait for the end of the request) are off.
            per_filter: dict[str, Any] = {_TRANSCODER: off}
            if http.websocket:
                per_filter.update({"waqup.body": off, "waqup.route_body": off})
            if not http.token:
                per_filter.update(_jwt_per_route(required=False))
            else:
                per_filter[_JWT_FILTER] = {
                    "@type": f"type.googleapis.com/{_JWT_PER_ROUTE}",
                    "requirement_name": _JWT_WEBSOCKET if http.websocket else _JWT_REQUIREMENT}
            match: dict[str, Any] = {"safe_regex": {"regex": http.regex}}
            action: dict[str, Any] = {"cluster": http_cluster(name)}
            if http.websocket:
                match["headers"] = [{"name": "upgrade", "string_match": {
                    "exact": "websocket", "ignore_case": True}}]
                # No route timeout: the socket lives until a side closes it;
                # the listener's stream idle timeout (pings keep it alive) ends
                # an abandoned one.
                action.update({"timeout": "0s", "upgrade_configs": [
                    {"upgrade_type": "websocket"}]})
            else:
                match["headers"] = [{"name": ":method", "string_match": {
                    "safe_regex": {"regex": "|".join(http.methods)}}}]
                if http.forms:
                    per_filter["waqup.request_rules"] = off
                if http.stream_body:
                    per_filter.update({"waqup.body": off, "waqup.route_body": off,
                                       "waqup.request_rules": off})
                action["timeout"] = _seconds(http.timeout_seconds)
            routes.append({"name": f"{name}.{http.name}", "match": match, "route": action,
                           "typed_per_filter_config": per_filter})
    return routes


def _service_methods(service: str) -> list[str]:
    for context in CONTEXTS.values():
        if service in context.public_services:
            short = service.rpartition(".")[2]
            return [f"/{service}/{m.name}" for m in context.service(short).methods]
    raise KeyError(service)


def _routes(contexts: Sequence[str], body_limits: Mapping[str, int],
            timeout: float, http_contexts: Collection[str] = ()) -> list[dict[str, Any]]:
    """body_limits: only the routes whose limit differs from the listener's
    default (the per-route override of the route_body_limit filter)."""
    routes: list[dict[str, Any]] = _http_routes(contexts, http_contexts)
    for name in contexts:
        context = CONTEXTS[name]
        token_less = set(context.token_less_paths)
        credentials = set(context.credential_paths)
        for service in context.public_services:
            # Methods that differ from their service (no token, the per-address
            # limit, their own body limit) get an exact-path route first: it
            # shadows the prefix route of the service, which requires a token.
            for method in _service_methods(service):
                if method in token_less or method in credentials or method in body_limits:
                    routes.append(_route(method, {"path": method}, name, timeout=timeout,
                                         token_required=method not in token_less,
                                         credentials=method in credentials,
                                         body_limit=body_limits.get(method,
                                                                    body_limits.get(service))))
            routes.append(_route(service, {"prefix": f"/{service}/"}, name, timeout=timeout,
                                 token_required=True, body_limit=body_limits.get(service)))
    # The benchmark's no-op baseline, and a probe for load balancers: public,
    # served by the first context's processes. Health/Watch stays unrouted.
    routes.append(_route(HEALTH_CHECK_METHOD, {"path": HEALTH_CHECK_METHOD}, contexts[0],
                         timeout=timeout, token_required=False))
    # CORS preflights (OPTIONS with Origin and Access-Control-Request-Method)
    # are never transcoded, so without this route they would meet the catch-all
    # direct_response, and the CORS filter ignores routes without a route entry.
    # The CORS filter answers every preflight itself (forward_not_matching_
    # preflights: false): nothing is ever sent to this cluster.
    routes.append({
        "name": "cors_preflight",
        "match": {"prefix": "/", "headers": [
            {"name": ":method", "string_match": {"exact": "OPTIONS"}},
            # Non-empty, as the CORS filter requires: an empty value would make a
            # plain OPTIONS that the CORS filter passes on to the cluster.
            {"name": "origin", "string_match": {"safe_regex": {"regex": ".+"}}},
            {"name": "access-control-request-method",
             "string_match": {"safe_regex": {"regex": ".+"}}},
        ]},
        "route": {"cluster": contexts[0], "timeout": "1s"},
        "typed_per_filter_config": _jwt_per_route(required=False),
    })
    routes.append({
        "name": "not_found",
        "match": {"prefix": "/"},
        # The local reply mapper turns it into {"code":5,"message":"not found"}
        # for REST callers; gRPC callers get UNIMPLEMENTED. No token needed to
        # learn that a path does not exist.
        "direct_response": {"status": 404, "body": {"inline_string": "not found"}},
        "typed_per_filter_config": _jwt_per_route(required=False),
    })
    return routes


# --- filters ------------------------------------------------------------------


def _jwt_authn_config(*, issuer: str, audience: str, jwks_uri: str,
                      cache_seconds: int) -> dict[str, Any]:
    # Envoy truncates cache_duration to whole seconds and, with async_fetch,
    # refetches every cache_duration (minus 5 s when it is longer than 5 s);
    # 0 would refetch in a loop.
    if int(cache_seconds) != cache_seconds or cache_seconds < 1:
        raise ValueError(f"jwks_cache_seconds must be a whole number >= 1, not {cache_seconds}")
    provider = {
        "issuer": issuer,
        "audiences": [audience],
        # Only the Authorization header: never tokens in query strings (logs).
        "from_headers": [{"name": "Authorization", "value_prefix": "Bearer "}],
        # The services verify the token again and take the caller from it.
        "forward": True,
        # The services' verifier allows the same skew.
        "clock_skew_seconds": 30,
        # Remember verified tokens (per worker thread, until they expire): a
        # client repeats its token for up to 15 minutes, and an ES256 check per
        # request is the largest part of the edge's cost for an authenticated read.
        "jwt_cache_config": {"jwt_cache_size": 10_000},
        "remote_jwks": {
            # Identity speaks gRPC only: fetch the transcoded GetJwks through
            # this very listener.
            "http_uri": {"uri": jwks_uri, "cluster": SELF_CLUSTER, "timeout": "2s"},
            "cache_duration": f"{int(cache_seconds)}s",
            # Fetched in the background on the main thread and refreshed every
            # cache_duration; fetched keys never expire while a refetch fails.
            # The listener must not wait for the first fetch: it needs the
            # listener (fast_listener). A failed fetch is retried after 0.5 s.
            "async_fetch": {"fast_listener": True, "failed_refetch_duration": "0.500s"},
            "retry_policy": {"num_retries": 2, "retry_back_off": {
                "base_interval": "0.100s", "max_interval": "0.500s"}},
        },
    }
    # WebSocket upgrades: browsers cannot set headers on a WebSocket, so the
    # token may also come as the access_token query parameter or as a
    # `bearer.<token>` subprotocol. Only WebSocket routes use this provider.
    websocket = {**provider, "from_headers": [
        {"name": "Authorization", "value_prefix": "Bearer "},
        {"name": "Sec-WebSocket-Protocol", "value_prefix": "bearer."}],
        "from_params": ["access_token"]}
    return {
        "@type": "type.googleapis.com/"
                 "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {JWT_PROVIDER: provider, JWT_WEBSOCKET_PROVIDER: websocket},
        # Routes name their requirement (typed_per_filter_config): the token-
        # less ones are disabled, the rest require this.
        "requirement_map": {_JWT_REQUIREMENT: {"provider_name": JWT_PROVIDER},
                            _JWT_WEBSOCKET: {"provider_name": JWT_WEBSOCKET_PROVIDER}},
        # A route without per-route config (none is generated that way) still
        # needs a token: deny by default.
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": JWT_PROVIDER}}],
        "bypass_cors_preflight": True,
    }


def _token_bucket(tokens: int, interval_seconds: float) -> dict[str, Any]:
    if tokens < 1:
        raise ValueError(f"a rate limit needs at least one token, not {tokens}")
    return {"max_tokens": int(tokens), "tokens_per_fill": int(tokens),
            "fill_interval": _seconds(interval_seconds)}


def _percent(runtime_key: str) -> dict[str, Any]:
    return {"runtime_key": runtime_key,
            "default_value": {"numerator": 100, "denominator": "HUNDRED"}}


_CREDENTIALS_DESCRIPTOR = ("limit", "credentials")


def _local_ratelimit_config(*, global_tokens: int | None, global_interval: float,
                            credential_tokens: int | None, credential_interval: float,
                            max_addresses: int) -> dict[str, Any]:
    config: dict[str, Any] = {
        "@type": "type.googleapis.com/"
                 "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": "edge_rate_limit",
        "filter_enabled": _percent("waqup.rate_limit.enabled"),
        "filter_enforced": _percent("waqup.rate_limit.enforced"),
        # Buckets are per Envoy process, shared by its worker threads.
        "local_rate_limit_per_downstream_connection": False,
        # x-ratelimit-limit / -remaining / -reset on responses.
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
        # gRPC callers: RESOURCE_EXHAUSTED rather than UNAVAILABLE.
        "rate_limited_as_resource_exhausted": True,
        # The global bucket counts every request, also those a descriptor
        # bucket limits.
        "always_consume_default_token_bucket": True,
    }
    if global_tokens is not None:
        # The default bucket: every request through the listener takes a token.
        config["token_bucket"] = _token_bucket(global_tokens, global_interval)
    if credential_tokens is not None:
        key, value = _CREDENTIALS_DESCRIPTOR
        # Requests whose route carries the metadata rate_limit=credentials (the
        # credential methods' routes, which match the gRPC path: REST and
        # native gRPC alike, with or without a query string) generate the
        # descriptor [limit=credentials, remote_address=<client ip>]; other
        # routes have no such metadata (skip_if_absent: no descriptor) and
        # take only the global bucket. These are the filter's own rate_limits,
        # not the routes' (Envoy 1.40 deprecates route-level ones for local
        # limits); one metadata lookup per request, no regex.
        config["rate_limits"] = [{"actions": [
            {"metadata": {
                "descriptor_key": key,
                "metadata_key": {"key": ROUTE_METADATA, "path": [{"key": "rate_limit"}]},
                "source": "ROUTE_ENTRY", "skip_if_absent": True,
            }},
            {"remote_address": {}},
        ]}]
        # The empty value of remote_address makes this descriptor a wildcard:
        # one bucket per distinct client address, created on first use and kept
        # in an LRU of max_dynamic_descriptors entries (this field only counts on
        # the config that holds the descriptors, which is this one). Login and
        # Register share it: one bucket per address for both.
        config["descriptors"] = [{
            "entries": [{"key": key, "value": value}, {"key": "remote_address", "value": ""}],
            "token_bucket": _token_bucket(credential_tokens, credential_interval),
        }]
        config["max_dynamic_descriptors"] = int(max_addresses)
    return config


#: Media types a request body may have: JSON (REST; any case, parameters such
#: as charset allowed) and gRPC (native gRPC).
_BODY_TYPES = r"(?i:application/json)(?:;.*)?|" + _GRPC_TYPES
_RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
_MAX_INT64 = 2**63 - 1


def _header(name: str, **match: Any) -> dict[str, Any]:
    return {"header": {"name": name, **match}}


def _too_large(limit: int) -> dict[str, Any]:
    """The policy: a Content-Length over `limit`. The body filter before it
    has the whole body and sets Content-Length when the client sent none (a
    client-sent one was checked against the body by Envoy's codecs)."""
    return {"permissions": [_header("content-length", range_match={
                "start": int(limit) + 1, "end": _MAX_INT64})],
            "principals": [{"any": True}]}


def _too_large_rbac(limit: int) -> dict[str, Any]:
    return {"action": "DENY", "policies": {_TOO_LARGE_POLICY: _too_large(limit)}}


def _request_rules_config(body_cap: int) -> dict[str, Any]:
    """An RBAC filter before the transcoder (which rewrites Content-Type and
    drops Content-Length), after the body filter: denies (403, which the local
    replies turn into 415 or 413) a request with a Content-Type other than JSON
    or gRPC, with a body and no Content-Type, or with a body over the cap."""
    has_content_type = _header("content-type", present_match=True)
    not_json = {
        "permissions": [{"or_rules": {"rules": [
            # A Content-Type that is neither JSON nor gRPC.
            {"and_rules": {"rules": [
                has_content_type,
                {"not_rule": _header("content-type",
                                     string_match={"safe_regex": {"regex": _BODY_TYPES}})},
            ]}},
            # A body without a Content-Type.
            {"and_rules": {"rules": [
                {"not_rule": has_content_type},
                _header("content-length", range_match={"start": 1, "end": _MAX_INT64}),
            ]}},
        ]}}],
        "principals": [{"any": True}],
    }
    return {"@type": _RBAC, "rules": {"action": "DENY", "policies": {
        _NOT_JSON_POLICY: not_json, _TOO_LARGE_POLICY: _too_large(body_cap)}}}


def _body_buffer_config(limit: int) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
            "max_request_bytes": int(limit)}


def _cors_policy(origins: Sequence[str], max_age_seconds: int) -> dict[str, Any]:
    if "*" in origins:
        matchers = [{"safe_regex": {"regex": ".*"}}]
    else:
        matchers = [{"exact": origin} for origin in origins]
    return {"envoy.filters.http.cors": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
        "allow_origin_string_match": matchers,
        "allow_methods": "GET, POST, PATCH, DELETE, OPTIONS",
        "allow_headers": ("authorization, content-type, x-request-id, grpc-timeout, "
                          "x-grpc-web, x-user-agent"),
        "expose_headers": ("x-request-id, x-ratelimit-limit, x-ratelimit-remaining, "
                           "x-ratelimit-reset, www-authenticate, grpc-status, grpc-message"),
        "max_age": str(int(max_age_seconds)),
        # Tokens travel in the Authorization header, never in cookies.
        "allow_credentials": False,
        # Answer preflights from other origins too (without allow-origin), so
        # that no preflight ever reaches a service.
        "forward_not_matching_preflights": False,
    }}


#: Default largest request body (bytes) of a route: JSON APIs take small bodies.
DEFAULT_MAX_REQUEST_BODY_BYTES = 64 * 1024


def _body_limits(default: int, overrides: Mapping[str, int],
                 contexts: Sequence[str]) -> dict[str, int]:
    """Validated per-route body limits (method path or service name -> bytes)."""
    if int(default) != default or default < 1:
        raise ValueError(f"max_request_body_bytes must be a positive integer, not {default}")
    known = {HEALTH_CHECK_METHOD}
    for name in contexts:
        for service in CONTEXTS[name].public_services:
            known.add(service)
            known.update(_service_methods(service))
    limits = {}
    for key, limit in overrides.items():
        if key not in known:
            raise ValueError(f"route_body_limits: {key!r} is not a routed method "
                             "(/package.Service/Method) or public service (package.Service)")
        if int(limit) != limit or limit < 1:
            raise ValueError(f"route_body_limits[{key!r}] must be a positive integer")
        limits[key] = int(limit)
    return limits


def render_envoy_config(
    *,
    listen_host: str = "127.0.0.1",
    listen_port: int = 8080,
    admin_port: int = 9901,
    upstreams: Mapping[str, Endpoint | Sequence[Endpoint]],
    http_upstreams: Mapping[str, Endpoint | Sequence[Endpoint]] | None = None,
    descriptor_path: Path = DESCRIPTOR_PATH,
    jwt_issuer: str = "waqup-identity",
    jwt_audience: str = "waqup-api",
    jwks_cache_seconds: int = 30,
    cors_origins: Sequence[str] = (),
    cors_max_age_seconds: int = 600,
    global_rate_limit: int | None = 10_000,
    global_rate_limit_interval_seconds: float = 1.0,
    credential_rate_limit: int | None = 10,
    credential_rate_limit_interval_seconds: float = 60.0,
    rate_limit_max_addresses: int = 10_000,
    xff_num_trusted_hops: int = 0,
    max_request_body_bytes: int = DEFAULT_MAX_REQUEST_BODY_BYTES,
    route_body_limits: Mapping[str, int] | None = None,
    request_headers_timeout_seconds: float = 10.0,
    request_timeout_seconds: float = 30.0,
    stream_idle_timeout_seconds: float = 60.0,
    idle_timeout_seconds: float = 60.0,
    route_timeout_seconds: float = 15.0,
) -> str:
    """The Envoy bootstrap (YAML) for the given upstreams, one cluster per context.

    upstreams: context name (a key of CONTEXTS) -> the (host, port) of the one
        process serving it, or a list of them (one per worker process).
    http_upstreams: the same for the HTTP servers of the contexts that declare
        HttpRoutes (WebSocket, signed media); contexts without an entry get
        no such routes.
    jwt_issuer, jwt_audience: what access tokens must carry (`iss`, `aud`).
    jwks_cache_seconds: how often the edge refetches identity's JWKS (whole
        seconds; Envoy refetches 5 s early when longer than 5 s). A key identity
        starts signing with is refused at the edge until the next refetch.
    cors_origins: browser origins allowed (exact `https://app.example`), or
        `["*"]`; empty (the default) allows no cross-origin calls.
    global_rate_limit: requests per `global_rate_limit_interval_seconds` for
        the whole listener (one bucket per Envoy process); None: no global limit.
    credential_rate_limit: Login + Register calls per
        `credential_rate_limit_interval_seconds` per client address; None: none.
    rate_limit_max_addresses: client addresses whose buckets are remembered
        (LRU; an evicted address starts again with a full bucket).
    xff_num_trusted_hops: proxies in front of Envoy whose X-Forwarded-For is
        trusted for the client address (0: the TCP peer is the client).
    max_request_body_bytes: the largest request body of a route (the JSON body
        of a REST call, the framed message of a native gRPC call); larger: 413.
    route_body_limits: per-route overrides of it, by gRPC method path
        (`/pkg.Service/Method`) or public service (`pkg.Service`), for methods
        that take uploads. No JSON body may exceed the largest of all limits.
    request_headers_timeout_seconds: to receive the request headers (408).
    request_timeout_seconds: to receive the whole request, body included (408).
    stream_idle_timeout_seconds: a request with no activity either way (408
        if no response started); keep it longer than the route timeout.
    idle_timeout_seconds: a connection with no request in flight is closed.
    route_timeout_seconds: how long a service may take to answer (504); the
        service is given a deadline a second later (grpc-timeout) unless the
        client sent its own.
    """
    unknown = sorted(set(upstreams) - set(CONTEXTS))
    if unknown:
        raise ValueError(f"unknown contexts {unknown}; known: {sorted(CONTEXTS)}")
    if not upstreams:
        raise ValueError("at least one upstream is needed")
    contexts = [name for name in CONTEXTS if name in upstreams]
    endpoints = {name: _endpoints(name, upstreams[name]) for name in contexts}
    services = [s for name in contexts for s in CONTEXTS[name].public_services]
    self_host = _self_address(listen_host)
    self_authority = f"[{self_host}]" if ":" in self_host else self_host
    jwks_uri = f"http://{self_authority}:{int(listen_port)}{JWKS_PATH}"
    clusters = [_cluster(name, endpoints[name]) for name in contexts]
    http_contexts = [name for name in contexts
                     if CONTEXTS[name].http_routes and name in (http_upstreams or {})]
    for name in http_contexts:
        cluster = _cluster(http_cluster(name), _endpoints(name, http_upstreams[name]),  # type: ignore[index]
                           grpc=False)
        cluster["health_checks"] = [{
            "timeout": "1s", "interval": "2s", "no_traffic_interval": "2s",
            "unhealthy_threshold": 2, "healthy_threshold": 1,
            "http_health_check": {"path": "/healthz"}}]
        clusters.append(cluster)
    clusters.append(_cluster(SELF_CLUSTER, [(self_host, int(listen_port))], grpc=False))
    limits = _body_limits(max_request_body_bytes, route_body_limits or {}, contexts)
    # Before the transcoder a REST request has no route yet (the catch-all), so
    # the first body limit is the largest of all; when some route differs
    # from the default, a second one after jwt_authn applies each route's own.
    body_cap = max([int(max_request_body_bytes), *limits.values()])
    per_route = {key: value for key, value in limits.items()
                 if value != max_request_body_bytes}
    route_body_limit_filters = ""
    if per_route:
        # The transcoder dropped Content-Length: this buffer holds the
        # transcoded body and sets it again, then an RBAC filter compares it
        # with the route's limit (per-route config) or the default.
        buffer = _body_buffer_config(body_cap)
        rbac = {"@type": _RBAC, "rules": _too_large_rbac(max_request_body_bytes)}
        route_body_limit_filters = (
            f"          - name: waqup.route_body\n"
            f"            typed_config: {json.dumps(buffer)}\n"
            f"          - name: {_ROUTE_BODY_LIMIT}\n"
            f"            typed_config: {json.dumps(rbac)}")
    return Template(TEMPLATE_PATH.read_text()).substitute(
        listen_host=json.dumps(listen_host),
        listen_port=int(listen_port),
        admin_port=int(admin_port),
        xff_num_trusted_hops=int(xff_num_trusted_hops),
        request_headers_timeout=json.dumps(_seconds(request_headers_timeout_seconds)),
        request_timeout=json.dumps(_seconds(request_timeout_seconds)),
        stream_idle_timeout=json.dumps(_seconds(stream_idle_timeout_seconds)),
        idle_timeout=json.dumps(_seconds(idle_timeout_seconds)),
        descriptor_path=json.dumps(str(Path(descriptor_path).resolve())),
        transcoded_services=json.dumps([*services, HEALTH_SERVICE]),
        health_percentages=json.dumps({name: {"value": _min_healthy_percent(len(endpoints[name]))}
                                       for name in contexts}),
        routes=json.dumps(_routes(contexts, per_route, route_timeout_seconds, http_contexts)),
        virtual_host_filter_config=json.dumps(_cors_policy(cors_origins,
                                                           cors_max_age_seconds)),
        local_reply_config=json.dumps(_local_reply_config()),
        body_cap=body_cap,
        body_buffer_config=json.dumps(_body_buffer_config(body_cap)),
        request_rules_config=json.dumps(_request_rules_config(body_cap)),
        route_body_limit_filters=route_body_limit_filters,
        jwt_authn_config=json.dumps(_jwt_authn_config(
            issuer=jwt_issuer, audience=jwt_audience, jwks_uri=jwks_uri,
            cache_seconds=jwks_cache_seconds)),
        local_ratelimit_config=json.dumps(_local_ratelimit_config(
            global_tokens=global_rate_limit,
            global_interval=global_rate_limit_interval_seconds,
            credential_tokens=credential_rate_limit,
            credential_interval=credential_rate_limit_interval_seconds,
            max_addresses=rate_limit_max_addresses)),
        clusters=json.dumps(clusters),
    )


def write_envoy_config(path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Render (same keyword arguments as render_envoy_config) and write to `path`.

    The file name should end in `.yaml`: Envoy picks the parser by extension.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_envoy_config(**kwargs))
    return target


