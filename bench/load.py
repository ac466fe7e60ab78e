"""Load: 200 concurrent posters for 60 s, 20 hooks on 10 channels — errors, lost deliveries, p99.

    .venv/bin/python bench/load.py [--posters 200] [--duration 60] [--warmup 2] [--runs 1]
        [--channels 10] [--hooks-per-channel 2] [--drain 120] [--floor FILE] [--source DIR]

Target (issue #11): 0 errors, 0 lost deliveries, post p99 ≤ 300 ms.

Each round measures two servers with the same clients, in an order that rotates by round:

- **Tidings**: ``tidings serve`` (SQLite, a fresh data directory, worker inside) set up through
  the API: the first user (an admin), a team, ``--channels`` public channels, loopback allowed as
  a hook destination and the per-destination and per-owner caps raised to 64 (as
  ``harness.World`` does), then ``--hooks-per-channel`` channel-scoped outgoing hooks (JSON) per
  channel, each to its own path on ``bench/recv_count.py`` — a receiver that answers ``null``, so
  no reply becomes a post, and notes every delivery id it sees with its post and path.
  ``--posters`` aiohttp clients, each with its own connection and a 30 s timeout, post one
  message after another for ``--warmup`` + ``--duration`` seconds, client *n* in channel
  *n mod channels*. Every post answered 201 must reach each hook of its channel: after the
  clients stop, the receiver is polled until it has seen posts × hooks-per-channel deliveries or
  ``--drain`` seconds pass. **lost** counts (post, hook) pairs never delivered; **duplicates**
  are repeated requests of one delivery id (at-least-once redelivery); **unexpected** are
  deliveries for posts the clients never saw a 201 for; **extra** are more distinct deliveries of
  one (post, hook) pair than one.
- **Floor**: the shared ``post_floor.py`` (a bare Starlette handler doing a post's essential
  SQLite work, one channel, no hooks) with the same clients for the same time.

Posts and latency count only after the warm-up; errors and deliveries count for every post. Every line is
JSON: one per measurement, then a summary: Tidings' posts/s as a ratio to the floor of its own
round (min/median/max over ``--runs``), worst errors, lost and p99 of any round, and whether the
targets were met. Absolute rates drift 20–60% on shared machines; the ratio holds.

``--source DIR`` serves another checkout (its ``src`` on the server's ``PYTHONPATH``), e.g. a
``git worktree`` of an older commit; this script itself imports nothing of Tidings.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from posts_per_second import free_port, percentile, spread, stop, wait_until_listening
from served import (
    FLOOR,
    LOOPBACK_HOOKS,
    PY,
    counting_receiver,
    create_channels,
    create_hook,
    first_admin,
    hook_body,
    patch_service_settings,
    receiver_counts,
    receiver_deliveries,
    source_path,
    tidings_server,
    wait_for_deliveries,
)

P99_TARGET_MS = 300.0


@dataclass
class Record:
    """What the clients saw: latencies of counted 201s, every 201's post id, the failures."""

    latencies_ms: list[float] = field(default_factory=list)
    posts: dict[str, str] = field(default_factory=dict)  # post id → channel id (every 201)
    errors: Counter[str] = field(default_factory=Counter)  # status or exception → count


async def poster(
    base: str,
    token: str,
    channel_id: str,
    number: int,
    counting_from: float,
    stop_at: float,
    record: Record,
) -> None:
    """One client with one connection, posting back to back until ``stop_at``."""
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=1)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        base_url=base, connector=connector, headers=headers, timeout=timeout
    ) as session:
        sent = 0
        while time.monotonic() < stop_at:
            body = {"channel_id": channel_id, "message": f"client {number} post {sent}"}
            started = time.monotonic()
            sent += 1
            try:
                async with session.post("/api/v4/posts", json=body) as response:
                    payload = await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as error:
                record.errors[type(error).__name__] += 1
                continue
            elapsed_ms = (time.monotonic() - started) * 1000
            if status == 201:
                record.posts[str(json.loads(payload)["id"])] = channel_id
                if started >= counting_from:
                    record.latencies_ms.append(elapsed_ms)
            else:
                record.errors[str(status)] += 1


async def load(
    base: str, token: str, channel_ids: list[str], args: argparse.Namespace
) -> tuple[Record, float]:
    """Run the posters; the record and the seconds actually counted."""
    record = Record()
    counting_from = time.monotonic() + args.warmup
    stop_at = counting_from + args.duration
    await asyncio.gather(
        *(
            poster(
                base,
                token,
                channel_ids[n % len(channel_ids)],
                n,
                counting_from,
                stop_at,
                record,
            )
            for n in range(args.posters)
        )
    )
    return record, args.duration


def describe(name: str, record: Record, seconds: float, args: argparse.Namespace) -> dict[str, Any]:
    ordered = sorted(record.latencies_ms)
    return {
        "benchmark": "load: POST /api/v4/posts",
        "contender": name,
        "posters": args.posters,
        "duration_seconds": seconds,
        "posts": len(ordered),
        "posts_all": len(record.posts),
        "errors": sum(record.errors.values()),
        "error_kinds": dict(record.errors),
        "posts_per_second": round(len(ordered) / seconds, 1),
        "latency_ms": {
            "p50": round(percentile(ordered, 50), 1),
            "p90": round(percentile(ordered, 90), 1),
            "p99": round(percentile(ordered, 99), 1),
            "max": round(ordered[-1], 1),
            "mean": round(sum(ordered) / len(ordered), 1),
        }
        if ordered
        else {},
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


async def prepare_tidings(
    base: str, receiver: str, args: argparse.Namespace
) -> tuple[str, list[str], dict[str, set[str]]]:
    """Admin, team, channels, settings and hooks: (token, channel ids, hook paths per channel)."""
    admin = await first_admin(base)
    await patch_service_settings(admin, LOOPBACK_HOOKS)
    channel_ids = await create_channels(admin, [f"load-{n}" for n in range(args.channels)])
    paths: dict[str, set[str]] = {}
    async with admin.session() as session:
        for c, channel_id in enumerate(channel_ids):
            paths[channel_id] = set()
            for k in range(args.hooks_per_channel):
                path = f"/hook/{c}/{k}"
                await create_hook(
                    session, hook_body(admin, channel_id, receiver + path, name=f"load {c}/{k}")
                )
                paths[channel_id].add(path)
    # Settings are cached for up to a second, the worker's hooks likewise.
    await asyncio.sleep(1.5)
    return admin.token, channel_ids, paths


def delivery_check(
    record: Record, paths: dict[str, set[str]], seen: dict[str, tuple[str, str, int]]
) -> dict[str, int]:
    """Compare what was posted with what the receiver saw."""
    expected = {
        (post_id, path) for post_id, channel in record.posts.items() for path in paths[channel]
    }
    got: Counter[tuple[str, str]] = Counter((post_id, path) for post_id, path, _ in seen.values())
    return {
        "deliveries_expected": len(expected),
        "deliveries_received": sum(1 for pair in expected if pair in got),
        "lost": sum(1 for pair in expected if pair not in got),
        "duplicates": sum(n - 1 for _, _, n in seen.values()),
        "extra": sum(n - 1 for pair, n in got.items() if pair in expected and n > 1),
        "unexpected": sum(n for pair, n in got.items() if pair not in expected),
    }


def measure_tidings(args: argparse.Namespace) -> dict[str, Any]:
    with counting_receiver() as receiver, tidings_server(source_path(args.source)) as base:

        async def run() -> dict[str, Any]:
            token, channel_ids, paths = await prepare_tidings(base, receiver, args)
            record, seconds = await load(base, token, channel_ids, args)
            summary = describe("tidings", record, seconds, args)
            expected = len(record.posts) * args.hooks_per_channel
            drain_started = time.monotonic()
            await wait_for_deliveries(receiver, expected, args.drain)
            summary["drain_seconds"] = round(time.monotonic() - drain_started, 2)
            # A moment more, so that redeliveries and strays in flight are seen too.
            await asyncio.sleep(1)
            summary |= delivery_check(record, paths, await receiver_deliveries(receiver))
            summary["receiver_requests"] = (await receiver_counts(receiver))["requests"]
            return summary

        return asyncio.run(run())


def measure_floor(args: argparse.Namespace) -> dict[str, Any]:
    """The bare post handler (post_floor.py) with the same clients, for the same time."""
    with tempfile.TemporaryDirectory(prefix="tidings-floor-") as folder:
        port = free_port()
        process = subprocess.Popen(
            [PY, str(args.floor), str(port), str(Path(folder) / "floor.db")],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert process.stdout is not None
            token, channel_id = process.stdout.readline().decode().split()

            async def run() -> dict[str, Any]:
                await wait_until_listening(port)
                record, seconds = await load(f"http://127.0.0.1:{port}", token, [channel_id], args)
                return describe("floor (post_floor.py)", record, seconds, args)

            return asyncio.run(run())
        finally:
            stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posters", type=int, default=200, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds counted")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds not counted")
    parser.add_argument("--runs", type=int, default=1, help="rounds (each: Tidings and floor)")
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--hooks-per-channel", type=int, default=2)
    parser.add_argument("--drain", type=float, default=120.0, help="seconds to wait for deliveries")
    parser.add_argument("--floor", type=Path, default=FLOOR / "post_floor.py")
    parser.add_argument("--source", type=Path, help="serve this checkout's src instead")
    args = parser.parse_args()
    if not args.floor.exists():
        sys.exit(f"no floor at {args.floor} (set --floor or TIDINGS_BENCH_FLOOR)")
    ratios: list[float] = []
    p99s: list[float] = []
    errors = lost = duplicates = 0
    for number in range(args.runs):
        names = ["tidings", "floor"] if number % 2 == 0 else ["floor", "tidings"]
        rates: dict[str, float] = {}
        for name in names:
            summary = measure_tidings(args) if name == "tidings" else measure_floor(args)
            summary["round"] = number + 1
            print(json.dumps(summary), flush=True)
            rates[name] = summary["posts_per_second"]
            if name == "tidings":
                p99s.append(summary["latency_ms"].get("p99", float("inf")))
                errors += summary["errors"]
                lost += summary["lost"]
                duplicates += summary["duplicates"]
        ratios.append(rates["tidings"] / rates["floor"] if rates["floor"] else 0.0)
    print(
        json.dumps(
            {
                "benchmark": "load",
                "runs": args.runs,
                "posters": args.posters,
                "duration_seconds": args.duration,
                "posts_per_second_ratio_to_floor": spread(ratios),
                "p99_ms": {k: round(v, 1) for k, v in spread(p99s).items()},
                "errors": errors,
                "lost": lost,
                "duplicates": duplicates,
                "targets": {"errors": 0, "lost": 0, "p99_ms": P99_TARGET_MS},
                "met": errors == 0 and lost == 0 and max(p99s) <= P99_TARGET_MS,
            }
        )
    )


if __name__ == "__main__":
    main()
