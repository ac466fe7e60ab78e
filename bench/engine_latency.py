"""P2: post → receiver latency at a steady rate, as a ratio to a floor measured in the same run.

    .venv/bin/python bench/engine_latency.py [--rate 100] [--seconds 10] [--slices 5] [--runs 3]

Each run starts bench/recv_timestamps.py on core 1 (this process stays on core 0), then, at the
same rate and against the same receiver, in alternating slices (``--slices``) adding up to
``--seconds`` each:

- floor: per tick, commit one row to a WAL SQLite file (``synchronous=NORMAL``, plain sqlite3),
  then POST a webhook-sized form body with aiohttp over a kept-alive connection. That is the least
  an outbox engine does once a post is committed: one claim transaction, one request. Latency is
  the receiver's arrival time minus the time before the commit.
- Tidings: ``create_post`` in a channel with one hook that fires on every post, the worker running
  in this process as it does inside ``tidings serve``. Latency is the arrival time minus the time
  ``create_post`` returned (the post and its delivery row are committed by then).

Both run on the event loop ``tidings serve`` uses (``tidings.process.run``) with its process
tuning, after a second of warm-up each that is not counted. Targets: p50 ≤ 3×, p99 ≤ 10×.
"""

import argparse
import itertools
import json
import os
import sqlite3
import tempfile
import time
from urllib.parse import urlencode

import aiohttp
from harness import World, forget_arrivals, percentile, pin_to_core, summary, timestamp_receiver
from pacing import Sent, at_rate, first_arrivals, latencies, posts_at_rate

from tidings import process
from tidings.ids import new_id
from tidings.webhooks.worker import Worker

WARMUP_SECONDS = 1.0


def floor_body(post_id: str) -> bytes:
    """A form body of the size and shape Tidings sends (the 12 fields)."""
    fields = {
        "channel_id": new_id(),
        "channel_name": "load",
        "file_ids": "",
        "post_id": post_id,
        "team_domain": "bench",
        "team_id": new_id(),
        "text": "deploy build 1234",
        "timestamp": str(int(time.time())),
        "token": new_id(),
        "trigger_word": "",
        "user_id": new_id(),
        "user_name": "bench",
    }
    return urlencode(sorted(fields.items())).encode()


def floor_database() -> sqlite3.Connection:
    path = os.path.join(tempfile.mkdtemp(prefix="tidings-floor-"), "floor.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE outbox (id TEXT PRIMARY KEY, body BLOB NOT NULL, at REAL NOT NULL)")
    return db


async def measure(
    base_url: str, rate: float, seconds: float, slices: int
) -> tuple[list[float], list[float], int]:
    """Floor and Tidings latencies (ms) and the number of posts, in alternating slices.

    Alternating short slices, rather than one phase after the other, lets a stall of this shared
    machine hit both sides alike instead of deciding the ratio.
    """
    db = floor_database()
    numbers = itertools.count()
    world = World()
    process.tune(world.settings)  # as `tidings serve` and `tidings worker` do
    await world.setup()
    await world.hook(f"{base_url}/hook")
    worker = Worker.from_runtime(world.rt)
    await worker.start()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    try:
        async with aiohttp.ClientSession() as session:

            async def floor_tick(_: int) -> Sent:
                """Commit one row, then POST; latency counts from before the commit."""
                post_id = f"floor{next(numbers):021d}"
                body = floor_body(post_id)
                started_wall, started = time.time(), time.perf_counter()
                db.execute("INSERT INTO outbox VALUES (?, ?, ?)", (post_id, body, started_wall))
                async with session.post(f"{base_url}/hook", data=body, headers=headers) as reply:
                    await reply.read()
                return Sent(post_id, started_wall, time.perf_counter() - started)

            async def floor_slice(length: float) -> list[Sent]:
                return await at_rate(rate, length, floor_tick)

            async def tidings_slice(length: float) -> list[Sent]:
                return await posts_at_rate(world, rate, length, f"deploy {next(numbers)}")

            for run_slice in (floor_slice, tidings_slice):
                warm = await run_slice(WARMUP_SECONDS)
                await first_arrivals(base_url, [s.post_id for s in warm])
            forget_arrivals(base_url)
            sent: dict[str, list[Sent]] = {"floor": [], "tidings": []}
            for k in range(slices):
                order = [("floor", floor_slice), ("tidings", tidings_slice)]
                for side, run_slice in order if k % 2 == 0 else order[::-1]:
                    batch = await run_slice(seconds / slices)
                    await first_arrivals(base_url, [s.post_id for s in batch])
                    sent[side] += batch
            arrivals = await first_arrivals(
                base_url, [s.post_id for batch in sent.values() for s in batch]
            )
    finally:
        await worker.stop()
        await world.close()
        db.close()
    return (
        latencies(sent["floor"], arrivals),
        latencies(sent["tidings"], arrivals),
        len(sent["tidings"]),
    )


def one_run(rate: float, seconds: float, slices: int) -> dict[str, float]:
    with timestamp_receiver(cpu=1) as base_url:
        floor, tidings, posted = process.run(measure(base_url, rate, seconds, slices))
    result = {
        "floor_p50_ms": percentile(floor, 50),
        "floor_p99_ms": percentile(floor, 99),
        "tidings_p50_ms": percentile(tidings, 50),
        "tidings_p99_ms": percentile(tidings, 99),
        "tidings_max_ms": max(tidings),
        "delivered": len(tidings),
        "posted": posted,
    }
    result["p50_ratio"] = result["tidings_p50_ms"] / result["floor_p50_ms"]
    result["p99_ratio"] = result["tidings_p99_ms"] / result["floor_p99_ms"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100.0, help="posts per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase")
    parser.add_argument("--slices", type=int, default=5, help="alternations of floor and Tidings")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    pin_to_core(0)
    runs = []
    for _ in range(args.runs):
        runs.append(one_run(args.rate, args.seconds, args.slices))
        print(json.dumps({k: round(v, 3) for k, v in runs[-1].items()}), flush=True)
    print(
        json.dumps(
            {
                "P2": {
                    "rate_per_s": args.rate,
                    "seconds": args.seconds,
                    "targets": "p50 ≤ 3×, p99 ≤ 10×",
                },
                **{k: summary([r[k] for r in runs]) for k in runs[0]},
            },
            indent=1,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
