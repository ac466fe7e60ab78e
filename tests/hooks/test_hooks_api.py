"""``/api/v4/hooks/outgoing``: permissions, validation and error ids (REF §1.3, §6, §8.6) with
the divergences of spec §1 and §9."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hooks_support import error_of, service_settings

from support import Api, Factory

pytestmark = pytest.mark.db

URL = "http://hooks.example.test/callback"
RANDOM_ID = "abcdefghijklmnopqrstuvwxyz"
PERMISSIONS = "api.context.permissions.app_error"
MISSING = "app.webhooks.get_outgoing.app_error"


@dataclass
class World:
    team: dict[str, Any]
    other_team: dict[str, Any]
    channel: dict[str, Any]
    channel2: dict[str, Any]
    private: dict[str, Any]
    foreign_channel: dict[str, Any]
    team_admin: Api
    member: Api
    member2: Api
    outsider: Api


@pytest.fixture(scope="module")
def world(factory: Factory) -> World:
    team_admin = factory.user()
    team = factory.team(team_admin)
    member, member2 = factory.user(), factory.user()
    factory.join(team, member)
    factory.join(team, member2)
    outsider = factory.user()
    other_team = factory.team(outsider)
    return World(
        team=team,
        other_team=other_team,
        channel=factory.channel(team, team_admin),
        channel2=factory.channel(team, team_admin),
        private=factory.channel(team, team_admin, private=True),
        foreign_channel=factory.channel(other_team, outsider),
        team_admin=team_admin,
        member=member,
        member2=member2,
        outsider=outsider,
    )


@pytest.fixture
def members_allowed(admin: Api) -> Iterator[None]:
    """Members may manage their own hooks (Mattermost: team_user gains manage_own_…)."""
    with service_settings(admin, EnableMemberOutgoingWebhooks=True):
        yield


@pytest.fixture
def hooks_off(admin: Api) -> Iterator[None]:
    with service_settings(admin, EnableOutgoingWebhooks=False):
        yield


_counter = iter(range(1_000_000))


def unique_url() -> str:
    return f"{URL}/{next(_counter)}"


def body(world: World, **fields: Any) -> dict[str, Any]:
    return {
        "team_id": world.team["id"],
        "channel_id": world.channel["id"],
        "callback_urls": [unique_url()],
        **fields,
    }


def create(api: Api, world: World, **fields: Any) -> dict[str, Any]:
    return api.post("/hooks/outgoing", body(world, **fields), expect=201)  # type: ignore[no-any-return]


# --- create ----------------------------------------------------------------------------------


def test_system_admin_creates_a_hook_with_server_fields(admin: Api, world: World) -> None:
    """A system admin's hook: 201, server-made id/token/secret, creator = admin, lists as []."""
    hook = create(admin, world, display_name="Build", description="d", username="u")
    assert hook["creator_id"] == admin.user["id"]
    assert hook["team_id"] == world.team["id"]
    assert hook["channel_id"] == world.channel["id"]
    assert len(hook["id"]) == 26
    assert len(hook["token"]) == 26
    assert hook["signing_secret"].startswith("whsec_")
    assert hook["trigger_words"] == []
    assert hook["trigger_when"] == 0
    assert hook["create_at"] == hook["update_at"] > 0
    assert hook["delete_at"] == 0
    assert hook["enabled"] is True
    assert admin.get(f"/hooks/outgoing/{hook['id']}") == hook


def test_create_keeps_every_field_as_sent(admin: Api, world: World) -> None:
    """Channel, team, URLs, username, icon, names and a client-chosen token are stored as sent."""
    fields = {
        "callback_urls": [unique_url(), unique_url()],
        "trigger_words": ["#a", "#b"],
        "trigger_when": 1,
        "display_name": "Name",
        "description": "About",
        "content_type": "application/json",
        "username": "some-user-name",
        "icon_url": "http://some-icon/",
        "token": "zmigewsanbbsdf59xnmduzypjc",
    }
    hook = create(admin, world, **fields)
    for key, value in fields.items():
        assert hook[key] == value, key


def test_team_admin_creates_for_their_team_only(world: World) -> None:
    """A team admin creates hooks in their team; in another team they get 403."""
    hook = create(world.team_admin, world)
    assert hook["creator_id"] == world.team_admin.user["id"]
    status, error = error_of(
        world.team_admin,
        "POST",
        "/hooks/outgoing",
        {"team_id": world.other_team["id"], "trigger_words": ["x"], "callback_urls": [URL]},
    )
    assert (status, error) == (403, PERMISSIONS)


def test_member_may_not_create_by_default(world: World) -> None:
    """Without EnableMemberOutgoingWebhooks a plain member gets 403."""
    assert error_of(world.member, "POST", "/hooks/outgoing", body(world)) == (403, PERMISSIONS)


def test_member_creates_own_hook_when_allowed(world: World, members_allowed: None) -> None:
    """With the setting on, a member creates a hook owned by them."""
    hook = create(world.member, world)
    assert hook["creator_id"] == world.member.user["id"]


def test_empty_team_id_is_forbidden_even_for_admins(admin: Api) -> None:
    """Create needs a team: an empty team_id is 403 for everyone."""
    status, error = error_of(
        admin, "POST", "/hooks/outgoing", {"trigger_words": ["x"], "callback_urls": [URL]}
    )
    assert (status, error) == (403, PERMISSIONS)


def test_admin_creates_on_behalf_of_another_user(admin: Api, world: World) -> None:
    """An admin may set creator_id; an unknown creator is 404."""
    hook = create(admin, world, creator_id=world.member.user["id"])
    assert hook["creator_id"] == world.member.user["id"]
    status, _ = error_of(admin, "POST", "/hooks/outgoing", body(world, creator_id="invalid-user"))
    assert status == 404


def test_member_may_not_set_another_creator(world: World, members_allowed: None) -> None:
    """A member with only "own" rights cannot create a hook for someone else (403)."""
    status, error = error_of(
        world.member,
        "POST",
        "/hooks/outgoing",
        body(world, creator_id=world.member2.user["id"]),
    )
    assert (status, error) == (403, PERMISSIONS)


def test_team_admin_may_not_set_another_creator(world: World) -> None:
    """Only a system admin names another creator: a team admin gets 403, naming themselves works."""
    status, error = error_of(
        world.team_admin,
        "POST",
        "/hooks/outgoing",
        body(world, creator_id=world.member.user["id"], trigger_words=["ta-other"]),
    )
    assert (status, error) == (403, PERMISSIONS)
    own = create(world.team_admin, world, creator_id=world.team_admin.user["id"])
    assert own["creator_id"] == world.team_admin.user["id"]


def test_update_never_changes_the_creator(world: World) -> None:
    """PUT with another creator_id by the hook's (non-admin) owner keeps the creator."""
    hook = create(world.team_admin, world, trigger_words=["ta-put"])
    updated = world.team_admin.put(
        f"/hooks/outgoing/{hook['id']}", {**hook, "creator_id": world.member.user["id"]}
    )
    assert updated["creator_id"] == world.team_admin.user["id"]


def test_create_with_unknown_channel_is_404(admin: Api, world: World) -> None:
    """channel_id "junk" or a random id → 404 app.channel.get.existing.app_error."""
    for channel_id in ("junk", RANDOM_ID):
        status, error = error_of(
            admin, "POST", "/hooks/outgoing", body(world, channel_id=channel_id)
        )
        assert (status, error) == (404, "app.channel.get.existing.app_error")


def test_create_on_a_private_channel_is_403(admin: Api, world: World) -> None:
    """Only public channels: a private one is 403 with Mattermost's (reused) disabled id."""
    status, error = error_of(
        admin, "POST", "/hooks/outgoing", body(world, channel_id=world.private["id"])
    )
    assert (status, error) == (403, "api.outgoing_webhook.disabled.app_error")


def test_a_private_channel_one_is_not_in_looks_missing(factory: Factory, world: World) -> None:
    """Naming on a hook a private channel the creator cannot read answers exactly as a missing
    channel does (no existence oracle); one they are in keeps Mattermost's 403."""
    hidden = factory.channel(world.team, world.member2, private=True)
    for method, path, fields in [
        ("POST", "/hooks/outgoing", {}),
        (
            "PUT",
            f"/hooks/outgoing/{create(world.team_admin, world, trigger_words=['hid'])['id']}",
            {},
        ),
    ]:
        missing = error_of(
            world.team_admin, method, path, body(world, channel_id=RANDOM_ID, **fields)
        )
        secret = error_of(
            world.team_admin, method, path, body(world, channel_id=hidden["id"], **fields)
        )
        assert secret == missing == (404, "app.channel.get.existing.app_error")
    status, error = error_of(
        world.team_admin, "POST", "/hooks/outgoing", body(world, channel_id=world.private["id"])
    )
    assert (status, error) == (403, "api.outgoing_webhook.disabled.app_error")


def test_create_on_another_teams_channel_is_403(admin: Api, world: World) -> None:
    """The channel must belong to the hook's team."""
    status, error = error_of(
        admin, "POST", "/hooks/outgoing", body(world, channel_id=world.foreign_channel["id"])
    )
    assert (status, error) == (403, "api.webhook.create_outgoing.permissions.app_error")


def test_create_needs_a_channel_or_trigger_words(admin: Api, world: World) -> None:
    """Neither channel nor trigger words → 400 …triggers.app_error."""
    status, error = error_of(admin, "POST", "/hooks/outgoing", body(world, channel_id=""))
    assert (status, error) == (400, "api.webhook.create_outgoing.triggers.app_error")


def test_create_with_an_id_is_refused(admin: Api, world: World) -> None:
    """A client-chosen id → 400 app.webhooks.save_outgoing.override.app_error."""
    status, error = error_of(admin, "POST", "/hooks/outgoing", body(world, id=RANDOM_ID))
    assert (status, error) == (400, "app.webhooks.save_outgoing.override.app_error")


def test_create_with_a_bad_body_is_400(admin: Api) -> None:
    """Malformed JSON or wrong types → 400 api.context.invalid_body_param.app_error."""
    response = admin.request("POST", "/hooks/outgoing", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["id"] == "api.context.invalid_body_param.app_error"
    status, error = error_of(admin, "POST", "/hooks/outgoing", {"trigger_words": "x"})
    assert (status, error) == (400, "api.context.invalid_body_param.app_error")


def test_conflicting_hooks_are_400_on_create(admin: Api, world: World) -> None:
    """Same channel, a shared URL and a shared word: 400 …create_outgoing.intersect…."""
    url = unique_url()
    create(admin, world, callback_urls=[url], trigger_words=["a", "b"])
    status, error = error_of(
        admin, "POST", "/hooks/outgoing", body(world, callback_urls=[url], trigger_words=["b"])
    )
    assert (status, error) == (400, "api.webhook.create_outgoing.intersect.app_error")
    # No shared word, another channel, or no words at all: no conflict.
    create(admin, world, callback_urls=[url], trigger_words=["c"])
    create(admin, world, callback_urls=[url], trigger_words=["b"], channel_id=world.channel2["id"])
    create(admin, world, callback_urls=[url])
    create(admin, world, callback_urls=[url])


def test_no_session_is_401(anonymous: Api, world: World) -> None:
    """Every endpoint needs a session."""
    for method, path in (
        ("POST", "/hooks/outgoing"),
        ("GET", "/hooks/outgoing"),
        ("GET", f"/hooks/outgoing/{RANDOM_ID}"),
        ("PUT", f"/hooks/outgoing/{RANDOM_ID}"),
        ("DELETE", f"/hooks/outgoing/{RANDOM_ID}"),
        ("POST", f"/hooks/outgoing/{RANDOM_ID}/regen_token"),
    ):
        status, error = error_of(anonymous, method, path, {} if method in ("POST", "PUT") else None)
        assert (status, error) == (401, "api.context.session_expired.app_error"), path


# --- validation table (REF §1.3), on create and update alike -----------------------------------

VALIDATION = [
    pytest.param({"token": "short"}, "model.outgoing_hook.is_valid.token.app_error", id="token"),
    pytest.param(
        {"trigger_words": ["w" * 1023]}, "model.outgoing_hook.is_valid.words.app_error", id="words"
    ),
    pytest.param(
        {"trigger_words": ["ok", ""]},
        "model.outgoing_hook.is_valid.trigger_words.app_error",
        id="empty-word",
    ),
    pytest.param(
        {"callback_urls": []}, "model.outgoing_hook.is_valid.callback.app_error", id="no-urls"
    ),
    pytest.param(
        {"callback_urls": ["http://x.test/" + "a" * 1010]},
        "model.outgoing_hook.is_valid.callback.app_error",
        id="urls-too-long",
    ),
    pytest.param(
        {"callback_urls": ["nowhere.com/"]}, "model.outgoing_hook.is_valid.url.app_error", id="url"
    ),
    pytest.param(
        {"callback_urls": ["HTTP://x.test/"]},
        "model.outgoing_hook.is_valid.url.app_error",
        id="url-upper",
    ),
    pytest.param(
        {"display_name": "1" * 65},
        "model.outgoing_hook.is_valid.display_name.app_error",
        id="display-name",
    ),
    pytest.param(
        {"display_name": "é" * 33},
        "model.outgoing_hook.is_valid.display_name.app_error",
        id="display-name-bytes",
    ),
    pytest.param(
        {"description": "1" * 501},
        "model.outgoing_hook.is_valid.description.app_error",
        id="description",
    ),
    pytest.param(
        {"content_type": "1" * 129},
        "model.outgoing_hook.is_valid.content_type.app_error",
        id="content-type",
    ),
    pytest.param(
        {"trigger_when": 2},
        "model.outgoing_hook.is_valid.content_type.app_error",
        id="trigger-when",
    ),
    pytest.param({"username": "1" * 65}, "model.outgoing_hook.username.app_error", id="username"),
    pytest.param({"icon_url": "1" * 1025}, "model.outgoing_hook.icon_url.app_error", id="icon"),
    pytest.param(
        {"timeout_seconds": 301},
        "model.outgoing_hook.is_valid.timeout_seconds.app_error",
        id="timeout-over-300",
    ),
    pytest.param(
        {"timeout_seconds": -1},
        "model.outgoing_hook.is_valid.timeout_seconds.app_error",
        id="timeout-negative",
    ),
    pytest.param(
        {"token": "short", "callback_urls": ["nowhere.com/"]},
        "model.outgoing_hook.is_valid.token.app_error",
        id="first-failure-wins",
    ),
]


@pytest.mark.parametrize(("fields", "error_id"), VALIDATION)
def test_create_validates(admin: Api, world: World, fields: dict[str, Any], error_id: str) -> None:
    """Each REF §1.3 rule on create → its error id and 400."""
    assert error_of(admin, "POST", "/hooks/outgoing", body(world, **fields)) == (400, error_id)


@pytest.mark.parametrize(("fields", "error_id"), VALIDATION)
def test_update_validates(admin: Api, world: World, fields: dict[str, Any], error_id: str) -> None:
    """Each REF §1.3 rule on update too (a divergence): 400 and the hook is unchanged."""
    hook = create(admin, world)
    path = f"/hooks/outgoing/{hook['id']}"
    assert error_of(admin, "PUT", path, {"id": hook["id"], **fields}) == (400, error_id)
    assert admin.get(path) == hook


def test_create_rejects_an_invalid_team_id(admin: Api) -> None:
    """A malformed team_id passes an admin's permission check and fails validation (400)."""
    status, error = error_of(
        admin,
        "POST",
        "/hooks/outgoing",
        {"team_id": "junk", "trigger_words": ["x"], "callback_urls": [URL]},
    )
    assert (status, error) == (400, "model.outgoing_hook.is_valid.team_id.app_error")


def test_limits_are_inclusive(admin: Api, world: World) -> None:
    """The largest allowed values are accepted (REF §8.1), and http://nowhere.com/ is a URL."""
    hook = create(
        admin,
        world,
        callback_urls=["http://nowhere.com/"],
        trigger_words=["w" * 1022],
        display_name="1" * 64,
        description="1" * 500,
        content_type="1" * 128,
        username="1" * 64,
        icon_url="1" * 1024,
    )
    assert hook["display_name"] == "1" * 64
    assert hook["icon_url"] == "1" * 1024


def test_timeout_seconds_takes_zero_to_300(admin: Api, world: World) -> None:
    """0 (the server's timeout), 1 and 300 are stored and read back; leaving it out means 0."""
    assert create(admin, world)["timeout_seconds"] == 0
    for seconds in (0, 1, 300):
        hook = create(admin, world, timeout_seconds=seconds)
        assert hook["timeout_seconds"] == seconds
        assert admin.get(f"/hooks/outgoing/{hook['id']}")["timeout_seconds"] == seconds


def test_update_keeps_the_timeout_unless_sent(admin: Api, world: World) -> None:
    """PUT without timeout_seconds keeps it; a number sets it; ``null`` and 0 reset it to 0."""
    hook = create(admin, world, timeout_seconds=7)
    path = f"/hooks/outgoing/{hook['id']}"
    assert admin.put(path, {"display_name": "Renamed"})["timeout_seconds"] == 7
    assert admin.put(path, {"timeout_seconds": 300})["timeout_seconds"] == 300
    assert admin.put(path, {"timeout_seconds": None})["timeout_seconds"] == 0
    assert admin.put(path, {"timeout_seconds": 12})["timeout_seconds"] == 12
    assert admin.put(path, {"timeout_seconds": 0})["timeout_seconds"] == 0
    assert admin.get(path)["timeout_seconds"] == 0
    status, error = error_of(admin, "PUT", path, {"timeout_seconds": "5"})
    assert (status, error) == (400, "api.context.invalid_body_param.app_error")
    assert admin.get(path)["timeout_seconds"] == 0


# --- list --------------------------------------------------------------------------------------


def _ids(hooks: list[dict[str, Any]]) -> set[str]:
    return {h["id"] for h in hooks}


def test_admin_lists_by_team_channel_and_all(admin: Api, world: World, factory: Factory) -> None:
    """Admins list every team's hooks, filter by team or channel, page, and get [] or 403."""
    team = factory.team()
    channel = factory.channel(team)
    first = admin.post(
        "/hooks/outgoing",
        {"team_id": team["id"], "channel_id": channel["id"], "callback_urls": [unique_url()]},
        expect=201,
    )
    second = admin.post(
        "/hooks/outgoing",
        {"team_id": team["id"], "trigger_words": ["x"], "callback_urls": [unique_url()]},
        expect=201,
    )
    by_team = admin.get("/hooks/outgoing", params={"team_id": team["id"]})
    assert [h["id"] for h in by_team] == [first["id"], second["id"]]
    assert _ids(admin.get("/hooks/outgoing", params={"channel_id": channel["id"]})) == {first["id"]}
    page = {"team_id": team["id"], "per_page": "1"}
    assert _ids(admin.get("/hooks/outgoing", params={**page, "page": "0"})) == {first["id"]}
    assert _ids(admin.get("/hooks/outgoing", params={**page, "page": "1"})) == {second["id"]}
    assert admin.get("/hooks/outgoing", params={**page, "page": "2"}) == []
    assert admin.get("/hooks/outgoing", params={"team_id": team["id"], "per_page": "0"}) == []
    assert len(admin.get("/hooks/outgoing", params={"per_page": "1"})) == 1
    assert admin.get("/hooks/outgoing", params={"team_id": RANDOM_ID}) == []
    status, error = error_of(admin, "GET", f"/hooks/outgoing?channel_id={RANDOM_ID}")
    assert (status, error) == (403, PERMISSIONS)
    # channel_id wins over team_id
    both = {"channel_id": channel["id"], "team_id": world.team["id"]}
    assert _ids(admin.get("/hooks/outgoing", params=both)) == {first["id"]}


def test_list_all_teams_needs_a_system_admin(admin: Api, world: World) -> None:
    """Without a filter only system admins may list; team admins must pass team_id."""
    hook = create(admin, world)
    found: set[str] = set()
    page = 0
    while hook["id"] not in found:
        batch = admin.get("/hooks/outgoing", params={"page": str(page), "per_page": "200"})
        assert batch, "the new hook is missing from the all-teams listing"
        found |= _ids(batch)
        page += 1
    assert error_of(world.team_admin, "GET", "/hooks/outgoing") == (403, PERMISSIONS)
    assert hook["id"] in _ids(
        world.team_admin.get(
            "/hooks/outgoing", params={"team_id": world.team["id"], "per_page": "200"}
        )
    )


def test_member_without_rights_cannot_list(world: World) -> None:
    """A plain member: 403 for all, team and channel listings."""
    for query in ("", f"?team_id={world.team['id']}", f"?channel_id={world.channel['id']}"):
        assert error_of(world.member, "GET", f"/hooks/outgoing{query}") == (403, PERMISSIONS)


def test_member_lists_only_their_own_hooks(
    admin: Api, world: World, factory: Factory, members_allowed: None
) -> None:
    """With "own" rights a member sees only their hooks; admins see all; other scopes are 403."""
    team = factory.team(world.team_admin)
    channel = factory.channel(team, world.team_admin)
    factory.join(team, world.member)
    theirs = world.member.post(
        "/hooks/outgoing",
        {"team_id": team["id"], "channel_id": channel["id"], "callback_urls": [unique_url()]},
        expect=201,
    )
    admins = admin.post(
        "/hooks/outgoing",
        {"team_id": team["id"], "channel_id": channel["id"], "callback_urls": [unique_url()]},
        expect=201,
    )
    for query in ({"team_id": team["id"]}, {"channel_id": channel["id"]}):
        assert _ids(world.member.get("/hooks/outgoing", params=query)) == {theirs["id"]}
        assert _ids(admin.get("/hooks/outgoing", params=query)) == {theirs["id"], admins["id"]}
        assert _ids(world.team_admin.get("/hooks/outgoing", params=query)) == {
            theirs["id"],
            admins["id"],
        }
    # The owner sees their own token and secret.
    (listed,) = world.member.get("/hooks/outgoing", params={"team_id": team["id"]})
    assert listed["token"] == theirs["token"]
    assert listed["signing_secret"] == theirs["signing_secret"]
    for query in (
        f"?team_id={world.other_team['id']}",
        f"?channel_id={RANDOM_ID}",
        f"?channel_id={world.foreign_channel['id']}",
        "",
    ):
        assert error_of(world.member, "GET", f"/hooks/outgoing{query}") == (403, PERMISSIONS)
    assert error_of(world.member, "GET", f"/hooks/outgoing/{admins['id']}") == (403, PERMISSIONS)


def test_logged_out_session_is_401(factory: Factory, world: World) -> None:
    """After logout the old token is refused."""
    user = factory.user(admin=True)
    assert user.get("/hooks/outgoing", params={"team_id": world.team["id"]}) is not None
    user.post("/users/logout", expect=200)
    status, error = error_of(user, "GET", "/hooks/outgoing")
    assert (status, error) == (401, "api.context.session_expired.app_error")


# --- get ---------------------------------------------------------------------------------------


def test_get_rights_and_errors(admin: Api, world: World) -> None:
    """Get: admins and team admins 200 with secrets; members 403; random id 404; junk 400."""
    hook = create(admin, world)
    path = f"/hooks/outgoing/{hook['id']}"
    assert admin.get(path) == hook
    seen = world.team_admin.get(path)
    assert seen["token"] == hook["token"]
    assert seen["signing_secret"] == hook["signing_secret"]
    assert error_of(world.member, "GET", path) == (403, PERMISSIONS)
    assert error_of(world.outsider, "GET", path) == (403, PERMISSIONS)
    assert error_of(admin, "GET", f"/hooks/outgoing/{RANDOM_ID}") == (404, MISSING)
    assert error_of(admin, "GET", "/hooks/outgoing/junk") == (
        400,
        "api.context.invalid_url_param.app_error",
    )


# --- update ------------------------------------------------------------------------------------


def test_update_applies_changes_and_keeps_server_fields(admin: Api, world: World) -> None:
    """Changed fields apply; create_at, creator and team stay; update_at moves on."""
    hook = create(admin, world, trigger_words=["a"])
    updated = admin.put(
        f"/hooks/outgoing/{hook['id']}",
        {
            **hook,
            "display_name": "New name",
            "description": "New description",
            "creator_id": world.member.user["id"],
            "create_at": 1,
        },
    )
    assert updated["display_name"] == "New name"
    assert updated["description"] == "New description"
    assert updated["create_at"] == hook["create_at"]
    assert updated["update_at"] > hook["update_at"]
    assert updated["creator_id"] == admin.user["id"]
    assert admin.get(f"/hooks/outgoing/{hook['id']}") == updated


def test_update_merges_and_never_blanks_the_token(admin: Api, world: World) -> None:
    """A body with only some fields keeps the rest; an empty or missing token keeps the token."""
    hook = create(
        admin, world, trigger_words=["a", "b"], username="bot", icon_url="http://i.test/x.png"
    )
    path = f"/hooks/outgoing/{hook['id']}"
    updated = admin.put(path, {"display_name": "Only this"})
    assert updated["display_name"] == "Only this"
    same = {k: v for k, v in updated.items() if k not in ("display_name", "update_at")}
    assert same == {k: v for k, v in hook.items() if k not in ("display_name", "update_at")}
    assert admin.put(path, {"id": hook["id"], "token": ""})["token"] == hook["token"]
    cleared = admin.put(path, {"trigger_words": None, "description": ""})
    assert cleared["trigger_words"] == []
    assert cleared["token"] == hook["token"]


def test_update_id_and_team_checks(admin: Api, world: World) -> None:
    """Body id ≠ URL id → 400; another team → 400 team_mismatch; unknown hook 404; junk 400."""
    hook = create(admin, world)
    path = f"/hooks/outgoing/{hook['id']}"
    assert error_of(admin, "PUT", path, {"id": RANDOM_ID}) == (
        400,
        "api.context.invalid_body_param.app_error",
    )
    assert error_of(admin, "PUT", path, {"team_id": world.other_team["id"]}) == (
        400,
        "api.webhook.team_mismatch.app_error",
    )
    assert error_of(admin, "PUT", f"/hooks/outgoing/{RANDOM_ID}", {}) == (404, MISSING)
    assert error_of(admin, "PUT", "/hooks/outgoing/junk", {}) == (
        400,
        "api.context.invalid_url_param.app_error",
    )


def test_update_rights(admin: Api, world: World, members_allowed: None) -> None:
    """Team admins edit anyone's hook (creator kept); members only their own; outsiders 403."""
    admins = create(admin, world)
    path = f"/hooks/outgoing/{admins['id']}"
    edited = world.team_admin.put(path, {"display_name": "by team admin"})
    assert edited["creator_id"] == admin.user["id"]
    assert error_of(world.member, "PUT", path, {"display_name": "x"}) == (403, PERMISSIONS)
    assert error_of(world.outsider, "PUT", path, {"display_name": "x"}) == (403, PERMISSIONS)
    own = create(world.member, world)
    assert (
        world.member.put(f"/hooks/outgoing/{own['id']}", {"display_name": "mine"})["display_name"]
        == "mine"
    )
    assert error_of(world.member2, "PUT", f"/hooks/outgoing/{own['id']}", {}) == (
        403,
        PERMISSIONS,
    )


def test_member_cannot_update_without_the_setting(admin: Api, world: World) -> None:
    """With EnableMemberOutgoingWebhooks off, even a member's own hook is out of reach."""
    with service_settings(admin, EnableMemberOutgoingWebhooks=True):
        own = create(world.member, world)
    assert error_of(world.member, "PUT", f"/hooks/outgoing/{own['id']}", {}) == (
        403,
        PERMISSIONS,
    )


def test_update_channel_rules(admin: Api, world: World) -> None:
    """Update: junk channel 404, private 403 not_open, other team's channel 403, no words 400."""
    hook = create(admin, world, trigger_words=["a"])
    path = f"/hooks/outgoing/{hook['id']}"
    assert error_of(admin, "PUT", path, {"channel_id": "junk"}) == (
        404,
        "app.channel.get.existing.app_error",
    )
    assert error_of(admin, "PUT", path, {"channel_id": world.private["id"]}) == (
        403,
        "api.webhook.create_outgoing.not_open.app_error",
    )
    assert error_of(admin, "PUT", path, {"channel_id": world.foreign_channel["id"]}) == (
        403,
        "api.webhook.create_outgoing.permissions.app_error",
    )
    assert error_of(admin, "PUT", path, {"channel_id": "", "trigger_words": []}) == (
        400,
        "api.webhook.create_outgoing.triggers.app_error",
    )
    moved = admin.put(path, {"channel_id": "", "trigger_words": ["a"]})
    assert moved["channel_id"] == ""


def test_update_conflicts_are_400(admin: Api, world: World) -> None:
    """Taking another hook's word with the same channel and URL → 400; another channel is fine."""
    url = unique_url()
    create(admin, world, callback_urls=[url], trigger_words=["taken"])
    hook = create(admin, world, callback_urls=[url], trigger_words=["free"])
    path = f"/hooks/outgoing/{hook['id']}"
    assert error_of(admin, "PUT", path, {"trigger_words": ["taken"]}) == (
        400,
        "api.webhook.update_outgoing.intersect.app_error",
    )
    moved = admin.put(path, {"trigger_words": ["taken"], "channel_id": world.channel2["id"]})
    assert moved["trigger_words"] == ["taken"]
    # A hook never conflicts with itself.
    assert admin.put(path, {"display_name": "again"})["display_name"] == "again"


# --- delete and regenerate ---------------------------------------------------------------------


def test_delete(admin: Api, world: World, members_allowed: None) -> None:
    """Delete: rights as update; 200 {"status":"OK"}; then gone from get and list."""
    hook = create(admin, world)
    path = f"/hooks/outgoing/{hook['id']}"
    assert error_of(admin, "DELETE", "/hooks/outgoing/abc") == (
        400,
        "api.context.invalid_url_param.app_error",
    )
    assert error_of(admin, "DELETE", f"/hooks/outgoing/{RANDOM_ID}") == (404, MISSING)
    assert error_of(world.member, "DELETE", path) == (403, PERMISSIONS)
    assert admin.delete(path) == {"status": "OK"}
    assert error_of(admin, "GET", path) == (404, MISSING)
    assert error_of(admin, "DELETE", path) == (404, MISSING)
    listed = admin.get(
        "/hooks/outgoing", params={"channel_id": world.channel["id"], "per_page": "200"}
    )
    assert hook["id"] not in _ids(listed)
    own = create(world.member, world)
    assert world.member.delete(f"/hooks/outgoing/{own['id']}") == {"status": "OK"}


def test_member_cannot_delete_without_the_setting(world: World) -> None:
    """A plain member cannot delete a team admin's hook."""
    hook = create(world.team_admin, world)
    assert error_of(world.member, "DELETE", f"/hooks/outgoing/{hook['id']}") == (403, PERMISSIONS)


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_regen_token_returns_the_whole_hook(admin: Api, world: World, method: str) -> None:
    """regen_token (POST or PUT): the whole hook with a new token and a new signing secret."""
    hook = create(admin, world)
    response = admin.request(method, f"/hooks/outgoing/{hook['id']}/regen_token")
    assert response.status_code == 200
    fresh = response.json()
    assert len(fresh["token"]) == 26
    assert fresh["token"] != hook["token"]
    assert fresh["signing_secret"].startswith("whsec_")
    assert fresh["signing_secret"] != hook["signing_secret"]
    unchanged = ("token", "signing_secret", "update_at")
    assert {k: v for k, v in fresh.items() if k not in unchanged} == {
        k: v for k, v in hook.items() if k not in unchanged
    }
    assert admin.get(f"/hooks/outgoing/{hook['id']}") == fresh


def test_regen_token_rights_and_errors(admin: Api, world: World) -> None:
    """regen_token: junk 400, random 404, member 403, team admin 200."""
    hook = create(admin, world)
    assert error_of(admin, "POST", "/hooks/outgoing/junk/regen_token") == (
        400,
        "api.context.invalid_url_param.app_error",
    )
    assert error_of(admin, "POST", f"/hooks/outgoing/{RANDOM_ID}/regen_token") == (404, MISSING)
    assert error_of(world.member, "POST", f"/hooks/outgoing/{hook['id']}/regen_token") == (
        403,
        PERMISSIONS,
    )
    world.team_admin.post(f"/hooks/outgoing/{hook['id']}/regen_token", expect=200)


# --- the feature switch ------------------------------------------------------------------------


def test_every_endpoint_is_501_while_disabled(admin: Api, world: World) -> None:
    """EnableOutgoingWebhooks off → 501 api.outgoing_webhook.disabled.app_error everywhere."""
    hook = create(admin, world)
    path = f"/hooks/outgoing/{hook['id']}"
    requests: list[tuple[str, str, Any]] = [
        ("POST", "/hooks/outgoing", body(world)),
        ("GET", "/hooks/outgoing", None),
        ("GET", f"/hooks/outgoing?team_id={world.team['id']}", None),
        ("GET", path, None),
        ("PUT", path, {"display_name": "x"}),
        ("DELETE", path, None),
        ("POST", f"{path}/regen_token", None),
        ("PUT", f"{path}/regen_token", None),
        ("POST", f"{path}/enable", None),
        ("GET", f"{path}/deliveries", None),
        ("POST", f"{path}/ping", None),
    ]
    with service_settings(admin, EnableOutgoingWebhooks=False):
        for method, url, payload in requests:
            assert error_of(admin, method, url, payload) == (
                501,
                "api.outgoing_webhook.disabled.app_error",
            ), (method, url)
    assert admin.get(path) == hook


# --- fields beyond Mattermost (docs/integrations.md) --------------------------------------------


def test_the_opt_ins_default_off_and_round_trip(admin: Api, world: World) -> None:
    """A hook made with Mattermost's fields only has every opt-in off, the server's timeout and
    no stop reason; each opt-in is stored as sent, and a PUT that leaves one out keeps it."""
    plain = create(admin, world)
    assert (
        plain["extended_payload"],
        plain["trigger_on_bot_posts"],
        plain["timeout_seconds"],
        plain["stopped_reason"],
    ) == (False, False, 0, "")
    hook = create(admin, world, extended_payload=True, trigger_on_bot_posts=True, timeout_seconds=7)
    assert (hook["extended_payload"], hook["trigger_on_bot_posts"], hook["timeout_seconds"]) == (
        True,
        True,
        7,
    )
    path = f"/hooks/outgoing/{hook['id']}"
    kept = admin.put(path, {"display_name": "Renamed"})
    assert (kept["extended_payload"], kept["trigger_on_bot_posts"], kept["timeout_seconds"]) == (
        True,
        True,
        7,
    )
    changed = admin.put(path, {"extended_payload": False, "timeout_seconds": 0})
    assert (changed["extended_payload"], changed["trigger_on_bot_posts"]) == (False, True)
    assert changed["timeout_seconds"] == 0
    assert admin.put(path, {"timeout_seconds": 9})["timeout_seconds"] == 9
    assert admin.put(path, {"timeout_seconds": None})["timeout_seconds"] == 0
    assert admin.get(path) == admin.get(f"/hooks/outgoing/{hook['id']}")


@pytest.mark.parametrize(
    ("fields", "error_id"),
    [
        ({"extended_payload": "yes"}, "api.context.invalid_body_param.app_error"),
        ({"trigger_on_bot_posts": 1}, "api.context.invalid_body_param.app_error"),
        ({"timeout_seconds": "5"}, "api.context.invalid_body_param.app_error"),
        ({"timeout_seconds": 301}, "model.outgoing_hook.is_valid.timeout_seconds.app_error"),
        ({"timeout_seconds": -1}, "model.outgoing_hook.is_valid.timeout_seconds.app_error"),
    ],
)
def test_the_opt_ins_are_validated(
    admin: Api, world: World, fields: dict[str, Any], error_id: str
) -> None:
    """Wrong types and out-of-range timeouts are 400s with Mattermost's error shape, on create
    and on update, and an update refused leaves the hook as it was."""
    assert error_of(admin, "POST", "/hooks/outgoing", body(world, **fields)) == (400, error_id)
    hook = create(admin, world)
    path = f"/hooks/outgoing/{hook['id']}"
    assert error_of(admin, "PUT", path, fields) == (400, error_id)
    assert admin.get(path) == hook
