"""The floor under Envoy's CPU per request: what the edge costs when the
upstream costs nothing.

Two Envoy processes: the edge, rendered by services/edge/config.py exactly as
`waqup up` renders it (every filter, access log on), and behind it, in place
of the Python workers, a second Envoy that answers every gRPC call at once
with a canned message. Loaded with wrk through the edge:

  edge        POST /grpc.health.v1.Health/Check: the benchmark's baseline
              (transcoded, rate limited, logged; the reply is empty), CPU of
              the edge Envoy only
  minimal     the canned responder hit directly over HTTP/1.1: Envoy's cost
              for a request it answers itself (router only, no upstream)

So `edge` is Envoy's part of bench/run.py's baseline with no Python behind
it; what run.py measures above it is the price of waiting on real upstreams
at a lower request rate (fewer requests per wake-up).

    .venv/bin/python bench/envoy_floor.py [--duration 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.edge import EnvoyProcess, embedded_upstreams, write_envoy_config  # noqa: E402
from tests.backends import free_port  # noqa: E402


def responder_config(port: int, admin_port: int) -> dict:
    """An Envoy that answers every request at once with an empty gRPC reply:
    trailers-only (grpc-status 0 in the headers; Envoy would turn a body of a
    direct response to a gRPC request into grpc-message)."""
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1",
                                                 "port_value": admin_port}}},
        "static_resources": {"listeners": [{
            "name": "responder",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network."
                             "http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "responder", "codec_type": "AUTO",
                    "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http."
                                 "router.v3.Router"}}],
                    "route_config": {"virtual_hosts": [{
                        "name": "all", "domains": ["*"],
                        "routes": [{
                            "match": {"prefix": "/"},
                            "direct_response": {"status": 200},
                            "response_headers_to_add": [
                                {"header": {"key": "content-type",
                                            "value": "application/grpc"}},
                                {"header": {"key": "grpc-status", "value": "0"}}],
                        }]}]},
                }}]}],
        }]},
    }


def _cpu(pid: int) -> float:
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wrk(url: str, duration: int, script: Path | None, pid: int) -> tuple[float, float]:
    command = ["wrk", "-t1", "-c32", f"-d{duration}s", *(["-s", str(script)] if script else []),
               url]
    subprocess.run([*command[:3], "-d1s", *command[4:]], capture_output=True, check=True)
    before = _cpu(pid)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    spent = _cpu(pid) - before
    done = int(re.search(r"(\d+) requests in", out).group(1))
    if "Non-2xx" in out:
        raise RuntimeError(f"errors in the run:\n{out}")
    return done / duration, spent * 1e6 / max(done, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="waqup-envoy-floor-"))
    port, responder_admin = free_port(), free_port()
    (work / "responder.json").write_text(json.dumps(responder_config(port, responder_admin)))
    responder = EnvoyProcess(admin_port=responder_admin)
    edge_port, edge_admin = free_port(), free_port()
    config = write_envoy_config(work / "edge.yaml", listen_port=edge_port, admin_port=edge_admin,
                                upstreams=embedded_upstreams("127.0.0.1", port),
                                global_rate_limit=1_000_000)
    edge = EnvoyProcess(admin_port=edge_admin)
    script = work / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.body = "{}"\n'
                      'wrk.headers["content-type"] = "application/json"\n')
    results: dict[str, list[tuple[float, float]]] = {"edge": [], "minimal": []}
    with open(work / "responder.log", "wb") as rlog, open(work / "edge.log", "wb") as elog:
        responder.start(work / "responder.json", stdout=rlog, stderr=rlog)
        edge.start(config, stdout=elog, stderr=elog)
        try:
            edge.wait_ready(timeout=30)
            url = f"http://127.0.0.1:{edge_port}/grpc.health.v1.Health/Check"
            deadline = time.monotonic() + 10
            while True:  # the first call may race the first health check round
                try:
                    request = urllib.request.Request(url, data=b"{}", method="POST", headers={
                        "content-type": "application/json"})
                    with urllib.request.urlopen(request, timeout=2) as reply:
                        if reply.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            assert edge.process is not None and responder.process is not None
            for _ in range(args.repeat):
                results["edge"].append(wrk(url, args.duration, script, edge.process.pid))
                results["minimal"].append(wrk(f"http://127.0.0.1:{port}/", args.duration,
                                              None, responder.process.pid))
        finally:
            edge.stop()
            responder.stop()
    print(f"\nEnvoy's own floor: wrk -t1 -c32 -d{args.duration}s, median of {args.repeat}")
    print(f"{'scenario':<10} {'req/s':>8} {'Envoy CPU us/request':>21}")
    for name, runs in results.items():
        rps, cpu = sorted(runs, key=lambda r: r[1])[len(runs) // 2]
        print(f"{name:<10} {rps:>8.0f} {cpu:>21.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
