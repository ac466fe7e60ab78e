"""P1: deliveries per second from committed posts to a receiver, as a ratio to a bare aiohttp
client loop against the same receiver, measured in the same run.

    .venv/bin/python bench/deliveries.py [--posts 3000] [--runs 3] [--concurrency 16]

Each run: start the floor receiver (pinned to core 1), measure the bare client (core 0), then
commit N posts that each fire one hook (worker stopped), start Tidings' worker in this process
(core 0) and time until every delivery has succeeded — replies included, since each reply
becomes a post as it would in production.
"""

import argparse
import asyncio
import json
import os
import time

from harness import World, client_floor, receiver, summary
from sqlalchemy import func, select

from tidings import process
from tidings.services import posts as post_service
from tidings.store.schema import deliveries
from tidings.webhooks.worker import Worker


async def engine_rate(url: str, posts: int, concurrency: int) -> dict[str, float]:
    world = World(worker_concurrency=concurrency, worker_batch_size=200)
    process.tune(world.settings)  # as `tidings serve` and `tidings worker` do
    await world.setup()
    await world.hook(url, trigger_words=("deploy",))
    for i in range(posts):
        await post_service.create_post(world.rt, world.admin, world.channel.id, f"deploy build {i}")
    worker = Worker.from_runtime(world.rt)
    started = time.perf_counter()
    await worker.start()
    while True:
        async with world.rt.db.transaction() as conn:
            done = (
                await conn.execute(select(func.count()).where(deliveries.c.status == "succeeded"))
            ).scalar_one()
        if done >= posts:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    await worker.stop()
    await world.close()
    return {"deliveries": posts, "seconds": elapsed, "rps": posts / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    ratios, floors, rates = [], [], []
    for _ in range(args.runs):
        with receiver(cpu=1) as url:
            floor = client_floor(url, concurrency=args.concurrency, duration=5)
            engine = process.run(engine_rate(url, args.posts, args.concurrency))
        floors.append(floor["rps"])
        rates.append(engine["rps"])
        ratios.append(engine["rps"] / floor["rps"])
        print(
            json.dumps(
                {
                    "floor_rps": round(floor["rps"]),
                    "tidings_rps": round(engine["rps"]),
                    "ratio": round(ratios[-1], 3),
                }
            ),
            flush=True,
        )
    print(
        json.dumps(
            {
                "P1_ratio": summary(ratios),
                "floor_rps": summary(floors),
                "tidings_rps": summary(rates),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
