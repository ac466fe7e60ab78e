"""A ``tidings worker`` process killed mid-delivery loses nothing: once its lease runs out another
worker sends the same delivery again (same webhook-id), and the reply is posted exactly once."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hooks_support import delivery_rows, finished_deliveries, webhook_posts

from support import Api, Receiver, ServerThread, fresh_database, start_server

pytestmark = pytest.mark.db

TIDINGS = Path(sys.executable).parent / "tidings"


@pytest.fixture
def quiet_server() -> Iterator[ServerThread]:
    """A server on a database of its own, without an in-process worker."""
    with fresh_database() as url:
        server = start_server(url, run_worker=False)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def hanging() -> Iterator[Receiver]:
    receiver = Receiver(cancel_on_disconnect=True)
    yield receiver
    receiver.close()


def start_worker(server: ServerThread, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TIDINGS_DATABASE_URL": server.settings.effective_database_url,
        "TIDINGS_WORKER_LEASE_SECONDS": "2",
        "TIDINGS_WORKER_POLL_INTERVAL_SECONDS": "0.05",
    }
    with log.open("ab") as sink:
        return subprocess.Popen(
            [str(TIDINGS), "worker"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )


def test_a_killed_worker_hands_its_delivery_to_the_next(
    quiet_server: ServerThread, hanging: Receiver, tmp_path: Path
) -> None:
    """SIGKILL while the request is in flight: a second worker redelivers; one reply post."""
    anonymous = Api(quiet_server.url)
    anonymous.post(
        "/users", {"username": "boss", "email": "boss@example.test", "password": "correct-horse-9"}
    )
    admin = anonymous.login("boss")
    admin.put(
        "/config/patch", {"ServiceSettings": {"AllowedUntrustedInternalConnections": "127.0.0.1"}}
    )
    team = admin.post("/teams", {"name": "crashers", "display_name": "Crash", "type": "O"})
    channel = admin.post(
        "/channels", {"team_id": team["id"], "name": "builds", "display_name": "B", "type": "O"}
    )
    admin.post(
        "/hooks/outgoing",
        {"team_id": team["id"], "channel_id": channel["id"], "callback_urls": [hanging.url]},
        expect=201,
    )
    hanging.delay_seconds = 30
    hanging.reply = {"text": "built"}
    post = admin.post("/posts", {"channel_id": channel["id"], "message": "#build"}, expect=201)
    log = tmp_path / "workers.log"

    first = start_worker(quiet_server, log)
    try:
        hanging.wait_for(1, timeout=20)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    (cut_off,) = delivery_rows(quiet_server, post_id=post["id"])
    assert cut_off["status"] == "in_flight"
    assert webhook_posts(admin, channel["id"]) == []

    hanging.delay_seconds = 0
    second = start_worker(quiet_server, log)
    try:
        (delivery,) = finished_deliveries(quiet_server, timeout=20, post_id=post["id"])
        assert delivery["status"] == "succeeded", log.read_text()[-2000:]
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(10)
        finally:
            second.kill()
    first_try, second_try = hanging.requests
    assert first_try.headers["webhook-id"] == second_try.headers["webhook-id"] == delivery["id"]
    assert first_try.body == second_try.body
    (reply,) = webhook_posts(admin, channel["id"])
    assert reply["message"] == "built"
    assert len(hanging.requests) == 2
