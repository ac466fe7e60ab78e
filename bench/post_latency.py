"""POST /api/v4/posts latency with 0 and with 10,000 outgoing hooks in the team.

    .venv/bin/python bench/post_latency.py [--posts 500] [--hooks 10000] [--runs 3]

Starts ``tidings serve`` (SQLite, its own data directory, worker off so deliveries only queue),
then times sequential posts from one client: first with no hooks, then after adding the hooks
(one of which the posts match, so each post also queues a delivery). Matching is indexed, so the
ratio of the two should stay near 1.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
from harness import World, free_port, summary

PASSWORD = "benchmark-pw-9"


def start_server(data_dir: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TIDINGS_DATA_DIR": data_dir,
        "TIDINGS_LISTEN": f"127.0.0.1:{port}",
        "TIDINGS_RUN_WORKER": "false",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tidings", "serve"], env=env, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v4/system/ping", timeout=1)
            return process
        except httpx.TransportError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)


def timed_posts(client: httpx.Client, channel_id: str, count: int, message: str) -> list[float]:
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        response = client.post(
            "/api/v4/posts", json={"channel_id": channel_id, "message": f"{message} {i}"}
        )
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 201, response.text
    return latencies


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def one_run(posts: int, hooks: int) -> dict[str, float]:
    data_dir = tempfile.mkdtemp(prefix="tidings-latency-")
    # Prepare the database (admin, team, channel) in this process, then serve it.
    world = World(database_url=f"sqlite:///{data_dir}/tidings.db")
    asyncio.run(world.setup())
    port = free_port()
    server = start_server(data_dir, port)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        token = client.post(
            "/api/v4/users/login", json={"login_id": "bench", "password": PASSWORD}
        ).headers["Token"]
        client.headers["Authorization"] = f"Bearer {token}"
        timed_posts(client, world.channel.id, 50, "warm up")
        without = timed_posts(client, world.channel.id, posts, "word1")

        async def add_hooks() -> None:
            await world.bulk_hooks(hooks, "http://127.0.0.1:9/never")
            await world.close()

        asyncio.run(add_hooks())
        timed_posts(client, world.channel.id, 50, "warm up")
        with_hooks = timed_posts(client, world.channel.id, posts, "word1")
    finally:
        server.terminate()
        server.wait(10)
    return {
        "p50_0": statistics.median(without),
        "p99_0": p(without, 99),
        "p50_n": statistics.median(with_hooks),
        "p99_n": p(with_hooks, 99),
        "p50_ratio": statistics.median(with_hooks) / statistics.median(without),
        "p99_ratio": p(with_hooks, 99) / p(without, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--hooks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run(args.posts, args.hooks) for _ in range(args.runs)]
    for r in runs:
        print(json.dumps({k: round(v, 3) for k, v in r.items()}), flush=True)
    print(json.dumps({k: summary([r[k] for r in runs]) for k in runs[0]}, indent=1))


if __name__ == "__main__":
    main()
