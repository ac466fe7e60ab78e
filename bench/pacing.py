"""Steady load for the latency benchmarks: actions on a fixed schedule, and their arrivals.

A run that falls behind its schedule does not skip ticks; it catches up, so a stall shows up as
latency of the ticks that waited rather than as fewer samples.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from harness import World, fetch_arrivals

from tidings.domain.hooks import OutgoingHook
from tidings.domain.outbox import NewDelivery
from tidings.domain.posts import Post
from tidings.ids import new_id
from tidings.services import posts as post_service
from tidings.store.database import Connection
from tidings.store.outbox import enqueue
from tidings.store.posts import insert_posts
from tidings.webhooks.payloads import build_payload_fields, encode_body

T = TypeVar("T")


@dataclass(frozen=True)
class Sent:
    """One post (or floor request): its id, when its latency starts (unix s), how long the call took (s)."""

    post_id: str
    measured_from: float
    took: float


async def at_rate(rate: float, seconds: float, action: Callable[[int], Awaitable[T]]) -> list[T]:
    """Run ``action(i)`` for ``rate × seconds`` ticks, tick ``i`` due at ``start + i / rate``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    results = []
    for i in range(round(rate * seconds)):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        results.append(await action(i))
    return results


async def posts_at_rate(world: World, rate: float, seconds: float, label: str) -> list[Sent]:
    """Create posts in the world's channel at ``rate`` per second; every hook there fires."""

    async def create(i: int) -> Sent:
        started = time.perf_counter()
        post = await post_service.create_post(
            world.rt, world.admin, world.channel.id, f"{label} {i}"
        )
        took = time.perf_counter() - started
        return Sent(post.id, time.time(), took)

    return await at_rate(rate, seconds, create)


async def first_arrivals(
    base_url: str, post_ids: Iterable[str], within_seconds: float = 30.0
) -> dict[str, float]:
    """Wait (bounded) until the receiver has seen every post; the first arrival of each."""
    wanted = set(post_ids)
    deadline = time.monotonic() + within_seconds
    while True:
        first: dict[str, float] = {}
        for post_id, _webhook_id, at in fetch_arrivals(base_url):
            if post_id in wanted and at < first.get(post_id, float("inf")):
                first[post_id] = at
        if len(first) == len(wanted) or time.monotonic() > deadline:
            return first
        await asyncio.sleep(0.2)


def latencies(sent: list[Sent], arrivals: dict[str, float]) -> list[float]:
    """Arrival minus return of the call, in ms, for every post that arrived."""
    return [(arrivals[s.post_id] - s.measured_from) * 1000 for s in sent if s.post_id in arrivals]


async def enqueue_posts(world: World, hook: OutgoingHook, start: int, count: int) -> None:
    """``count`` posts, each with one delivery to ``hook`` only, in one transaction: a backlog
    made quickly (``create_post`` would also fire every other hook of the channel)."""
    now = int(time.time() * 1000)
    posts = [
        Post(
            id=new_id(),
            create_at=now,
            update_at=now,
            edit_at=0,
            delete_at=0,
            user_id=world.admin.id,
            channel_id=world.channel.id,
            root_id="",
            message=f"deploy build {start + i}",
        )
        for i in range(count)
    ]
    new = []
    for post in posts:
        fields = build_payload_fields(
            hook,
            post,
            world.team,
            world.channel,
            author_username=world.admin.username,
            trigger_word="",
        )
        body, content_type = encode_body(hook, fields)
        new.append(
            NewDelivery(
                hook_id=hook.id,
                post_id=post.id,
                channel_id=world.channel.id,
                url=hook.callback_urls[0],
                content_type=content_type,
                body=body,
                trigger_word="",
                root_id=post.id,
            )
        )

    def work(conn: Connection) -> None:
        insert_posts(conn, posts)
        enqueue(conn, new, now)

    # Thousands of rows: milliseconds, so off the event loop (the worker may be running on it).
    await world.rt.db.write(work, background=True)
    world.rt.outbox_signal.set()
