"""The ``mattermost`` package (PyPI's ``MMApi`` client), unmodified, against a real Tidings server.

It sends ``"root_id": null`` with every post and a ``null`` body with every DELETE, so it proves
that ``null`` is read as "absent", as Mattermost's Go decoding reads it.
"""

from typing import Any

import pytest
from mattermost import ApiException, MMApi

from support import PASSWORD, Api, Factory, ServerThread

pytestmark = pytest.mark.db


def _client(server: ServerThread, login_id: str) -> MMApi:
    client = MMApi(f"{server.url}/api")
    me = client.login(login_id, PASSWORD)
    assert me is not None, "login failed"
    assert me["username"] == login_id
    return client


def test_the_mattermost_client_posts_reads_and_logs_out(
    server: ServerThread, factory: Factory, team: dict[str, Any], member: Api
) -> None:
    """Log in, find the team and channel, post (root_id null), reply, page, patch, delete."""
    channel = factory.channel(team)
    factory.admin.post(f"/channels/{channel['id']}/members", {"user_id": member.user["id"]})
    client = _client(server, member.user["username"])

    assert client.get_user()["id"] == member.user["id"]
    assert client.get_user(factory.admin.user["id"])["username"] == "admin"
    assert team["id"] in {t["id"] for t in client.get_teams()}
    assert client.get_channel(channel["id"])["name"] == channel["name"]
    mine = client.get_channels_for_user(member.user["id"], team["id"])
    assert channel["id"] in {c["id"] for c in mine}
    members = {m["user_id"] for m in client.get_channel_members(channel["id"])}
    assert member.user["id"] in members

    root = client.create_post(channel["id"], "hello from MMApi")
    assert root["root_id"] == ""
    assert root["user_id"] == member.user["id"]
    reply = client.create_post(channel["id"], "a reply", root_id=root["id"])
    assert reply["root_id"] == root["id"]
    assert client.get_post(reply["id"])["message"] == "a reply"

    posts = list(client.get_posts_for_channel(channel["id"]))
    assert {root["id"], reply["id"]} <= {p["id"] for p in posts}

    assert client.patch_post(root["id"], message="edited")["message"] == "edited"
    assert client.get_post(root["id"])["message"] == "edited"
    client.delete_post(reply["id"])
    with pytest.raises(ApiException):
        client.get_post(reply["id"])

    client.logout()
    again = MMApi(f"{server.url}/api")
    again._headers.update(client._headers)  # the old token, exactly as the client kept it
    with pytest.raises(ApiException):
        again.get_user()


def test_the_mattermost_client_sees_mattermost_errors(
    server: ServerThread, factory: Factory, team: dict[str, Any], member: Api
) -> None:
    """Its exceptions carry Mattermost's error JSON: a malformed id and an unknown one."""
    client = _client(server, member.user["username"])
    with pytest.raises(ApiException) as malformed:
        client.get_post("not-an-id")
    assert malformed.value.args[0]["id"] == "api.context.invalid_url_param.app_error"
    assert malformed.value.args[0]["status_code"] == 400
    with pytest.raises(ApiException) as unknown:
        client.get_post("x" * 26)
    assert unknown.value.args[0]["status_code"] == 404
    assert MMApi(f"{server.url}/api").login(member.user["username"], "wrong-password") is None
