"""Bulk redelivery after an outage, with a real receiver that fails and then recovers: exactly
the failed deliveries since the given time go again, with their own ids, one new attempt each,
a bounded number per call; by the API, by ``tidings hook redeliver`` and by the rights' rules."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hooks_support import (
    Scene,
    attempt_rows,
    delivery_rows,
    error_of,
    finished_deliveries,
    make_hook,
    send,
    service_settings,
)

from support import Api, Factory, Receiver, ServerThread, wait_until
from tidings.services import deliveries as delivery_service
from tidings.store import hooks as hook_store

pytestmark = [pytest.mark.db, pytest.mark.usefixtures("no_retries")]

TIDINGS = Path(sys.executable).parent / "tidings"


def deliver(server: ServerThread, scene: Scene, message: str, status: str) -> dict[str, Any]:
    """Post ``message`` and wait until its one delivery finished with ``status``."""
    post = send(scene.poster, scene.channel, message)
    (row,) = finished_deliveries(server, post_id=post["id"])
    assert row["status"] == status, row
    return row


def redeliver(api: Api, hook_id: str, since: int) -> Any:
    return api.post(f"/hooks/outgoing/{hook_id}/redeliver", {"since": since, "status": "failed"})


def settled(server: ServerThread, delivery_ids: list[str]) -> list[dict[str, Any]]:
    """The deliveries once none of them is pending or in flight any more."""

    def check() -> list[dict[str, Any]] | None:
        rows = [delivery_rows(server, id=i)[0] for i in delivery_ids]
        return rows if all(r["status"] in ("succeeded", "failed") for r in rows) else None

    result: list[dict[str, Any]] = wait_until(check, timeout=10, interval=0.05)
    return result


def test_exactly_the_failed_deliveries_since_go_again(
    server: ServerThread, scene: Scene, receiver: Receiver
) -> None:
    """Failed since ``since`` → sent again with the same ids and bodies, one new attempt each;
    the older failure and the success in between are left alone."""
    hook = make_hook(scene.owner, scene.team, [receiver.url], channel_id=scene.channel["id"])
    receiver.status = 500
    older = deliver(server, scene, "before the outage window", "failed")
    time.sleep(0.01)  # create_at is in ms: keep the window's edge strictly after it
    receiver.status = 200
    succeeded = deliver(server, scene, "fine", "succeeded")
    receiver.status = 500
    lost = [deliver(server, scene, f"lost {i}", "failed") for i in range(2)]
    assert older["create_at"] < succeeded["create_at"]
    receiver.status = 200  # the receiver is back
    seen = len(receiver.requests)

    assert redeliver(scene.owner, hook["id"], succeeded["create_at"]) == {
        "count": 2,
        "more": False,
    }
    again = settled(server, [d["id"] for d in lost])
    assert [d["status"] for d in again] == ["succeeded", "succeeded"]
    resent = receiver.wait_for(seen + 2)[seen:]
    assert sorted(r.headers["webhook-id"] for r in resent) == sorted(d["id"] for d in lost)
    by_id = {d["id"]: d for d in lost}
    for request in resent:
        assert request.body == by_id[request.headers["webhook-id"]]["body"]
    for delivery in lost:
        attempts = attempt_rows(server, delivery["id"])
        assert [a["status_code"] for a in attempts] == [500, 200]
    for untouched in (older, succeeded):
        assert delivery_rows(server, id=untouched["id"])[0]["status"] == untouched["status"]
        assert len(attempt_rows(server, untouched["id"])) == 1
    time.sleep(0.3)
    assert len(receiver.requests) == seen + 2, "nothing else was sent"
    assert redeliver(scene.owner, hook["id"], succeeded["create_at"]) == {"count": 0, "more": False}


def test_a_call_is_bounded_and_says_more_remain(
    server: ServerThread,
    scene: Scene,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over the bound, the oldest go first and ``more`` asks for another call, which takes the rest."""
    monkeypatch.setattr(delivery_service, "BULK_REDELIVER_LIMIT", 2)
    hook = make_hook(scene.owner, scene.team, [receiver.url], channel_id=scene.channel["id"])
    receiver.status = 500
    lost = [deliver(server, scene, f"lost {i}", "failed") for i in range(3)]
    receiver.status = 200
    seen = len(receiver.requests)

    assert redeliver(scene.owner, hook["id"], 0) == {"count": 2, "more": True}
    settled(server, [d["id"] for d in lost[:2]])
    first = receiver.wait_for(seen + 2)[seen:]
    assert sorted(r.headers["webhook-id"] for r in first) == sorted(d["id"] for d in lost[:2])
    assert delivery_rows(server, id=lost[2]["id"])[0]["status"] == "failed"

    assert redeliver(scene.owner, hook["id"], 0) == {"count": 1, "more": False}
    settled(server, [lost[2]["id"]])
    assert receiver.wait_for(seen + 3)[seen + 2].headers["webhook-id"] == lost[2]["id"]
    assert redeliver(scene.owner, hook["id"], 0) == {"count": 0, "more": False}


def test_rights_are_the_single_redelivers(
    server: ServerThread, scene: Scene, factory: Factory, receiver: Receiver, admin: Api
) -> None:
    """Another member's hook → 403 and nothing is sent; its owner and a team admin may; an
    unknown hook is 404 and a disabled one 400."""
    other = factory.user()
    factory.join(scene.team, other)
    with service_settings(admin, EnableMemberOutgoingWebhooks=True):
        hook = make_hook(scene.poster, scene.team, [receiver.url], channel_id=scene.channel["id"])
        receiver.status = 500
        deliver(server, scene, "lost", "failed")
        receiver.status = 200
        seen = len(receiver.requests)
        path = f"/hooks/outgoing/{hook['id']}/redeliver"
        body = {"since": 0, "status": "failed"}
        assert error_of(other, "POST", path, body) == (403, "api.context.permissions.app_error")
        assert delivery_rows(server, hook_id=hook["id"])[0]["status"] == "failed"
        assert redeliver(scene.owner, hook["id"], 0) == {"count": 1, "more": False}
        receiver.wait_for(seen + 1)
        assert redeliver(scene.poster, hook["id"], 0)["count"] == 0
    unknown = f"/hooks/outgoing/{'x' * 26}/redeliver"
    assert error_of(admin, "POST", unknown, body) == (404, "app.webhooks.get_outgoing.app_error")
    server.run(_disable(server, hook["id"]))
    assert error_of(admin, "POST", path, body) == (400, "api.webhooks.redeliver.disabled.app_error")


async def _disable(server: ServerThread, hook_id: str) -> None:
    await server.runtime.db.write(lambda conn: hook_store.disable_hook(conn, hook_id, "test", 1))


BAD_BODIES = [
    pytest.param({"status": "failed"}, id="no-since"),
    pytest.param({"since": -1, "status": "failed"}, id="negative"),
    pytest.param({"since": 1.5, "status": "failed"}, id="fraction"),
    pytest.param({"since": "1", "status": "failed"}, id="string"),
    pytest.param({"since": True, "status": "failed"}, id="boolean"),
    pytest.param({"since": 2**63, "status": "failed"}, id="over-int64"),
    pytest.param({"since": 0}, id="no-status"),
    pytest.param({"since": 0, "status": "succeeded"}, id="succeeded"),
    pytest.param({"since": 0, "status": "FAILED"}, id="case"),
    pytest.param([0, "failed"], id="not-an-object"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_a_bad_body_is_400_in_mattermosts_shape(scene: Scene, body: Any) -> None:
    """since must be a non-negative integer and status "failed": else 400 invalid_body_param."""
    hook = make_hook(scene.owner, scene.team, ["http://127.0.0.1:9/x"], trigger_words=["bad"])
    response = scene.owner.request("POST", f"/hooks/outgoing/{hook['id']}/redeliver", body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["id"] == "api.context.invalid_body_param.app_error"
    assert error["status_code"] == 400
    assert {"message", "detailed_error", "request_id"} <= error.keys()


def test_the_cli_redelivers_since_a_span(
    server: ServerThread, scene: Scene, receiver: Receiver, database_url: str
) -> None:
    """``tidings hook redeliver HOOK --since 1h`` queues the failed ones and prints the count;
    ``--json`` gives the API's answer; a WHEN it cannot read exits 2."""
    hook = make_hook(scene.owner, scene.team, [receiver.url], channel_id=scene.channel["id"])
    receiver.status = 500
    lost = [deliver(server, scene, f"lost {i}", "failed") for i in range(2)]
    receiver.status = 200
    seen = len(receiver.requests)
    owner = scene.owner.user["username"]

    printed = _tidings(
        database_url, "hook", "redeliver", hook["id"], "--since", "1h", "--as", owner
    )
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == "queued 2 failed deliveries again"
    settled(server, [d["id"] for d in lost])
    resent = receiver.wait_for(seen + 2)[seen:]
    assert sorted(r.headers["webhook-id"] for r in resent) == sorted(d["id"] for d in lost)

    receiver.status = 500
    deliver(server, scene, "lost again", "failed")
    as_json = _tidings(
        database_url, "hook", "redeliver", hook["id"], "--since", "2026-01-01T00:00:00Z", "--json"
    )
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {"count": 1, "more": False}

    unreadable = _tidings(database_url, "hook", "redeliver", hook["id"], "--since", "yesterday")
    assert unreadable.returncode == 2
    assert "--since" in unreadable.stderr
    naive = _tidings(database_url, "hook", "redeliver", hook["id"], "--since", "2026-12-01T10:00")
    assert naive.returncode == 2
    assert "time zone" in naive.stderr


def _tidings(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TIDINGS_DATABASE_URL": database_url, "NO_COLOR": "1"}
    return subprocess.run(
        [str(TIDINGS), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
