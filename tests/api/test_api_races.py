"""Concurrent requests that race for the same unique name or membership end in one winner and
clean errors (or the same answer), never a 500 — on PostgreSQL's concurrent transactions too."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from mattermost_contract import assert_app_error

from support import PASSWORD, Api, Factory, fresh_database, start_server

pytestmark = pytest.mark.db

RACERS = 8


def _race(send: Callable[[], httpx.Response]) -> list[httpx.Response]:
    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(lambda _: send(), range(RACERS)))


def _one_winner(responses: list[httpx.Response], loser_status: int) -> dict[str, Any]:
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [loser_status] * (RACERS - 1), [r.text for r in responses]
    for response in responses:
        if response.status_code != 201:
            assert_app_error(response, loser_status)
    return next(r.json() for r in responses if r.status_code == 201)  # type: ignore[no-any-return]


def test_racing_for_a_username(admin: Api, factory: Factory) -> None:
    """Of several creations of one username, one wins and the rest are 409."""
    name = factory._next("race")
    body = {"username": name, "email": f"{name}@example.test", "password": PASSWORD}
    _one_winner(_race(lambda: admin.request("POST", "/users", body)), 409)


def test_racing_for_a_team_name(admin: Api, factory: Factory) -> None:
    """Of several creations of one team name, one wins and the rest are 409."""
    body = {"name": factory._next("race"), "display_name": "Race"}
    _one_winner(_race(lambda: admin.request("POST", "/teams", body)), 409)


def test_racing_for_a_channel_name(admin: Api, factory: Factory, team: dict[str, Any]) -> None:
    """Of several creations of one channel name in a team, one wins and the rest are 400."""
    body = {"team_id": team["id"], "name": factory._next("race"), "display_name": "Race"}
    _one_winner(_race(lambda: admin.request("POST", "/channels", body)), 400)


def test_racing_to_open_a_direct_channel(admin: Api, factory: Factory) -> None:
    """Opening the same DM many times at once yields one channel for everyone."""
    other = factory.user()
    pair = [admin.user["id"], other.user["id"]]
    responses = _race(lambda: admin.request("POST", "/channels/direct", pair))
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1


def test_racing_to_join(admin: Api, factory: Factory, team: dict[str, Any]) -> None:
    """Joining a team and a channel many times at once succeeds every time, once in effect."""
    user = factory.user()
    channel = factory.channel(team)
    joins = _race(
        lambda: admin.request("POST", f"/teams/{team['id']}/members", {"user_id": user.user["id"]})
    )
    assert {r.status_code for r in joins} == {201}, [r.text for r in joins]
    adds = _race(
        lambda: user.request(
            "POST", f"/channels/{channel['id']}/members", {"user_id": user.user["id"]}
        )
    )
    assert {r.status_code for r in adds} == {201}, [r.text for r in adds]
    members = [m["user_id"] for m in admin.get(f"/channels/{channel['id']}/members")]
    assert members.count(user.user["id"]) == 1


def test_racing_config_patches_lose_nothing(admin: Api) -> None:
    """Concurrent patches of different settings all answer 200 and all take effect."""
    before = admin.get("/config")
    patches = [
        {"ServiceSettings": {"SiteURL": "https://race.example.test"}},
        {"TeamSettings": {"SiteName": "Raced"}},
    ] * (RACERS // 2)
    with ThreadPoolExecutor(RACERS) as pool:
        responses = list(pool.map(lambda p: admin.request("PUT", "/config/patch", p), patches))
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    after = admin.get("/config")
    assert after["ServiceSettings"]["SiteURL"] == "https://race.example.test"
    assert after["TeamSettings"]["SiteName"] == "Raced"
    admin.put(
        "/config/patch",
        {
            "ServiceSettings": {"SiteURL": before["ServiceSettings"]["SiteURL"]},
            "TeamSettings": {"SiteName": before["TeamSettings"]["SiteName"]},
        },
    )


def test_racing_first_sign_ups_make_one_admin() -> None:
    """On a fresh server, of several people signing up at once only one becomes system admin."""
    with fresh_database() as url:
        server = start_server(url, run_worker=False)
        try:
            anonymous = Api(server.url)
            counter = iter(range(RACERS))

            def sign_up() -> httpx.Response:
                n = next(counter)
                return anonymous.request(
                    "POST",
                    "/users",
                    {
                        "username": f"early{n}",
                        "email": f"early{n}@example.test",
                        "password": PASSWORD,
                    },
                )

            responses = _race(sign_up)
        finally:
            server.stop()
    created = [r.json() for r in responses if r.status_code == 201]
    admins = [u["username"] for u in created if "system_admin" in u["roles"].split()]
    assert len(admins) == 1, admins
