"""A poison value in one reply fails (or is cleaned in) its own delivery, never the batch.

On PostgreSQL a NUL byte or an over-long string cannot be stored; before the fix one such reply
made the whole write-back fail, over and over, and the healthy hooks beside it never got their
replies posted.
"""

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from hooks.hooks_support import attempt_rows, delivery_rows, make_hook, send, webhook_posts
from support import (
    Api,
    Factory,
    Receiver,
    ServerThread,
    fresh_database,
    seed_channel_hook,
    wait_until,
)
from tidings.config import Settings
from tidings.domain.deliveries import Attempt, DeliveryStatus
from tidings.domain.posts import Post
from tidings.ids import new_id
from tidings.services import posts as post_service
from tidings.services.runtime import Runtime
from tidings.store.database import Database
from tidings.store.schema import deliveries, delivery_attempts, posts
from tidings.webhooks import queue
from tidings.webhooks.worker import STOP_GRACE_SECONDS, Worker

pytestmark = pytest.mark.db


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {name: Receiver() for name in ("healthy", "nul", "long_type", "nul_body")}
    made["healthy"].reply = {"text": "all good"}
    made["nul"].reply = {
        "text": "a\u0000b",
        "props": {"k\u0000ey": ["v\u0000alue"]},
        "attachments": [{"text": "at\u0000tached", "title": "t\u0000"}],
        "username": "ro\u0000bot",
    }
    made["long_type"].reply = {"text": "typed", "type": "custom_" + "x" * 200}
    made["nul_body"].reply = b"\x00\x00 not json \x00"
    made["nul_body"].headers = {"X-Odd": "yes"}
    yield made
    for r in made.values():
        r.close()


def _hook_scene(
    admin: Api, factory: Factory, receivers: dict[str, Receiver]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    team = factory.team()
    channel = factory.channel(team)
    hooks = {
        name: make_hook(admin, team, [r.url], channel_id=channel["id"], display_name=name)
        for name, r in receivers.items()
    }
    return channel, hooks


def _finished(server: ServerThread, post_id: str, count: int) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        rows = delivery_rows(server, post_id=post_id)
        done = [r for r in rows if r["status"] in ("succeeded", "failed")]
        return rows if len(done) >= count else None

    result: list[dict[str, Any]] = wait_until(check, timeout=15, interval=0.05)
    return result


def test_poison_replies_do_not_wedge_the_batch(
    webhooks_on: Api, factory: Factory, server: ServerThread, receivers: dict[str, Receiver]
) -> None:
    """NUL bytes are stripped, an over-long type is refused, and the healthy reply is posted."""
    admin = webhooks_on
    channel, hooks = _hook_scene(admin, factory, receivers)
    post = send(admin, channel, "ring ring")
    rows = _finished(server, post["id"], count=len(hooks))
    by_hook = {r["hook_id"]: r for r in rows}
    assert all(r["status"] == "succeeded" for r in rows), rows
    posts = wait_until(lambda: (p := webhook_posts(admin, channel["id"])) and len(p) >= 2 and p)
    messages = sorted(p["message"] for p in posts)
    assert messages == ["ab", "all good"]
    cleaned = next(p for p in posts if p["message"] == "ab")
    assert cleaned["props"]["key"] == ["value"]
    assert cleaned["props"]["attachments"][0]["text"] == "attached"
    typed = by_hook[hooks["long_type"]["id"]]
    assert typed["last_error_kind"] == "bad_reply"
    assert "model.post.is_valid.type.app_error" in typed["last_error"]
    odd = attempt_rows(server, by_hook[hooks["nul_body"]["id"]]["id"])
    assert len(odd) == 1
    assert "\x00" not in odd[0]["response_excerpt"]
    assert "not json" in odd[0]["response_excerpt"]
    # Each receiver was asked once: nothing was re-sent because a write-back failed.
    assert [len(r.requests) for r in receivers.values()] == [1, 1, 1, 1]


def test_the_next_batch_after_a_poison_reply_still_flows(
    webhooks_on: Api, factory: Factory, server: ServerThread, receivers: dict[str, Receiver]
) -> None:
    """After a poison reply, later posts keep getting their replies (no stuck flusher)."""
    admin = webhooks_on
    channel, hooks = _hook_scene(admin, factory, receivers)
    for i in range(3):
        post = send(admin, channel, f"round {i}")
        _finished(server, post["id"], count=len(hooks))
    healthy = [p for p in webhook_posts(admin, channel["id"]) if p["message"] == "all good"]
    assert len(healthy) == 3


def test_a_batch_that_cannot_be_written_fails_only_its_bad_row() -> None:
    """If a row still fails the write, the batch is split: that row is recorded failed, the rest commit."""

    async def work(url: str) -> None:
        rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
        try:
            seeded = await seed_channel_hook(rt, "boss", "http://127.0.0.1:9/hook")
            triggers = [
                await post_service.create_post(rt, seeded.admin, seeded.channel.id, f"go {i}")
                for i in range(5)
            ]
            now = rt.clock.now_ms()
            claimed = await queue.claim(rt.db, 10, 60_000, now)
            assert len(claimed) == 5
            results = []
            for i, delivery in enumerate(sorted(claimed, key=lambda d: d.post_id)):
                # Row 3's reply reuses an existing post's id: no sanitising can save that write.
                post_id = triggers[0].id if i == 3 else new_id()
                reply = Post(
                    id=post_id,
                    create_at=now,
                    update_at=now,
                    edit_at=0,
                    delete_at=0,
                    user_id=seeded.admin.id,
                    channel_id=seeded.channel.id,
                    root_id="",
                    message=f"reply {i}",
                    props={"from_webhook": "true"},
                )
                attempt = Attempt(
                    id=new_id(),
                    delivery_id=delivery.id,
                    number=1,
                    started_at=now,
                    duration_ms=3,
                    status_code=200,
                    error_kind="",
                    error_message="",
                    request_headers={},
                    response_headers={"X-A": "b"},
                    response_excerpt='{"text":"reply"}',
                )
                results.append(
                    queue.Finish(
                        delivery=delivery,
                        status=DeliveryStatus.SUCCEEDED,
                        attempt=attempt,
                        reply_posts=(reply,),
                    )
                )
            inserted, written = await queue.finish_isolating(rt.db, results, now)
            assert [len(posts) for posts in inserted] == [1, 1, 1, 0, 1]
            assert written[3].status == DeliveryStatus.FAILED
            async with rt.db.transaction() as conn:
                rows = {r.id: r for r in (await conn.execute(select(deliveries))).all()}
                attempts = {
                    r.delivery_id: r for r in (await conn.execute(select(delivery_attempts))).all()
                }
                replies = (
                    (
                        await conn.execute(
                            select(posts.c.message).where(posts.c.message.like("reply%"))
                        )
                    )
                    .scalars()
                    .all()
                )
            bad = results[3].delivery.id
            assert rows[bad].status == "failed"
            assert rows[bad].last_error_kind == "unstorable"
            assert attempts[bad].error_kind == "unstorable"
            assert "could not be stored" in attempts[bad].error_message
            others = [r.delivery.id for i, r in enumerate(results) if i != 3]
            assert all(rows[d].status == "succeeded" and rows[d].reply_posted for d in others)
            assert all(attempts[d].response_headers == {"X-A": "b"} for d in others)
            assert sorted(replies) == ["reply 0", "reply 1", "reply 2", "reply 4"]
        finally:
            await rt.db.dispose()

    with fresh_database() as url:
        asyncio.run(work(url))


def test_stopping_finishes_while_results_cannot_be_stored(receiver: Receiver) -> None:
    """With every write-back failing (the attempts table is gone), stop() still returns."""

    async def work(url: str) -> None:
        rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
        try:
            seeded = await seed_channel_hook(rt, "boss", receiver.url)
            await post_service.create_post(rt, seeded.admin, seeded.channel.id, "go")
            async with rt.db.transaction() as conn:
                await conn.execute(text("DROP TABLE delivery_attempts"))
            worker = Worker(rt)
            await worker.start()
            await asyncio.to_thread(receiver.wait_for, 1)
            await asyncio.sleep(1.0)  # the flusher fails, backs off and tries again
            started = time.monotonic()
            await asyncio.wait_for(worker.stop(), 30)
            assert time.monotonic() - started < STOP_GRACE_SECONDS + 5
            async with rt.db.transaction() as conn:
                status = (await conn.execute(select(deliveries.c.status))).scalar_one()
            assert status == "in_flight"  # not lost: retried once its lease expires
            assert len(receiver.requests) == 1  # and not re-sent in a loop meanwhile
        finally:
            await rt.db.dispose()

    with fresh_database() as url:
        asyncio.run(work(url))
