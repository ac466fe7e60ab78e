"""P1: deliveries per second from committed posts to a receiver, as a ratio to a bare aiohttp
client loop against the same receiver, measured in the same run.

    .venv/bin/python bench/deliveries.py [--posts 6000] [--runs 3] [--concurrency 16]

Each run: start the floor receiver (pinned to core 1), commit N posts that each fire one hook
(worker stopped), measure the bare client (core 0), start Tidings' worker in this process
(core 0) and wait until every delivery has succeeded — replies included, since each reply
becomes a post as it would in production — then measure the bare client again. The floor is the
mean of the two, taken right before and after, because these machines drift by tens of percent
within a minute.

The rate is a steady-state one, as the floor's is (its sender discards a second of warm-up):
the first tenth of the deliveries is warm-up (connections opened, caches filled), and the rate
is the remaining deliveries over the time between the write-back of the last warm-up delivery
and that of the last one, read from the rows' ``update_at``. The rate over the whole run,
start-up and polling included, is printed beside it.
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
from tidings.services.chains import reply_chain
from tidings.store.database import Connection
from tidings.store.schema import deliveries
from tidings.webhooks.worker import Worker


def succeeded_count(conn: Connection) -> int:
    return int(
        conn.execute(select(func.count()).where(deliveries.c.status == "succeeded")).scalar_one()
    )


def succeeded_update_ats(conn: Connection) -> list[int]:
    """When each succeeded delivery was written back (ms), in order."""
    return list(
        conn.execute(
            select(deliveries.c.update_at)
            .where(deliveries.c.status == "succeeded")
            .order_by(deliveries.c.update_at)
        )
        .scalars()
        .all()
    )


async def engine_rate(url: str, posts: int, concurrency: int) -> dict[str, float]:
    """The worker's rate, between two floor measurements (``floor_before``, ``floor_after``)."""
    world = World(worker_concurrency=concurrency, worker_batch_size=200)
    process.tune(world.settings)  # as `tidings serve` and `tidings worker` do
    await world.setup()
    await world.hook(url, trigger_words=("deploy",))
    for i in range(posts):
        await post_service.create_post(world.rt, world.admin, world.channel.id, f"deploy build {i}")
    floor_before = await asyncio.to_thread(client_floor, url, concurrency, 5)
    worker = Worker.from_runtime(world.rt, chain=reply_chain(world.rt))
    started = time.perf_counter()
    await worker.start()
    while True:
        done = await world.rt.db.read(succeeded_count)
        if done >= posts:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    await worker.stop()
    finished_at = await world.rt.db.read(succeeded_update_ats)
    await world.close()
    floor_after = await asyncio.to_thread(client_floor, url, concurrency, 5)
    warm = len(finished_at) // 10
    steady_s = (finished_at[-1] - finished_at[warm]) / 1000
    return {
        "deliveries": posts,
        "rps": (len(finished_at) - 1 - warm) / steady_s,
        "rps_whole_run": posts / elapsed,
        "floor_before": floor_before["rps"],
        "floor_after": floor_after["rps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=6000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    ratios, floors, rates = [], [], []
    for _ in range(args.runs):
        with receiver(cpu=1) as url:
            engine = process.run(engine_rate(url, args.posts, args.concurrency))
        floor = (engine["floor_before"] + engine["floor_after"]) / 2
        floors.append(floor)
        rates.append(engine["rps"])
        ratios.append(engine["rps"] / floor)
        print(
            json.dumps(
                {
                    "floor_rps": round(floor),
                    "floor_before_after": [
                        round(engine["floor_before"]),
                        round(engine["floor_after"]),
                    ],
                    "tidings_rps": round(engine["rps"]),
                    "tidings_rps_whole_run": round(engine["rps_whole_run"]),
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
