"""``services.chains.queue_chained_deliveries``, the one way reply posts fire hooks (the worker's
write-back, and any other writer of webhook replies), called inside the unit that inserts them."""

import asyncio
import dataclasses
from collections.abc import Sequence
from functools import partial

import pytest
from sqlalchemy import select

from support import fresh_database, seed_channel_hook
from tidings.config import Settings
from tidings.domain import server_config
from tidings.domain.posts import Post
from tidings.domain.server_config import WebhookSettings
from tidings.ids import new_id
from tidings.services import hooks as hook_service
from tidings.services.chains import Chained, chain_committed, queue_chained_deliveries
from tidings.services.hooks import HookInput
from tidings.services.runtime import Runtime
from tidings.store import posts as post_store
from tidings.store.database import Connection, Database
from tidings.store.schema import deliveries

pytestmark = pytest.mark.db


def _reply(channel_id: str, user_id: str, depth: int, message: str = "built") -> Post:
    return Post(
        id=new_id(),
        create_at=1,
        update_at=1,
        edit_at=0,
        delete_at=0,
        user_id=user_id,
        channel_id=channel_id,
        root_id="",
        message=message,
        props={"from_webhook": "true"},
        webhook_depth=depth,
    )


def _insert_and_chain(
    conn: Connection, rt: Runtime, replies: Sequence[Post], settings: WebhookSettings
) -> Chained:
    post_store.insert_posts(conn, replies)
    return queue_chained_deliveries(rt, conn, replies, settings, 1)


def _queued(conn: Connection) -> list[tuple[str, str, int]]:
    rows = conn.execute(select(deliveries.c.hook_id, deliveries.c.post_id, deliveries.c.post_depth))
    return sorted((r.hook_id, r.post_id, r.post_depth) for r in rows)


async def _scenario(url: str) -> None:
    rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
    try:
        seeded = await seed_channel_hook(rt, "chains", "http://127.0.0.1:9/plain")
        channel, owner = seeded.channel, seeded.admin
        opted = await hook_service.create_hook(
            rt,
            owner,
            HookInput(
                team_id=channel.team_id,
                trigger_words=("built",),
                callback_urls=("http://127.0.0.1:9/a", "http://127.0.0.1:9/b"),
                trigger_on_bot_posts=True,
            ),
        )
        settings = server_config.webhook_settings(await rt.config())
        assert settings.max_chain_depth == 3
        replies = [
            _reply(channel.id, owner.id, 1),
            _reply(channel.id, owner.id, 3),  # at the limit: fires nothing
            _reply(channel.id, owner.id, 2, message="other words"),  # no trigger word
        ]
        chained = await rt.db.write(
            partial(_insert_and_chain, rt=rt, replies=replies, settings=settings)
        )
        # The opted-in hook, once per callback URL; the seeded channel hook did not opt in.
        assert chained.queued == 2
        assert await rt.db.read(_queued) == [(opted.id, replies[0].id, 1)] * 2
        assert rt.hook_indexes.get(channel.team_id) is None  # kept only after the commit
        rt.outbox_signal.clear()
        chain_committed(rt, chained)
        assert rt.outbox_signal.is_set()
        assert rt.hook_indexes[channel.team_id][1].fires_on_bot_posts

        off = dataclasses.replace(settings, max_chain_depth=0)
        more = [_reply(channel.id, owner.id, 1)]
        none = await rt.db.write(partial(_insert_and_chain, rt=rt, replies=more, settings=off))
        assert none == Chained()
        assert len(await rt.db.read(_queued)) == 2
    finally:
        await rt.db.dispose()


def test_reply_posts_queue_the_opted_in_hooks_below_the_depth_limit() -> None:
    with fresh_database() as url:
        asyncio.run(_scenario(url))
