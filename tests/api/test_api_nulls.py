"""``null`` in a request body means "absent", as Mattermost's Go decoding reads it: the field keeps
its default, a required field is still missing, and a wrong type is still a 400."""

from typing import Any

import pytest
from mattermost_contract import assert_app_error

from support import Api, Factory

pytestmark = pytest.mark.db


def test_null_optional_fields_take_their_defaults(
    admin: Api, factory: Factory, team: dict[str, Any]
) -> None:
    """Posts, channels, teams, users and channel views accept ``null`` for optional fields."""
    name = factory._next("nul")
    created_team = admin.post(
        "/teams", {"name": name, "display_name": "Nulls", "type": None}, expect=201
    )
    assert created_team["type"] == "O"
    channel = admin.post(
        "/channels",
        {
            "team_id": team["id"],
            "name": name,
            "display_name": "Nulls",
            "type": None,
            "purpose": None,
            "header": None,
        },
        expect=201,
    )
    assert (channel["type"], channel["purpose"], channel["header"]) == ("O", "", "")
    post = admin.post(
        "/posts",
        {
            "channel_id": channel["id"],
            "message": "null root",
            "root_id": None,
            "file_ids": None,
            "props": None,
            "pending_post_id": None,
            "type": None,
        },
        expect=201,
    )
    assert post["root_id"] == ""
    assert post["message"] == "null root"
    user = admin.post(
        "/users",
        {
            "username": name,
            "email": f"{name}@example.test",
            "password": "correct-horse-9",
            "nickname": None,
            "first_name": None,
        },
        expect=201,
    )
    assert user["nickname"] == ""
    assert admin.post("/channels/members/me/view", {"channel_id": None})["status"] == "OK"


def test_null_required_fields_are_still_missing(admin: Api, team: dict[str, Any]) -> None:
    """A required field sent as ``null`` is a 400 naming it, as if it were left out."""
    response = admin.request("POST", "/posts", {"channel_id": None, "message": "x"})
    body = assert_app_error(response, 400, "api.context.invalid_body_param.app_error")
    assert "channel_id" in body["message"]
    response = admin.request(
        "POST", "/channels", {"team_id": team["id"], "name": None, "display_name": "X"}
    )
    assert_app_error(response, 400, "api.context.invalid_body_param.app_error")
