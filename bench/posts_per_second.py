"""POST /api/v4/posts throughput: N concurrent clients posting for a fixed time.

    .venv/bin/python bench/posts_per_second.py [--concurrency 16] [--duration 10] [--warmup 2]
        [--runs 3 --floor ../shared/bench-floor/post_floor.py] [--baseline DIR]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Starts ``tidings serve`` on SQLite in a temporary data directory on a free port, creates a user
(the first, so an admin), a team and a channel, then runs ``--concurrency`` aiohttp clients, each
with its own connection, posting one message after another. Posts during the warm-up are not
counted. Prints one JSON summary per measurement: posts per second, errors and latency
percentiles.

With ``--floor``, each of ``--runs`` rounds also measures the bare post handler (the shared
``post_floor.py``) with the same clients, and the last line gives Tidings' posts/s as a ratio to
the floor of its own round, min/median/max: absolute rates drift between minutes on shared
machines, ratios within one round hold. ``--baseline DIR`` adds a third server per round, run
from another checkout's ``src`` (e.g. a ``git worktree`` of an earlier commit), so a change's
cost is read as two ratios to the same floor. The order within a round rotates.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
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


def start_server(
    data_dir: Path, port: int, source: Path | None = None, database_url: str | None = None
) -> subprocess.Popen[bytes]:
    """``tidings serve`` from this checkout, or from ``source`` (another checkout's ``src``),
    on SQLite in ``data_dir`` or on ``database_url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env |= {"TIDINGS_DATA_DIR": str(data_dir), "TIDINGS_LISTEN": f"127.0.0.1:{port}"}
    if database_url is not None:
        env["TIDINGS_DATABASE_URL"] = database_url
    if source is not None:
        env["PYTHONPATH"] = str(source)
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


async def measure(
    base: str,
    concurrency: int,
    duration: float,
    warmup: float,
    prepared: tuple[str, str] | None = None,
) -> dict[str, Any]:
    token, channel_id = prepared or await prepare(base)
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


def measure_tidings(args: argparse.Namespace, source: Path | None) -> dict[str, Any]:
    """One measurement of a fresh ``tidings serve`` (this checkout, or ``source``)."""
    with (
        tempfile.TemporaryDirectory(prefix="tidings-bench-") as folder,
        fresh_postgres(args.postgres) as database_url,
    ):
        port = free_port()
        process = start_server(Path(folder), port, source, database_url)
        base = f"http://127.0.0.1:{port}"
        try:

            async def run() -> dict[str, Any]:
                await wait_until_up(base, process)
                return await measure(base, args.concurrency, args.duration, args.warmup)

            summary = asyncio.run(run())
            summary["database"] = "postgresql" if database_url else "sqlite"
            return summary
        finally:
            stop(process)


@contextlib.contextmanager
def fresh_postgres(server: str | None) -> Iterator[str | None]:
    """A new, empty database on the PostgreSQL ``server`` URL (dropped afterwards), or None."""
    if server is None:
        yield None
        return
    name = f"tidings_bench_{os.getpid()}_{int(time.time() * 1000) % 10**9}"
    admin = ["psql", server, "-qc"]
    subprocess.run([*admin, f'CREATE DATABASE "{name}"'], check=True)
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        subprocess.run([*admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=False)


def measure_floor(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement of the bare post handler, with the same clients."""
    with tempfile.TemporaryDirectory(prefix="tidings-floor-") as folder:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, str(args.floor), str(port), str(Path(folder) / "floor.db")],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert process.stdout is not None
            token, channel_id = process.stdout.readline().decode().split()
            base = f"http://127.0.0.1:{port}"

            async def run() -> dict[str, Any]:
                await wait_until_listening(port)
                return await measure(
                    base, args.concurrency, args.duration, args.warmup, (token, channel_id)
                )

            summary = asyncio.run(run())
            summary["benchmark"] = "post floor (post_floor.py)"
            return summary
        finally:
            stop(process)


async def wait_until_listening(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "min": round(ordered[0], 4),
        "median": round(ordered[len(ordered) // 2], 4),
        "max": round(ordered[-1], 4),
    }


def rounds(
    args: argparse.Namespace,
    floor: Callable[[argparse.Namespace], dict[str, Any]],
    tidings: Callable[[argparse.Namespace, Path | None], dict[str, Any]],
    rate: str,
) -> None:
    """``args.runs`` rounds of the floor, Tidings and (with ``--baseline``) another checkout, in
    an order that rotates by round; then each contender's ``rate`` over the floor's of the same
    round, min/median/max."""
    contenders: dict[str, Path | None] = {"tidings": None}
    if args.baseline is not None:
        contenders["baseline"] = args.baseline.resolve() / "src"
    ratios: dict[str, list[float]] = {name: [] for name in contenders}
    for number in range(args.runs):
        names = ["floor", *contenders]
        names = names[number % len(names) :] + names[: number % len(names)]
        rates: dict[str, float] = {}
        for name in names:
            summary = floor(args) if name == "floor" else tidings(args, contenders[name])
            summary["round"], summary["contender"] = number + 1, name
            print(json.dumps(summary))
            rates[name] = summary[rate]
        for name in contenders:
            ratios[name].append(rates[name] / rates["floor"])
    print(json.dumps({"ratio_to_floor": {name: spread(v) for name, v in ratios.items()}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds counted")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds not counted")
    parser.add_argument("--runs", type=int, default=1, help="rounds (with --floor)")
    parser.add_argument("--floor", type=Path, help="the shared post_floor.py")
    parser.add_argument("--baseline", type=Path, help="another checkout to measure beside this one")
    parser.add_argument(
        "--postgres",
        help="serve Tidings on a fresh database of this PostgreSQL server "
        "(e.g. postgresql://postgres@127.0.0.1:5432/postgres); the floor stays SQLite",
    )
    args = parser.parse_args()
    if args.floor is None:
        print(json.dumps(measure_tidings(args, None), indent=2))
        return
    rounds(args, measure_floor, measure_tidings, "posts_per_second")


if __name__ == "__main__":
    main()
