"""P1 end to end: deliveries/s from posts made through the API (20 hooks per post), as a ratio
to the bare aiohttp client loop against the same receiver, measured in the same round.

    .venv/bin/python bench/e2e_api.py [--posts 250] [--hooks 20] [--clients 16]
        [--worker-concurrency 16] [--warmup-posts 10] [--settle 2] [--runs 3] [--reply-text]
        [--sender FILE] [--source DIR]

Target (issue #11): ratio ≥ 0.5.

Each round: start ``bench/recv_count.py`` pinned to core 1 (it answers ``null``: no reply
becomes a post; ``--reply-text`` answers ``{"text":"ok"}`` instead, so every delivery also writes
a reply post, as ``bench/deliveries.py`` measures) and ``tidings serve`` pinned to core 0 with
``TIDINGS_WORKER_CONCURRENCY`` = ``--worker-concurrency`` (the floor's concurrency, as
``bench/deliveries.py`` runs its worker). Set up through the API: the first user (an admin), a
team, a public channel with ``--hooks`` channel-scoped JSON hooks, each to its own path on the
receiver, loopback allowed and the per-destination and per-owner caps raised to 64. A warm-up of
``--warmup-posts`` posts goes through the whole path (their deliveries awaited), ``--settle``
seconds pass idle, then:

1. floor before: the shared ``sender.py`` (bare aiohttp loop, ``--clients`` concurrency, ~300-byte
   JSON events, 5 s) against the same receiver, pinned to core 0;
2. the receiver's counts are reset; ``--clients`` aiohttp clients (this process, core 0) make
   ``--posts`` posts through ``POST /api/v4/posts``; the time runs from the first post until the
   receiver has seen ``posts × hooks`` distinct delivery ids (the receiver's own clock of the
   last new one); deliveries/s = posts × hooks / that time;
3. floor after, as before. The floor is the mean of the two, because these machines drift by
   tens of percent within a minute.

One JSON line per round and a summary: the ratio min/median/max over ``--runs`` ("met": the
median ≥ 0.5), the rates, lost deliveries (fewer distinct delivery ids than expected after
``--drain`` s) and duplicate requests.
``--source DIR`` serves another checkout's ``src``; this script imports nothing of Tidings.
"""

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from posts_per_second import spread
from served import (
    FLOOR,
    LOOPBACK_HOOKS,
    PY,
    Admin,
    counting_receiver,
    create_channels,
    create_hook,
    first_admin,
    forget_counts,
    hook_body,
    patch_service_settings,
    pin_to_core,
    pinned,
    receiver_counts,
    source_path,
    tidings_server,
    wait_for_deliveries,
)

FLOOR_SECONDS = 5.0


def client_floor(url: str, concurrency: int, sender: Path) -> dict[str, Any]:
    """The bare aiohttp client loop against ``url``, pinned to core 0 (P1's denominator)."""
    argv = [PY, str(sender), url, "--client", "aiohttp", "--concurrency", str(concurrency)]
    out = subprocess.run(
        pinned(0, [*argv, "--duration", str(FLOOR_SECONDS)]),
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


async def make_posts(admin: Admin, channel_id: str, posts: int, clients: int) -> list[int]:
    """``posts`` posts by ``clients`` clients, each with its own connection; non-201 statuses."""
    remaining = iter(range(posts))
    failures: list[int] = []

    async def client() -> None:
        async with admin.session() as session:
            for n in remaining:
                body = {"channel_id": channel_id, "message": f"build {n} is ready"}
                async with session.post("/api/v4/posts", json=body) as response:
                    await response.read()
                    if response.status != 201:
                        failures.append(response.status)

    await asyncio.gather(*(client() for _ in range(clients)))
    return failures


async def prepare(base: str, receiver: str, hooks: int) -> tuple[Admin, str]:
    admin = await first_admin(base)
    await patch_service_settings(admin, LOOPBACK_HOOKS)
    (channel_id,) = await create_channels(admin, ["deliveries"])
    async with admin.session() as session:
        for k in range(hooks):
            url = f"{receiver}/hook/{k}"
            await create_hook(session, hook_body(admin, channel_id, url, name=f"e2e {k}"))
    await asyncio.sleep(1.5)  # settings and the worker's hooks are cached for up to a second
    return admin, channel_id


def one_round(args: argparse.Namespace) -> dict[str, Any]:
    env = {"TIDINGS_WORKER_CONCURRENCY": str(args.worker_concurrency)}
    with (
        counting_receiver(cpu=1, reply_text=args.reply_text) as receiver,
        tidings_server(source_path(args.source), env=env, cpu=0) as base,
    ):
        admin, channel_id = asyncio.run(prepare(base, receiver, args.hooks))

        async def warm_up() -> None:
            await make_posts(admin, channel_id, args.warmup_posts, args.clients)
            await wait_for_deliveries(receiver, args.warmup_posts * args.hooks, args.drain)

        asyncio.run(warm_up())
        time.sleep(args.settle)  # the warm-up's write-backs and checkpoints end first
        floor_before = client_floor(f"{receiver}/floor", args.clients, args.sender)

        async def measured() -> dict[str, Any]:
            await forget_counts(receiver)
            expected = args.posts * args.hooks
            started = time.time()
            failures = await make_posts(admin, channel_id, args.posts, args.clients)
            posted = time.time()
            counts = await wait_for_deliveries(receiver, expected, args.drain)
            elapsed = counts["last_new_at"] - started
            await asyncio.sleep(0.5)  # late repeats of a delivery, if any
            final = await receiver_counts(receiver)
            return {
                "posts": args.posts,
                "post_errors": len(failures),
                "posts_per_second": round(args.posts / (posted - started), 1),
                "deliveries_expected": expected,
                "deliveries_received": final["deliveries"],
                "lost": max(0, expected - final["deliveries"]),
                "duplicates": final["requests"] - final["deliveries"],
                "seconds": round(elapsed, 3),
                "tidings_rps": final["deliveries"] / elapsed if elapsed > 0 else 0.0,
            }

        result = asyncio.run(measured())
        floor_after = client_floor(f"{receiver}/floor", args.clients, args.sender)
    floor = (floor_before["rps"] + floor_after["rps"]) / 2
    result |= {
        "floor_rps": round(floor, 1),
        "floor_before_after": [floor_before["rps"], floor_after["rps"]],
        "floor_errors": floor_before["errors"] + floor_after["errors"],
        "ratio": result["tidings_rps"] / floor,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=250)
    parser.add_argument("--hooks", type=int, default=20, help="hooks on the channel")
    parser.add_argument("--clients", type=int, default=16, help="posting clients = floor's")
    parser.add_argument("--worker-concurrency", type=int, default=16)
    parser.add_argument("--warmup-posts", type=int, default=10)
    parser.add_argument("--settle", type=float, default=2.0, help="idle seconds after warm-up")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--drain", type=float, default=120.0, help="seconds to wait for deliveries")
    parser.add_argument("--reply-text", action="store_true", help="replies become posts")
    parser.add_argument("--sender", type=Path, default=FLOOR / "sender.py")
    parser.add_argument("--source", type=Path, help="serve this checkout's src instead")
    args = parser.parse_args()
    if not args.sender.exists():
        sys.exit(f"no floor sender at {args.sender} (set --sender or TIDINGS_BENCH_FLOOR)")
    pin_to_core(0)  # the posting clients share core 0 with the server, as the floor's sender
    rounds = []
    for number in range(args.runs):
        result = one_round(args)
        result["round"] = number + 1
        print(
            json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}),
            flush=True,
        )
        rounds.append(result)
    print(
        json.dumps(
            {
                "benchmark": "P1 end to end (posts through the API)",
                "runs": args.runs,
                "posts": args.posts,
                "hooks": args.hooks,
                "reply_posts": args.reply_text,
                "P1_e2e_ratio": spread([r["ratio"] for r in rounds]),
                "tidings_rps": spread([round(r["tidings_rps"]) for r in rounds]),
                "floor_rps": spread([round(r["floor_rps"]) for r in rounds]),
                "lost": sum(r["lost"] for r in rounds),
                "duplicates": sum(r["duplicates"] for r in rounds),
                "post_errors": sum(r["post_errors"] for r in rounds),
                "target": 0.5,
                "met": spread([r["ratio"] for r in rounds])["median"] >= 0.5,
            }
        )
    )


if __name__ == "__main__":
    main()
