"""The web client's permission matrix: every page route of ``tidings.web``, the static files and
the websocket × the eight roles of ``tests/permission_matrix.py`` — the status each may get and
no token, secret or private content in any page, fragment, header or websocket event.

Pages authenticate by the session cookie and forms carry the session's CSRF token, as a
browser's would; without a session a page sends the visitor to sign in (303) and a fragment
answers 401. Forms that change something act on throwaway objects for the roles allowed to.
"""

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from permission_matrix import (
    DM_READERS,
    HOOK_MANAGERS,
    ORACLE,
    PRIVATE_READERS,
    ROLES,
    SHOWN_SOMEWHERE,
    SIGNED_IN,
    TEAM,
    Case,
    Expect,
    Marker,
    Oracle,
    Req,
    World,
    app_routes,
    check_no_leak,
    everyone,
    is_web_route,
    new_client,
    rule,
    run_cell,
    seeded_world,
)
from support import PASSWORD

pytestmark = pytest.mark.db

HOOK_PAGES = frozenset({"hook_owner", "team_admin"})  # hook managers who belong to the team
WEBSOCKET = ("WS", "/api/v4/websocket")
TIMEOUT = 5.0


def page_rule(
    allowed: frozenset[str] | set[str],
    ok: int | set[int] = 200,
    refused: int | set[int] | Oracle = 403,
    **exceptions: int | set[int] | Oracle,
) -> dict[str, Expect]:
    """Like ``rule``, but without a session a page redirects to sign-in."""
    return rule(allowed, ok, refused, anonymous=303, **exceptions)


def fragment_rule(allowed: frozenset[str], refused: int | set[int] | Oracle) -> dict[str, Expect]:
    return rule(allowed, 200, refused, anonymous=401)


def fixed(make: Callable[[World], Req]) -> Callable[[World, str, bool], Req]:
    return lambda w, role, ghost: make(w)


def _id(w: World, ghost: bool, real: str) -> str:
    """The real object's id, or (for an oracle cell's twin request) one nothing has."""
    return w.ghost if ghost else real


def team(w: World) -> str:
    return str(w.team["name"])


def _anonymous_form(w: World, **fields: str) -> Req:
    """A sign-in or sign-up form with its double-submit cookie."""
    token = "matrixformtoken"
    return Req(form={"csrf_token": token, **fields}, cookies={"tidings_form": token})


def _profile(w: World, role: str, ghost: bool) -> Req:
    user = w.actors[role].user if role in w.actors else {}
    keys = ("nickname", "first_name", "last_name", "position", "email")
    return Req(form={k: str(user.get(k, "")) for k in keys})


def _hook_form(w: World, hook: dict[str, Any]) -> dict[str, str]:
    return {
        "id": hook["id"],
        "display_name": hook["display_name"],
        "description": hook["description"],
        "content_type": hook["content_type"],
        "channel_id": hook["channel_id"],
        "trigger_words": ", ".join(hook["trigger_words"]),
        "trigger_when": str(hook["trigger_when"]),
        "callback_urls": "\n".join(hook["callback_urls"]),
        "username": hook["username"],
        "icon_url": hook["icon_url"],
        "timeout_seconds": "",
    }


def _new_hook_form(w: World) -> Req:
    return Req(
        {"team_name": team(w)},
        form={
            "display_name": "Matrix cell",
            "content_type": "application/json",
            "channel_id": w.public["id"],
            "trigger_words": w.unique("word"),
            "trigger_when": "0",
            "callback_urls": f"{w.receiver.url}/{w.unique('c')}",
        },
    )


def _hook_action(w: World, role: str, ghost: bool) -> Req:
    """Regenerate or delete: a throwaway hook for the roles allowed, the real one otherwise."""
    hook_id = w.throwaway_hook()["id"] if role in HOOK_MANAGERS else w.hook["id"]
    return Req({"team_name": team(w)}, form={"id": hook_id})


HOOKS = "/{team_name}/integrations/outgoing_webhooks"
NO_CSRF = {"csrf_token": "not-the-session-token"}


def _join_form(w: World, role: str, ghost: bool) -> Req:
    """Join: a throwaway public channel (the team admin's) for the team's roles, who may; the
    seeded public channel for the others, who must be refused and leave it alone."""
    name = "pub"
    if role in TEAM:
        name = w.unique("join")
        w.api_as("team_admin").post(
            "/channels",
            {"team_id": w.team["id"], "name": name, "display_name": "Join me", "type": "O"},
            expect=201,
        )
    return Req({"team_name": team(w), "channel_name": name}, form={})


def _joined(w: World, role: str, response: httpx.Response) -> None:
    """A 303 from Join means the role now belongs to the channel it was sent back to (without
    a session, the 303 goes to sign-in)."""
    if role not in TEAM:
        return
    name = response.headers["location"].rsplit("/", 1)[-1]
    channel = w.admin.get(f"/teams/{w.team['id']}/channels/name/{name}")
    members = w.admin.get(f"/channels/{channel['id']}/members")
    assert w.actors[role].id in {m["user_id"] for m in members}, (role, name)


def _open_form(w: World, role: str, ghost: bool) -> Req:
    """Open a DM: with a new user for the team's roles (so the POST really creates it), with
    the victim for the others, who must be refused."""
    username = str(w.victim.user["username"])
    if role in TEAM:
        username = w.unique("partner")
        w.admin.post(
            "/users",
            {"username": username, "email": f"{username}@example.test", "password": PASSWORD},
            expect=201,
        )
    return Req({"team_name": team(w), "username": username}, form={})


def _opened(w: World, role: str, response: httpx.Response) -> None:
    """A 303 from Open means the DM of the role and the partner now exists."""
    if role not in TEAM:
        return
    username = response.headers["location"].rsplit("@", 1)[-1]
    partner = w.admin.get(f"/users/username/{username}")
    channels = w.admin.get(f"/users/{w.actors[role].id}/teams/{w.team['id']}/channels")
    assert any(c["type"] == "D" and partner["id"] in c["name"] for c in channels), role


CASES: list[Case] = [
    Case("GET", "/favicon.ico", "icon", fixed(lambda w: Req()), everyone(301)),
    Case(
        "MOUNT", "/static", "stylesheet", fixed(lambda w: Req({"file": "tidings.css"})), everyone()
    ),
    Case("GET", "/", "home", fixed(lambda w: Req()), everyone(303)),
    # --- accounts -------------------------------------------------------------------------
    Case(
        "GET",
        "/login",
        "form",
        fixed(lambda w: Req()),
        rule(set(), refused=303, anonymous=200, deactivated=200),
    ),
    Case(
        "POST",
        "/login",
        "unknown login id",
        fixed(lambda w: _anonymous_form(w, login_id=w.unique("nobody"), password=PASSWORD)),
        everyone(401),
    ),
    Case("GET", "/signup_user_complete", "form", fixed(lambda w: Req()), everyone()),
    Case(
        "POST",
        "/signup_user_complete",
        "without an invitation",
        fixed(
            lambda w: _anonymous_form(
                w,
                username=(name := w.unique("signup")),
                email=f"{name}@example.test",
                password=PASSWORD,
            )
        ),
        everyone(403),
    ),
    Case("GET", "/logout", "form", fixed(lambda w: Req()), page_rule(SIGNED_IN)),
    Case(
        "POST",
        "/logout",
        "a second session",
        fixed(lambda w: Req(form={}, fresh_session=True)),
        everyone(303),
    ),
    Case("GET", "/account_settings", "page", fixed(lambda w: Req()), page_rule(SIGNED_IN)),
    Case(
        "POST",
        "/account_settings/profile",
        "unchanged",
        _profile,
        page_rule(SIGNED_IN, 303),
    ),
    Case(
        "POST",
        "/account_settings/password",
        "wrong current password",
        fixed(
            lambda w: Req(
                form={
                    "current_password": "not-the-password",
                    "new_password": PASSWORD,
                    "confirm_password": PASSWORD,
                }
            )
        ),
        page_rule(SIGNED_IN, 400),
    ),
    # --- System Console -------------------------------------------------------------------
    Case("GET", "/admin_console", "entry", fixed(lambda w: Req()), everyone(303)),
    Case(
        "GET",
        "/admin_console/service_settings",
        "page",
        fixed(lambda w: Req()),
        page_rule({"system_admin"}),
    ),
    Case(
        "POST",
        "/admin_console/service_settings",
        "an invalid number",
        fixed(lambda w: Req(form={"ServiceSettings.OutgoingIntegrationRequestsTimeout": "x"})),
        page_rule({"system_admin"}, 400),
    ),
    Case(
        "GET", "/admin_console/users", "page", fixed(lambda w: Req()), page_rule({"system_admin"})
    ),
    Case(
        "POST",
        "/admin_console/users/create",
        "a new account",
        fixed(
            lambda w: Req(
                form={
                    "username": (name := w.unique("made")),
                    "email": f"{name}@example.test",
                    "password": PASSWORD,
                }
            )
        ),
        page_rule({"system_admin"}, 303),
    ),
    *[
        Case(
            "POST",
            f"/admin_console/users/{change}",
            "someone else",
            fixed(lambda w, form=form: Req(form={"user_id": w.victim.id, **form})),
            page_rule({"system_admin"}, 303),
        )
        for change, form in (
            ("roles", {}),
            ("active", {"active": "on"}),
            ("password", {"new_password": PASSWORD}),
        )
    ],
    Case(
        "GET", "/admin_console/teams", "page", fixed(lambda w: Req()), page_rule({"system_admin"})
    ),
    # --- integrations ---------------------------------------------------------------------
    Case(
        "GET",
        "/{team_name}/integrations",
        "entry",
        fixed(lambda w: Req({"team_name": team(w)})),
        everyone(303),
    ),
    Case("GET", HOOKS, "list", fixed(lambda w: Req({"team_name": team(w)})), page_rule(TEAM)),
    Case(
        "GET", HOOKS + "/add", "form", fixed(lambda w: Req({"team_name": team(w)})), page_rule(TEAM)
    ),
    Case("POST", HOOKS + "/add", "one's own", fixed(_new_hook_form), page_rule(TEAM, 303)),
    *[
        Case(
            "GET",
            HOOKS + page_name,
            "the hook owner's",
            fixed(lambda w: Req({"team_name": team(w)}, query={"id": w.hook["id"]})),
            page_rule(HOOK_PAGES),
        )
        for page_name in ("/edit", "/delete")
    ],
    Case(
        "POST",
        HOOKS + "/edit",
        "the hook owner's, unchanged",
        fixed(lambda w: Req({"team_name": team(w)}, form=_hook_form(w, w.hook))),
        page_rule(HOOK_PAGES, 303),
    ),
    *[
        Case(
            "POST", HOOKS + action, "the hook owner's", _hook_action, page_rule(HOOK_MANAGERS, 303)
        )
        for action in ("/regen", "/delete")
    ],
    *[
        Case(
            "POST",
            HOOKS + action,
            "the hook owner's",
            fixed(lambda w: Req({"team_name": team(w)}, form={"id": w.hook["id"]})),
            page_rule(HOOK_MANAGERS, 303),
        )
        for action in ("/enable", "/ping")
    ],
    Case(
        "GET",
        HOOKS + "/deliveries",
        "with its reply",
        fixed(
            lambda w: Req(
                {"team_name": team(w)}, query={"id": w.hook["id"], "delivery": w.delivery["id"]}
            )
        ),
        page_rule(HOOK_PAGES),
    ),
    Case(
        "POST",
        HOOKS + "/deliveries/redeliver",
        "with its reply",
        fixed(
            lambda w: Req(
                {"team_name": team(w)}, form={"id": w.hook["id"], "delivery": w.delivery["id"]}
            )
        ),
        # 400 while the previous cell's redelivery is still on its way.
        page_rule(HOOK_MANAGERS, {303, 400}),
    ),
    Case(
        "POST",
        HOOKS + "/deliveries/redeliver_failed",
        "the last hour",
        fixed(lambda w: Req({"team_name": team(w)}, form={"id": w.hook["id"], "window": "3600"})),
        page_rule(HOOK_MANAGERS, 303),
    ),
    # --- teams and channels ---------------------------------------------------------------
    Case("GET", "/select_team", "page", fixed(lambda w: Req()), page_rule(SIGNED_IN)),
    Case(
        "POST",
        "/select_team/join",
        "invite-only team",
        lambda w, role, g: Req(form={"team_id": _id(w, g, w.closed_team["id"])}),
        page_rule({"team_admin", "system_admin"}, 303, ORACLE),
    ),
    Case("GET", "/create_team", "form", fixed(lambda w: Req()), page_rule(SIGNED_IN)),
    Case(
        "POST",
        "/create_team",
        "a new team",
        fixed(lambda w: Req(form={"display_name": "T", "name": w.unique("t"), "type": "O"})),
        page_rule(SIGNED_IN, 303),
    ),
    Case(
        "GET",
        "/{team_name}/create_channel",
        "form",
        fixed(lambda w: Req({"team_name": team(w)})),
        page_rule(TEAM),
    ),
    Case(
        "POST",
        "/{team_name}/create_channel",
        "a new channel",
        fixed(
            lambda w: Req(
                {"team_name": team(w)},
                form={"display_name": "C", "name": w.unique("c"), "type": "O"},
            )
        ),
        page_rule(TEAM, 303),
    ),
    Case(
        "GET",
        "/{team_name}/browse_channels",
        "page",
        fixed(lambda w: Req({"team_name": team(w)})),
        page_rule(TEAM),
    ),
    Case(
        "POST",
        "/{team_name}/browse_channels/join",
        "private",
        lambda w, role, g: Req(
            {"team_name": team(w)}, form={"channel_id": _id(w, g, w.private["id"])}
        ),
        page_rule({"channel_member"}, 303, ORACLE, system_admin=403),
    ),
    Case(
        "GET",
        "/{team_name}/direct_messages",
        "page",
        fixed(lambda w: Req({"team_name": team(w)})),
        page_rule(TEAM),
    ),
    Case(
        "GET",
        "/{team_name}/invite",
        "page",
        fixed(lambda w: Req({"team_name": team(w)})),
        # Members may get the page or not, but never the invite id (the leak check).
        page_rule(
            {"team_admin"},
            200,
            403,
            team_member={200, 403},
            channel_member={200, 403},
            hook_owner={200, 403},
        ),
    ),
    *[
        Case(
            method,
            "/{team_name}/channels/{channel_name}",
            name,
            make,
            expect,
        )
        for method, ok in (("GET", 200), ("POST", 303))
        for name, make, expect in (
            (
                "town square",
                lambda w, role, g, method=method: Req(
                    {"team_name": team(w), "channel_name": "town-square"},
                    form={"message": "matrix"} if method == "POST" else None,
                ),
                page_rule(TEAM, ok),
            ),
            (
                "private",
                lambda w, role, g, method=method: Req(
                    {"team_name": team(w), "channel_name": "nosuchchannel" if g else "priv"},
                    form={"message": "matrix"} if method == "POST" else None,
                ),
                page_rule({"channel_member"}, ok, ORACLE, system_admin=403),
            ),
        )
    ],
    Case(
        "POST",
        "/{team_name}/channels/{channel_name}/join",
        "public",
        _join_form,
        page_rule(TEAM, 303),
        verify=_joined,
    ),
    Case(
        "POST",
        "/{team_name}/channels/{channel_name}/join",
        "public, without the CSRF token",
        fixed(lambda w: Req({"team_name": team(w), "channel_name": "pub"}, form=NO_CSRF)),
        page_rule(set()),
    ),
    Case(
        "POST",
        "/{team_name}/channels/{channel_name}/join",
        "private",
        lambda w, role, g: Req(
            {"team_name": team(w), "channel_name": "nosuchchannel" if g else "priv"}, form={}
        ),
        # Its member is already in it (a no-op); the rest of the team cannot tell it exists.
        page_rule({"channel_member"}, 303, ORACLE, system_admin=403),
    ),
    Case(
        "POST",
        "/{team_name}/messages/@{username}/open",
        "a new direct channel",
        _open_form,
        page_rule(TEAM, 303),
        verify=_opened,
    ),
    Case(
        "POST",
        "/{team_name}/messages/@{username}/open",
        "without the CSRF token",
        fixed(
            lambda w: Req(
                {"team_name": team(w), "username": w.victim.user["username"]}, form=NO_CSRF
            )
        ),
        page_rule(set()),
    ),
    Case(
        "GET",
        "/{team_name}/messages/@{username}",
        "the hook owner",
        fixed(
            lambda w: Req(
                {"team_name": team(w), "username": w.actors["hook_owner"].user["username"]}
            )
        ),
        page_rule(TEAM),
    ),
    Case(
        "POST",
        "/{team_name}/messages/@{username}",
        "someone else",
        fixed(
            lambda w: Req(
                {"team_name": team(w), "username": w.victim.user["username"]},
                form={"message": "matrix"},
            )
        ),
        page_rule(TEAM, 303),
    ),
    *[
        Case(
            "GET",
            path,
            name,
            fixed(lambda w, key=key: Req({"post_id": getattr(w, key)["id"]})),
            fragment_rule(readers, {403, 404}),
        )
        for path in ("/web/posts/{post_id}", "/web/posts/{post_id}/thread")
        for name, key, readers in (
            ("private", "private_post", PRIVATE_READERS),
            ("direct", "dm_post", DM_READERS),
        )
    ],
    *[
        Case(
            "GET",
            "/web/channels/{channel_id}/posts",
            name,
            lambda w, role, g, key=key: Req({"channel_id": _id(w, g, getattr(w, key)["id"])}),
            fragment_rule(readers, ORACLE),
        )
        for name, key, readers in (
            ("private", "private", PRIVATE_READERS),
            ("direct", "direct", DM_READERS),
        )
    ],
    Case(
        "GET",
        "/web/teams/{team_id}/sidebar",
        "open team",
        fixed(lambda w: Req({"team_id": w.team["id"]})),
        fragment_rule(TEAM, 403),
    ),
    Case(
        "GET",
        "/web/teams/{team_id}/sidebar",
        "invite-only team",
        lambda w, role, g: Req({"team_id": _id(w, g, w.closed_team["id"])}),
        # The system admin may have joined it in the /select_team/join cell.
        fragment_rule(frozenset({"team_admin"}), ORACLE) | {"system_admin": frozenset({200, 403})},
    ),
    Case(
        "GET",
        "/{team_name}",
        "team home",
        fixed(lambda w: Req({"team_name": team(w)})),
        everyone(303),
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


def test_every_web_route_has_an_expectation(world: World) -> None:
    """A page added without a row in this matrix fails here (and a stale row too)."""
    served = {(m, p) for m, p, module in app_routes(world.server.app) if is_web_route(module, p)}
    covered = {(c.method, c.path) for c in CASES} | {WEBSOCKET}
    assert served - covered == set(), f"web routes without a matrix row: {sorted(served - covered)}"
    assert covered - served == set(), f"matrix rows for no route: {sorted(covered - served)}"
    assert all(set(c.expect) == set(ROLES) for c in CASES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_web_cell(world: World, client: httpx.Client, case: Case, role: str) -> None:
    """The role gets the status the matrix allows, and nothing it must not see."""
    run_cell(world, client, case, role, web=True)


def test_the_matrix_showed_every_secret_to_someone_allowed(world: World) -> None:
    """Each marker reached a role allowed to see it, so the leak checks searched real answers."""
    assert set(SHOWN_SOMEWHERE) - world.seen == set()


# --- the websocket ------------------------------------------------------------------------------


def _ws_url(world: World) -> str:
    return f"ws://{world.server.settings.listen}/api/v4/websocket"


def _socket(world: World, role: str) -> ClientConnection:
    actor = world.actors.get(role)
    headers = {"Authorization": f"Bearer {actor.token}"} if actor else {}
    return connect(_ws_url(world), additional_headers=headers, open_timeout=TIMEOUT)


def _drain(ws: ClientConnection, quiet: float = 0.5) -> list[str]:
    """Every frame until the socket has been quiet for ``quiet`` seconds."""
    frames: list[str] = []
    while True:
        try:
            frames.append(str(ws.recv(timeout=quiet)))
        except TimeoutError:
            return frames


@pytest.mark.parametrize("role", ROLES)
def test_websocket_cell(world: World, role: str) -> None:
    """Signed-in roles get ``hello``; no session or a deactivated user's old token is closed
    with 1008 (policy violation) before any event."""
    with _socket(world, role) as ws:
        if role == "anonymous":
            ws.send(json.dumps({"seq": 1, "action": "ping"}))
        if role in SIGNED_IN:
            hello = json.loads(ws.recv(timeout=TIMEOUT))
            assert hello["event"] == "hello"
            assert hello["broadcast"]["user_id"] == world.actors[role].id
            return
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008


def test_websocket_events_reach_only_those_who_may_see_them(world: World) -> None:
    """New private, direct and public posts reach the sockets of those who may read them, and
    no socket gets a marker its user must not see."""
    tag = str(time.time_ns())
    fresh = [
        Marker("new private post", f"SECRET-WS-PRIVATE-{tag}", PRIVATE_READERS),
        Marker("new direct message", f"SECRET-WS-DM-{tag}", DM_READERS),
        Marker("new public post", f"TEAM-WS-PUBLIC-{tag}", TEAM | {"system_admin"}),
    ]
    roles = sorted(SIGNED_IN)
    with ExitStack() as stack:
        sockets = {role: stack.enter_context(_socket(world, role)) for role in roles}
        for ws in sockets.values():
            assert json.loads(ws.recv(timeout=TIMEOUT))["event"] == "hello"
        author = world.api_as("channel_member")
        for channel, marker in zip((world.private, world.direct, world.public), fresh, strict=True):
            author.post("/posts", {"channel_id": channel["id"], "message": marker.value})
        received = {role: "\n".join(_drain(ws)) for role, ws in sockets.items()}
    for role, text in received.items():
        check_no_leak(world.markers + fresh, role, text, f"websocket of {role}")
    # Members of each channel did get its event, so the check above looked at real traffic.
    assert fresh[0].value in received["channel_member"]
    assert fresh[1].value in received["hook_owner"]
    assert fresh[2].value in received["team_admin"]
