"""Responses of the Mattermost subset validate against Mattermost's own OpenAPI description, and
``/api/v4/openapi.json`` describes everything Tidings serves."""

from typing import Any

import httpx
import pytest
from mattermost_contract import Contract, load_document

from permission_matrix import app_routes
from support import Api, Factory, ServerThread

pytestmark = pytest.mark.db


def test_the_core_answers_in_mattermost_shapes(
    contract: Contract, admin: Api, factory: Factory, anonymous: Api
) -> None:
    """Each core operation's success and error responses match the documented schemas."""
    member = factory.user()
    me = member.user["id"]
    name = factory._next("u")

    def check(api: Api, method: str, template: str, body: Any = None, **params: str) -> Any:
        path = template
        for key, value in values.items():
            path = path.replace("{" + key + "}", value)
        return contract.check(api.request(method, path, body, params=params), template)

    values: dict[str, str] = {"user_id": me, "username": member.user["username"]}
    created = check(
        admin,
        "POST",
        "/users",
        {"username": name, "email": f"{name}@example.test", "password": "a-password-9"},
    )
    assert created["username"] == name
    check(anonymous, "POST", "/users/login", {"login_id": name, "password": "a-password-9"})
    check(anonymous, "POST", "/users/login", {"login_id": name, "password": "wrong"})
    check(admin, "GET", "/users", per_page="5")
    check(admin, "POST", "/users/ids", [me])
    check(member, "GET", "/users/{user_id}")
    check(member, "GET", "/users/username/{username}")
    check(member, "PUT", "/users/{user_id}/patch", {"nickname": "Nick"})
    check(member, "PUT", "/users/{user_id}/roles", {"roles": "system_admin system_user"})
    check(admin, "PUT", "/users/{user_id}/roles", {"roles": "system_user"})
    check(admin, "PUT", "/users/{user_id}/active", {"active": True})
    check(
        member,
        "PUT",
        "/users/{user_id}/password",
        {"current_password": "x", "new_password": "y" * 9},
    )

    team = check(admin, "POST", "/teams", {"name": factory._next("t"), "display_name": "Contract"})
    values.update(team_id=team["id"], name=team["name"], team_name=team["name"])
    check(admin, "POST", "/teams/{team_id}/members", {"team_id": team["id"], "user_id": me})
    check(member, "GET", "/teams")
    check(member, "GET", "/teams/{team_id}")
    check(member, "GET", "/teams/name/{name}")
    check(member, "GET", "/teams/{team_id}/members")
    check(member, "GET", "/teams/{team_id}/members/{user_id}")
    check(member, "GET", "/users/{user_id}/teams")
    unknown_team = admin.request("GET", f"/teams/{'x' * 26}/members/{me}")
    contract.check(unknown_team, "/teams/{team_id}/members/{user_id}")

    channel = check(
        member,
        "POST",
        "/channels",
        {"team_id": team["id"], "name": factory._next("c"), "display_name": "C", "purpose": "p"},
    )
    values.update(channel_id=channel["id"], channel_name=channel["name"])
    check(member, "GET", "/channels/{channel_id}")
    check(member, "GET", "/teams/{team_id}/channels")
    check(member, "GET", "/teams/{team_id}/channels/name/{channel_name}")
    check(member, "GET", "/teams/name/{team_name}/channels/name/{channel_name}")
    check(member, "GET", "/channels/{channel_id}/members")
    check(member, "POST", "/channels/{channel_id}/members", {"user_id": admin.user["id"]})
    check(member, "GET", "/users/{user_id}/teams/{team_id}/channels")
    check(member, "GET", "/users/{user_id}/teams/{team_id}/channels/members")
    check(member, "POST", "/channels/members/{user_id}/view", {"channel_id": channel["id"]})
    check(member, "POST", "/channels/direct", [me, admin.user["id"]])
    check(member, "POST", "/channels", {"team_id": team["id"], "name": "", "display_name": ""})

    root = check(
        member,
        "POST",
        "/posts",
        {"channel_id": channel["id"], "message": "root", "props": {"a": 1}},
    )
    values.update(post_id=root["id"])
    check(
        admin,
        "POST",
        "/posts",
        {"channel_id": channel["id"], "message": "re", "root_id": root["id"]},
    )
    check(member, "POST", "/posts", {"channel_id": channel["id"], "message": "x" * 16_384})
    check(member, "GET", "/posts/{post_id}")
    check(member, "GET", "/posts/{post_id}/thread")
    check(member, "GET", "/channels/{channel_id}/posts", per_page="2")
    check(member, "GET", "/channels/{channel_id}/posts", page="99")
    check(member, "PUT", "/posts/{post_id}/patch", {"message": "edited"})
    check(member, "PUT", "/posts/{post_id}", {"message": "updated"})
    check(member, "DELETE", "/posts/{post_id}")
    check(member, "GET", "/posts/{post_id}")
    check(member, "DELETE", "/channels/{channel_id}/members/{user_id}")

    check(anonymous, "GET", "/system/ping")
    check(admin, "GET", "/config")
    check(member, "GET", "/config")
    check(admin, "PUT", "/config/patch", {"ServiceSettings": {"EnableDeveloper": False}})
    check(admin, "PUT", "/config/patch", {"ServiceSettings": {"EnableDeveloper": "no"}})
    check(anonymous, "GET", "/config/client", format="old")
    check(anonymous, "GET", "/config/client")
    check(member, "POST", "/users/logout")
    check(member, "GET", "/users/{user_id}")


def test_component_shapes_of_the_core(contract: Contract, admin: Api, factory: Factory) -> None:
    """User, Team, TeamMember, Channel, ChannelMember, Post, PostList and AppError, one by one."""
    team = factory.team()
    channel = factory.channel(team, private=True)
    post = admin.post("/posts", {"channel_id": channel["id"], "message": "shape"})
    contract.component("User", admin.get("/users/me"))
    contract.component("Team", team)
    contract.component("TeamMember", admin.get(f"/teams/{team['id']}/members/me"))
    contract.component("Channel", channel)
    contract.component("ChannelMember", admin.get(f"/channels/{channel['id']}/members")[0])
    contract.component("Post", post)
    contract.component("PostList", admin.get(f"/channels/{channel['id']}/posts"))
    contract.component("AppError", admin.request("GET", "/posts/" + "x" * 26).json())
    contract.component("StatusOK", admin.delete(f"/posts/{post['id']}"))


def test_the_contract_fixture_catches_bad_shapes(contract: Contract) -> None:
    """The fixture rejects wrong types and honours ``nullable``, so a pass means something."""
    assert contract.schema_errors("/components/schemas/Post", {"id": 5})
    assert contract.schema_errors(
        "/components/schemas/PostList", {"posts": {"x": {"edit_at": "1"}}}
    )
    assert contract.schema_errors(
        "/components/schemas/User", {"timezone": {"useAutomaticTimezone": True}}
    )
    nullable = [
        name
        for name, schema in load_document()["components"]["schemas"].items()
        for prop in schema.get("properties", {}).values()
        if isinstance(prop.get("type"), list) and "null" in prop["type"]
    ]
    assert nullable, "nullable properties should have become null-able types"


def test_openapi_lists_every_route(server: ServerThread, anonymous: Api) -> None:
    """``/api/v4/openapi.json`` is served and documents every HTTP route of the API."""
    response = anonymous.request("GET", "/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.")
    documented = {
        (method.upper(), path) for path, ops in document["paths"].items() for method in ops
    }
    # app.routes holds the included routers (FastAPI 0.165), not their routes: enumerate the
    # served routes as the permission matrix does, down to every handler.
    served = {
        (method, path)
        for method, path, module in app_routes(server.app)
        if module.startswith("tidings.api") and method not in ("WS", "MOUNT")
    }
    assert ("PUT", "/api/v4/config") in served, sorted(served)
    assert served - documented == set(), f"served, not documented: {sorted(served - documented)}"
    assert documented - served == set(), f"documented, not served: {sorted(documented - served)}"
    assert ("POST", "/api/v4/posts") in documented
    assert ("GET", "/api/v4/channels/{channel_id}/posts") in documented
    docs = httpx.get(f"{server.url}/api/v4/docs")
    assert docs.status_code == 200
    assert "openapi.json" in docs.text
