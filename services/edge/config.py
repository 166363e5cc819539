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
health check; Login and Register also have a per-client-address rate limit.

Rendering imports the context declarations (protobuf descriptors), nothing
that starts or connects; services/edge/process.py runs the binary.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template
from typing import Any

from services.contexts import CONTEXTS as DECLARED
from services.contexts.declaration import ContextDeclaration

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "envoy" / "envoy.yaml.tmpl"
DESCRIPTOR_PATH = ROOT / "envoy" / "build" / "waqup.pb"

ROUTE_TIMEOUT = "15s"

#: The jwt_authn provider name; its stats are `http.edge.jwt_authn.*`.
JWT_PROVIDER = "waqup_identity"
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

# HTTP status of an Envoy-generated reply -> google.rpc.Code for its JSON body.
_LOCAL_REPLY_CODES = {
    400: 3,   # INVALID_ARGUMENT (for example a request body that is not JSON)
    401: 16,  # UNAUTHENTICATED (jwt_authn)
    403: 7,   # PERMISSION_DENIED
    404: 5,   # NOT_FOUND
    405: 12,  # UNIMPLEMENTED
    413: 3,   # INVALID_ARGUMENT (body too large)
    429: 8,   # RESOURCE_EXHAUSTED (local rate limit)
    500: 13,  # INTERNAL
    502: 14,  # UNAVAILABLE
    503: 14,  # UNAVAILABLE
    504: 4,   # DEADLINE_EXCEEDED
}

# Local replies that also carry an ErrorInfo, with the reasons the services use.
# Each: (status Envoy chose, CEL condition on the response code details or
# None, ErrorInfo reason, status to answer with). The first match wins.
# jwt_authn's details are `jwt_authn_access_denied{<its message, spaces as _>}`.
_JWT_DENIED = "response.code_details.startsWith('jwt_authn_access_denied{"
_LOCAL_REPLY_REASONS: list[tuple[int, str | None, str, int]] = [
    (401, _JWT_DENIED + "Jwt_is_missing')", "TOKEN_MISSING", 401),
    (401, _JWT_DENIED + "Jwt_is_expired')", "TOKEN_EXPIRED", 401),
    (401, None, "INVALID_TOKEN", 401),
    # jwt_authn answers a token for another audience with 403; to the client it
    # is an invalid token like any other (RFC 6750 invalid_token: 401).
    (403, _JWT_DENIED + "')", "INVALID_TOKEN", 401),
    (429, None, "RATE_LIMITED", 429),
]
_ERROR_DOMAIN = "waqup.app"


def _status_filter(status: int) -> dict[str, Any]:
    return {"status_code_filter": {"comparison": {"op": "EQ", "value": {
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


def _local_reply_config() -> dict[str, Any]:
    # Bodies only for REST callers: plain HTTP requests, or gRPC requests the
    # transcoder made (they carry x-envoy-original-path). Native gRPC callers
    # keep Envoy's grpc-status/grpc-message replies (grpc-status follows the
    # final HTTP status); /healthz keeps its empty body.
    for_rest = {"or_filter": {"filters": [
        {"header_filter": {"header": {
            "name": "content-type", "string_match": {"prefix": "application/grpc"},
            "invert_match": True, "treat_missing_header_as_empty": True}}},
        {"header_filter": {"header": {"name": "x-envoy-original-path", "present_match": True}}},
    ]}}
    mappers: list[dict[str, Any]] = []
    for status, condition, reason, answer in _LOCAL_REPLY_REASONS:
        filters = [_status_filter(status), for_rest]
        if condition is not None:
            filters.append(_cel_filter(condition))
        mapper: dict[str, Any] = {
            "filter": {"and_filter": {"filters": filters}},
            "body_format_override": {
                "json_format": {
                    "code": _LOCAL_REPLY_CODES[answer], "message": "%LOCAL_REPLY_BODY%",
                    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                 "reason": reason, "domain": _ERROR_DOMAIN}],
                },
                "content_type": "application/json",
            },
        }
        if answer != status:
            mapper["status_code"] = answer
        mappers.append(mapper)
    # The same status changes for native gRPC callers (no body).
    for status, condition, _, answer in _LOCAL_REPLY_REASONS:
        if answer != status:
            filters = [_status_filter(status)]
            if condition is not None:
                filters.append(_cel_filter(condition))
            mappers.append({"filter": {"and_filter": {"filters": filters}},
                            "status_code": answer})
    for status, code in _LOCAL_REPLY_CODES.items():
        mappers.append({
            "filter": {"and_filter": {"filters": [
                _status_filter(status), {"not_health_check_filter": {}}, for_rest]}},
            "body_format_override": {
                "json_format": {"code": code, "message": "%LOCAL_REPLY_BODY%"},
                "content_type": "application/json",
            },
        })
    return {"mappers": mappers}


# --- routes -------------------------------------------------------------------

_JWT_FILTER = "envoy.filters.http.jwt_authn"
_JWT_PER_ROUTE = "envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig"
_JWT_REQUIREMENT = "access_token"


def _jwt_per_route(*, required: bool) -> dict[str, Any]:
    config: dict[str, Any] = {"@type": f"type.googleapis.com/{_JWT_PER_ROUTE}"}
    if required:
        config["requirement_name"] = _JWT_REQUIREMENT
    else:
        config["disabled"] = True
    return {_JWT_FILTER: config}


def _route(name: str, match: dict[str, Any], cluster: str, *,
           token_required: bool) -> dict[str, Any]:
    return {
        "name": name,
        # Transcoded REST calls arrive here too: the transcoder has already
        # rewritten them to the gRPC path with content-type application/grpc.
        "match": {**match, "grpc": {}},
        "route": {
            "cluster": cluster,
            "timeout": ROUTE_TIMEOUT,
            # A shorter grpc-timeout sent by a gRPC client wins.
            "max_stream_duration": {"grpc_timeout_header_max": ROUTE_TIMEOUT},
        },
        "typed_per_filter_config": _jwt_per_route(required=token_required),
    }


def _routes(contexts: Sequence[str]) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = []
    for name in contexts:
        context = CONTEXTS[name]
        # Token-less methods first, by exact path: they shadow the prefix route
        # of their service, which requires a token for everything else.
        for method in context.token_less_paths:
            routes.append(_route(method, {"path": method}, name, token_required=False))
        for service in context.public_services:
            routes.append(_route(service, {"prefix": f"/{service}/"}, name,
                                 token_required=True))
    # The benchmark's no-op baseline, and a probe for load balancers: public,
    # served by the first context's processes. Health/Watch stays unrouted.
    routes.append(_route(HEALTH_CHECK_METHOD, {"path": HEALTH_CHECK_METHOD}, contexts[0],
                         token_required=False))
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
    return {
        "@type": "type.googleapis.com/"
                 "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {JWT_PROVIDER: provider},
        # Routes name their requirement (typed_per_filter_config): the token-
        # less ones are disabled, the rest require this.
        "requirement_map": {_JWT_REQUIREMENT: {"provider_name": JWT_PROVIDER}},
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
                            credential_methods: Sequence[str],
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
    if credential_tokens is not None and credential_methods:
        key, value = _CREDENTIALS_DESCRIPTOR
        # Requests to a credential method (matched on the gRPC path: this filter
        # runs after the transcoder, so REST and native gRPC alike) generate the
        # descriptor [limit=credentials, remote_address=<client ip>]; other
        # requests generate none (header_value_match fails) and take only the
        # global bucket. These are the filter's own rate_limits, not the
        # routes' (Envoy 1.40 deprecates route-level ones for local limits).
        paths = "|".join(re.escape(method) for method in credential_methods)
        config["rate_limits"] = [{"actions": [
            {"header_value_match": {
                "descriptor_key": key, "descriptor_value": value, "expect_match": True,
                "headers": [{"name": ":path", "string_match": {"safe_regex": {
                    "regex": f"(?:{paths})"}}}],
            }},
            {"remote_address": {}},
        ]}]
        # The empty value of remote_address makes this descriptor a wildcard:
        # one bucket per distinct client address, created on first use and kept
        # in an LRU of max_dynamic_descriptors entries (this field only counts on
        # the config that holds the descriptors, which is this one).
        config["descriptors"] = [{
            "entries": [{"key": key, "value": value}, {"key": "remote_address", "value": ""}],
            "token_bucket": _token_bucket(credential_tokens, credential_interval),
        }]
        config["max_dynamic_descriptors"] = int(max_addresses)
    return config


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


def render_envoy_config(
    *,
    listen_host: str = "127.0.0.1",
    listen_port: int = 8080,
    admin_port: int = 9901,
    upstreams: Mapping[str, Endpoint | Sequence[Endpoint]],
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
) -> str:
    """The Envoy bootstrap (YAML) for the given upstreams, one cluster per context.

    upstreams: context name (a key of CONTEXTS) -> the (host, port) of the one
        process serving it, or a list of them (one per worker process).
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
    clusters.append(_cluster(SELF_CLUSTER, [(self_host, int(listen_port))], grpc=False))
    return Template(TEMPLATE_PATH.read_text()).substitute(
        listen_host=json.dumps(listen_host),
        listen_port=int(listen_port),
        admin_port=int(admin_port),
        xff_num_trusted_hops=int(xff_num_trusted_hops),
        descriptor_path=json.dumps(str(Path(descriptor_path).resolve())),
        transcoded_services=json.dumps([*services, HEALTH_SERVICE]),
        health_percentages=json.dumps({name: {"value": _min_healthy_percent(len(endpoints[name]))}
                                       for name in contexts}),
        routes=json.dumps(_routes(contexts)),
        virtual_host_filter_config=json.dumps(_cors_policy(cors_origins,
                                                           cors_max_age_seconds)),
        local_reply_config=json.dumps(_local_reply_config()),
        jwt_authn_config=json.dumps(_jwt_authn_config(
            issuer=jwt_issuer, audience=jwt_audience, jwks_uri=jwks_uri,
            cache_seconds=jwks_cache_seconds)),
        local_ratelimit_config=json.dumps(_local_ratelimit_config(
            global_tokens=global_rate_limit,
            global_interval=global_rate_limit_interval_seconds,
            credential_tokens=credential_rate_limit,
            credential_interval=credential_rate_limit_interval_seconds,
            credential_methods=[m for name in contexts
                                for m in CONTEXTS[name].credential_paths],
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


