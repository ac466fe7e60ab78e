"""Paging on every list (``page`` from 0, ``per_page`` 60 by default and 200 at most, junk means
the defaults, past the end is ``[]``), 201 on creates, and ``{"status":"OK"}`` on deletes."""

from collections.abc import Callable
from typing import Any

import pytest
from mattermost_contract import assert_app_error

from support import Api, Factory

pytestmark = pytest.mark.db

JUNK_VALUES = ["abc", "-1", "", "1.5", "²", "٣", "1e3", " 7", "0x10", "99999999999999999999999"]


def _ids(items: Any) -> list[str]:
    """Ids of a list response, or the ``order`` of a PostList."""
    if isinstance(items, dict):
        return list(items["order"])
    return [i.get("id") or i["user_id"] for i in items]


def _walk(api: Api, path: str, per_page: int) -> list[str]:
    """Every id of a list, page by page, until a page comes back empty."""
    seen: list[str] = []
    for page in range(100):
        batch = _ids(api.get(path, params={"page": page, "per_page": per_page}))
        if not batch:
            return seen
        assert len(batch) <= per_page
        seen.extend(batch)
    raise AssertionError("the list never ended")


def _check_list(api: Api, path: str, expected: set[str], minimum: int) -> None:
    everything = _ids(api.get(path, params={"per_page": 200}))
    assert len(everything) >= minimum
    assert expected <= set(everything)
    walked = _walk(api, path, 2)
    assert walked == everything, "pages of two must add up to the whole list, in order"
    assert len(set(walked)) == len(walked)
    past_end = api.get(path, params={"page": 10_000, "per_page": 60})
    assert past_end == [] or past_end["order"] == []
    default = api.get(path)
    assert _ids(default) == _ids(api.get(path, params={"page": 0, "per_page": 60}))
    for junk in JUNK_VALUES:
        response = api.request("GET", path, params={"page": junk, "per_page": junk})
        assert response.status_code == 200, (junk, response.text)
        assert _ids(response.json()) == _ids(default), junk


@pytest.fixture(scope="module")
def crowd(factory: Factory) -> tuple[dict[str, Any], dict[str, Any], list[Api]]:
    """Three teams, and in one of them a channel with a few members and a handful of posts."""
    team, *_ = [factory.team() for _ in range(3)]
    channel = factory.channel(team)
    users = [factory.user() for _ in range(3)]
    for user in users:
        factory.join(team, user)
        factory.admin.post(f"/channels/{channel['id']}/members", {"user_id": user.user["id"]})
    for n in range(5):
        factory.admin.post("/posts", {"channel_id": channel["id"], "message": f"p{n}"})
    return team, channel, users


LISTS: dict[str, Callable[[dict[str, Any], dict[str, Any]], str]] = {
    "users": lambda team, channel: "/users",
    "teams": lambda team, channel: "/teams",
    "team members": lambda team, channel: f"/teams/{team['id']}/members",
    "team channels": lambda team, channel: f"/teams/{team['id']}/channels",
    "channel members": lambda team, channel: f"/channels/{channel['id']}/members",
    "channel posts": lambda team, channel: f"/channels/{channel['id']}/posts",
}


@pytest.mark.parametrize("name", sorted(LISTS))
def test_every_list_pages(
    admin: Api, crowd: tuple[dict[str, Any], dict[str, Any], list[Api]], name: str
) -> None:
    """Pages add up to the list, past the end is empty, and junk paging values are defaults."""
    team, channel, users = crowd
    path = LISTS[name](team, channel)
    user_ids = {u.user["id"] for u in users}
    expected = {
        "users": user_ids,
        "teams": {team["id"]},
        "team members": user_ids,
        "team channels": {channel["id"]},
        "channel members": user_ids,
        "channel posts": set(),
    }[name]
    _check_list(admin, path, expected, minimum=3)


def test_per_page_is_capped_at_200_and_defaults_to_60(admin: Api, factory: Factory) -> None:
    """``per_page`` above 200 gives 200; none or junk gives 60."""
    channel = factory.channel(factory.team())
    for n in range(205):
        admin.post("/posts", {"channel_id": channel["id"], "message": str(n)})
    path = f"/channels/{channel['id']}/posts"
    assert len(admin.get(path, params={"per_page": 1000})["order"]) == 200
    assert len(admin.get(path, params={"per_page": 200, "page": 1})["order"]) == 5
    assert len(admin.get(path)["order"]) == 60
    assert len(admin.get(path, params={"per_page": "lots"})["order"]) == 60
    assert admin.get(path, params={"per_page": 0})["order"] == []


def test_members_only_page_through_the_teams_they_may_see(
    admin: Api, factory: Factory, member: Api, team: dict[str, Any]
) -> None:
    """A member's pages hold only visible teams and are never short (no holes end a loop)."""
    for _ in range(3):
        invite_only = admin.post(
            "/teams",
            {"name": f"private{factory._next('p')}", "display_name": "Closed", "type": "I"},
            expect=201,
        )
        assert invite_only["type"] == "I"
    visible = _ids(admin.get("/teams", params={"per_page": 200}))
    mine = _walk(member, "/teams", 1)
    assert team["id"] in mine
    assert set(mine) <= set(visible)
    everything = member.get("/teams", params={"per_page": 200})
    assert all(t["type"] == "O" or t["id"] == team["id"] for t in everything)
    assert mine == _ids(everything)


def test_creates_answer_201(admin: Api, factory: Factory) -> None:
    """Every create in the core answers 201 Created."""
    user = factory.user()
    team = admin.request("POST", "/teams", {"name": factory._next("t"), "display_name": "T"})
    assert team.status_code == 201
    team_id = team.json()["id"]
    joined = admin.request(
        "POST", f"/teams/{team_id}/members", {"team_id": team_id, "user_id": user.user["id"]}
    )
    assert joined.status_code == 201
    channel = admin.request(
        "POST", "/channels", {"team_id": team_id, "name": factory._next("c"), "display_name": "C"}
    )
    assert channel.status_code == 201
    channel_id = channel.json()["id"]
    added = admin.request("POST", f"/channels/{channel_id}/members", {"user_id": user.user["id"]})
    assert added.status_code == 201
    post = admin.request("POST", "/posts", {"channel_id": channel_id, "message": "x"})
    assert post.status_code == 201
    dm = admin.request("POST", "/channels/direct", [admin.user["id"], user.user["id"]])
    assert dm.status_code == 201
    name = factory._next("u")
    created = admin.request(
        "POST",
        "/users",
        {"username": name, "email": f"{name}@example.test", "password": "a-password-9"},
    )
    assert created.status_code == 201


def test_deletes_answer_status_ok(
    admin: Api, factory: Factory, member: Api, team: dict[str, Any]
) -> None:
    """DELETE answers 200 ``{"status":"OK"}``."""
    channel = factory.channel(team)
    admin.post(f"/channels/{channel['id']}/members", {"user_id": member.user["id"]})
    post = admin.post("/posts", {"channel_id": channel["id"], "message": "bye"})
    response = admin.request("DELETE", f"/posts/{post['id']}")
    assert (response.status_code, response.json()) == (200, {"status": "OK"})
    response = admin.request("DELETE", f"/channels/{channel['id']}/members/{member.user['id']}")
    assert (response.status_code, response.json()) == (200, {"status": "OK"})
    assert member.user["id"] not in _ids(admin.get(f"/channels/{channel['id']}/members"))
    leave = member.request("DELETE", f"/channels/{channel['id']}/members/me")
    assert (leave.status_code, leave.json()) == (200, {"status": "OK"})
    town_square = admin.get(f"/teams/{team['id']}/channels/name/town-square")
    assert_app_error(
        member.request("DELETE", f"/channels/{town_square['id']}/members/me"),
        403,
        "api.channel.remove.default.app_error",
    )
