"""The edge: the Envoy config (config.py, from envoy/envoy.yaml.tmpl and the
context declarations) and the Envoy process (process.py)."""

from services.edge.config import (
    CONTEXTS,
    DESCRIPTOR_PATH,
    HEALTH_CHECK_METHOD,
    HEALTH_SERVICE,
    JWKS_PATH,
    embedded_http_upstreams,
    embedded_upstreams,
    render_envoy_config,
    write_envoy_config,
)
from services.edge.process import EnvoyProcess, envoy_binary

__all__ = ["CONTEXTS", "DESCRIPTOR_PATH", "HEALTH_CHECK_METHOD", "HEALTH_SERVICE", "JWKS_PATH",
           "EnvoyProcess", "embedded_http_upstreams", "embedded_upstreams", "envoy_binary",
           "render_envoy_config", "write_envoy_config"]
