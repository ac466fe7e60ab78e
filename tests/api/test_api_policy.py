"""Server policy (issue 10 item 9): the team-creation switch, who sees a team's invite id, no
existence oracle for invite-only teams and private channels (but Mattermost's 403 for a public
channel of an open team), team admins managing private channel members, and Mattermost's
PasswordSettings."""

from collections.abc import Iterator
from typing import Any

import pytest
from mattermost_contract import assert_app_error

from support import PASSWORD, Api, Factory

pytestmark = pytest.mark.db

RANDOM_ID = "abcdefghijklmnopqrstuvwxyz"
PERMISSIONS = "api.context.permissions.app_error"


def _new_user(factory: Factory, password: str) -> dict[str, str]:
    name = factory._next("pw")
    return {"username": name, "email": f"{name}@example.test", "password": password}


@pytest.fixture
def restore_config(admin: Api) -> Iterator[None]:
    before = admin.get("/config")
    yield
    admin.put(
        "/config/patch",
        {k: before[k] for k in ("TeamSettings", "PasswordSettings")},
    )


def test_team_creation_follows_enable_team_creation(
    admin: Api, factory: Factory, restore_config: None
) -> None:
    """On by default (Mattermost's default); off, only system admins create teams (403)."""
    config = admin.get("/config")
    assert config["TeamSettings"]["EnableTeamCreation"] is True
    user = factory.user()
    factory.team(user)
    admin.put("/config/patch", {"TeamSettings": {"EnableTeamCreation": False}})
    refused = user.request("POST", "/teams", {"name": factory._next("t"), "display_name": "T"})
    assert_app_error(refused, 403, PERMISSIONS)
    assert admin.get("/config/client", params={"format": "old"})["EnableTeamCreation"] == "false"
    factory.team(admin)


def test_invite_id_is_shown_only_to_team_and_system_admins(admin: Api, factory: Factory) -> None:
    """Members and outsiders get a blank invite_id on every team route; admins see it."""
    owner, member, outsider = factory.user(), factory.user(), factory.user()
    team = factory.team(owner)
    assert team["invite_id"]
    factory.join(team, member)
    for api in (member, outsider):
        seen = [api.get(f"/teams/{team['id']}"), api.get(f"/teams/name/{team['name']}")]
        seen += [t for t in api.get("/teams", params={"per_page": 200}) if t["id"] == team["id"]]
        if api is member:
            seen += [t for t in api.get("/users/me/teams") if t["id"] == team["id"]]
        assert len(seen) == (4 if api is member else 3)
        assert {t["invite_id"] for t in seen} == {""}, api.user["username"]
    assert owner.get(f"/teams/{team['id']}")["invite_id"] == team["invite_id"]
    assert admin.get(f"/teams/{team['id']}")["invite_id"] == team["invite_id"]


def test_an_invite_only_team_is_as_missing_for_outsiders(factory: Factory) -> None:
    """GET by id or name of an invite-only team answers outsiders exactly like a missing team."""
    owner, outsider = factory.user(), factory.user()
    team = owner.post(
        "/teams", {"name": factory._next("t"), "display_name": "Secret", "type": "I"}, expect=201
    )
    pairs = [
        (f"/teams/{team['id']}", f"/teams/{RANDOM_ID}"),
        (f"/teams/name/{team['name']}", "/teams/name/nosuchteamhere"),
        (f"/teams/{team['id']}/members", f"/teams/{RANDOM_ID}/members"),
    ]
    for existing, missing in pairs:
        found = assert_app_error(outsider.request("GET", existing), 404)
        assert found["id"] == assert_app_error(outsider.request("GET", missing), 404)["id"]


def _channel_routes(channel_id: str, post_id: str, user_id: str) -> list[tuple[str, str, Any]]:
    """Every route about one channel (or a post in it) that a non-reader must be refused."""
    return [
        ("GET", f"/channels/{channel_id}", None),
        ("GET", f"/channels/{channel_id}/members", None),
        ("GET", f"/channels/{channel_id}/posts", None),
        ("POST", f"/channels/{channel_id}/members", {"user_id": user_id}),
        ("DELETE", f"/channels/{channel_id}/members/{user_id}", None),
        ("POST", "/posts", {"channel_id": channel_id, "message": "let me in"}),
        ("GET", f"/posts/{post_id}", None),
        ("GET", f"/posts/{post_id}/thread", None),
        ("PUT", f"/posts/{post_id}/patch", {"message": "mine now"}),
        ("PUT", f"/posts/{post_id}", {"id": post_id, "message": "mine now"}),
        ("DELETE", f"/posts/{post_id}", None),
    ]


def test_a_public_channel_of_an_open_team_refuses_outsiders_with_403(
    admin: Api, factory: Factory
) -> None:
    """An open team and its public channels are no secret (anyone may see the team and join
    it), so a user outside the team is refused as Mattermost does — 403, read_public_channel
    missing — not with the 404 of a missing channel; the post stays as it was."""
    owner, outsider, victim = factory.user(), factory.user(), factory.user()
    team = factory.team(owner)
    factory.join(team, victim)
    channel = factory.channel(team, owner=owner)
    owner.post(f"/channels/{channel['id']}/members", {"user_id": victim.user["id"]}, expect=201)
    post = owner.post("/posts", {"channel_id": channel["id"], "message": "public"}, expect=201)
    for method, path, body in _channel_routes(channel["id"], post["id"], victim.user["id"]):
        assert_app_error(outsider.request(method, path, body), 403, PERMISSIONS)
    by_name = [
        f"/teams/{team['id']}/channels/name/{channel['name']}",
        f"/teams/name/{team['name']}/channels/name/{channel['name']}",
    ]
    for path in by_name:
        assert_app_error(outsider.request("GET", path), 403, PERMISSIONS)
    assert owner.get(f"/posts/{post['id']}")["message"] == "public"
    members = owner.get(f"/channels/{channel['id']}/members")
    assert victim.user["id"] in {m["user_id"] for m in members}


def test_a_public_channel_of_an_invite_only_team_is_as_missing_for_outsiders(
    factory: Factory,
) -> None:
    """The team is a secret, so its public channels are too: the same 404 as for a channel
    (or post) that does not exist, by id and by name."""
    owner, outsider = factory.user(), factory.user()
    team = owner.post(
        "/teams", {"name": factory._next("t"), "display_name": "Secret", "type": "I"}, expect=201
    )
    channel = factory.channel(team, owner=owner)
    post = owner.post("/posts", {"channel_id": channel["id"], "message": "hidden"}, expect=201)
    for method, path, body in _channel_routes(channel["id"], post["id"], owner.user["id"]):
        found = assert_app_error(outsider.request(method, path, body), 404)
        missing_path = path.replace(channel["id"], RANDOM_ID).replace(post["id"], RANDOM_ID)
        missing_body = body and {
            k: (RANDOM_ID if v == channel["id"] else v) for k, v in body.items()
        }
        missing = assert_app_error(outsider.request(method, missing_path, missing_body), 404)
        assert found["id"] == missing["id"], (method, path)
    named = outsider.request("GET", f"/teams/{team['id']}/channels/name/{channel['name']}")
    unnamed = outsider.request("GET", f"/teams/{team['id']}/channels/name/nosuchchannel")
    assert assert_app_error(named, 404)["id"] == assert_app_error(unnamed, 404)["id"]


def test_a_team_admin_manages_the_members_of_a_private_channel_they_are_not_in(
    factory: Factory,
) -> None:
    """Mattermost's team admin holds manage_private_channel_members at team scope: they add and
    remove members of any private channel of the team, without becoming able to read it. An
    admin of another team gets the 404 of a missing channel."""
    admin_of_team, creator, newcomer, other_admin = (factory.user() for _ in range(4))
    team = factory.team(admin_of_team)
    factory.join(team, creator)
    factory.join(team, newcomer)
    other_team = factory.team(other_admin)
    assert other_team["id"]
    secret = factory.channel(team, owner=creator, private=True)
    post = creator.post("/posts", {"channel_id": secret["id"], "message": "secret"}, expect=201)
    added = admin_of_team.post(
        f"/channels/{secret['id']}/members", {"user_id": newcomer.user["id"]}, expect=201
    )
    assert added["user_id"] == newcomer.user["id"]
    assert newcomer.get(f"/posts/{post['id']}")["message"] == "secret"
    admin_of_team.delete(f"/channels/{secret['id']}/members/{newcomer.user['id']}")
    assert_app_error(newcomer.request("GET", f"/posts/{post['id']}"), 404)
    # Managing members is not reading: the team admin still cannot see inside.
    assert_app_error(admin_of_team.request("GET", f"/channels/{secret['id']}/posts"), 404)
    assert_app_error(admin_of_team.request("GET", f"/posts/{post['id']}"), 404)
    for method, body in (("POST", {"user_id": newcomer.user["id"]}), ("DELETE", None)):
        suffix = "" if method == "POST" else f"/{newcomer.user['id']}"
        real = other_admin.request(method, f"/channels/{secret['id']}/members{suffix}", body)
        ghost = other_admin.request(method, f"/channels/{RANDOM_ID}/members{suffix}", body)
        assert assert_app_error(real, 404)["id"] == assert_app_error(ghost, 404)["id"], method


def test_sign_up_needs_an_invitation_from_the_team_admins(
    admin: Api, anonymous: Api, factory: Factory
) -> None:
    """Closed server: anonymous sign-up is 403; the invite id (from the team admin) lets one in
    and joins the team; a member cannot read that id to pass it on."""
    owner, member = factory.user(), factory.user()
    team = factory.team(owner)
    factory.join(team, member)
    refused = anonymous.request("POST", "/users", _new_user(factory, PASSWORD))
    assert_app_error(refused, 403, "api.user.create_user.no_open_server")
    assert member.get(f"/teams/{team['id']}")["invite_id"] == ""
    invited = _new_user(factory, PASSWORD)
    created = anonymous.post("/users", invited, params={"iid": team["invite_id"]}, expect=201)
    joined = anonymous.login(invited["username"]).get("/users/me/teams")
    assert [t["id"] for t in joined] == [team["id"]]
    assert created["roles"] == "system_user"


@pytest.mark.parametrize("password", ["12345678", "1234567890", "abcdefghijkl", "abc1"])
def test_weak_passwords_are_refused_on_sign_up(admin: Api, factory: Factory, password: str) -> None:
    """Defaults: 10+ characters with a lower-case letter and a digit; Mattermost's id names
    every required class."""
    response = admin.request("POST", "/users", _new_user(factory, password))
    assert_app_error(response, 400, "model.user.is_valid.pwd_lowercase_number.app_error")


def test_password_rules_apply_to_changes_and_admin_resets(admin: Api, factory: Factory) -> None:
    """A user's own change and an admin's reset obey the same rules."""
    user = factory.user()
    own = user.request(
        "PUT",
        "/users/me/password",
        {"current_password": PASSWORD, "new_password": "12345678"},
    )
    assert_app_error(own, 400, "model.user.is_valid.pwd_lowercase_number.app_error")
    reset = admin.request("PUT", f"/users/{user.user['id']}/password", {"new_password": "aaaa"})
    assert_app_error(reset, 400, "model.user.is_valid.pwd_lowercase_number.app_error")
    admin.put(f"/users/{user.user['id']}/password", {"new_password": "another-horse-7"})


def test_password_settings_are_configurable(
    admin: Api, factory: Factory, restore_config: None
) -> None:
    """PasswordSettings in /api/v4/config (and the client config) drive the rules and the id."""
    config = admin.get("/config")
    assert config["PasswordSettings"] == {
        "MinimumLength": 10,
        "Lowercase": True,
        "Number": True,
        "Uppercase": False,
        "Symbol": False,
    }
    admin.put(
        "/config/patch",
        {"PasswordSettings": {"MinimumLength": 16, "Uppercase": True, "Symbol": True}},
    )
    client: dict[str, Any] = admin.get("/config/client", params={"format": "old"})
    assert client["PasswordMinimumLength"] == "16"
    assert client["PasswordRequireUppercase"] == "true"
    weak = admin.request("POST", "/users", _new_user(factory, PASSWORD))
    assert_app_error(
        weak, 400, "model.user.is_valid.pwd_lowercase_uppercase_number_symbol.app_error"
    )
    admin.post("/users", _new_user(factory, "Correct-Horse-Battery-9"), expect=201)
    too_short = admin.request("PUT", "/config/patch", {"PasswordSettings": {"MinimumLength": 4}})
    assert_app_error(too_short, 400, "model.config.is_valid.password_length.app_error")
