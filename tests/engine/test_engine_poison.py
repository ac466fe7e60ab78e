"""A poison value in one reply fails (or is cleaned in) its own delivery, never the batch.

On PostgreSQL a NUL byte or an over-long string cannot be stored; before the fix one such reply
made the whole write-back fail, over and over, and the healthy hooks beside it never got their
replies posted.
"""

from collections.abc import Iterator
from typing import Any

import pytest

from hooks.hooks_support import attempt_rows, delivery_rows, make_hook, send, webhook_posts
from support import Api, Factory, Receiver, ServerThread, wait_until

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
