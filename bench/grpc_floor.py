"""The floor under the workers' CPU per request: what grpc's Python server costs
for a call that does nothing.

A no-op unary method (raw bytes in and out: no protobuf, no interceptor, no
metadata read) served by grpc.aio on asyncio's loop, on uvloop, and by grpc's
thread-pool server, loaded with h2load straight to the port (no Envoy). For
each: requests/s and CPU µs per request of the server process (all threads,
from /proc/<pid>/stat). Whatever the waQup request path costs on top of this is
ours; this part is grpc's.

    .venv/bin/python bench/grpc_floor.py [--duration 8] [--streams 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVERS = ("aio-asyncio", "aio-uvloop", "sync-threads")


def serve(kind: str, port: int) -> None:
    import grpc

    def handlers(behavior):
        return grpc.method_handlers_generic_handler("bench.Floor", {
            "Noop": grpc.unary_unary_rpc_method_handler(behavior)})

    if kind == "sync-threads":
        from concurrent import futures

        server = grpc.server(futures.ThreadPoolExecutor(4))
        server.add_generic_rpc_handlers((handlers(lambda request, context: b""),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        server.wait_for_termination()
        return

    async def noop(request: bytes, context: object) -> bytes:
        return b""

    async def main() -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((handlers(noop),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    if kind == "aio-uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(kind: str, duration: int, connections: int, streams: int) -> tuple[float, float]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} did not start") from None
                time.sleep(0.1)
        with tempfile.NamedTemporaryFile(suffix=".bin") as body:
            body.write(b"\x00\x00\x00\x00\x00")  # an empty gRPC message
            body.flush()
            command = ["h2load", "-D", str(duration), "-c", str(connections), "-m", str(streams),
                       "-t", "1", "-d", body.name, "-H", "content-type: application/grpc",
                       "-H", "te: trailers", f"http://127.0.0.1:{port}/bench.Floor/Noop"]
            warm_up = [*command[:2], "1", *command[3:]]  # one second first
            subprocess.run(warm_up, capture_output=True, check=True)
            before = _cpu(server.pid)
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            spent = _cpu(server.pid) - before
        done = next(int(line.split()[1]) for line in out.splitlines()
                    if line.startswith("requests:"))
        rps = next(float(line.split(",")[1].split()[0]) for line in out.splitlines()
                   if line.startswith("finished in"))
        return rps, spent * 1e6 / max(done, 1)
    finally:
        server.terminate()
        server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--streams", type=int, default=16, help="concurrent streams each")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in SERVERS}
    for _ in range(args.repeat):  # interleaved, medians reported
        for kind in SERVERS:
            results[kind].append(measure(kind, args.duration, args.connections, args.streams))
    print(f"\ngrpc's own floor: a no-op unary call, h2load -c{args.connections} "
          f"-m{args.streams}, median of {args.repeat}")
    print(f"{'server':<14} {'req/s':>8} {'CPU us/request':>15}")
    for kind, runs in results.items():
        rps, cpu = sorted(runs, key=lambda r: r[1])[len(runs) // 2]
        print(f"{kind:<14} {rps:>8.0f} {cpu:>15.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
