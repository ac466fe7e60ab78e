"""Bad input on every endpoint family answers a Mattermost error JSON with the right status, and
never a 500: malformed JSON, wrong types, unknown ids, oversized bodies, missing auth, stray
bodies, missing Content-Types, unknown routes and methods."""

import json
import re
from typing import Any

import httpx
import pytest
from mattermost_contract import assert_app_error

from support import Api, Factory, ServerThread, free_port
from tidings.config import Settings
from tidings.ids import new_id

pytestmark = pytest.mark.db

MAX_BYTES = 300_000
UNKNOWN = new_id()  # valid-shaped, but nothing has it
BAD_BODY = "api.context.invalid_body_param.app_error"

# Every endpoint of the core families that reads a JSON body ("{id}" is replaced by an unknown id).
BODY_ENDPOINTS = [
    ("POST", "/users"),
    ("POST", "/users/login"),
    ("POST", "/users/ids"),
    ("PUT", "/users/me/patch"),
    ("PUT", "/users/me/password"),
    ("PUT", "/users/{id}/roles"),
    ("PUT", "/users/{id}/active"),
    ("POST", "/teams"),
    ("POST", "/teams/{id}/members"),
    ("POST", "/channels"),
    ("POST", "/channels/direct"),
    ("POST", "/channels/{id}/members"),
    ("POST", "/channels/members/me/view"),
    ("POST", "/posts"),
    ("PUT", "/posts/{id}/patch"),
    ("PUT", "/posts/{id}"),
    ("PUT", "/config/patch"),
]
OBJECT_BODY_ENDPOINTS = [
    e for e in BODY_ENDPOINTS if e[1] not in ("/users/ids", "/channels/direct")
]
LIST_BODY_ENDPOINTS = [("POST", "/users/ids"), ("POST", "/channels/direct")]

MALFORMED: dict[str, bytes] = {
    "truncated": b'{"message": "hi"',
    "not-json": b"message=hi",
    "nan": b'{"message": NaN, "x": NaN}',
    "infinity": b'{"message": "hi", "x": 1e999}',
    "deeply-nested": b"[" * 50_000 + b"]" * 50_000,
    "lone-surrogate": b'{"message": "\\ud800", "username": "\\ud800", "login_id": "\\udfff"}',
    "nul-character": b'{"message": "a\\u0000b", "name": "a\\u0000", "login_id": "a\\u0000"}',
    "invalid-utf8": b'{"message": "\xff\xfe"}',
    "trailing-garbage": b'{"message": "hi"} {}',
}


def _path(template: str) -> str:
    return template.replace("{id}", UNKNOWN)


def _send(api: Api, method: str, path: str, content: bytes, **headers: str) -> httpx.Response:
    return api.request(method, path, content=content, headers=headers)


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_json_is_a_400(admin: Api, kind: str) -> None:
    """A body that is not strict, decodable JSON is a 400 invalid_body_param on every endpoint."""
    for method, template in BODY_ENDPOINTS:
        response = _send(admin, method, _path(template), MALFORMED[kind])
        assert response.status_code == 400, (method, template, response.text)
        assert_app_error(response, 400, BAD_BODY)


@pytest.mark.parametrize("body", ["[]", '"text"', "1", "true", '[{"a": 1}]'])
def test_a_non_object_body_is_a_400(admin: Api, body: str) -> None:
    """Endpoints that take an object refuse arrays, strings, numbers and booleans with a 400."""
    for method, template in OBJECT_BODY_ENDPOINTS:
        response = _send(admin, method, _path(template), body.encode())
        assert response.status_code == 400, (method, template, response.text)
        assert_app_error(response, 400)


@pytest.mark.parametrize(("method", "template"), LIST_BODY_ENDPOINTS)
@pytest.mark.parametrize("body", ["{}", '"text"', "1", "null", "[1, 2]", '[["a"], "b"]'])
def test_a_list_endpoint_refuses_other_bodies(
    admin: Api, method: str, template: str, body: str
) -> None:
    """Endpoints that take a list of ids refuse objects, scalars, null and non-string items."""
    assert_app_error(_send(admin, method, template, body.encode()), 400, BAD_BODY)


WRONG_TYPES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/users", {"username": 5, "email": "a@b.test", "password": "x" * 10}),
    ("POST", "/users", {"username": "abc", "email": ["a@b.test"], "password": "x" * 10}),
    ("POST", "/users/login", {"login_id": "admin", "password": 12345678}),
    ("PUT", "/users/me/patch", {"nickname": 5}),
    ("PUT", "/users/me/password", {"current_password": "x", "new_password": None}),
    ("PUT", "/users/{id}/roles", {"roles": ["system_user"]}),
    ("PUT", "/users/{id}/active", {"active": "false"}),
    ("POST", "/teams", {"name": True, "display_name": "T"}),
    ("POST", "/teams", {"name": "abc", "display_name": {"x": 1}}),
    ("POST", "/teams/{id}/members", {"user_id": 7}),
    ("POST", "/channels", {"team_id": None, "name": "c", "display_name": "C"}),
    ("POST", "/channels/{id}/members", {"user_id": ["x"]}),
    ("POST", "/channels/members/me/view", {"channel_id": 5}),
    ("POST", "/posts", {"channel_id": 5, "message": "hi"}),
    ("POST", "/posts", {"channel_id": UNKNOWN, "message": ["hi"]}),
    ("POST", "/posts", {"channel_id": UNKNOWN, "message": "hi", "props": "x"}),
    ("POST", "/posts", {"channel_id": UNKNOWN, "message": "hi", "file_ids": "x"}),
    ("PUT", "/posts/{id}/patch", {"message": 3}),
    ("PUT", "/posts/{id}/patch", {"props": []}),
    ("PUT", "/config/patch", {"ServiceSettings": {"EnableDeveloper": "yes"}}),
    ("PUT", "/config/patch", {"ServiceSettings": {"MaximumPayloadSizeBytes": 1.5}}),
    ("PUT", "/config/patch", {"ServiceSettings": []}),
]


@pytest.mark.parametrize(("method", "template", "body"), WRONG_TYPES)
def test_wrong_field_types_are_a_400(
    admin: Api, method: str, template: str, body: dict[str, Any]
) -> None:
    """A field of the wrong JSON type is a 400, not a coercion and not a 500."""
    response = admin.request(method, _path(template), body)
    assert_app_error(response, 400)


def _unknown_gets(admin: Api, team: dict[str, Any]) -> list[str]:
    me = admin.user["id"]
    return [
        "/users/{id}",
        "/users/username/{name}",
        "/users/{id}/teams",
        "/teams/{id}",
        "/teams/name/{name}",
        "/teams/{id}/members",
        f"/teams/{team['id']}/members/{{id}}",
        "/teams/{id}/members/{id}",
        "/teams/{id}/channels",
        "/teams/{id}/channels/name/{name}",
        f"/teams/{team['id']}/channels/name/{{name}}",
        "/teams/name/{name}/channels/name/{name}",
        f"/teams/name/{team['name']}/channels/name/{{name}}",
        "/channels/{id}",
        "/channels/{id}/members",
        "/channels/{id}/posts",
        "/posts/{id}",
        "/posts/{id}/thread",
        f"/users/{me}/teams/{{id}}/channels",
        f"/users/{{id}}/teams/{team['id']}/channels",
    ]


JUNK = [UNKNOWN, "junk", "x" * 27, "ünïcødé-ïd-ÿ", "%00", "a%00b", "%E2%80%AE", "%F0%9F%98%80" * 7]
# Everything but the valid-shaped id, and but a NUL: no route has one, so that is a 404 before
# routing (see test_unknown_ids_in_changes_are_404).
MALFORMED_IDS = [junk for junk in JUNK[1:] if "%00" not in junk]
BAD_URL_PARAM = "api.context.invalid_url_param.app_error"


def assert_bad_url_param(response: httpx.Response) -> None:
    """Mattermost's 400 for a malformed id in the URL, naming the parameter."""
    body = assert_app_error(response, 400, BAD_URL_PARAM)
    assert re.fullmatch(r"Invalid or missing \w+_id parameter in request URL\.", body["message"])


@pytest.mark.parametrize("junk", JUNK)
def test_unknown_ids_and_names_are_404(admin: Api, team: dict[str, Any], junk: str) -> None:
    """Unknown names, valid-shaped or junk, and unknown well-formed ids are a 404 on every
    lookup (admin caller)."""
    wrong = []
    for template in _unknown_gets(admin, team):
        path = template.replace("{id}", UNKNOWN).replace("{name}", junk)
        response = admin.request("GET", path)
        if response.status_code != 404:
            wrong.append((path, response.status_code))
        else:
            assert_app_error(response, 404)
    assert not wrong


@pytest.mark.parametrize("junk", MALFORMED_IDS)
def test_malformed_ids_in_the_url_are_400(admin: Api, team: dict[str, Any], junk: str) -> None:
    """A malformed id in the path is Mattermost's 400 invalid_url_param, before any lookup."""
    wrong = []
    for template in _unknown_gets(admin, team):
        if "{id}" not in template:
            continue
        path = template.replace("{id}", junk).replace("{name}", "x")
        response = admin.request("GET", path)
        if response.status_code != 400:
            wrong.append((path, response.status_code))
        else:
            assert_bad_url_param(response)
    assert not wrong


def test_me_stays_a_user_id_where_mattermost_allows_it(admin: Api, team: dict[str, Any]) -> None:
    """``me`` is the caller for user ids, and a malformed id anywhere else."""
    assert admin.get("/users/me")["id"] == admin.user["id"]
    assert admin.get(f"/users/me/teams/{team['id']}/channels")
    assert_bad_url_param(admin.request("GET", "/teams/me"))
    assert_bad_url_param(admin.request("GET", "/channels/me/posts"))
    assert_bad_url_param(admin.request("GET", "/hooks/outgoing/me"))
    assert_bad_url_param(admin.request("GET", f"/hooks/outgoing/{UNKNOWN}/deliveries/me"))


def test_a_malformed_id_without_a_session_is_401(anonymous: Api) -> None:
    """Mattermost checks the session before the URL: no session is a 401 whatever the id."""
    for path in ("/posts/junk", "/users/junk/teams", "/hooks/outgoing/junk"):
        assert_app_error(anonymous.request("GET", path), 401)


CHANGES = [
    ("DELETE", "/posts/{id}", None),
    ("PUT", "/posts/{id}/patch", {"message": "x"}),
    ("PUT", "/posts/{id}", {"message": "x"}),
    ("POST", "/teams/{id}/members", {"user_id": "{me}"}),
    ("POST", "/channels/{id}/members", {"user_id": "{me}"}),
    ("DELETE", "/channels/{id}/members/me", None),
    ("POST", "/channels", {"team_id": "{id}", "name": "abc", "display_name": "A"}),
    ("POST", "/posts", {"channel_id": "{id}", "message": "x"}),
    ("PUT", "/users/{id}/patch", {"nickname": "x"}),
    ("PUT", "/users/{id}/password", {"new_password": "a-long-password-9"}),
    ("PUT", "/users/{id}/roles", {"roles": "system_user"}),
    ("PUT", "/users/{id}/active", {"active": False}),
    ("POST", "/teams/{team}/members", {"user_id": "{id}"}),
    ("PUT", "/hooks/outgoing/{id}", {"display_name": "x"}),
    ("DELETE", "/hooks/outgoing/{id}", None),
    ("POST", "/hooks/outgoing/{id}/regen_token", None),
    ("POST", f"/hooks/outgoing/{UNKNOWN}/deliveries/{{id}}/redeliver", None),
    ("POST", "/hooks/outgoing/{id}/redeliver", {"since": 0, "status": "failed"}),
]


@pytest.mark.parametrize("junk", [UNKNOWN, "junk", "%00"])
def test_unknown_ids_in_changes_are_404(admin: Api, team: dict[str, Any], junk: str) -> None:
    """Changing or deleting something that does not exist is a 404, not a silent success; a
    malformed id in the path is a 400 instead (a NUL matches no route: 404), one in the body
    still a 404."""
    wrong = []
    for method, template, body in CHANGES:
        in_path = "{id}" in template
        in_body = "junk" if junk == "%00" else junk  # a NUL in a body is malformed: a 400
        raw = None
        if body:
            text = json.dumps(body).replace("{id}", in_body).replace("{me}", admin.user["id"])
            raw = text.encode()
        path = template.replace("{id}", junk).replace("{team}", team["id"])
        response = admin.request(method, path, content=raw)
        expected = 400 if in_path and junk == "junk" else 404
        if response.status_code != expected:
            wrong.append((method, template, response.status_code))
        elif expected == 400:
            assert_bad_url_param(response)
        else:
            assert_app_error(response, 404)
    assert not wrong


def test_a_direct_channel_with_an_unknown_user_is_a_400(admin: Api) -> None:
    """A DM with a user who does not exist is refused with Mattermost's invalid-user error."""
    response = admin.request("POST", "/channels/direct", [admin.user["id"], UNKNOWN])
    assert_app_error(response, 400, "api.channel.create_direct_channel.invalid_user.app_error")


def _big_post_body(channel_id: str, size: int) -> bytes:
    """A valid post body of exactly ``size`` bytes."""
    base = json.dumps({"channel_id": channel_id, "message": "big", "props": {"pad": ""}})
    pad = size - len(base.encode())
    assert pad >= 0
    return json.dumps(
        {"channel_id": channel_id, "message": "big", "props": {"pad": "x" * pad}}
    ).encode()


OVERSIZED_TARGETS = [
    ("POST", "/users"),
    ("POST", "/users/login"),
    ("PUT", "/users/me/patch"),
    ("POST", "/teams"),
    ("POST", "/channels"),
    ("POST", "/posts"),
    ("PUT", "/config/patch"),
]


@pytest.mark.parametrize(("method", "template"), OVERSIZED_TARGETS)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_bodies_over_the_maximum_are_413(
    admin: Api, method: str, template: str, framing: str
) -> None:
    """A body over MaximumPayloadSizeBytes is a 413 whether or not Content-Length declares it."""
    body = b'{"message": "' + b"x" * MAX_BYTES + b'"}'
    content: Any = body if framing == "content-length" else iter([body[:1000], body[1000:]])
    response = admin.request(method, template, content=content)
    if framing == "chunked":
        assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_app_error(response, 413, "api.context.request_body_too_large.app_error")


def test_a_body_at_the_maximum_is_accepted(admin: Api, factory: Factory) -> None:
    """Exactly MaximumPayloadSizeBytes is allowed; one byte more is not (both framings)."""
    channel = factory.channel(factory.team())
    ok = admin.request("POST", "/posts", content=_big_post_body(channel["id"], MAX_BYTES))
    assert ok.status_code == 201, ok.text
    too_big = _big_post_body(channel["id"], MAX_BYTES + 1)
    assert_app_error(admin.request("POST", "/posts", content=too_big), 413)
    chunks = iter([too_big[:10], too_big[10:]])
    assert_app_error(admin.request("POST", "/posts", content=chunks), 413)


def test_the_payload_limit_follows_the_config(admin: Api, factory: Factory) -> None:
    """Lowering MaximumPayloadSizeBytes applies to the next request."""
    channel = factory.channel(factory.team())
    admin.put("/config/patch", {"ServiceSettings": {"MaximumPayloadSizeBytes": 2000}})
    try:
        body = _big_post_body(channel["id"], 2001)
        assert_app_error(admin.request("POST", "/posts", content=body), 413)
        small = _big_post_body(channel["id"], 2000)
        assert admin.request("POST", "/posts", content=small).status_code == 201
    finally:
        admin.put("/config/patch", {"ServiceSettings": {"MaximumPayloadSizeBytes": MAX_BYTES}})


PUBLIC = {
    ("post", "/api/v4/users"),
    ("post", "/api/v4/users/login"),
    ("get", "/api/v4/system/ping"),
    ("get", "/api/v4/config/client"),
}
CORE_PREFIXES = ("/api/v4/users", "/api/v4/teams", "/api/v4/channels", "/api/v4/posts")
CORE_PREFIXES += ("/api/v4/config", "/api/v4/system")


def test_every_core_endpoint_needs_a_session(server: ServerThread, anonymous: Api) -> None:
    """Without a token every non-public endpoint of the core families is a 401."""
    paths = httpx.get(f"{server.url}/api/v4/openapi.json").json()["paths"]
    checked = 0
    for path, operations in paths.items():
        if not path.startswith(CORE_PREFIXES):
            continue
        for method in operations:
            if (method, path) in PUBLIC:
                continue
            concrete = path
            while "{" in concrete:
                start = concrete.index("{")
                concrete = concrete[:start] + UNKNOWN + concrete[concrete.index("}") + 1 :]
            response = httpx.request(method, server.url + concrete, content=b"{}")
            body = assert_app_error(response, 401)
            assert body["id"] == "api.context.session_expired.app_error"
            checked += 1
    assert checked >= 35


@pytest.mark.parametrize(
    "header",
    [
        b"Bearer nope",
        b"Bearer",
        b"Token " + UNKNOWN.encode(),
        b"Basic YWRtaW46eA==",
        b"bearer\tx",
        b"Bearer \xc3\xbc",
        b"Bearer \xff",
    ],
)
def test_bad_credentials_are_a_401(anonymous: Api, header: bytes) -> None:
    """A wrong, empty or foreign Authorization header is a 401."""
    response = anonymous.request("GET", "/users/me", headers={"Authorization": header})
    assert_app_error(response, 401)


@pytest.mark.parametrize("body", [b"{}", b"null", b"", b"not json at all"])
@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain"])
def test_stray_bodies_on_get_and_delete_are_harmless(
    admin: Api, factory: Factory, body: bytes, content_type: str | None
) -> None:
    """GET and DELETE ignore whatever body a client sends with them."""
    channel = factory.channel(factory.team())
    post = admin.post("/posts", {"channel_id": channel["id"], "message": "x"}, expect=201)
    headers = {"Content-Type": content_type} if content_type else {}
    for path in ("/users/me", f"/channels/{channel['id']}/posts", f"/posts/{post['id']}"):
        response = admin.request("GET", path, content=body, headers=dict(headers))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
    deleted = admin.request("DELETE", f"/posts/{post['id']}", content=body, headers=headers)
    assert deleted.status_code == 200
    assert deleted.json() == {"status": "OK"}


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_bodies_are_json_whatever_the_content_type(
    admin: Api, factory: Factory, content_type: str | None
) -> None:
    """A JSON body without a Content-Type, or with the wrong one, is still read as JSON
    (except by login, which a cross-site form must not reach: see the next test)."""
    channel = factory.channel(factory.team())
    headers = {"Content-Type": content_type} if content_type else {}
    raw = json.dumps({"channel_id": channel["id"], "message": "plain"}).encode()
    created = admin.request("POST", "/posts", content=raw, headers=dict(headers))
    assert created.status_code == 201, created.text
    assert created.json()["message"] == "plain"
    bad = admin.request("POST", "/posts", content=b"{oops", headers=dict(headers))
    assert_app_error(bad, 400, BAD_BODY)


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},
        {"Content-Type": "text/plain; charset=utf-8"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "multipart/form-data; boundary=x"},
        {"Origin": "https://attacker.example"},
        {"Content-Type": "text/plain", "Origin": "https://attacker.example"},
    ],
)
def test_login_reads_only_json_bodies(anonymous: Api, headers: dict[str, str]) -> None:
    """Login refuses a body a cross-site page could send (declared ``text/plain`` or a form type,
    or undeclared from another site's page) with Mattermost's 400; declared JSON, any case or
    charset, works."""
    login = json.dumps({"login_id": "admin", "password": "correct-horse-9"}).encode()
    refused = anonymous.request("POST", "/users/login", content=login, headers=headers)
    assert_app_error(refused, 400, BAD_BODY)
    assert "Token" not in refused.headers
    assert "set-cookie" not in refused.headers
    for declared in ("application/json", "Application/JSON; charset=utf-8"):
        response = anonymous.request(
            "POST", "/users/login", content=login, headers={"Content-Type": declared}
        )
        assert response.status_code == 200, response.text
        assert response.headers["Token"]
        assert response.headers["Cache-Control"] == "no-store"


def test_login_reads_undeclared_json_from_no_other_site(anonymous: Api) -> None:
    """The ``mattermost`` client sends its JSON with no Content-Type: that logs in when no other
    site's page sent it (no ``Origin``, or the site's own)."""
    login = json.dumps({"login_id": "admin", "password": "correct-horse-9"}).encode()
    own = anonymous.base_url
    for headers in ({}, {"Origin": own}):
        response = anonymous.request("POST", "/users/login", content=login, headers=headers)
        assert "content-type" not in {k.lower() for k in response.request.headers}
        assert response.status_code == 200, response.text
        assert response.headers["Token"]


def test_unknown_routes_are_json_404(anonymous: Api, admin: Api) -> None:
    """An unknown API route answers a Mattermost 404, with or without a session."""
    for api in (anonymous, admin):
        for path in ("/nope", "/users/me/nope/deeper", "/posts/", "/teams/x/y/z/w"):
            assert_app_error(api.request("GET", path), 404, "api.context.404.app_error")


def test_wrong_methods_are_json_405(admin: Api) -> None:
    """A known route with the wrong method answers a Mattermost 405 listing the allowed ones."""
    for method, path in [
        ("DELETE", "/users/me"),
        ("PATCH", "/posts"),
        ("POST", "/system/ping"),
        ("DELETE", "/config/patch"),
        ("PUT", "/channels/direct"),
    ]:
        response = admin.request(method, path)
        assert_app_error(response, 405, "api.context.405.app_error")
        assert response.headers.get("allow")


def _fuzz_bodies(channel_id: str) -> list[bytes]:
    values: list[Any] = [
        None,
        {},
        {"channel_id": channel_id},
        {"channel_id": channel_id, "message": "x" * 20_000},
        {"channel_id": channel_id, "message": "ok", "root_id": "x" * 26},
        {"channel_id": channel_id, "message": "ok", "pending_post_id": "p" * 300},
        {"channel_id": channel_id, "message": "ok", "type": "custom_" + "t" * 300},
        {"user_id": "x" * 5000, "team_id": "y"},
        {"name": "n" * 500, "display_name": "d" * 500, "type": "Z"},
        {"name": "UPPER", "display_name": "", "type": "P", "team_id": channel_id},
        {"username": "Ab", "email": "no-at-sign", "password": "short"},
        {"login_id": "x" * 10_000, "password": "y" * 10_000},
        {"nickname": "n" * 65, "position": "p" * 200, "email": "x@y"},
        {"new_password": "n" * 100, "current_password": "wrong"},
        {"roles": "system_admin"},
        {"roles": "team_admin system_user"},
        {"ServiceSettings": {"MaximumPayloadSizeBytes": 10**40}},
        {"ServiceSettings": {"OutgoingWebhookRetryScheduleSeconds": [-1]}},
        {"ServiceSettings": {"MaximumPayloadSizeBytes": -5}},
        {"props": {"a": [[[[[[[[[[{}]]]]]]]]]]}, "message": 10**30},
        [channel_id, channel_id, channel_id],
        ["x" * 26, "y" * 26],
        {"channel_id": "\u202e" * 26},
    ]
    return [json.dumps(v).encode() for v in values]


def test_no_body_makes_any_endpoint_fail_with_a_500(admin: Api, factory: Factory) -> None:
    """A battery of odd but well-formed bodies against every body endpoint never yields a 500."""
    channel = factory.channel(factory.team())
    failures = []
    admin_id = admin.user["id"]
    for method, template in BODY_ENDPOINTS:
        if template in ("/users/{id}/roles", "/users/{id}/active"):
            # Keep the admin an admin and active: aim these at an unknown user.
            path = _path(template)
        else:
            path = _path(template).replace("/users/me/password", f"/users/{UNKNOWN}/password")
        for body in _fuzz_bodies(channel["id"]):
            response = admin.request(method, path, content=body)
            if response.status_code >= 500:
                failures.append((method, path, body[:80], response.status_code))
            elif response.status_code >= 400:
                assert_app_error(response)
            else:
                assert response.headers["content-type"] == "application/json"
    assert admin.get("/users/me")["roles"] == "system_admin system_user"
    assert admin.get(f"/users/{admin_id}")["delete_at"] == 0
    config = admin.get("/config")["ServiceSettings"]
    assert config["MaximumPayloadSizeBytes"] == MAX_BYTES
    assert not failures, failures


def test_an_unexpected_failure_is_still_a_mattermost_error(database_url: str) -> None:
    """An escaped exception is a 500 AppError with the request id header, leaking nothing."""
    settings = Settings(
        database_url=database_url, listen=f"127.0.0.1:{free_port()}", run_worker=False
    )
    thread = ServerThread(settings)

    async def explode() -> None:
        raise RuntimeError("internal detail")

    thread.app.add_api_route("/api/v4/explode", explode, include_in_schema=False)
    thread.start()
    try:
        response = httpx.get(f"{thread.url}/api/v4/explode")
    finally:
        thread.stop()
    assert_app_error(response, 500, "api.context.unexpected.app_error")
    assert "internal detail" not in response.text
    assert "RuntimeError" not in response.text
