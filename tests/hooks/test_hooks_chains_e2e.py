"""Bots that trigger bots (issue #13, item 4): a webhook's reply post fires the hooks that opted in
(``trigger_on_bot_posts``), only while its chain depth is below
``OutgoingWebhookMaxChainDepth``, and no other hook; a person's post is depth 0 whatever its
props claim."""

import json
import time

import pytest
from hooks_support import (
    Scene,
    channel_hook,
    delivery_rows,
    finished_deliveries,
    form,
    send,
    service_settings,
    wait_webhook_posts,
    webhook_posts,
)
from sqlalchemy import select

from support import Api, Receiver, ServerThread, running_receiver, wait_until
from tidings.store.schema import posts

pytestmark = [pytest.mark.db, pytest.mark.usefixtures("no_retries")]

QUIET_SECONDS = 1.5
"""How long a test waits for what must not happen (a delivery goes out in milliseconds)."""


def post_depths(server: ServerThread, channel_id: str) -> dict[str, int]:
    """post id → ``webhook_depth`` of the channel's posts (not in Mattermost's JSON)."""
    query = select(posts.c.id, posts.c.webhook_depth).where(posts.c.channel_id == channel_id)

    async def read() -> dict[str, int]:
        return await server.runtime.db.read(
            lambda conn: {row.id: row.webhook_depth for row in conn.execute(query).all()}
        )

    return server.run(read())


def test_a_reply_fires_only_the_hooks_that_opted_in(scene: Scene, server: ServerThread) -> None:
    """Hook A's reply fires hook B (trigger_on_bot_posts) as a post would, and not hook C."""
    with running_receiver() as a, running_receiver() as b, running_receiver() as c:
        a.reply = {"text": "answer 42"}
        b.reply = None
        c.reply = None
        channel_hook(scene, a, trigger_words=["ask"])
        hook_b = channel_hook(scene, b, trigger_words=["answer"], trigger_on_bot_posts=True)
        channel_hook(scene, c, trigger_words=["answer"])
        asked = send(scene.poster, scene.channel, "ask the bot")
        (reply,) = wait_webhook_posts(scene.poster, scene.channel["id"])
        wait_until(lambda: b.requests, timeout=10)
        time.sleep(QUIET_SECONDS)
        assert len(b.requests) == 1
        assert c.requests == []
        body = form(b.requests[0].body)
        assert body["text"] == "answer 42"
        assert body["trigger_word"] == "answer"
        assert body["post_id"] == reply["id"]
        assert body["user_id"] == scene.owner.user["id"]
        assert body["user_name"] == scene.owner.user["username"]
        (chained,) = delivery_rows(server, hook_id=hook_b["id"])
        assert chained["post_id"] == reply["id"]
        assert chained["post_depth"] == 1
        depths = post_depths(server, scene.channel["id"])
        assert depths == {asked["id"]: 0, reply["id"]: 1}


def test_a_self_answering_bot_stops_at_the_chain_depth(scene: Scene, server: ServerThread) -> None:
    """A hook that answers every post, its own replies included, gets exactly 3 deliveries from
    one person's post with the default depth of 3, and nothing more afterwards."""
    with running_receiver() as bot:
        bot.reply = {"text": "me again"}
        hook = channel_hook(scene, bot, trigger_on_bot_posts=True)
        send(scene.poster, scene.channel, "hello")
        rows = finished_deliveries(server, count=3, hook_id=hook["id"])
        wait_webhook_posts(scene.poster, scene.channel["id"], count=3)
        time.sleep(QUIET_SECONDS)
        rows = delivery_rows(server, hook_id=hook["id"])
        assert len(bot.requests) == 3
        assert sorted(r["post_depth"] for r in rows) == [0, 1, 2]
        assert {r["status"] for r in rows} == {"succeeded"}
        replies = webhook_posts(scene.poster, scene.channel["id"])
        assert len(replies) == 3
        depths = post_depths(server, scene.channel["id"])
        assert sorted(depths[p["id"]] for p in replies) == [1, 2, 3]
        # Each delivery is for the post one step before it in the chain.
        by_depth = {r["post_depth"]: r["post_id"] for r in rows}
        assert {depths[by_depth[d]] for d in by_depth} == {0, 1, 2}


def test_a_max_chain_depth_of_zero_stops_every_chain(
    scene: Scene, server: ServerThread, admin: Api
) -> None:
    """With OutgoingWebhookMaxChainDepth 0, reply posts fire no hook, opted in or not."""
    with (
        service_settings(admin, OutgoingWebhookMaxChainDepth=0),
        running_receiver() as bot,
    ):
        bot.reply = {"text": "me again"}
        hook = channel_hook(scene, bot, trigger_on_bot_posts=True)
        send(scene.poster, scene.channel, "hello")
        wait_webhook_posts(scene.poster, scene.channel["id"])
        time.sleep(QUIET_SECONDS)
        (row,) = delivery_rows(server, hook_id=hook["id"])
        assert row["post_depth"] == 0
        assert len(bot.requests) == 1
        assert len(webhook_posts(scene.poster, scene.channel["id"])) == 1


def test_a_chain_depth_of_two_allows_one_chained_delivery(
    scene: Scene, server: ServerThread, admin: Api
) -> None:
    """The limit is read as it is set: with 2, the person's post and the first reply fire."""
    with (
        service_settings(admin, OutgoingWebhookMaxChainDepth=2),
        running_receiver() as bot,
    ):
        bot.reply = {"text": "me again"}
        hook = channel_hook(scene, bot, trigger_on_bot_posts=True)
        send(scene.poster, scene.channel, "hello")
        wait_webhook_posts(scene.poster, scene.channel["id"], count=2)
        time.sleep(QUIET_SECONDS)
        rows = delivery_rows(server, hook_id=hook["id"])
        assert sorted(r["post_depth"] for r in rows) == [0, 1]
        assert len(webhook_posts(scene.poster, scene.channel["id"])) == 2


def test_a_users_post_claiming_to_be_a_webhook_fires_hooks_at_depth_zero(
    scene: Scene, server: ServerThread, receiver: Receiver
) -> None:
    """A person's post with from_webhook in its props fires a hook that did not opt in, as in
    Mattermost, and starts a chain at depth 0 (the claim is not kept)."""
    receiver.reply = None
    hook = channel_hook(scene, receiver, content_type="application/json")
    post = send(scene.poster, scene.channel, "hi", props={"from_webhook": "true"})
    (row,) = finished_deliveries(server, hook_id=hook["id"])
    assert row["status"] == "succeeded"
    assert row["post_depth"] == 0
    assert json.loads(receiver.requests[0].body)["post_id"] == post["id"]
    assert "from_webhook" not in post["props"]
    assert post_depths(server, scene.channel["id"]) == {post["id"]: 0}


def test_replies_fire_nothing_when_no_hook_opted_in(scene: Scene, server: ServerThread) -> None:
    """Without trigger_on_bot_posts, a hook answering every post answers only the person's."""
    with running_receiver() as bot:
        bot.reply = {"text": "me again"}
        hook = channel_hook(scene, bot)
        send(scene.poster, scene.channel, "hello")
        wait_webhook_posts(scene.poster, scene.channel["id"])
        time.sleep(QUIET_SECONDS)
        assert len(delivery_rows(server, hook_id=hook["id"])) == 1
        assert len(bot.requests) == 1
