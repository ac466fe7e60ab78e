"""With PostgreSQL, a reply written by a separate ``tidings worker`` process reaches the
browsers connected to ``tidings serve`` live, as a ``posted`` event, once."""

import json
import os
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from support import (
    Factory,
    Receiver,
    first_admin,
    fresh_database,
    running_tidings,
    start_server,
    wait_until,
)

pytestmark = pytest.mark.db

TIMEOUT = 15.0


def _posted_events(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    """Every ``posted`` event's post that arrives within ``seconds``."""
    found = []
    try:
        while True:
            message = json.loads(ws.recv(timeout=seconds))
            if message.get("event") == "posted":
                found.append({**json.loads(message["data"]["post"]), "_data": message["data"]})
    except TimeoutError:
        return found


def test_a_separate_workers_reply_is_announced_live(receiver: Receiver, tmp_path: Path) -> None:
    if not os.environ.get("TIDINGS_TEST_DATABASE_URL"):
        pytest.skip("cross-process events need PostgreSQL (LISTEN/NOTIFY)")
    with fresh_database() as url:
        server = start_server(url, run_worker=False)
        try:
            admin = first_admin(server)
            factory = Factory(admin)
            channel = factory.channel(factory.team())
            admin.put(
                "/config/patch",
                {"ServiceSettings": {"AllowedUntrustedInternalConnections": "127.0.0.1"}},
            )
            admin.post(
                "/hooks/outgoing",
                {
                    "team_id": channel["team_id"],
                    "channel_id": channel["id"],
                    "callback_urls": [receiver.url],
                    "display_name": "Build bot",
                },
                expect=201,
            )
            receiver.reply = {"text": "deployed", "username": "deploy-bot"}
            ws_url = f"ws://{server.settings.listen}/api/v4/websocket"
            headers = {"Authorization": f"Bearer {admin.token}"}
            with (
                connect(ws_url, additional_headers=headers, open_timeout=TIMEOUT) as ws,
                running_tidings("worker", url, tmp_path / "worker.log"),
            ):
                assert json.loads(ws.recv(timeout=TIMEOUT))["event"] == "hello"
                trigger = admin.post("/posts", {"channel_id": channel["id"], "message": "ship it"})
                wait_until(lambda: receiver.requests, timeout=TIMEOUT)
                events = _posted_events(ws, seconds=3.0)
        finally:
            server.stop()
    replies = [e for e in events if e.get("props", {}).get("from_webhook") == "true"]
    assert [e["id"] for e in events if e["id"] == trigger["id"]] == [trigger["id"]]
    assert len(replies) == 1, events
    (reply,) = replies
    assert reply["message"] == "deployed"
    assert reply["channel_id"] == channel["id"]
    assert reply["_data"]["sender_name"] == "@boss"
