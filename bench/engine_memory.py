"""P6: the worker's memory must not grow with the number of deliveries it has made.

    .venv/bin/python bench/engine_memory.py [--deliveries 100000] [--first 10000] [--runs 3]

Each run is a fresh child process (RSS only ever grows within one, so runs must not share one):
the floor's receiver on core 1, the child on core 0 with the worker in-process as inside
``tidings serve``. The child enqueues posts, each with one delivery to the receiver, in large
transactions and keeps at most ``BACKLOG`` deliveries waiting, so the bench's own memory stays
flat; the receiver's ``{"text":"ok"}`` reply makes every delivery post a reply too. RSS is read
(psutil) as the worker drains: when ``--first`` deliveries have succeeded and after all have.
Target: growth ≤ 10% between the two.
"""

import argparse
import asyncio
import json
import subprocess
import sys
import time

import psutil
from harness import World, pin_to_core, receiver, summary
from pacing import enqueue_posts
from sqlalchemy import func, select

from tidings import metrics, process
from tidings.store.database import Connection
from tidings.store.schema import deliveries
from tidings.webhooks.worker import Worker

CHUNK = 2_000
BACKLOG = 10_000
SAMPLE_SECONDS = 0.25


def finished_so_far() -> int:
    """Deliveries the worker has judged succeeded (its own counter: no query while sampling)."""
    found = metrics.registry.get_sample_value(
        "tidings_webhook_deliveries_finished_total", {"status": "succeeded"}
    )
    return int(found or 0)


async def succeeded(world: World) -> int:
    """Deliveries recorded as succeeded in the database."""

    def work(conn: Connection) -> int:
        statement = select(func.count()).where(deliveries.c.status == "succeeded")
        return int(conn.execute(statement).scalar_one())

    return await world.rt.db.read(work)


async def drain(url: str, total: int, first: int) -> dict[str, float]:
    me = psutil.Process()
    world = World()
    process.tune(world.settings)  # as `tidings serve` and `tidings worker` do
    await world.setup()
    hook = await world.hook(url)
    worker = Worker.from_runtime(world.rt)
    await worker.start()
    rss_start = me.memory_info().rss
    started = time.perf_counter()
    enqueued = done = 0
    rss_first = 0
    peak = rss_start
    try:
        while done < total:
            while enqueued < total and enqueued - done < BACKLOG:
                count = min(CHUNK, total - enqueued)
                await enqueue_posts(world, hook, enqueued, count)
                enqueued += count
            await asyncio.sleep(SAMPLE_SECONDS)
            done = finished_so_far()
            if done >= total:
                done = await succeeded(world)
            rss = me.memory_info().rss
            peak = max(peak, rss)
            if not rss_first and done >= first:
                rss_first = rss
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"only {done} of {total} deliveries succeeded in 10 minutes")
        elapsed = time.perf_counter() - started
        rss_end = me.memory_info().rss
    finally:
        await worker.stop()
        await world.close()
    mib = 1024 * 1024
    return {
        "rss_start_mib": rss_start / mib,
        "rss_first_mib": rss_first / mib,
        "rss_end_mib": rss_end / mib,
        "rss_peak_mib": peak / mib,
        "growth_ratio": rss_end / rss_first,
        "deliveries_per_s": total / elapsed,
    }


def child(total: int, first: int) -> None:
    pin_to_core(0)
    with receiver(cpu=1) as url:
        result = process.run(drain(url, total, first))
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--first", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.deliveries, args.first)
        return
    runs = []
    for _ in range(args.runs):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--deliveries",
                str(args.deliveries),
                "--first",
                str(args.first),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps({k: round(v, 3) for k, v in runs[-1].items()}), flush=True)
    print(
        json.dumps(
            {
                "P6": {
                    "deliveries": args.deliveries,
                    "first": args.first,
                    "target": "growth_ratio ≤ 1.10",
                },
                **{k: summary([r[k] for r in runs]) for k in runs[0]},
            },
            indent=1,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
