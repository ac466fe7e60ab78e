"""GET /api/v4/system/ping throughput against a bare Starlette route, as ratios in one run.

    .venv/bin/python bench/ping.py [--concurrency 16] [--duration 5] [--runs 3] [--baseline DIR]

Each round measures ``tidings serve`` (SQLite in a temporary folder) and ``bench/ping_floor.py``
(the same answer from a bare Starlette route on uvicorn, served the same way) with the same
``--concurrency`` aiohttp clients, one connection each, requesting back to back; the order
rotates between rounds. The last line is Tidings' requests/s over the floor's of the same round,
min/median/max. What the ratio leaves out is the cost of Tidings' request stack: middleware,
routing, dependencies, error handling.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from posts_per_second import (
    free_port,
    percentile,
    rounds,
    start_server,
    stop,
    wait_until_listening,
    wait_until_up,
)

PATH = "/api/v4/system/ping"


async def client(base: str, counting_from: float, stop_at: float, latencies: list[float]) -> int:
    """Request back to back until ``stop_at``; return the number of non-200 answers counted."""
    errors = 0
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(base_url=base, connector=connector) as session:
        while time.monotonic() < stop_at:
            started = time.monotonic()
            async with session.get(PATH) as response:
                await response.read()
                status = response.status
            if started < counting_from:
                continue
            if status == 200:
                latencies.append((time.monotonic() - started) * 1000)
            else:
                errors += 1
    return errors


async def measure(base: str, args: argparse.Namespace) -> dict[str, Any]:
    latencies: list[float] = []
    counting_from = time.monotonic() + args.warmup
    stop_at = counting_from + args.duration
    errors = await asyncio.gather(
        *(client(base, counting_from, stop_at, latencies) for _ in range(args.concurrency))
    )
    ordered = sorted(latencies)
    return {
        "benchmark": f"GET {PATH}",
        "concurrency": args.concurrency,
        "duration_seconds": args.duration,
        "requests": len(latencies),
        "errors": sum(errors),
        "requests_per_second": round(len(latencies) / args.duration, 1),
        "latency_ms": {
            "p50": round(percentile(ordered, 50), 2),
            "p99": round(percentile(ordered, 99), 2),
        },
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def measure_tidings(args: argparse.Namespace, source: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tidings-ping-") as folder:
        port = free_port()
        process = start_server(Path(folder), port, source)
        base = f"http://127.0.0.1:{port}"
        try:

            async def run() -> dict[str, Any]:
                await wait_until_up(base, process)
                return await measure(base, args)

            return asyncio.run(run())
        finally:
            stop(process)


def measure_floor(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    floor = Path(__file__).with_name("ping_floor.py")
    process = subprocess.Popen(
        [sys.executable, str(floor), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        async def run() -> dict[str, Any]:
            await wait_until_listening(port)
            return await measure(f"http://127.0.0.1:{port}", args)

        summary = asyncio.run(run())
        summary["benchmark"] = "ping floor (bench/ping_floor.py)"
        return summary
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds counted")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds not counted")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure beside this one")
    args = parser.parse_args()
    rounds(args, measure_floor, measure_tidings, "requests_per_second")


if __name__ == "__main__":
    main()
