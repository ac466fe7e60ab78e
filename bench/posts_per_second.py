"""POST /api/v4/posts throughput: N concurrent clients posting for a fixed time.

    .venv/bin/python bench/posts_per_second.py [--concurrency 16] [--duration 10] [--warmup 2]

Starts ``tidings serve`` on SQLite in a temporary data directory on a free port, creates a user
(the first, so an admin), a team and a channel, then runs ``--concurrency`` aiohttp clients, each
with its own connection, posting one message after another. Posts during the warm-up are not
counted. Prints one JSON summary: posts per second, errors and latency percentiles.
"""

import argparse
import asyncio
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

PASSWORD = "benchmark-password-9"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env |= {"TIDINGS_DATA_DIR": str(data_dir), "TIDINGS_LISTEN": f"127.0.0.1:{port}"}
    return subprocess.Popen(
        [sys.executable, "-m", "tidings", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"{base}/api/v4/system/ping") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tidings serve did not start")
            await asyncio.sleep(0.1)


async def prepare(base: str) -> tuple[str, str]:
    """The first user (an admin), a team and a channel: (token, channel id)."""
    async with aiohttp.ClientSession(base_url=base) as session:
        user = {"username": "bench", "email": "bench@example.test", "password": PASSWORD}
        async with session.post("/api/v4/users", json=user) as response:
            assert response.status == 201, await response.text()
        login = {"login_id": "bench", "password": PASSWORD}
        async with session.post("/api/v4/users/login", json=login) as response:
            assert response.status == 200, await response.text()
            token = response.headers["Token"]
        headers = {"Authorization": f"Bearer {token}"}
        team = {"name": "bench", "display_name": "Bench", "type": "O"}
        async with session.post("/api/v4/teams", json=team, headers=headers) as response:
            team_id = (await response.json())["id"]
        channel = {"team_id": team_id, "name": "load", "display_name": "Load", "type": "O"}
        async with session.post("/api/v4/channels", json=channel, headers=headers) as response:
            channel_id = (await response.json())["id"]
    return token, str(channel_id)


async def client(
    base: str,
    token: str,
    channel_id: str,
    number: int,
    counting_from: float,
    stop_at: float,
    latencies: list[float],
    errors: list[int],
) -> None:
    """One client with one connection, posting back to back until ``stop_at``."""
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(base_url=base, connector=connector, headers=headers) as s:
        sent = 0
        while time.monotonic() < stop_at:
            body = {"channel_id": channel_id, "message": f"client {number} post {sent}"}
            started = time.monotonic()
            async with s.post("/api/v4/posts", json=body) as response:
                await response.read()
                status = response.status
            sent += 1
            if started < counting_from:
                continue
            if status == 201:
                latencies.append((time.monotonic() - started) * 1000)
            else:
                errors.append(status)


async def measure(base: str, concurrency: int, duration: float, warmup: float) -> dict[str, Any]:
    token, channel_id = await prepare(base)
    latencies: list[float] = []
    errors: list[int] = []
    counting_from = time.monotonic() + warmup
    stop_at = counting_from + duration
    await asyncio.gather(
        *(
            client(base, token, channel_id, n, counting_from, stop_at, latencies, errors)
            for n in range(concurrency)
        )
    )
    ordered = sorted(latencies)
    return {
        "benchmark": "POST /api/v4/posts",
        "database": "sqlite",
        "concurrency": concurrency,
        "duration_seconds": duration,
        "posts": len(latencies),
        "errors": len(errors),
        "posts_per_second": round(len(latencies) / duration, 1),
        "latency_ms": {
            "p50": round(percentile(ordered, 50), 2),
            "p90": round(percentile(ordered, 90), 2),
            "p99": round(percentile(ordered, 99), 2),
            "max": round(ordered[-1], 2),
        }
        if ordered
        else {},
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds counted")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds not counted")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tidings-bench-") as folder:
        port = free_port()
        process = start_server(Path(folder), port)
        base = f"http://127.0.0.1:{port}"
        try:

            async def run() -> dict[str, Any]:
                await wait_until_up(base, process)
                return await measure(base, args.concurrency, args.duration, args.warmup)

            summary = asyncio.run(run())
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
