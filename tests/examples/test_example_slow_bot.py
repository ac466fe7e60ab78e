"""The slow-bot example answers empty at once and posts its reply later through response_url."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import Api, Factory, free_port, wait_until
from tidings.webhooks.signing import signature_headers

pytestmark = pytest.mark.db

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "slow_bot.py"
DELAY_SECONDS = 3


def start_bot(port: int, token: str, secret: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PORT": str(port),
        "TIDINGS_TOKEN": token,
        "TIDINGS_SIGNING_SECRET": secret,
        "SLOW_BOT_DELAY_SECONDS": str(DELAY_SECONDS),
    }
    process = subprocess.Popen([sys.executable, str(EXAMPLE)], env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.TransportError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)


@pytest.fixture
def slow_hook(factory: Factory, webhooks_on: Api) -> Iterator[tuple[dict[str, Any], Api, Any]]:
    """A channel, a poster in it, and an extended-payload hook whose receiver is the example."""
    owner = factory.user()
    team = factory.team(owner)
    channel = factory.channel(team, owner)
    port = free_port()
    hook = owner.post(
        "/hooks/outgoing",
        {
            "team_id": team["id"],
            "channel_id": channel["id"],
            "callback_urls": [f"http://127.0.0.1:{port}/"],
            "display_name": "Slow bot",
            "extended_payload": True,
        },
        expect=201,
    )
    bot = start_bot(port, hook["token"], hook["signing_secret"])
    yield channel, owner, hook
    bot.kill()
    bot.wait()


def test_replies_in_the_thread_a_few_seconds_later(
    slow_hook: tuple[dict[str, Any], Api, Any],
) -> None:
    """The delivery succeeds with no reply; the reply comes later, in the thread, as the hook's."""
    channel, owner, hook = slow_hook
    post = owner.post("/posts", {"channel_id": channel["id"], "message": "report"}, expect=201)
    sent_at = time.monotonic()

    def delivered() -> list[Any]:
        found = owner.get(f"/hooks/outgoing/{hook['id']}/deliveries")
        return [d for d in found if d["status"] == "succeeded"]

    (delivery,) = wait_until(delivered)
    assert not delivery["reply_posted"]

    def thread_reply() -> dict[str, Any] | None:
        thread = owner.get(f"/posts/{post['id']}/thread")
        replies = [p for p in thread["posts"].values() if p["id"] != post["id"]]
        return replies[0] if replies else None

    reply = wait_until(thread_reply, timeout=DELAY_SECONDS + 10)
    assert time.monotonic() - sent_at >= DELAY_SECONDS - 0.5
    assert reply["message"] == "Done: 'report' took 3 s."
    assert reply["props"]["from_webhook"] == "true"
    assert reply["user_id"] == owner.user["id"]
    detail = owner.get(f"/hooks/outgoing/{hook['id']}/deliveries/{delivery['id']}")
    assert detail["response_uses"] == 1


def test_refuses_a_bad_signature() -> None:
    """The example checks the signature before anything else."""
    port = free_port()
    bot = start_bot(port, "tok", "whsec_" + "A" * 43 + "=")
    try:
        body = b'{"token":"tok","text":"x","response_url":"http://127.0.0.1:9/"}'
        headers = signature_headers("whsec_" + "B" * 43 + "=", "msg_1", int(time.time()), body)
        headers["Content-Type"] = "application/json"
        answer = httpx.post(f"http://127.0.0.1:{port}/", content=body, headers=headers, timeout=5)
        assert answer.status_code == 401
    finally:
        bot.kill()
        bot.wait()
