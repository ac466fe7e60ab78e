"""The permission matrix's machinery: one seeded world, eight roles, secret markers, and the
check run for every (route, role) cell.

A *case* names a route and says how to fill its request from the world, and which statuses
each role may get. Every response (body and headers) is searched for every marker the role
must not see — hook tokens and signing secrets, private and direct-message posts, invite ids,
other people's session tokens, CSRF tokens and email addresses, password hashes. An
``ORACLE`` cell says the role must get the same answer for the real object as for one that
does not exist (issue #10: private channels and teams are no existence oracles).

The two matrix modules (``tests/api``, ``tests/web``) each own part of ``app.routes``; between
them every route has an expectation, so a new route without one fails the suite.
"""

import contextlib
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount, WebSocketRoute

from support import PASSWORD, Api, Receiver, ServerThread, fresh_database, start_server, wait_until
from tidings.ids import new_id

ROLES = (
    "anonymous",
    "outsider",
    "team_member",
    "channel_member",
    "hook_owner",
    "team_admin",
    "system_admin",
    "deactivated",
)
SIGNED_IN = frozenset(ROLES[1:7])
TEAM = frozenset({"team_member", "channel_member", "hook_owner", "team_admin"})
HOOK_MANAGERS = frozenset({"hook_owner", "team_admin", "system_admin"})
PRIVATE_READERS = frozenset({"channel_member", "system_admin"})
DM_READERS = frozenset({"channel_member", "hook_owner", "system_admin"})
TEAM_ADMINS = frozenset({"team_admin", "system_admin"})


class Oracle:
    """The cell's answer must equal the answer for a target that does not exist (403 or 404)."""

    def __repr__(self) -> str:
        return "ORACLE"


ORACLE = Oracle()
Expect = frozenset[int] | Oracle


@dataclass
class Actor:
    role: str
    user: dict[str, Any]
    token: str
    csrf: str

    @property
    def id(self) -> str:
        return str(self.user["id"])


@dataclass(frozen=True)
class Marker:
    name: str
    value: str
    visible_to: frozenset[str]


@dataclass
class Req:
    """What a cell sends: path parameters, and a JSON body, a form or a query."""

    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    form: dict[str, str] | None = None
    query: dict[str, str] | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    fresh_session: bool = False


Build = Callable[["World", str, bool], Req]


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    name: str
    build: Build
    expect: dict[str, Expect]
    # Further checks of an answer, e.g. that an ignored field really was ignored.
    verify: Callable[["World", str, httpx.Response], None] | None = None

    @property
    def id(self) -> str:
        return f"{self.method} {self.path} [{self.name}]"


def statuses(value: int | set[int] | frozenset[int] | Oracle) -> Expect:
    if isinstance(value, Oracle):
        return value
    return frozenset({value}) if isinstance(value, int) else frozenset(value)


def rule(
    allowed: frozenset[str] | set[str],
    ok: int | set[int] = 200,
    refused: int | set[int] | Oracle = 403,
    *,
    anonymous: int | set[int] = 401,
    deactivated: int | set[int] | None = None,
    **exceptions: int | set[int] | Oracle,
) -> dict[str, Expect]:
    """Signed-in roles in ``allowed`` get ``ok``, the others ``refused``; no session gets
    ``anonymous`` (and so does a deactivated user's old token, unless said otherwise)."""
    table: dict[str, Expect] = {}
    for role in ROLES:
        if role == "anonymous":
            table[role] = statuses(anonymous)
        elif role == "deactivated":
            table[role] = statuses(anonymous if deactivated is None else deactivated)
        else:
            table[role] = statuses(ok if role in allowed else refused)
    for role, value in exceptions.items():
        assert role in ROLES, role
        table[role] = statuses(value)
    return table


def everyone(ok: int | set[int] = 200) -> dict[str, Expect]:
    return {role: statuses(ok) for role in ROLES}


@dataclass
class World:
    """Everything the cells fill requests from; seeded once per module on its own server."""

    server: ServerThread
    admin: Api
    actors: dict[str, Actor]
    team: dict[str, Any]
    closed_team: dict[str, Any]
    public: dict[str, Any]
    private: dict[str, Any]
    direct: dict[str, Any]
    public_post: dict[str, Any]
    private_post: dict[str, Any]
    dm_post: dict[str, Any]
    editable_post: dict[str, Any]
    hook: dict[str, Any]
    delivery: dict[str, Any]
    victim: Actor
    bystander: Actor
    # Signs in during the matrix; none of its details is a marker.
    signin: Actor
    receiver: Receiver
    markers: list[Marker]
    ghost: str = field(default_factory=new_id)
    # Markers some cell showed to a role allowed to see them: proof the leak checks look at
    # answers that would carry the secret.
    seen: set[str] = field(default_factory=set)
    _n: int = 0

    @property
    def url(self) -> str:
        return self.server.url

    def unique(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}x{uuid.uuid4().hex[:8]}"

    def api_as(self, role: str) -> Api:
        actor = self.actors.get(role)
        return Api(self.url, actor.token if actor else "", actor.user if actor else {})

    def throwaway_hook(self) -> dict[str, Any]:
        """A hook of the hook owner's on the public channel, for cells that change or end it."""
        owner = self.api_as("hook_owner")
        return owner.post(  # type: ignore[no-any-return]
            "/hooks/outgoing",
            {
                "team_id": self.team["id"],
                "channel_id": self.public["id"],
                "trigger_words": [self.unique("word")],
                "callback_urls": [f"{self.receiver.url}/{self.unique('t')}"],
                "display_name": "Throwaway",
            },
            expect=201,
        )

    def throwaway_post(self, channel: dict[str, Any]) -> dict[str, Any]:
        """A post of the channel member's in ``channel``, for cells that delete it."""
        return self.api_as("channel_member").post(  # type: ignore[no-any-return]
            "/posts", {"channel_id": channel["id"], "message": "throwaway"}, expect=201
        )

    def login(self, role: str) -> tuple[str, str]:
        """A second session of ``role`` (token, CSRF), for cells that end the session they use."""
        actor = self.actors[role]
        response = httpx.post(
            f"{self.url}/api/v4/users/login",
            json={"login_id": actor.user["username"], "password": PASSWORD},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.headers["Token"], response.cookies["MMCSRF"]


def _login(url: str, username: str, role: str) -> Actor:
    response = httpx.post(
        f"{url}/api/v4/users/login",
        json={"login_id": username, "password": PASSWORD},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return Actor(role, response.json(), response.headers["Token"], response.cookies["MMCSRF"])


def _user(admin: Api, url: str, role: str) -> Actor:
    name = f"{role.replace('_', '')}{uuid.uuid4().hex[:6]}"
    admin.post(
        "/users",
        {"username": name, "email": f"{name}@example.test", "password": PASSWORD},
        expect=201,
    )
    return _login(url, name, role)


def _seed(server: ServerThread, receiver: Receiver) -> World:
    url = server.url
    anonymous = Api(url)
    anonymous.post(
        "/users",
        {"username": "root", "email": "root@example.test", "password": PASSWORD},
        expect=201,
    )
    root = _login(url, "root", "system_admin")
    admin = Api(url, root.token, root.user)
    admin.put(
        "/config/patch",
        {
            "ServiceSettings": {
                "EnableOutgoingWebhooks": True,
                "EnableMemberOutgoingWebhooks": True,
                "AllowedUntrustedInternalConnections": "127.0.0.1",
                "OutgoingWebhookRetryScheduleSeconds": [],
            }
        },
    )
    actors = {"system_admin": root}
    for role in ROLES[1:6]:
        actors[role] = _user(admin, url, role)
    deactivated = _user(admin, url, "deactivated")
    victim = _user(admin, url, "victim")
    bystander = _user(admin, url, "bystander")
    as_ = {role: Api(url, a.token, a.user) for role, a in actors.items()}
    tag = uuid.uuid4().hex[:10]

    team = as_["team_admin"].post(
        "/teams", {"name": f"matrix{tag}", "display_name": "Matrix", "type": "O"}, expect=201
    )
    closed = as_["team_admin"].post(
        "/teams",
        {"name": f"closed{tag}", "display_name": f"SECRET-CLOSED-TEAM-{tag}", "type": "I"},
        expect=201,
    )
    for who in (
        "team_member",
        "channel_member",
        "hook_owner",
    ):
        admin.post(f"/teams/{team['id']}/members", {"user_id": actors[who].id}, expect=201)
    for who in (deactivated, victim, bystander):
        admin.post(f"/teams/{team['id']}/members", {"user_id": who.id}, expect=201)
    public = as_["team_admin"].post(
        "/channels",
        {"team_id": team["id"], "name": "pub", "display_name": "Public", "type": "O"},
        expect=201,
    )
    private = as_["channel_member"].post(
        "/channels",
        {
            "team_id": team["id"],
            "name": "priv",
            "display_name": f"SECRET-PRIVATE-CHANNEL-{tag}",
            "purpose": f"SECRET-PRIVATE-CHANNEL-{tag}",
            "type": "P",
        },
        expect=201,
    )
    for who in (actors["channel_member"], actors["hook_owner"], deactivated):
        as_["team_admin"].post(f"/channels/{public['id']}/members", {"user_id": who.id})
    as_["channel_member"].post(f"/channels/{private['id']}/members", {"user_id": deactivated.id})

    private_post = as_["channel_member"].post(
        "/posts",
        {"channel_id": private["id"], "message": f"SECRET-PRIVATE-POST-{tag}"},
        expect=201,
    )
    as_["channel_member"].post(
        "/posts",
        {
            "channel_id": private["id"],
            "message": f"SECRET-PRIVATE-REPLY-{tag}",
            "root_id": private_post["id"],
        },
        expect=201,
    )
    direct = as_["channel_member"].post(
        "/channels/direct", [actors["channel_member"].id, actors["hook_owner"].id], expect=201
    )
    dm_post = as_["channel_member"].post(
        "/posts", {"channel_id": direct["id"], "message": f"SECRET-DM-POST-{tag}"}, expect=201
    )
    receiver.reply = {"text": f"TEAM-HOOK-REPLY-{tag}"}
    hook = as_["hook_owner"].post(
        "/hooks/outgoing",
        {
            "team_id": team["id"],
            "channel_id": public["id"],
            "trigger_words": ["deploy"],
            "callback_urls": [receiver.url],
            "display_name": "Matrix hook",
            "content_type": "application/json",
        },
        expect=201,
    )
    public_post = as_["hook_owner"].post(
        "/posts", {"channel_id": public["id"], "message": f"deploy TEAM-PUBLIC-POST-{tag}"}
    )

    def delivered() -> dict[str, Any] | None:
        found = as_["hook_owner"].get(f"/hooks/outgoing/{hook['id']}/deliveries")
        done = [d for d in found if d["status"] == "succeeded" and d["reply_posted"]]
        return done[0] if done else None

    delivery = wait_until(delivered)
    admin.put(f"/users/{deactivated.id}/active", {"active": False})

    everyone_team = TEAM | {"system_admin"}
    markers = [
        Marker("private post", f"SECRET-PRIVATE-POST-{tag}", PRIVATE_READERS),
        Marker("private reply", f"SECRET-PRIVATE-REPLY-{tag}", PRIVATE_READERS),
        Marker("private channel", f"SECRET-PRIVATE-CHANNEL-{tag}", PRIVATE_READERS),
        Marker("direct message", f"SECRET-DM-POST-{tag}", DM_READERS),
        Marker("public post", f"TEAM-PUBLIC-POST-{tag}", everyone_team),
        Marker("hook reply", f"TEAM-HOOK-REPLY-{tag}", everyone_team),
        Marker("hook token", hook["token"], HOOK_MANAGERS),
        Marker("hook signing secret", hook["signing_secret"], HOOK_MANAGERS),
        Marker("team invite id", team["invite_id"], TEAM_ADMINS),
        Marker("closed team invite id", closed["invite_id"], TEAM_ADMINS),
        Marker("closed team", f"SECRET-CLOSED-TEAM-{tag}", TEAM_ADMINS),
        Marker("password hash", "$argon2", frozenset()),
    ]
    for actor in [*actors.values(), deactivated, victim, bystander]:
        markers.append(Marker(f"{actor.role}'s session token", actor.token, frozenset()))
        markers.append(Marker(f"{actor.role}'s CSRF token", actor.csrf, frozenset({actor.role})))
        markers.append(
            Marker(
                f"{actor.role}'s email",
                str(actor.user["email"]),
                frozenset({actor.role, "system_admin"}),
            )
        )
    actors["deactivated"] = deactivated
    return World(
        server=server,
        admin=admin,
        actors=actors,
        team=team,
        closed_team=closed,
        public=public,
        private=private,
        direct=direct,
        public_post=public_post,
        private_post=private_post,
        dm_post=dm_post,
        editable_post=as_["channel_member"].post(
            "/posts", {"channel_id": public["id"], "message": "editable"}, expect=201
        ),
        hook=hook,
        delivery=delivery,
        victim=victim,
        bystander=bystander,
        signin=_user(admin, url, "signin"),
        receiver=receiver,
        markers=markers,
    )


@contextlib.contextmanager
def seeded_world() -> Iterator[World]:
    """A fresh database, a server on it, a receiver for the hook, and the seeded world."""
    with fresh_database() as url:
        server = start_server(url)
        receiver = Receiver()
        try:
            yield _seed(server, receiver)
        finally:
            receiver.close()
            server.stop()


# Markers the matrix must show to someone allowed, or its leak checks could not fail.
SHOWN_SOMEWHERE = (
    "private post",
    "private reply",
    "private channel",
    "direct message",
    "public post",
    "hook reply",
    "hook token",
    "hook signing secret",
    "team invite id",
    "closed team invite id",
    "closed team",
)


# --- which routes each matrix owns -------------------------------------------------------------


def app_routes(app: Any) -> set[tuple[str, str, str]]:
    """(method, path, module of the handler) for every route of the app; WS and MOUNT for the
    websocket and the static files."""
    found: set[tuple[str, str, str]] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            owner = "tidings.app" if route.path.startswith("/api/v4") else "tidings.web.pages"
            found.add(("MOUNT", route.path, owner))
            continue
        module = getattr(context.endpoint, "__module__", "") or ""
        if isinstance(route, WebSocketRoute) or not context.methods:
            found.add(("WS", context.path, module))
            continue
        for method in context.methods:
            if method != "HEAD":
                found.add((method, context.path, module))
    return found


def is_api_route(module: str, path: str) -> bool:
    """The API matrix owns ``tidings.api``, FastAPI's ``openapi.json`` and the documentation page
    (``tidings.app``: the page and its packaged assets)."""
    return module.startswith(("tidings.api", "tidings.app", "fastapi"))


def is_web_route(module: str, path: str) -> bool:
    return module.startswith("tidings.web")


# --- running a cell ----------------------------------------------------------------------------


@dataclass
class Sent:
    response: httpx.Response
    text: str


def _fill(path: str, params: dict[str, str]) -> str:
    for key, value in params.items():
        path = path.replace("{" + key + "}", value)
    assert "{" not in path, f"unfilled path parameter in {path}"
    return path


def send(world: World, client: httpx.Client, case: Case, role: str, ghost: bool, web: bool) -> Sent:
    req = case.build(world, role, ghost)
    actor = world.actors.get(role)
    token, csrf = (actor.token, actor.csrf) if actor else ("", "")
    if req.fresh_session and actor is not None and role != "deactivated":
        token, csrf = world.login(role)
    headers: dict[str, str] = {}
    cookies = dict(req.cookies)
    if token and web:
        cookies.update(
            {"MMAUTHTOKEN": token, "MMCSRF": csrf, "MMUSERID": actor.id if actor else ""}
        )
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    form = req.form
    if form is not None and token and "csrf_token" not in form:
        form = {**form, "csrf_token": csrf}
    client.cookies.clear()
    for name, value in cookies.items():
        client.cookies.set(name, value)
    if case.method == "MOUNT":  # a file under a mounted folder
        method, url = "GET", f"{case.path}/{req.params['file']}"
    else:
        method, url = case.method, _fill(case.path, req.params)
    response = client.request(
        method,
        url,
        json=req.json,
        data=form,
        params=req.query,
        headers=headers,
    )
    head = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
    return Sent(response, head + "\n\n" + response.text)


def check_no_leak(markers: list[Marker], role: str, text: str, where: str) -> None:
    """No marker the role must not see is anywhere in ``text`` (a body with its headers)."""
    for marker in markers:
        if role in marker.visible_to:
            continue
        assert marker.value not in text, (
            f"{where}: the {marker.name} leaked to {role}: {text[:600]}"
        )


SECRETS = ("hook token", "hook signing secret")


def check_not_cached(world: World, sent: Sent, where: str) -> None:
    """An answer carrying a session token or a hook's secrets says ``Cache-Control: no-store``
    (issue #10 item 14), so no shared or browser cache keeps a copy."""
    carried = [m.name for m in world.markers if m.name in SECRETS and m.value in sent.text]
    if re.search(r'"signing_secret":\s*"[^"]', sent.response.text):
        carried.append("a signing secret")
    if "token" in sent.response.headers:
        carried.append("a session token")
    if carried:
        cache = sent.response.headers.get("cache-control", "")
        assert "no-store" in cache, (
            f"{where}: {', '.join(carried)} sent with Cache-Control {cache!r}"
        )


ERROR_KEYS = {"id", "message", "detailed_error", "request_id", "status_code"}


def check_error_shape(sent: Sent, where: str) -> None:
    response = sent.response
    if response.status_code < 400:
        return
    body = response.json()
    assert isinstance(body, dict), f"{where}: {response.text[:300]}"
    assert set(body) >= ERROR_KEYS, f"{where}: {response.text[:300]}"
    assert body["status_code"] == response.status_code, where


def run_cell(world: World, client: httpx.Client, case: Case, role: str, *, web: bool) -> None:
    """One (route, role) cell: the status the table expects, the error shape, and no leak."""
    where = f"{case.id} as {role}"
    expected = case.expect[role]
    sent = send(world, client, case, role, False, web)
    status = sent.response.status_code
    world.seen.update(
        m.name for m in world.markers if m.value in sent.text and role in m.visible_to
    )
    check_no_leak(world.markers, role, sent.text, where)
    check_not_cached(world, sent, where)
    if not web and case.path.startswith("/api/v4"):
        check_error_shape(sent, where)
    if isinstance(expected, Oracle):
        twin = send(world, client, case, role, True, web)
        check_no_leak(world.markers, role, twin.text, where + " (for a missing target)")
        assert status in (403, 404), f"{where}: {status} {sent.response.text[:300]}"
        assert twin.response.status_code == status, (
            f"{where}: existence oracle — {status} for the real target, "
            f"{twin.response.status_code} for a missing one"
        )
        if not web and case.path.startswith("/api/v4"):
            assert twin.response.json()["id"] == sent.response.json()["id"], (
                f"{where}: existence oracle — error ids {sent.response.json()['id']} "
                f"and {twin.response.json()['id']}"
            )
        return
    assert status in expected, (
        f"{where}: status {status}, expected one of {sorted(expected)}: {sent.response.text[:300]}"
    )
    if case.verify is not None:
        case.verify(world, role, sent.response)


def new_client(world: World) -> httpx.Client:
    # Plain HTTP on loopback: skipping the TLS context saves time per request.
    return httpx.Client(base_url=world.url, timeout=30, follow_redirects=False, verify=False)  # noqa: S501
