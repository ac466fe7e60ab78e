"""``mattermostdriver`` (the Python client from PyPI) against a real Tidings server: login,
teams, channels, users, posts with paging, typed errors, and its websocket."""

import asyncio
import json
import threading
from typing import Any

import pytest
from mattermostdriver import Driver
from mattermostdriver.exceptions import (
    InvalidOrMissingParameters,
    MethodNotAllowed,
    NoAccessTokenProvided,
    NotEnoughPermissions,
    ResourceNotFound,
)

from support import PASSWORD, Api, Factory, ServerThread

pytestmark = pytest.mark.db


def _driver(server: ServerThread, login_id: str, password: str = PASSWORD) -> Driver:
    return Driver(
        {
            "url": "127.0.0.1",
            "port": server.settings.port,
            "scheme": "http",
            "basepath": "/api/v4",
            "login_id": login_id,
            "password": password,
            "timeout": 1,  # the websocket loop wakes each second, so a disconnect is prompt
            "request_timeout": 10,
        }
    )


def test_a_bad_login_raises_no_access_token(server: ServerThread) -> None:
    """A wrong password is a 401, which the driver raises as NoAccessTokenProvided."""
    with pytest.raises(NoAccessTokenProvided):
        _driver(server, "admin", "not-the-password").login()


def test_the_driver_runs_a_team_end_to_end(server: ServerThread, factory: Factory) -> None:
    """Login, create a team, channel and user, post, and page the posts back with the driver."""
    driver = _driver(server, "admin")
    me = driver.login()
    assert me["username"] == "admin"
    assert driver.client.token

    team = driver.teams.create_team(
        {"name": factory._next("drv"), "display_name": "Driver Team", "type": "O"}
    )
    assert driver.teams.get_team_by_name(team["name"])["id"] == team["id"]
    channel = driver.channels.create_channel(
        {"team_id": team["id"], "name": factory._next("drv"), "display_name": "Driven", "type": "O"}
    )
    assert driver.channels.get_channel_by_name(team["id"], channel["name"])["id"] == channel["id"]
    name = factory._next("drv")
    user = driver.users.create_user(
        {"username": name, "email": f"{name}@example.test", "password": PASSWORD}
    )
    assert driver.users.get_user_by_username(name)["id"] == user["id"]
    driver.teams.add_user_to_team(team["id"], {"team_id": team["id"], "user_id": user["id"]})
    driver.channels.add_user(channel["id"], {"user_id": user["id"]})
    members = driver.channels.get_channel_members(channel["id"])
    assert {m["user_id"] for m in members} == {me["id"], user["id"]}

    ids = [
        driver.posts.create_post({"channel_id": channel["id"], "message": f"post {n}"})["id"]
        for n in range(5)
    ]
    seen: list[str] = []
    for page in range(10):
        batch = driver.posts.get_posts_for_channel(
            channel["id"], params={"page": page, "per_page": 2}
        )
        if not batch["order"]:
            break
        seen.extend(batch["order"])
    assert seen == ids[::-1]
    past_end = driver.posts.get_posts_for_channel(channel["id"], params={"page": 50})
    assert past_end["order"] == []
    assert past_end["posts"] == {}

    thread_root = ids[0]
    driver.posts.create_post({"channel_id": channel["id"], "message": "re", "root_id": thread_root})
    assert driver.posts.get_thread(thread_root)["order"][0] == thread_root
    assert driver.posts.patch_post(ids[1], {"message": "patched"})["message"] == "patched"
    assert driver.posts.delete_post(ids[2]) == {"status": "OK"}
    assert driver.system.check_system_health()["status"] == "OK"
    assert driver.logout() == {"status": "OK"}


def test_typed_errors_reach_the_driver(server: ServerThread, factory: Factory, member: Api) -> None:
    """403, 400, 404 and 405 become the driver's own exception classes."""
    driver = _driver(server, member.user["username"])
    driver.login()
    with pytest.raises(NotEnoughPermissions):
        driver.system.get_configuration()
    with pytest.raises(NotEnoughPermissions):
        driver.users.update_user_role(member.user["id"], {"roles": "system_admin system_user"})
    with pytest.raises(InvalidOrMissingParameters):
        driver.posts.create_post({"channel_id": "x" * 26, "message": "x" * 16_384})
    with pytest.raises(ResourceNotFound):
        driver.posts.get_post("x" * 26)
    with pytest.raises(ResourceNotFound):
        driver.system.reload_configuration()
    with pytest.raises(NotEnoughPermissions):
        driver.system.update_configuration({})
    with pytest.raises(MethodNotAllowed):
        driver.client.make_request("delete", "/config")


def test_the_driver_replaces_the_whole_configuration(server: ServerThread) -> None:
    """``update_configuration`` (PUT /config) replaces the document: what the body leaves out
    goes back to its default, unknown keys are ignored, and a bad value changes nothing."""
    driver = _driver(server, "admin")
    driver.login()
    before = driver.system.get_configuration()
    try:
        changed = json.loads(json.dumps(before))
        changed["TeamSettings"]["SiteName"] = "Driven Site"
        changed["TeamSettings"]["NotASetting"] = 1
        changed["NoSuchSection"] = {"X": 1}
        after = driver.system.update_configuration(changed)
        assert after["TeamSettings"]["SiteName"] == "Driven Site"
        assert "NotASetting" not in after["TeamSettings"]
        assert "NoSuchSection" not in after
        assert after["ServiceSettings"] == before["ServiceSettings"]
        assert driver.system.get_configuration() == after

        changed["TeamSettings"].pop("SiteName")
        reset = driver.system.update_configuration(changed)
        assert reset["TeamSettings"]["SiteName"] == "Tidings"  # left out → the default

        with pytest.raises(InvalidOrMissingParameters):
            driver.system.update_configuration({"TeamSettings": {"MaxUsersPerTeam": "many"}})
        assert driver.system.get_configuration() == reset
    finally:
        driver.system.update_configuration(before)
    assert driver.system.get_configuration() == before


def test_the_driver_websocket_hears_hello_and_posted(
    server: ServerThread, factory: Factory, team: dict[str, Any], member: Api
) -> None:
    """``init_websocket`` authenticates by challenge, gets ``hello``, then another user's post."""
    channel = factory.channel(team)
    factory.admin.post(f"/channels/{channel['id']}/members", {"user_id": member.user["id"]})
    driver = _driver(server, member.user["username"])
    driver.login()
    events: list[dict[str, Any]] = []
    hello, posted = threading.Event(), threading.Event()

    async def handler(raw: str) -> None:
        message = json.loads(raw)
        events.append(message)
        if message.get("event") == "hello":
            hello.set()
        elif message.get("event") == "posted":
            posted.set()
            driver.disconnect()

    def run() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        driver.init_websocket(handler)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert hello.wait(10), events
        post = factory.admin.post("/posts", {"channel_id": channel["id"], "message": "ws!"})
        assert posted.wait(10), events
    finally:
        if driver.websocket is not None:
            driver.disconnect()
        thread.join(5)
    assert not thread.is_alive()
    assert {"status": "OK", "seq_reply": 1} in events
    event = next(e for e in events if e.get("event") == "posted")
    assert json.loads(event["data"]["post"])["id"] == post["id"]
    assert event["seq"] == 1
