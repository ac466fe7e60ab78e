"""The API's permission matrix: every route of ``tidings.api`` × anonymous, outsider, team
member, channel member, hook owner, team admin, system admin and deactivated user — the status
each may get, Mattermost's error shape, and no token, secret or private content in any answer.

One server on its own database, one seeded world (``tests/permission_matrix.py``). Routes that
change something act on throwaway objects for the roles allowed to, so the world stays as
seeded; refused roles are pointed at the real thing and must leave it alone.
"""

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from permission_matrix import (
    DM_READERS,
    HOOK_MANAGERS,
    ORACLE,
    PRIVATE_READERS,
    ROLES,
    SHOWN_SOMEWHERE,
    SIGNED_IN,
    TEAM,
    TEAM_ADMINS,
    Case,
    Req,
    World,
    app_routes,
    everyone,
    is_api_route,
    is_web_route,
    new_client,
    rule,
    run_cell,
    seeded_world,
)
from support import PASSWORD

pytestmark = pytest.mark.db

TEAM_AND_ADMIN = TEAM | {"system_admin"}
PUBLIC_MEMBERS = frozenset({"channel_member", "hook_owner", "team_admin", "system_admin"})


def fixed(make: Callable[[World], Req]) -> Callable[[World, str, bool], Req]:
    return lambda w, role, ghost: make(w)


def target(make: Callable[[World, bool], Req]) -> Callable[[World, str, bool], Req]:
    """A request about one object: the real one, or (for an oracle cell's twin) a missing one."""
    return lambda w, role, ghost: make(w, ghost)


def _id(w: World, ghost: bool, real: str) -> str:
    """The real object's id, or (for an oracle cell's twin request) one nothing has."""
    return w.ghost if ghost else real


def channel_cases(method: str, path: str, ok: int = 200) -> list[Case]:
    """A route about one channel, for the public, the private and the direct channel."""
    return [
        Case(
            method,
            path,
            "public",
            target(lambda w, g: Req({"channel_id": _id(w, g, w.public["id"])})),
            rule(TEAM_AND_ADMIN, ok),
        ),
        Case(
            method,
            path,
            "private",
            target(lambda w, g: Req({"channel_id": _id(w, g, w.private["id"])})),
            rule(PRIVATE_READERS, ok, ORACLE),
        ),
        Case(
            method,
            path,
            "direct",
            target(lambda w, g: Req({"channel_id": _id(w, g, w.direct["id"])})),
            rule(DM_READERS, ok, ORACLE),
        ),
    ]


def post_cases(method: str, path: str) -> list[Case]:
    return [
        Case(
            method,
            path,
            "public",
            fixed(lambda w: Req({"post_id": w.public_post["id"]})),
            rule(TEAM_AND_ADMIN),
        ),
        Case(
            method,
            path,
            "private",
            fixed(lambda w: Req({"post_id": w.private_post["id"]})),
            rule(PRIVATE_READERS, 200, {403, 404}),
        ),
        Case(
            method,
            path,
            "direct",
            fixed(lambda w: Req({"post_id": w.dm_post["id"]})),
            rule(DM_READERS, 200, {403, 404}),
        ),
    ]


def _new_user(w: World) -> Req:
    name = w.unique("signup")
    return Req(json={"username": name, "email": f"{name}@example.test", "password": PASSWORD})


def _hook_for(w: World, role: str) -> str:
    """The real hook for roles that must be refused; a throwaway one for those allowed."""
    return str(w.throwaway_hook()["id"]) if role in HOOK_MANAGERS else str(w.hook["id"])


def _post_for(w: World, role: str, channel: str, readers: frozenset[str]) -> str:
    if role in readers:
        return str(w.throwaway_post(getattr(w, channel))["id"])
    return str(w.editable_post["id"] if channel == "public" else w.private_post["id"])


def _creator_ignored_or_refused(w: World, role: str, response: httpx.Response) -> None:
    """Only a system admin may create a hook on someone else's behalf (issue #10 item 8)."""
    if response.status_code == 201 and role != "system_admin":
        assert response.json()["creator_id"] == w.actors[role].id, (
            f"{role} created a hook on the hook owner's behalf"
        )


def _config_kept(w: World, role: str, response: httpx.Response) -> None:
    """PUT /config replaces the whole document: sending the current one back keeps the world's
    settings (the hooks the later cells fire stay enabled)."""
    if response.status_code == 200:
        settings = response.json()["ServiceSettings"]
        assert settings["EnableOutgoingWebhooks"] is True, settings
        assert w.admin.get("/config") == response.json()


def _hook_body(w: World, **extra: Any) -> Req:
    return Req(
        json={
            "team_id": w.team["id"],
            "channel_id": w.public["id"],
            "trigger_words": [w.unique("word")],
            "callback_urls": [f"{w.receiver.url}/{w.unique('c')}"],
            "display_name": "Matrix cell",
            **extra,
        }
    )


CASES: list[Case] = [
    # --- users and sessions ---------------------------------------------------------------
    Case(
        "POST",
        "/api/v4/users",
        "sign-up without an invitation",
        fixed(_new_user),
        rule({"system_admin"}, 201, anonymous=403, deactivated={401, 403}),
    ),
    Case(
        "POST",
        "/api/v4/users/login",
        "unknown login id",
        fixed(lambda w: Req(json={"login_id": w.unique("nobody"), "password": PASSWORD})),
        everyone(401),
    ),
    Case(
        "POST",
        "/api/v4/users/login",
        "the right password",
        fixed(lambda w: Req(json={"login_id": w.signin.user["username"], "password": PASSWORD})),
        everyone(200),
    ),
    Case(
        "POST",
        "/api/v4/users/logout",
        "a second session",
        fixed(lambda w: Req(fresh_session=True)),
        rule(SIGNED_IN),
    ),
    Case("GET", "/api/v4/users", "all", fixed(lambda w: Req()), rule(SIGNED_IN)),
    Case(
        "POST",
        "/api/v4/users/ids",
        "every role",
        fixed(lambda w: Req(json=[a.id for a in w.actors.values()])),
        rule(SIGNED_IN),
    ),
    Case("GET", "/api/v4/users/me", "me", fixed(lambda w: Req()), rule(SIGNED_IN)),
    Case(
        "GET",
        "/api/v4/users/username/{username}",
        "channel member",
        fixed(lambda w: Req({"username": w.actors["channel_member"].user["username"]})),
        rule(SIGNED_IN),
    ),
    Case(
        "GET",
        "/api/v4/users/{user_id}",
        "channel member",
        fixed(lambda w: Req({"user_id": w.actors["channel_member"].id})),
        rule(SIGNED_IN),
    ),
    Case(
        "PUT",
        "/api/v4/users/{user_id}/patch",
        "someone else",
        fixed(lambda w: Req({"user_id": w.victim.id}, json={"nickname": "victim"})),
        rule({"system_admin"}),
    ),
    Case(
        "PUT",
        "/api/v4/users/{user_id}/password",
        "someone else",
        fixed(lambda w: Req({"user_id": w.victim.id}, json={"new_password": PASSWORD})),
        rule({"system_admin"}),
    ),
    Case(
        "PUT",
        "/api/v4/users/{user_id}/roles",
        "someone else",
        fixed(lambda w: Req({"user_id": w.victim.id}, json={"roles": "system_user"})),
        rule({"system_admin"}),
    ),
    Case(
        "PUT",
        "/api/v4/users/{user_id}/active",
        "someone else",
        fixed(lambda w: Req({"user_id": w.victim.id}, json={"active": True})),
        rule({"system_admin"}),
    ),
    Case(
        "GET",
        "/api/v4/users/{user_id}/teams",
        "me",
        fixed(lambda w: Req({"user_id": "me"})),
        rule(SIGNED_IN),
    ),
    Case(
        "GET",
        "/api/v4/users/{user_id}/teams",
        "the channel member's",
        fixed(lambda w: Req({"user_id": w.actors["channel_member"].id})),
        rule({"channel_member", "system_admin"}),
    ),
    Case(
        "GET",
        "/api/v4/users/{user_id}/teams/{team_id}/channels",
        "the channel member's",
        fixed(lambda w: Req({"user_id": w.actors["channel_member"].id, "team_id": w.team["id"]})),
        rule({"channel_member", "system_admin"}),
    ),
    Case(
        "GET",
        "/api/v4/users/{user_id}/teams/{team_id}/channels/members",
        "the channel member's",
        fixed(lambda w: Req({"user_id": w.actors["channel_member"].id, "team_id": w.team["id"]})),
        rule({"channel_member", "system_admin"}),
    ),
    # --- teams ----------------------------------------------------------------------------
    Case(
        "POST",
        "/api/v4/teams",
        "a new team",
        fixed(lambda w: Req(json={"name": w.unique("t"), "display_name": "T", "type": "O"})),
        rule(SIGNED_IN, 201),
    ),
    Case("GET", "/api/v4/teams", "all", fixed(lambda w: Req()), rule(SIGNED_IN)),
    Case(
        "GET",
        "/api/v4/teams/name/{name}",
        "open team",
        fixed(lambda w: Req({"name": w.team["name"]})),
        rule(SIGNED_IN),
    ),
    Case(
        "GET",
        "/api/v4/teams/name/{name}",
        "invite-only team",
        target(lambda w, g: Req({"name": "nosuchteam" if g else w.closed_team["name"]})),
        rule(TEAM_ADMINS, 200, ORACLE),
    ),
    Case(
        "GET",
        "/api/v4/teams/name/{team_name}/channels/name/{channel_name}",
        "public",
        fixed(lambda w: Req({"team_name": w.team["name"], "channel_name": "pub"})),
        rule(TEAM_AND_ADMIN),
    ),
    Case(
        "GET",
        "/api/v4/teams/name/{team_name}/channels/name/{channel_name}",
        "private",
        target(
            lambda w, g: Req(
                {"team_name": w.team["name"], "channel_name": "nosuchchannel" if g else "priv"}
            )
        ),
        rule(PRIVATE_READERS, 200, ORACLE),
    ),
    Case(
        "GET",
        "/api/v4/teams/{team_id}",
        "open team",
        fixed(lambda w: Req({"team_id": w.team["id"]})),
        rule(SIGNED_IN),
    ),
    Case(
        "GET",
        "/api/v4/teams/{team_id}",
        "invite-only team",
        target(lambda w, g: Req({"team_id": _id(w, g, w.closed_team["id"])})),
        rule(TEAM_ADMINS, 200, ORACLE),
    ),
    Case(
        "GET",
        "/api/v4/teams/{team_id}/members",
        "open team",
        fixed(lambda w: Req({"team_id": w.team["id"]})),
        rule(TEAM_AND_ADMIN),
    ),
    Case(
        "GET",
        "/api/v4/teams/{team_id}/members",
        "invite-only team",
        target(lambda w, g: Req({"team_id": _id(w, g, w.closed_team["id"])})),
        rule(TEAM_ADMINS, 200, ORACLE),
    ),
    Case(
        "POST",
        "/api/v4/teams/{team_id}/members",
        "someone else, open team",
        fixed(lambda w: Req({"team_id": w.team["id"]}, json={"user_id": w.victim.id})),
        rule(TEAM_ADMINS, 201),
    ),
    Case(
        "POST",
        "/api/v4/teams/{team_id}/members",
        "someone else, invite-only team",
        target(
            lambda w, g: Req(
                {"team_id": _id(w, g, w.closed_team["id"])}, json={"user_id": w.bystander.id}
            )
        ),
        rule(TEAM_ADMINS, 201, ORACLE),
    ),
    Case(
        "GET",
        "/api/v4/teams/{team_id}/members/{user_id}",
        "open team",
        fixed(lambda w: Req({"team_id": w.team["id"], "user_id": w.actors["channel_member"].id})),
        rule(TEAM_AND_ADMIN),
    ),
    Case(
        "GET",
        "/api/v4/teams/{team_id}/members/{user_id}",
        "invite-only team",
        target(
            lambda w, g: Req(
                {"team_id": _id(w, g, w.closed_team["id"]), "user_id": w.actors["team_admin"].id}
            )
        ),
        rule(TEAM_ADMINS, 200, ORACLE),
    ),
    Case(
        "GET",
        "/api/v4/teams/{team_id}/channels",
        "open team",
        fixed(lambda w: Req({"team_id": w.team["id"]})),
        rule(TEAM_AND_ADMIN),
    ),
    Case(
        "GET",
        "/api/v4/teams/{team_id}/channels",
        "invite-only team",
        target(lambda w, g: Req({"team_id": _id(w, g, w.closed_team["id"])})),
        rule(TEAM_ADMINS, 200, ORACLE),
    ),
    Case(
        "GET",
        "/api/v4/teams/{team_id}/channels/name/{channel_name}",
        "public",
        fixed(lambda w: Req({"team_id": w.team["id"], "channel_name": "pub"})),
        rule(TEAM_AND_ADMIN),
    ),
    Case(
        "GET",
        "/api/v4/teams/{team_id}/channels/name/{channel_name}",
        "private",
        target(
            lambda w, g: Req(
                {"team_id": w.team["id"], "channel_name": "nosuchchannel" if g else "priv"}
            )
        ),
        rule(PRIVATE_READERS, 200, ORACLE),
    ),
    # --- channels -------------------------------------------------------------------------
    Case(
        "POST",
        "/api/v4/channels",
        "open team",
        fixed(
            lambda w: Req(
                json={"team_id": w.team["id"], "name": w.unique("c"), "display_name": "C"}
            )
        ),
        rule(TEAM_AND_ADMIN, 201),
    ),
    Case(
        "POST",
        "/api/v4/channels",
        "invite-only team",
        target(
            lambda w, g: Req(
                json={
                    "team_id": _id(w, g, w.closed_team["id"]),
                    "name": w.unique("c"),
                    "display_name": "C",
                }
            )
        ),
        rule(TEAM_ADMINS, 201, ORACLE),
    ),
    Case(
        "POST",
        "/api/v4/channels/direct",
        "someone else's direct channel",
        fixed(lambda w: Req(json=[w.actors["channel_member"].id, w.actors["hook_owner"].id])),
        rule(DM_READERS, 201),
    ),
    *channel_cases("GET", "/api/v4/channels/{channel_id}"),
    *channel_cases("GET", "/api/v4/channels/{channel_id}/members"),
    *channel_cases("GET", "/api/v4/channels/{channel_id}/posts"),
    Case(
        "POST",
        "/api/v4/channels/{channel_id}/members",
        "someone else, public",
        fixed(lambda w: Req({"channel_id": w.public["id"]}, json={"user_id": w.victim.id})),
        rule(PUBLIC_MEMBERS, 201),
    ),
    Case(
        "POST",
        "/api/v4/channels/{channel_id}/members",
        "someone else, private",
        target(
            lambda w, g: Req(
                {"channel_id": _id(w, g, w.private["id"])}, json={"user_id": w.victim.id}
            )
        ),
        rule({"channel_member", "team_admin", "system_admin"}, 201, ORACLE),
    ),
    Case(
        "POST",
        "/api/v4/channels/{channel_id}/members",
        "someone else, direct",
        target(
            lambda w, g: Req(
                {"channel_id": _id(w, g, w.direct["id"])}, json={"user_id": w.victim.id}
            )
        ),
        rule(DM_READERS, 400, ORACLE),
    ),
    Case(
        "DELETE",
        "/api/v4/channels/{channel_id}/members/{user_id}",
        "someone not in it, public",
        fixed(lambda w: Req({"channel_id": w.public["id"], "user_id": w.bystander.id})),
        rule(PUBLIC_MEMBERS),
    ),
    Case(
        "DELETE",
        "/api/v4/channels/{channel_id}/members/{user_id}",
        "someone not in it, private",
        target(
            lambda w, g: Req({"channel_id": _id(w, g, w.private["id"]), "user_id": w.bystander.id})
        ),
        rule({"channel_member", "team_admin", "system_admin"}, 200, ORACLE),
    ),
    Case(
        "DELETE",
        "/api/v4/channels/{channel_id}/members/{user_id}",
        "leave a private channel one is not in",
        lambda w, role, g: Req(
            {
                "channel_id": _id(w, g, w.private["id"]),
                # The channel member would really leave; they remove someone not in it instead.
                "user_id": w.bystander.id if role == "channel_member" else "me",
            }
        ),
        # The team admin manages the members of every channel of the team, so the channel is
        # no secret to them and leaving it while not in it is the same no-op as for others.
        rule({"channel_member", "team_admin", "system_admin"}, 200, ORACLE),
    ),
    Case(
        "POST",
        "/api/v4/channels/members/{user_id}/view",
        "a private channel",
        fixed(lambda w: Req({"user_id": "me"}, json={"channel_id": w.private["id"]})),
        rule(SIGNED_IN),
    ),
    # --- posts ----------------------------------------------------------------------------
    Case(
        "POST",
        "/api/v4/posts",
        "public",
        fixed(lambda w: Req(json={"channel_id": w.public["id"], "message": "matrix"})),
        rule(PUBLIC_MEMBERS, 201),
    ),
    Case(
        "POST",
        "/api/v4/posts",
        "private",
        target(lambda w, g: Req(json={"channel_id": _id(w, g, w.private["id"]), "message": "m"})),
        rule(PRIVATE_READERS, 201, ORACLE),
    ),
    Case(
        "POST",
        "/api/v4/posts",
        "direct",
        target(lambda w, g: Req(json={"channel_id": _id(w, g, w.direct["id"]), "message": "m"})),
        rule({"channel_member", "hook_owner"}, 201, ORACLE, system_admin=403),
    ),
    *post_cases("GET", "/api/v4/posts/{post_id}"),
    *post_cases("GET", "/api/v4/posts/{post_id}/thread"),
    *[
        Case(
            "PUT",
            path,
            name,
            fixed(lambda w, key=key, body=body: Req({"post_id": getattr(w, key)["id"]}, json=body)),
            expect,
        )
        for path in ("/api/v4/posts/{post_id}/patch", "/api/v4/posts/{post_id}")
        for name, key, body, expect in (
            (
                "someone's public post",
                "editable_post",
                {"message": "editable"},
                rule({"channel_member", "team_admin", "system_admin"}),
            ),
            (
                "someone's private post",
                "private_post",
                {"props": {"matrix": "1"}},
                rule(PRIVATE_READERS, 200, {403, 404}),
            ),
        )
    ],
    Case(
        "DELETE",
        "/api/v4/posts/{post_id}",
        "someone's public post",
        lambda w, role, g: Req(
            {
                "post_id": _post_for(
                    w, role, "public", frozenset({"channel_member", "team_admin", "system_admin"})
                )
            }
        ),
        rule({"channel_member", "team_admin", "system_admin"}),
    ),
    Case(
        "DELETE",
        "/api/v4/posts/{post_id}",
        "someone's private post",
        lambda w, role, g: Req({"post_id": _post_for(w, role, "private", PRIVATE_READERS)}),
        rule(PRIVATE_READERS, 200, {403, 404}),
    ),
    # --- outgoing hooks and their delivery log --------------------------------------------
    Case(
        "POST",
        "/api/v4/hooks/outgoing",
        "one's own",
        fixed(_hook_body),
        rule(TEAM_AND_ADMIN, 201),
    ),
    Case(
        "POST",
        "/api/v4/hooks/outgoing",
        "on the hook owner's behalf",
        fixed(lambda w: _hook_body(w, creator_id=w.actors["hook_owner"].id)),
        rule(
            {"system_admin"},
            201,
            403,
            team_member={201, 403},
            channel_member={201, 403},
            hook_owner={201, 403},
            team_admin={201, 403},
        ),
        verify=_creator_ignored_or_refused,
    ),
    Case(
        "GET",
        "/api/v4/hooks/outgoing",
        "the team's",
        fixed(lambda w: Req(query={"team_id": w.team["id"]})),
        rule(TEAM_AND_ADMIN),
    ),
    Case(
        "GET",
        "/api/v4/hooks/outgoing",
        "the public channel's",
        fixed(lambda w: Req(query={"channel_id": w.public["id"]})),
        rule(TEAM_AND_ADMIN),
    ),
    Case(
        "GET",
        "/api/v4/hooks/outgoing",
        "every team's",
        fixed(lambda w: Req()),
        rule({"system_admin"}),
    ),
    Case(
        "GET",
        "/api/v4/hooks/outgoing/{hook_id}",
        "the hook owner's",
        fixed(lambda w: Req({"hook_id": w.hook["id"]})),
        rule(HOOK_MANAGERS),
    ),
    Case(
        "PUT",
        "/api/v4/hooks/outgoing/{hook_id}",
        "the hook owner's",
        fixed(lambda w: Req({"hook_id": w.hook["id"]}, json={"display_name": "Matrix hook"})),
        rule(HOOK_MANAGERS),
    ),
    Case(
        "DELETE",
        "/api/v4/hooks/outgoing/{hook_id}",
        "the hook owner's",
        lambda w, role, g: Req({"hook_id": _hook_for(w, role)}),
        rule(HOOK_MANAGERS),
    ),
    *[
        Case(
            method,
            "/api/v4/hooks/outgoing/{hook_id}/regen_token",
            "the hook owner's",
            lambda w, role, g: Req({"hook_id": _hook_for(w, role)}),
            rule(HOOK_MANAGERS),
        )
        for method in ("PUT", "POST")
    ],
    Case(
        "POST",
        "/api/v4/hooks/outgoing/{hook_id}/enable",
        "the hook owner's",
        fixed(lambda w: Req({"hook_id": w.hook["id"]})),
        rule(HOOK_MANAGERS),
    ),
    Case(
        "GET",
        "/api/v4/hooks/outgoing/{hook_id}/deliveries",
        "the hook owner's",
        fixed(lambda w: Req({"hook_id": w.hook["id"]})),
        rule(HOOK_MANAGERS),
    ),
    Case(
        "GET",
        "/api/v4/hooks/outgoing/{hook_id}/deliveries/{delivery_id}",
        "with its reply",
        fixed(lambda w: Req({"hook_id": w.hook["id"], "delivery_id": w.delivery["id"]})),
        rule(HOOK_MANAGERS),
    ),
    Case(
        "POST",
        "/api/v4/hooks/outgoing/{hook_id}/deliveries/{delivery_id}/redeliver",
        "with its reply",
        fixed(lambda w: Req({"hook_id": w.hook["id"], "delivery_id": w.delivery["id"]})),
        # 400 while the previous cell's redelivery is still on its way.
        rule(HOOK_MANAGERS, {200, 400}),
    ),
    Case(
        "POST",
        "/api/v4/hooks/outgoing/{hook_id}/redeliver",
        "failed since a time",
        fixed(lambda w: Req({"hook_id": w.hook["id"]}, json={"since": 0, "status": "failed"})),
        rule(HOOK_MANAGERS),
    ),
    Case(
        "POST",
        "/api/v4/hooks/outgoing/{hook_id}/ping",
        "the hook owner's",
        fixed(lambda w: Req({"hook_id": w.hook["id"]})),
        rule(HOOK_MANAGERS),
    ),
    # --- deferred replies: the secret in the path is the only credential --------------------
    Case(
        "POST",
        "/hooks/responses/{secret}",
        "an unknown secret",
        fixed(lambda w: Req({"secret": "x" * 43}, json={"text": "hi"})),
        everyone(404),
    ),
    # --- system ---------------------------------------------------------------------------
    Case("GET", "/api/v4/system/ping", "health", fixed(lambda w: Req()), everyone(200)),
    Case("GET", "/api/v4/config", "full", fixed(lambda w: Req()), rule({"system_admin"})),
    Case(
        "PUT",
        "/api/v4/config",
        "the current config",
        fixed(lambda w: Req(json=w.admin.get("/config"))),
        rule({"system_admin"}),
        verify=_config_kept,
    ),
    Case(
        "PUT",
        "/api/v4/config/patch",
        "empty patch",
        fixed(lambda w: Req(json={})),
        rule({"system_admin"}),
    ),
    Case(
        "GET",
        "/api/v4/config/client",
        "old format",
        fixed(lambda w: Req(query={"format": "old"})),
        everyone(200),
    ),
    Case("GET", "/metrics", "prometheus", fixed(lambda w: Req()), rule({"system_admin"})),
    Case("GET", "/api/v4/openapi.json", "document", fixed(lambda w: Req()), everyone(200)),
    Case("GET", "/api/v4/docs", "page", fixed(lambda w: Req()), everyone(200)),
    Case(
        "MOUNT",
        "/api/v4/docs/assets",
        "script",
        fixed(lambda w: Req({"file": "swagger-ui-bundle.js"})),
        everyone(200),
    ),
]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with seeded_world() as seeded:
        yield seeded


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[httpx.Client]:
    with new_client(world) as c:
        yield c


def test_every_api_route_has_an_expectation(world: World) -> None:
    """A route added to the API without a row in this matrix fails here (and a stale row too)."""
    routes = app_routes(world.server.app)
    unowned = {r for r in routes if not (is_api_route(r[2], r[1]) or is_web_route(r[2], r[1]))}
    assert not unowned, f"routes neither matrix owns: {sorted(unowned)}"
    served = {(m, p) for m, p, module in routes if is_api_route(module, p)}
    covered = {(c.method, c.path) for c in CASES}
    assert served - covered == set(), f"API routes without a matrix row: {sorted(served - covered)}"
    assert covered - served == set(), f"matrix rows for no route: {sorted(covered - served)}"
    assert all(set(c.expect) == set(ROLES) for c in CASES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_api_cell(world: World, client: httpx.Client, case: Case, role: str) -> None:
    """The role gets the status the matrix allows, and nothing it must not see."""
    run_cell(world, client, case, role, web=False)


def test_the_matrix_showed_every_secret_to_someone_allowed(world: World) -> None:
    """Each marker reached a role allowed to see it, so the leak checks searched real answers."""
    assert set(SHOWN_SOMEWHERE) - world.seen == set()


def test_the_world_is_intact_after_the_matrix(world: World) -> None:
    """Cells that change things touched only throwaway objects: the seeded secrets still hold."""
    owner = world.api_as("hook_owner")
    hook = owner.get(f"/hooks/outgoing/{world.hook['id']}")
    assert hook["token"] == world.hook["token"]
    assert hook["signing_secret"] == world.hook["signing_secret"]
    post = world.api_as("channel_member").get(f"/posts/{world.private_post['id']}")
    assert post["message"].startswith("SECRET-PRIVATE-POST-")
    members = world.api_as("channel_member").get(f"/channels/{world.private['id']}/members")
    assert world.actors["channel_member"].id in {m["user_id"] for m in members}
