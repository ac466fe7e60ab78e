"""Accounts: who may create them, name rules, profile changes, and whose teams and channels a
caller may list."""

from typing import Any

import pytest
from mattermost_contract import assert_app_error

from support import PASSWORD, Api, Factory, fresh_database, start_server

pytestmark = pytest.mark.db


def _new_user(name: str) -> dict[str, str]:
    return {"username": name, "email": f"{name}@example.test", "password": PASSWORD}


def test_only_the_first_account_is_made_admin() -> None:
    """A fresh server's first sign-up is admin; later anonymous ones and the bot name are not."""
    with fresh_database() as url:
        server = start_server(url)
        try:
            anonymous = Api(server.url)
            squatter = anonymous.request("POST", "/users", _new_user("tidings"))
            assert_app_error(squatter, 400, "model.user.is_valid.username.app_error")
            first = anonymous.post("/users", _new_user("first"), expect=201)
            assert first["roles"] == "system_admin system_user"
            second = anonymous.request("POST", "/users", _new_user("second"))
            assert_app_error(second, 403, "api.user.create_user.no_open_server")
            admin = anonymous.login("first")
            made = admin.post("/users", _new_user("third"), expect=201)
            assert made["roles"] == "system_user"
        finally:
            server.stop()


def test_open_sign_up_makes_plain_users(admin: Api, anonymous: Api, factory: Factory) -> None:
    """With EnableOpenServer on, anyone may sign up, as a plain system user."""
    admin.put("/config/patch", {"TeamSettings": {"EnableOpenServer": True}})
    try:
        name = factory._next("open")
        created = anonymous.post("/users", _new_user(name), expect=201)
        assert created["roles"] == "system_user"
    finally:
        admin.put("/config/patch", {"TeamSettings": {"EnableOpenServer": False}})


@pytest.mark.parametrize(
    "name", ["tidings", "all", "channel", "here", "system", "matterbot", "ALL", "Here", "SYSTEM"]
)
def test_reserved_usernames_are_refused(admin: Api, name: str) -> None:
    """Names that mentions or the system bot use cannot be registered, in any case."""
    response = admin.request("POST", "/users", _new_user(name))
    assert_app_error(response, 400, "model.user.is_valid.username.app_error")


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "1abc",
        "a" * 23,
        "with space",
        "ünï",
        "",
        "a@b",
        "trailing\n",
        "tab\tname",
        "bell\x07",
        " lead",
        "_under",
        "zero\u200bwidth",
    ],
)
def test_bad_usernames_are_a_400(admin: Api, name: str) -> None:
    """Usernames are 3–22 of a-z, 0-9, '.', '_' and '-', starting with a letter; no whitespace
    or control character anywhere (not even a trailing newline)."""
    response = admin.request("POST", "/users", _new_user(name) | {"email": "x@example.test"})
    assert_app_error(response, 400, "model.user.is_valid.username.app_error")


def test_usernames_and_emails_are_stored_in_lower_case(
    admin: Api, anonymous: Api, factory: Factory
) -> None:
    """As in Mattermost, ``MixedCase`` is accepted and kept as ``mixedcase``; login ignores case."""
    name = factory._next("Mixed")
    created = admin.post(
        "/users",
        {"username": name, "email": f"{name}@Example.TEST", "password": PASSWORD},
        expect=201,
    )
    assert created["username"] == name.lower()
    assert created["email"] == f"{name.lower()}@example.test"
    assert anonymous.login(name).user["id"] == created["id"]
    assert admin.get(f"/users/username/{name.lower()}")["id"] == created["id"]
    duplicate = admin.request("POST", "/users", _new_user(name.upper()))
    assert_app_error(duplicate, 409, "app.user.save.username_exists.app_error")


def test_profile_patches(admin: Api, factory: Factory) -> None:
    """Users patch their own profile (email in any case), not others'; admins patch anyone's."""
    user, other = factory.user(), factory.user()
    patched = user.put("/users/me/patch", {"nickname": "Nick", "first_name": "Ann"})
    assert (patched["nickname"], patched["first_name"]) == ("Nick", "Ann")
    same_email = user.put("/users/me/patch", {"email": user.user["email"].upper()})
    assert same_email["email"] == user.user["email"]
    taken = user.request("PUT", "/users/me/patch", {"email": other.user["email"]})
    assert_app_error(taken, 409, "app.user.save.email_exists.app_error")
    foreign = user.request("PUT", f"/users/{other.user['id']}/patch", {"nickname": "x"})
    assert_app_error(foreign, 403, "api.context.permissions.app_error")
    assert admin.put(f"/users/{other.user['id']}/patch", {"nickname": "Set"})["nickname"] == "Set"
    assert user.request("PUT", "/users/me/patch", {"nickname": "n" * 65}).status_code == 400


def test_emails_are_shown_to_their_owner_and_admins(admin: Api, factory: Factory) -> None:
    """Another user's email is blank for members and visible to admins."""
    user, other = factory.user(), factory.user()
    assert user.get(f"/users/{other.user['id']}")["email"] == ""
    assert user.get("/users/me")["email"] == user.user["email"]
    assert admin.get(f"/users/{other.user['id']}")["email"] == other.user["email"]
    listed = {u["id"]: u for u in user.post("/users/ids", [other.user["id"], user.user["id"]])}
    assert listed[other.user["id"]]["email"] == ""


def test_whose_teams_and_channels_a_caller_may_list(
    admin: Api, factory: Factory, team: dict[str, Any], member: Api
) -> None:
    """Members list only their own teams and channels (else 403); admins list anyone's."""
    other = factory.user()
    mine = [t["id"] for t in member.get("/users/me/teams")]
    assert mine == [team["id"]]
    assert member.get(f"/users/{member.user['id']}/teams") == member.get("/users/me/teams")
    for path in (
        f"/users/{other.user['id']}/teams",
        f"/users/{admin.user['id']}/teams/{team['id']}/channels",
        f"/users/{admin.user['id']}/teams/{team['id']}/channels/members",
    ):
        assert_app_error(member.request("GET", path), 403, "api.context.permissions.app_error")
    assert [t["id"] for t in admin.get(f"/users/{member.user['id']}/teams")] == [team["id"]]
    assert admin.get(f"/users/{other.user['id']}/teams") == []
    channels = admin.get(f"/users/{member.user['id']}/teams/{team['id']}/channels")
    assert {c["name"] for c in channels} == {"town-square", "off-topic"}
    memberships = admin.get(f"/users/{member.user['id']}/teams/{team['id']}/channels/members")
    assert {m["user_id"] for m in memberships} == {member.user["id"]}
    assert {m["channel_id"] for m in memberships} == {c["id"] for c in channels}
