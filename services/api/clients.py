"""gRPC client adapters: how one bounded context calls another.

They implement ports, so a core or another adapter never knows the call crosses
a process boundary. Targets are gRPC target strings: `host:port`, or several
endpoints as `ipv4:127.0.0.1:50051,127.0.0.1:50052` (round robin), or `dns:///name:port`.
Calls carry the caller's trace context (`traceparent`, services/runtime/tracing.py).
"""

from __future__ import annotations

import json

import grpc

from services.gen.waqup.identity.v1 import identity_pb2, identity_pb2_grpc
from services.runtime.tracing import client_interceptors

_CHANNEL_OPTIONS = [("grpc.lb_policy_name", "round_robin"),
                    ("grpc.enable_retries", 1),
                    ("grpc.service_config", json.dumps({
                        "methodConfig": [{
                            "name": [{"service": "waqup.identity.v1.AuthService"}],
                            "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.1s",
                                            "maxBackoff": "1s", "backoffMultiplier": 2,
                                            "retryableStatusCodes": ["UNAVAILABLE"]},
                        }]}))]


def channel(target: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS,
                                     interceptors=client_interceptors())


class IdentityJwksClient:
    """ports.identity.JwksSource over identity's public AuthService.GetJwks."""

    def __init__(self, target: str, *, timeout: float = 3.0) -> None:
        self._channel = channel(target)
        self._stub = identity_pb2_grpc.AuthServiceStub(self._channel)
        self._timeout = timeout

    async def fetch_jwks(self) -> list[dict[str, str]]:
        response = await self._stub.GetJwks(identity_pb2.GetJwksRequest(),
                                            timeout=self._timeout)
        return [{"kty": k.kty, "kid": k.kid, "use": k.use, "alg": k.alg, "crv": k.crv,
                 "x": k.x, "y": k.y} for k in response.keys]

    async def close(self) -> None:
        await self._channel.close()
