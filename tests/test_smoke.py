"""The server starts, answers ping, and the first user is a system admin."""

import pytest

from support import Api, Factory

pytestmark = pytest.mark.db


def test_ping_answers_json_with_request_id(anonymous: Api) -> None:
    """Ping is public JSON and every response carries X-Request-ID."""
    response = anonymous.request("GET", "/system/ping")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert len(response.headers["x-request-id"]) == 26
    assert response.json()["status"] == "OK"


def test_first_user_is_system_admin(admin: Api) -> None:
    """The first account on a fresh server becomes system admin."""
    assert "system_admin" in admin.get("/users/me")["roles"].split()


def test_post_and_read_back(admin: Api, factory: Factory) -> None:
    """A post made in a new team's channel reads back in the channel's post list."""
    team = factory.team()
    channel = factory.channel(team)
    post = admin.post("/posts", {"channel_id": channel["id"], "message": "hello"}, expect=201)
    listing = admin.get(f"/channels/{channel['id']}/posts")
    assert listing["order"] == [post["id"]]
    assert listing["posts"][post["id"]]["message"] == "hello"
