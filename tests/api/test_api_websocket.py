"""``/api/v4/websocket`` spoken to directly: both ways to authenticate, ``hello`` and sequence
numbers, the ``posted`` event's fields, privacy of private channels, and client pings."""

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import update
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from support import Api, Factory, ServerThread
from tidings.store.schema import sessions

pytestmark = pytest.mark.db

TIMEOUT = 5.0


def _receive(ws: ClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    message = json.loads(ws.recv(timeout=timeout))
    assert isinstance(message, dict)
    return message


def _next_event(ws: ClientConnection, name: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The next event called ``name``, skipping others (e.g. membership events)."""
    while True:
        message = _receive(ws, timeout)
        if message.get("event") == name:
            return message


@contextmanager
def _socket(url: str, token: str | None = None, **headers: str) -> Iterator[ClientConnection]:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with connect(url, additional_headers=headers, open_timeout=TIMEOUT) as ws:
        yield ws


@contextmanager
def _challenged(url: str, token: str) -> Iterator[ClientConnection]:
    """Connected and authenticated by the ``authentication_challenge`` message."""
    with _socket(url) as ws:
        ws.send(
            json.dumps({"seq": 1, "action": "authentication_challenge", "data": {"token": token}})
        )
        assert _receive(ws) == {"status": "OK", "seq_reply": 1}
        yield ws


def _assert_hello(message: dict[str, Any], user_id: str) -> None:
    assert message["event"] == "hello"
    assert message["seq"] == 0
    assert message["data"]["server_version"]
    assert message["broadcast"]["user_id"] == user_id


@pytest.fixture
def channel(factory: Factory, team: dict[str, Any], member: Api) -> dict[str, Any]:
    created = factory.channel(team)
    factory.admin.post(f"/channels/{created['id']}/members", {"user_id": member.user["id"]})
    return created


def test_bearer_on_the_upgrade_authenticates(ws_url: str, member: Api) -> None:
    """A bearer token on the upgrade request is enough: ``hello`` arrives first, with seq 0."""
    with _socket(ws_url, member.token) as ws:
        _assert_hello(_receive(ws), member.user["id"])


def test_the_session_cookie_authenticates(ws_url: str, member: Api) -> None:
    """The web client's session cookie on the upgrade request authenticates too."""
    with _socket(ws_url, Cookie=f"MMAUTHTOKEN={member.token}") as ws:
        _assert_hello(_receive(ws), member.user["id"])


def test_the_authentication_challenge_authenticates(ws_url: str, member: Api) -> None:
    """Without a token on the upgrade, the first message authenticates and is answered OK."""
    with _challenged(ws_url, member.token) as ws:
        _assert_hello(_receive(ws), member.user["id"])


@pytest.mark.parametrize(
    "first",
    [
        {"seq": 1, "action": "authentication_challenge", "data": {"token": "wrong"}},
        {"seq": 1, "action": "authentication_challenge", "data": "not an object"},
        {"seq": 1, "action": "user_typing", "data": {}},
        ["not", "an", "object"],
        "not json",
        b"\x00binary",
    ],
)
def test_a_bad_first_message_closes_the_socket(ws_url: str, first: Any) -> None:
    """An unauthenticated socket whose first message is not a valid challenge is closed (1008)."""
    with _socket(ws_url) as ws:
        ws.send(first if isinstance(first, str | bytes) else json.dumps(first))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008


def test_a_bad_bearer_is_refused(ws_url: str) -> None:
    """A wrong token on the upgrade request gets no events: the socket is closed (1008)."""
    with _socket(ws_url, "not-a-token") as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


def test_posted_carries_mattermost_fields_and_numbered_seqs(
    ws_url: str, admin: Api, member: Api, team: dict[str, Any], channel: dict[str, Any]
) -> None:
    """``posted`` carries the Post as a JSON string and Mattermost's fields; seqs run 1, 2, …"""
    with _socket(ws_url, member.token) as ws:
        _assert_hello(_receive(ws), member.user["id"])
        first = admin.post(
            "/posts", {"channel_id": channel["id"], "message": f"hi @{member.user['username']}"}
        )
        second = admin.post("/posts", {"channel_id": channel["id"], "message": "again"})
        events = [_next_event(ws, "posted"), _next_event(ws, "posted")]
    assert [e["seq"] for e in events] == [1, 2]
    data = events[0]["data"]
    assert isinstance(data["post"], str)
    post = json.loads(data["post"])
    assert post["id"] == first["id"]
    assert post["message"] == first["message"]
    assert post["user_id"] == admin.user["id"]
    assert json.loads(events[1]["data"]["post"])["id"] == second["id"]
    assert data["channel_display_name"] == channel["display_name"]
    assert data["channel_name"] == channel["name"]
    assert data["channel_type"] == "O"
    assert data["sender_name"] == f"@{admin.user['username']}"
    assert data["team_id"] == team["id"]
    assert json.loads(data["mentions"]) == [member.user["id"]]
    assert data["set_online"] is True
    assert events[0]["broadcast"]["channel_id"] == channel["id"]


def test_edits_and_deletes_are_events_too(
    ws_url: str, admin: Api, member: Api, channel: dict[str, Any]
) -> None:
    """``post_edited`` and ``post_deleted`` follow with the post as a JSON string."""
    post = admin.post("/posts", {"channel_id": channel["id"], "message": "draft"})
    with _socket(ws_url, member.token) as ws:
        _receive(ws)
        admin.put(f"/posts/{post['id']}/patch", {"message": "final"})
        edited = _next_event(ws, "post_edited")
        admin.delete(f"/posts/{post['id']}")
        deleted = _next_event(ws, "post_deleted")
    assert json.loads(edited["data"]["post"])["message"] == "final"
    assert json.loads(deleted["data"]["post"])["id"] == post["id"]
    assert (edited["seq"], deleted["seq"]) == (1, 2)


def test_non_members_get_no_events_of_a_private_channel(
    ws_url: str, factory: Factory, team: dict[str, Any], member: Api
) -> None:
    """A team member outside a private channel hears nothing of it; a public post still arrives."""
    owner = factory.user()
    factory.join(team, owner)
    secret = factory.channel(team, owner=owner, private=True)
    public = factory.channel(team, owner=owner)
    member.post(f"/channels/{public['id']}/members", {"user_id": member.user["id"]})
    with _socket(ws_url, member.token) as ws:
        _receive(ws)
        owner.post("/posts", {"channel_id": secret["id"], "message": "secret"})
        marker = owner.post("/posts", {"channel_id": public["id"], "message": "public"})
        event = _next_event(ws, "posted")
    assert json.loads(event["data"]["post"])["id"] == marker["id"]
    assert event["seq"] == 1


def test_client_pings_get_a_seq_reply(ws_url: str, member: Api) -> None:
    """A client ``ping`` (or other action) is answered with its ``seq_reply``; junk is ignored."""
    with _socket(ws_url, member.token) as ws:
        _receive(ws)
        ws.send("not json")
        ws.send(b"\x01\x02")
        ws.send(json.dumps({"seq": 7, "action": "ping"}))
        reply = _receive(ws)
        assert reply["seq_reply"] == 7
        assert reply["status"] == "OK"
        assert reply["data"]["text"] == "pong"
        ws.send(json.dumps({"seq": 8, "action": "user_typing", "data": {"channel_id": ""}}))
        assert _receive(ws)["seq_reply"] == 8
        ws.ping().wait(TIMEOUT)  # protocol-level ping/pong too


def test_each_connection_has_its_own_sequence(
    ws_url: str, admin: Api, member: Api, channel: dict[str, Any]
) -> None:
    """Two connections of one user both get the event, each numbering from its own hello."""
    with _socket(ws_url, member.token) as one:
        _receive(one)
        admin.post("/posts", {"channel_id": channel["id"], "message": "one"})
        assert _next_event(one, "posted")["seq"] == 1
        with _challenged(ws_url, member.token) as two:
            _receive(two)
            admin.post("/posts", {"channel_id": channel["id"], "message": "two"})
            assert _next_event(two, "posted")["seq"] == 1
            assert _next_event(one, "posted")["seq"] == 2


def _refused_upgrade(url: str, **headers: str) -> int:
    """The HTTP status of an upgrade the server refuses."""
    with pytest.raises(InvalidStatus) as refused, connect(url, additional_headers=headers):
        pass
    return refused.value.response.status_code


@pytest.fixture
def cors_settings(admin: Api) -> Iterator[Api]:
    """Put SiteURL and AllowCorsFrom back after the test."""
    yield admin
    admin.put("/config/patch", {"ServiceSettings": {"SiteURL": "", "AllowCorsFrom": ""}})


def test_a_cookie_upgrade_from_another_origin_is_refused(ws_url: str, member: Api) -> None:
    """Another site's page cannot open a socket with the visitor's session cookie (403)."""
    cookie = f"MMAUTHTOKEN={member.token}"
    assert _refused_upgrade(ws_url, Cookie=cookie, Origin="http://evil.example.test") == 403
    assert _refused_upgrade(ws_url, Cookie=cookie, Origin="null") == 403


def test_a_cookie_upgrade_from_the_sites_own_origin_is_accepted(
    ws_url: str, server: ServerThread, member: Api, cors_settings: Api
) -> None:
    """Without SiteURL the site's own origin is the request's Host, over http or https (the
    web client's page is https behind a proxy that terminates TLS and forwards plain ws); with
    SiteURL, exactly SiteURL's."""
    cookie = f"MMAUTHTOKEN={member.token}"
    own = f"http://{server.settings.listen}"
    with _socket(ws_url, Cookie=cookie, Origin=own) as ws:
        _assert_hello(_receive(ws), member.user["id"])
    with _socket(ws_url, Cookie=cookie, Origin=f"https://{server.settings.listen}") as ws:
        _assert_hello(_receive(ws), member.user["id"])
    assert _refused_upgrade(ws_url, Cookie=cookie, Origin=f"https://{server.settings.host}") == 403
    cors_settings.put(
        "/config/patch", {"ServiceSettings": {"SiteURL": "https://chat.example.test/"}}
    )
    with _socket(ws_url, Cookie=cookie, Origin="https://CHAT.example.test:443") as ws:
        _assert_hello(_receive(ws), member.user["id"])
    assert _refused_upgrade(ws_url, Cookie=cookie, Origin=own) == 403
    assert _refused_upgrade(ws_url, Cookie=cookie, Origin="http://chat.example.test") == 403


def test_an_allow_listed_origin_may_use_the_cookie(
    ws_url: str, member: Api, cors_settings: Api
) -> None:
    """Origins in ServiceSettings.AllowCorsFrom (space-separated) are accepted too."""
    cookie = f"MMAUTHTOKEN={member.token}"
    allowed = "https://one.example.test http://two.example.test:8080"
    cors_settings.put("/config/patch", {"ServiceSettings": {"AllowCorsFrom": allowed}})
    with _socket(ws_url, Cookie=cookie, Origin="http://two.example.test:8080") as ws:
        _assert_hello(_receive(ws), member.user["id"])
    assert _refused_upgrade(ws_url, Cookie=cookie, Origin="http://two.example.test") == 403


def test_token_upgrades_are_not_origin_checked(ws_url: str, member: Api) -> None:
    """A bearer token or an authentication challenge cannot be sent by another site: no
    Origin check applies."""
    with _socket(ws_url, member.token, Origin="http://elsewhere.example.test") as ws:
        _assert_hello(_receive(ws), member.user["id"])


def test_the_socket_closes_when_its_session_expires(
    ws_url: str, server: ServerThread, factory: Factory
) -> None:
    """A session's socket is closed (1008) when the session's time is up, not left streaming."""
    user = factory.user()
    token_hash = hashlib.sha256(user.token.encode()).hexdigest()

    async def expire_soon() -> None:
        statement = (
            update(sessions)
            .where(sessions.c.id == token_hash)
            .values(expires_at=int(time.time() * 1000) + 1000)
        )
        await server.runtime.db.write(lambda conn: conn.execute(statement))

    server.run(expire_soon())
    with _socket(ws_url, user.token) as ws:
        _assert_hello(_receive(ws), user.user["id"])
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=3)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
