"""Crash safety of the delivery engine: processes killed with SIGKILL while deliveries are in
flight lose none of them, and the receiver acts once per delivery when it dedupes by webhook-id."""

import asyncio
import signal
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from sqlalchemy import func, select

from support import (
    Receiver,
    Recorded,
    fresh_database,
    running_tidings,
    seed_channel_hook,
    wait_until,
)
from tidings.config import Settings
from tidings.services import posts as post_service
from tidings.services.runtime import Runtime
from tidings.store.database import Connection, Database
from tidings.store.schema import deliveries, posts

pytestmark = pytest.mark.db

POSTS = 1_000
# Each victim is killed once the receiver has seen this many distinct deliveries.
KILL_AFTER = {"worker": 300, "serve": 600}
# Short leases, so a killed process's deliveries come back quickly; serve runs its worker.
CRASH_SETTINGS = {"run_worker": "true", "worker_lease_seconds": "2"}


@pytest.fixture
def crash_database() -> Iterator[str]:
    """A database of this test's own (SQLite file, or a new PostgreSQL database beside the
    suite's): the session server's in-process worker must not take these deliveries."""
    with fresh_database() as url:
        yield url


async def _prepare(url: str, callback_url: str) -> list[str]:
    """Admin, team, channel and a hook on every post; then the posts, each queuing a delivery."""
    rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
    try:
        seeded = await seed_channel_hook(
            rt,
            "crash",
            callback_url,
            service_settings={"OutgoingWebhookRetryScheduleSeconds": [0.5, 0.5, 0.5, 0.5, 0.5]},
        )
        created = []
        for i in range(POSTS):
            post = await post_service.create_post(
                rt, seeded.admin, seeded.channel.id, f"deploy build {i}"
            )
            created.append(post.id)
        return created
    finally:
        await rt.db.dispose()


async def _status_counts(url: str) -> Counter[str]:
    db = Database.from_url(url)
    query = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
    try:
        rows = await db.read(lambda conn: conn.execute(query).all())
    finally:
        await db.dispose()
    return Counter({str(status): int(count) for status, count in rows})


async def _delivery_ids_and_replies(url: str) -> tuple[set[str], Counter[str]]:
    db = Database.from_url(url)

    def read(conn: Connection) -> tuple[set[str], Counter[str]]:
        ids = set(conn.execute(select(deliveries.c.id)).scalars())
        replies = Counter(
            conn.execute(select(posts.c.root_id).where(posts.c.message == "ack")).scalars().all()
        )
        return ids, replies

    try:
        return await db.read(read)
    finally:
        await db.dispose()


def _post_id(request: Recorded) -> str:
    return parse_qs(request.body.decode())["post_id"][0]


def _has_seen(receiver: Receiver, distinct: int) -> Callable[[], bool]:
    """Whether the receiver got at least ``distinct`` different deliveries (by webhook-id)."""
    return lambda: len({r.headers.get("webhook-id") for r in list(receiver.requests)}) >= distinct


def test_killed_workers_lose_no_delivery_and_repeat_none(
    crash_database: str, tmp_path: Path
) -> None:
    """SIGKILLed worker and server mid-flight: every post is delivered under one id, replied to once."""
    receiver = Receiver()
    receiver.delay_seconds = 0.02  # keep requests under way when the kill lands
    # A threaded reply: its root names the trigger post, so replies can be counted per post.
    receiver.reply = {"text": "ack", "response_type": "comment"}
    log = tmp_path / "processes.log"
    try:
        post_ids = asyncio.run(_prepare(crash_database, receiver.url))
        cut_off = {}
        for command, threshold in KILL_AFTER.items():
            with running_tidings(command, crash_database, log, signal.SIGKILL, **CRASH_SETTINGS):
                wait_until(_has_seen(receiver, threshold), timeout=30)
            counts = asyncio.run(_status_counts(crash_database))
            cut_off[command] = counts["in_flight"]
            assert counts["succeeded"] < POSTS, f"{command} finished before it was killed"
        with running_tidings("worker", crash_database, log, **CRASH_SETTINGS):
            wait_until(
                lambda: asyncio.run(_status_counts(crash_database))["succeeded"] == POSTS,
                timeout=40,
                interval=0.2,
            )
        requests = list(receiver.requests)
    except AssertionError:
        print(log.read_text(errors="replace")[-4000:])  # what the processes said, on failure
        raise
    finally:
        receiver.close()

    # The kills really cut deliveries off mid-attempt (claimed, lease still running).
    assert all(cut_off.values()), cut_off
    counts = asyncio.run(_status_counts(crash_database))
    assert counts == Counter({"succeeded": POSTS})
    posts_by_delivery: dict[str, set[str]] = defaultdict(set)
    bodies_by_delivery: dict[str, set[bytes]] = defaultdict(set)
    deliveries_by_post: dict[str, set[str]] = defaultdict(set)
    for request in requests:
        delivery_id = request.headers["webhook-id"]
        posts_by_delivery[delivery_id].add(_post_id(request))
        bodies_by_delivery[delivery_id].add(request.body)
        deliveries_by_post[_post_id(request)].add(delivery_id)
    # Repeats carry the same id and body; deduped by id, each post arrives exactly once.
    assert set(deliveries_by_post) == set(post_ids)
    assert all(len(ids) == 1 for ids in deliveries_by_post.values())
    assert all(len(found) == 1 for found in posts_by_delivery.values())
    assert all(len(found) == 1 for found in bodies_by_delivery.values())
    delivery_ids, replies = asyncio.run(_delivery_ids_and_replies(crash_database))
    assert delivery_ids == set(posts_by_delivery)
    # A reply is posted once per delivery, even when the receiver answered twice.
    assert replies == Counter(dict.fromkeys(post_ids, 1))
    assert len(requests) >= POSTS
