"""Several ``tidings worker`` processes share one queue without sending any delivery twice."""

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from support import Receiver, fresh_database, seed_channel_hook, wait_until
from tidings.config import Settings
from tidings.services import posts as post_service
from tidings.services.runtime import Runtime
from tidings.store.database import Database
from tidings.store.schema import deliveries

pytestmark = pytest.mark.db

POSTS = 300


def _prepare(url: str, callback: str) -> None:
    """An admin, a team, a channel hook to ``callback``, and POSTS queued deliveries."""

    async def work() -> None:
        rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
        try:
            seeded = await seed_channel_hook(rt, "boss", callback)
            for i in range(POSTS):
                await post_service.create_post(rt, seeded.admin, seeded.channel.id, f"build {i}")
        finally:
            await rt.db.dispose()

    asyncio.run(work())


def _succeeded(url: str) -> int:
    async def work() -> int:
        db = Database.from_url(url)
        try:
            query = select(func.count()).where(deliveries.c.status == "succeeded")
            return int(await db.read(lambda conn: conn.execute(query).scalar_one()))
        finally:
            await db.dispose()

    return asyncio.run(work())


def test_two_workers_never_send_the_same_delivery_twice(receiver: Receiver) -> None:
    """Two worker processes drain one queue: every delivery arrives exactly once."""
    receiver.delay_seconds = 0.005
    with fresh_database() as url:
        _prepare(url, receiver.url)
        env = {
            **os.environ,
            "TIDINGS_DATABASE_URL": url,
            "TIDINGS_WORKER_BATCH_SIZE": "20",
            "TIDINGS_WORKER_CONCURRENCY": "8",
        }
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "tidings", "worker"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        try:
            wait_until(lambda: _succeeded(url) >= POSTS, timeout=60, interval=0.2)
            time.sleep(0.3)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(15)
        ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
        assert len(ids) == POSTS
        assert max(ids.values()) == 1
