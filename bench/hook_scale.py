"""P3: the cost of creating an outgoing hook as a team fills up, and of posting beside the hooks.

    .venv/bin/python bench/hook_scale.py [--hooks 10000] [--window 100] [--seed-clients 8]
        [--posts 200] [--runs 3] [--source DIR]

Targets (issue #11): creating the 10,000th hook in a team costs ≤ 2 × creating the first;
``POST /api/v4/posts`` p50 with 10,000 hooks ≤ 1.2 × with none.

Each round starts ``tidings serve`` (SQLite, a fresh data directory, worker off, so deliveries
only queue and the callback URL is never contacted) and sets up through the API the first user
(an admin), a team and a public channel. One client with one connection then

1. times ``--posts`` sequential posts with no hooks (after 50 not timed);
2. times each of the first ``--window`` ``POST /api/v4/hooks/outgoing`` calls, sequentially, so
   that it measures cost and not concurrency: every hook is in the same channel with the same
   callback URL and its own trigger word (``w0``, ``w1``, …), so none conflicts with another but
   the conflict check has to look at them all;
3. seeds hooks up to ``--hooks`` − ``--window`` with ``--seed-clients`` concurrent clients
   (faster, not measured; a progress line per ``--progress`` hooks gives the seeding rate);
4. times each of the last ``--window`` creates (hooks ``hooks − window + 1`` … ``hooks``), as in 2;
5. times ``--posts`` sequential posts again (after 50 not timed), now with every hook in the
   team; the message starts with ``w0``, so each post matches one hook and queues one delivery
   (with no hooks it matched none).

Prints one JSON line per round and a summary, min/median/max over ``--runs``: the ratio of the p50
create time of the last window to the first's, and of the post p50 with all hooks to the post
p50 with none. Both are ratios within one server, so machine drift cancels out as far as it
can; each window is still only ``--window`` requests, so keep it at 100 or more.

``bench/post_latency.py`` measures the post half too, with hooks inserted straight into the
database (team-wide trigger-word hooks) instead of created through the API.

Creating 10,000 hooks through the API took most of an hour before the hook writes were indexed
(6.6 hooks/s at 3,000); try with ``--hooks 1000`` first. ``--source DIR`` serves another
checkout's ``src``; this script imports nothing of Tidings.
"""

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
from posts_per_second import percentile, spread
from served import (
    Admin,
    create_channels,
    create_hook,
    first_admin,
    hook_body,
    source_path,
    tidings_server,
)

DEAD_URL = "http://127.0.0.1:9/never"  # the worker is off: never contacted
WARMUP_POSTS = 50


def body(admin: Admin, channel_id: str, number: int) -> dict[str, Any]:
    return hook_body(admin, channel_id, DEAD_URL, trigger_words=(f"w{number}",), name=f"h{number}")


async def timed_creates(
    session: aiohttp.ClientSession, admin: Admin, channel_id: str, numbers: range
) -> list[float]:
    """Create hooks ``numbers`` one after another; milliseconds per create."""
    times = []
    for number in numbers:
        started = time.perf_counter()
        await create_hook(session, body(admin, channel_id, number))
        times.append((time.perf_counter() - started) * 1000)
    return times


async def seed(
    admin: Admin, channel_id: str, numbers: range, clients: int, progress: int
) -> dict[str, float]:
    """Create hooks ``numbers`` with ``clients`` concurrent clients, printing progress lines."""
    pending = iter(numbers)
    done = 0
    started = last_at = time.perf_counter()

    async def client() -> None:
        nonlocal done, last_at
        async with admin.session(timeout=300) as session:
            for number in pending:
                await create_hook(session, body(admin, channel_id, number))
                done += 1
                if progress and (numbers.start + done) % progress == 0:
                    now = time.perf_counter()
                    rate = progress / (now - last_at)
                    line = {"seeding": numbers.start + done, "hooks_per_second": round(rate, 1)}
                    print(json.dumps(line), flush=True)
                    last_at = now

    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - started
    return {
        "seeded": done,
        "seed_seconds": seconds,
        "seed_per_second": done / seconds if done else 0,
    }


async def timed_posts(
    session: aiohttp.ClientSession, channel_id: str, count: int, label: str
) -> list[float]:
    """Sequential posts starting with ``w0``; milliseconds per post (after the warm-up)."""
    times = []
    for n in range(WARMUP_POSTS + count):
        message = {"channel_id": channel_id, "message": f"w0 {label} {n}"}
        started = time.perf_counter()
        async with session.post("/api/v4/posts", json=message) as response:
            answer = await response.read()
            if response.status != 201:
                raise RuntimeError(f"post answered {response.status}: {answer[:300]!r}")
        if n >= WARMUP_POSTS:
            times.append((time.perf_counter() - started) * 1000)
    return times


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p90": round(percentile(ordered, 90), 2),
        "max": round(ordered[-1], 2),
    }


async def one_round(base: str, args: argparse.Namespace) -> dict[str, Any]:
    admin = await first_admin(base)
    (channel_id,) = await create_channels(admin, ["hooks"])
    result: dict[str, Any] = {"hooks": args.hooks, "window": args.window}
    async with admin.session(timeout=300) as session:
        posts_none = (
            await timed_posts(session, channel_id, args.posts, "none") if args.posts else []
        )
        first = await timed_creates(session, admin, channel_id, range(args.window))
        seeded = await seed(
            admin,
            channel_id,
            range(args.window, args.hooks - args.window),
            args.seed_clients,
            args.progress,
        )
        last = await timed_creates(
            session, admin, channel_id, range(args.hooks - args.window, args.hooks)
        )
        posts_all = await timed_posts(session, channel_id, args.posts, "all") if args.posts else []
    result["create_first_ms"] = stats(first)
    result["create_last_ms"] = stats(last)
    result["create_ratio"] = statistics.median(last) / statistics.median(first)
    result |= {k: round(v, 2) for k, v in seeded.items()}
    if args.posts:
        result["post_none_ms"] = stats(posts_none)
        result["post_all_ms"] = stats(posts_all)
        result["post_ratio"] = statistics.median(posts_all) / statistics.median(posts_none)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hooks", type=int, default=10_000, help="hooks in the team at the end")
    parser.add_argument("--window", type=int, default=100, help="creates timed at each end")
    parser.add_argument("--seed-clients", type=int, default=8, help="clients seeding the middle")
    parser.add_argument("--progress", type=int, default=1000, help="a seeding line every N hooks")
    parser.add_argument("--posts", type=int, default=200, help="posts timed each side (0: none)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--source", type=Path, help="serve this checkout's src instead")
    args = parser.parse_args()
    if args.hooks < 2 * args.window:
        parser.error("--hooks must be at least twice --window")
    rounds = []
    for number in range(args.runs):
        with tidings_server(source_path(args.source), env={"TIDINGS_RUN_WORKER": "false"}) as base:
            result = asyncio.run(one_round(base, args))
        result["round"] = number + 1
        print(
            json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}),
            flush=True,
        )
        rounds.append(result)
    summary: dict[str, Any] = {
        "benchmark": "P3 hook scale",
        "runs": args.runs,
        "hooks": args.hooks,
        "create_ratio_last_to_first": spread([r["create_ratio"] for r in rounds]),
        "create_target": 2.0,
    }
    if args.posts:
        summary["post_p50_ratio_all_to_none"] = spread([r["post_ratio"] for r in rounds])
        summary["post_target"] = 1.2
    summary["met"] = summary["create_ratio_last_to_first"]["median"] <= 2.0 and (
        not args.posts or summary["post_p50_ratio_all_to_none"]["median"] <= 1.2
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
