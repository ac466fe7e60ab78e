"""Sessions end everywhere at once: a password change ends the user's other sessions, an admin
reset and a deactivation end all of them, logout ends its own; the websockets opened with ended
sessions close within a second, and a deactivated owner's hooks stop firing until reactivation."""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from mattermost_contract import assert_app_error
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from hooks.hooks_support import (
    finished_deliveries,
    form,
    join_channel,
    make_hook,
    send,
    service_settings,
)
from support import PASSWORD, Api, Factory, Receiver, ServerThread

pytestmark = pytest.mark.db

NEW_PASSWORD = "Another-Secret-9!"


@contextmanager
def _socket(ws_url: str, token: str) -> Iterator[ClientConnection]:
    headers = {"Authorization": f"Bearer {token}"}
    with connect(ws_url, additional_headers=headers, open_timeout=5) as ws:
        hello = json.loads(ws.recv(timeout=5))
        assert hello["event"] == "hello"
        yield ws


def _closed_within(ws: ClientConnection, seconds: float) -> int:
    """The close code the server sends within ``seconds`` (skipping any events before it)."""
    deadline = time.monotonic() + seconds
    with pytest.raises(ConnectionClosed) as closed:  # noqa: PT012 — events may come first
        while True:
            ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
    assert time.monotonic() <= deadline + 0.05, "the socket was not closed in time"
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def _still_open(ws: ClientConnection) -> None:
    ws.send(json.dumps({"seq": 7, "action": "ping"}))
    reply = json.loads(ws.recv(timeout=5))
    while "seq_reply" not in reply:
        reply = json.loads(ws.recv(timeout=5))
    assert reply["seq_reply"] == 7


def test_a_password_change_ends_the_other_sessions_but_not_the_current(
    ws_url: str, server: ServerThread, factory: Factory
) -> None:
    """Changing one's own password keeps the session that did it and ends every other one,
    closing their websockets within a second."""
    current = factory.user()
    other = Api(server.url).login(current.user["username"])
    with _socket(ws_url, current.token) as kept, _socket(ws_url, other.token) as ended:
        current.put(
            "/users/me/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        )
        assert _closed_within(ended, 1.0) == 1008
        _still_open(kept)
    assert current.get("/users/me")["id"] == current.user["id"]
    assert_app_error(other.request("GET", "/users/me"), 401)


def test_an_admin_password_reset_ends_every_session(
    ws_url: str, server: ServerThread, admin: Api, factory: Factory
) -> None:
    """A system admin resetting someone's password signs that person out everywhere."""
    user = factory.user()
    second = Api(server.url).login(user.user["username"])
    with _socket(ws_url, user.token) as first_ws, _socket(ws_url, second.token) as second_ws:
        admin.put(f"/users/{user.user['id']}/password", {"new_password": NEW_PASSWORD})
        assert _closed_within(first_ws, 1.0) == 1008
        assert _closed_within(second_ws, 1.0) == 1008
    for api in (user, second):
        assert_app_error(api.request("GET", "/users/me"), 401)
    assert admin.get("/users/me")["id"] == admin.user["id"]


def test_logout_closes_only_its_own_sockets(
    ws_url: str, server: ServerThread, factory: Factory
) -> None:
    """Logging out ends that session and its websocket; the user's other session lives on."""
    user = factory.user()
    other = Api(server.url).login(user.user["username"])
    with _socket(ws_url, user.token) as ended, _socket(ws_url, other.token) as kept:
        user.post("/users/logout")
        assert _closed_within(ended, 1.0) == 1008
        _still_open(kept)
    assert_app_error(user.request("GET", "/users/me"), 401)
    assert other.get("/users/me")["id"] == user.user["id"]


def test_deactivation_closes_sockets_and_stops_the_owners_hooks(
    ws_url: str,
    server: ServerThread,
    admin: Api,
    factory: Factory,
    webhooks_on: Api,
    receiver: Receiver,
) -> None:
    """Deactivating refuses every token of the user, closes their sockets, and their hooks
    stop firing (a real receiver gets nothing); reactivating makes the hooks fire again."""
    owner, poster = factory.user(), factory.user()
    team = factory.team(owner)
    channel = factory.channel(team, owner)
    factory.join(team, poster)
    join_channel(admin, channel, poster)
    make_hook(owner, team, [receiver.url], channel_id=channel["id"], trigger_words=["build"])
    send(poster, channel, "build one")
    receiver.wait_for(1)
    second = Api(server.url).login(owner.user["username"])
    with _socket(ws_url, owner.token) as first_ws, _socket(ws_url, second.token) as second_ws:
        admin.put(f"/users/{owner.user['id']}/active", {"active": False})
        assert _closed_within(first_ws, 1.0) == 1008
        assert _closed_within(second_ws, 1.0) == 1008
    for api in (owner, second):
        assert_app_error(api.request("GET", "/users/me"), 401)
    send(poster, channel, "build two")
    time.sleep(1.0)
    assert len(receiver.requests) == 1
    admin.put(f"/users/{owner.user['id']}/active", {"active": True})
    send(poster, channel, "build three")
    texts = [form(r.body)["text"] for r in receiver.wait_for(2)]
    assert texts == ["build one", "build three"]


def test_deliveries_queued_before_deactivation_are_not_sent(
    server: ServerThread,
    admin: Api,
    factory: Factory,
    webhooks_on: Api,
    receiver: Receiver,
) -> None:
    """A delivery already queued when its hook's owner is deactivated is recorded failed, and
    its retry never reaches the receiver."""
    owner, poster = factory.user(), factory.user()
    team = factory.team(owner)
    channel = factory.channel(team, owner)
    factory.join(team, poster)
    join_channel(admin, channel, poster)
    receiver.status = 503  # the first try fails, so the delivery waits for its retry
    with service_settings(admin, OutgoingWebhookRetryScheduleSeconds=[2]):
        make_hook(owner, team, [receiver.url], channel_id=channel["id"], trigger_words=["deploy"])
        post = send(poster, channel, "deploy now")
        receiver.wait_for(1)
        admin.put(f"/users/{owner.user['id']}/active", {"active": False})
        receiver.status = 200
        rows = finished_deliveries(server, timeout=10, post_id=post["id"])
    assert rows[0]["status"] == "failed"
    assert "owner is deactivated" in rows[0]["last_error"]
    assert len(receiver.requests) == 1
