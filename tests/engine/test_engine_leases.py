"""An attempt cut off by a dying worker: the delivery goes back to the queue with its id, and
the log shows the cut-off try as ``interrupted`` (no attempt goes missing from the count)."""

import asyncio
from functools import partial

import pytest

from support import fresh_database, seed_channel_hook
from tidings.config import Settings
from tidings.domain.deliveries import Attempt, Delivery
from tidings.services import posts as post_service
from tidings.services.runtime import Runtime
from tidings.store import deliveries as delivery_store
from tidings.store import outbox
from tidings.store.database import Connection, Database

pytestmark = pytest.mark.db

CLAIMED_AT = 1_900_000_000_000
LEASE_MS = 60_000


async def _one_pending_delivery(rt: Runtime) -> None:
    # The URL is never contacted: this test drives the queue itself, with no worker running.
    seeded = await seed_channel_hook(rt, "lease", "http://127.0.0.1:9/hook")
    await post_service.create_post(rt, seeded.admin, seeded.channel.id, "build 1")


async def _release(rt: Runtime, now_ms: int) -> int:
    return await rt.db.write(partial(outbox.release_expired, now_ms=now_ms))


async def _scenario(url: str) -> None:
    rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
    try:
        await _one_pending_delivery(rt)
        [claimed] = await rt.db.write(
            partial(outbox.claim, limit=10, lease_ms=LEASE_MS, now_ms=CLAIMED_AT)
        )
        assert claimed.attempt_count == 1

        # While the lease runs, the delivery is the (possibly slow) worker's own.
        assert await _release(rt, CLAIMED_AT + LEASE_MS - 1) == 0
        # The worker died: once the lease is over, the delivery is due again.
        assert await _release(rt, CLAIMED_AT + LEASE_MS + 1) == 1
        assert await _release(rt, CLAIMED_AT + LEASE_MS + 2) == 0

        def read(conn: Connection) -> tuple[Delivery | None, list[Attempt]]:
            return (
                delivery_store.find_delivery(conn, claimed.id),
                delivery_store.list_attempts(conn, claimed.id),
            )

        released, attempts = await rt.db.read(read)
        assert released is not None
        assert (released.status, released.attempt_count, released.last_error_kind) == (
            "pending",
            1,
            "interrupted",
        )
        assert [(a.number, a.error_kind, a.status_code, a.started_at) for a in attempts] == [
            (1, "interrupted", 0, CLAIMED_AT)
        ]
        assert "cut off" in attempts[0].error_message

        # The retry is the same delivery, counted as the second attempt.
        [again] = await rt.db.write(
            partial(outbox.claim, limit=10, lease_ms=LEASE_MS, now_ms=CLAIMED_AT + LEASE_MS + 3)
        )
        assert (again.id, again.attempt_count) == (claimed.id, 2)
    finally:
        await rt.db.dispose()


def test_a_cut_off_attempt_is_logged_and_the_delivery_retried() -> None:
    with fresh_database() as url:
        asyncio.run(_scenario(url))
