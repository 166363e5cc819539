"""`waqup up` as a user runs it: worker processes (one port each) behind Envoy,
a dead worker replaced, everything stopped by one signal."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.settings import Settings
from services.runtime.supervisor import wait_healthy

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).resolve().parents[2]


def free_ports(count: int) -> int:
    """The first of `count` consecutive free ports."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            first = s.getsockname()[1]
        if first + count > 65535:
            continue
        try:
            for port in range(first, first + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError("no free port range")


async def wait_healthz(client: httpx.AsyncClient, up: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert up.poll() is None, "waqup up exited"
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "not healthy within 60 s"
        await asyncio.sleep(0.2)


def test_default_worker_count_is_the_core_count() -> None:
    assert Settings(workers=0).worker_count == (os.cpu_count() or 1)
    assert Settings(workers=3).worker_count == 3


def workers_of(pid: int) -> list[int]:
    """The `waqup serve` children of process `pid`."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "services.runtime.cli" in line]


def alive(pid: int) -> bool:
    out = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True,
                         text=True).stdout.strip()
    return bool(out) and not out.startswith("Z")


def up_env(tmp_path: Path, database_url: str, grpc_port: int, http_port: int,
           admin_port: int, metrics_port: int = 0) -> dict[str, str]:
    return {**os.environ, "WAQUP_DATA_DIR": str(tmp_path), "WAQUP_DATABASE_URL": database_url,
            "WAQUP_GRPC_PORT": str(grpc_port), "WAQUP_HTTP_PORT": str(http_port),
            "WAQUP_ENVOY_ADMIN_PORT": str(admin_port), "WAQUP_LOG_LEVEL": "WARNING",
            "WAQUP_METRICS_PORT": str(metrics_port)}


def start_up(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "services.runtime.cli", "up", "--workers", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


async def serving(port: int) -> bool:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.aio.AioRpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_up_runs_workers_behind_envoy_and_replaces_a_dead_one(tmp_path: Path) -> None:
    grpc_port, http_port, admin_port = free_ports(2), free_ports(1), free_ports(1)
    metrics_port = free_ports(2)
    up = start_up(up_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'waqup.db'}",
                         grpc_port, http_port, admin_port, metrics_port))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}",
                                     timeout=10) as client:
            await wait_healthz(client, up)
            # Both workers answer on their own ports.
            assert await serving(grpc_port) and await serving(grpc_port + 1)

            # A REST call works end to end (up waits for the edge's JWKS too).
            reply = await client.post("/v1/auth:register", json={
                "email": "up@example.com", "password": "correct horse", "display_name": "Up"})
            assert reply.status_code == 200, reply.text
            token = reply.json()["access_token"]
            me = await client.get("/v1/users/me", headers={"authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text

            # Each worker serves its metrics on its own port (base + index).
            served = 0.0
            for port in (metrics_port, metrics_port + 1):
                scraped = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                served += sum(float(line.rsplit(" ", 1)[1]) for line in scraped.splitlines()
                              if line.startswith("waqup_rpc_requests_total{")
                              and 'method="/waqup.identity.v1.UserService/GetUser"' in line)
            assert served == 1

            # Kill one worker: the supervisor starts a new one on the same port.
            workers = workers_of(up.pid)
            assert len(workers) == 2, workers
            os.kill(workers[0], signal.SIGKILL)
            await asyncio.sleep(0.5)
            await wait_healthy("127.0.0.1", grpc_port, 30)
            await wait_healthy("127.0.0.1", grpc_port + 1, 30)
            replaced = workers_of(up.pid)
            assert len(replaced) == 2 and workers[0] not in replaced

        # One SIGTERM stops Envoy and every worker.
        up.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(up.wait, 30) == 0
        assert not any(alive(pid) for pid in replaced)
        assert not await serving(grpc_port)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()


async def test_nothing_outlives_a_killed_up(tmp_path: Path) -> None:
    grpc_port, http_port, admin_port = free_ports(1), free_ports(1), free_ports(1)
    up = start_up(up_env(tmp_path, "memory://", grpc_port, http_port, admin_port))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}",
                                     timeout=2) as client:
            await wait_healthz(client, up)
            children = workers_of(up.pid)
            up.kill()  # SIGKILL: no chance to clean up; the kernel tells the children
            await asyncio.to_thread(up.wait, 10)
            deadline = time.monotonic() + 15
            while any(alive(pid) for pid in children) or await _answers(client, admin_port):
                assert time.monotonic() < deadline, "worker or Envoy outlived waqup up"
                await asyncio.sleep(0.2)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()


async def _answers(client: httpx.AsyncClient, admin_port: int) -> bool:
    try:
        await client.get(f"http://127.0.0.1:{admin_port}/ready", timeout=1)
    except httpx.TransportError:
        return False
    return True
