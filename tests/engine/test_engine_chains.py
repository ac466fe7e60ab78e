"""Chained deliveries (hooks with ``trigger_on_bot_posts``) are queued in the unit that writes the
reply posts: when the database refuses them, the reply posts still commit, the chain is given
up rather than retried for ever, and the worker goes on."""

import asyncio
from functools import partial

import pytest
from sqlalchemy import select, text

from support import Receiver, Recorded, fresh_database, seed_channel_hook
from tidings.config import Settings
from tidings.services import hooks as hook_service
from tidings.services import posts as post_service
from tidings.services.chains import reply_chain
from tidings.services.hooks import HookInput
from tidings.services.runtime import Runtime
from tidings.store.database import Connection, Database
from tidings.store.schema import deliveries, posts
from tidings.webhooks.worker import Worker

pytestmark = pytest.mark.db

# A refusal for the values written (SQLSTATE class 23 on PostgreSQL, SQLite's constraint error)
# of exactly the chained deliveries: those of posts deeper than a person's.
_REFUSE_CHAINS = {
    "sqlite": [
        "CREATE TRIGGER refuse_chained BEFORE INSERT ON deliveries WHEN NEW.post_depth > 0"
        " BEGIN SELECT RAISE(ABORT, 'no chains'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_chained() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'no chains' USING ERRCODE = 'check_violation'; END $$",
        "CREATE TRIGGER refuse_chained BEFORE INSERT ON deliveries FOR EACH ROW"
        " WHEN (NEW.post_depth > 0) EXECUTE FUNCTION refuse_chained()",
    ],
}
_ALLOW_CHAINS = {
    "sqlite": ["DROP TRIGGER refuse_chained"],
    "postgresql": ["DROP TRIGGER refuse_chained ON deliveries", "DROP FUNCTION refuse_chained()"],
}


def _execute(conn: Connection, statements: list[str]) -> None:
    for statement in statements:
        conn.execute(text(statement))


def _deliveries(conn: Connection) -> list[tuple[str, str, int]]:
    """(post id, status, post depth) of every delivery."""
    rows = conn.execute(select(deliveries.c.post_id, deliveries.c.status, deliveries.c.post_depth))
    return [(r.post_id, r.status, r.post_depth) for r in rows]


def _depths(conn: Connection) -> dict[str, int]:
    return {r.id: r.webhook_depth for r in conn.execute(select(posts.c.id, posts.c.webhook_depth))}


async def _settled(rt: Runtime, count: int) -> list[tuple[str, str, int]]:
    """The deliveries once ``count`` of them are finished (fails after 10 s)."""
    for _ in range(1000):
        rows = await rt.db.read(_deliveries)
        if sum(status in ("succeeded", "failed") for _, status, _ in rows) >= count:
            await asyncio.sleep(0.3)  # what must not come has had its chance
            return await rt.db.read(_deliveries)
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} deliveries finished")


def _answer_unless_chained(request: Recorded) -> object:
    """The seeded hook replies; the chained hook (its URL ends ``?chain``) does not."""
    return None if request.path.endswith("?chain") else {"text": "done"}


async def _scenario(url: str, receiver: Receiver) -> None:
    rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    worker = Worker.from_runtime(rt, chain=reply_chain(rt))
    try:
        seeded = await seed_channel_hook(rt, "chainer", receiver.url)
        await hook_service.create_hook(
            rt,
            seeded.admin,
            HookInput(
                team_id=seeded.channel.team_id,
                channel_id=seeded.channel.id,
                callback_urls=(f"{receiver.url}?chain",),
                trigger_on_bot_posts=True,
            ),
        )
        await rt.db.write(partial(_execute, statements=_REFUSE_CHAINS[dialect]))
        await worker.start()
        first = await post_service.create_post(rt, seeded.admin, seeded.channel.id, "build 1")
        rows = await _settled(rt, 2)
        # The person's post fired both hooks; the reply's chained delivery was refused alone.
        assert sorted(rows) == [(first.id, "succeeded", 0), (first.id, "succeeded", 0)]
        depths = await rt.db.read(_depths)
        assert sorted(depths.values()) == [0, 1]  # the reply post committed
        first_reply = {p for p, d in depths.items() if d == 1}

        await rt.db.write(partial(_execute, statements=_ALLOW_CHAINS[dialect]))
        second = await post_service.create_post(rt, seeded.admin, seeded.channel.id, "build 2")
        rows = await _settled(rt, 5)
        depths = await rt.db.read(_depths)
        (reply,) = {p for p, d in depths.items() if d == 1} - first_reply
        chained = [r for r in rows if r[2] == 1]
        assert chained == [(reply, "succeeded", 1)]
        assert len([r for r in rows if r[0] == second.id]) == 2
        assert len(rows) == 5
    finally:
        await worker.stop()
        await rt.db.dispose()


def test_a_refused_chain_leaves_the_reply_posted_and_the_worker_going(receiver: Receiver) -> None:
    receiver.reply = _answer_unless_chained
    with fresh_database() as url:
        asyncio.run(_scenario(url, receiver))
