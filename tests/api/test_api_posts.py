"""Posts: the message limit, reserved props, threads, who may edit and delete, private channels,
and direct messages."""

from typing import Any

import pytest
from mattermost_contract import assert_app_error

from support import Api, Factory

pytestmark = pytest.mark.db

LIMIT = 16_383
RANDOM_ID = "abcdefghijklmnopqrstuvwxyz"
RESERVED = {
    "from_webhook": "true",
    "override_username": "ceo",
    "override_icon_url": "http://example.test/i.png",
    "override_icon_emoji": ":crown:",
    "webhook_display_name": "Payroll",
}


@pytest.fixture
def channel(factory: Factory, team: dict[str, Any], member: Api) -> dict[str, Any]:
    """A public channel of ``team`` with the admin and ``member`` in it."""
    created = factory.channel(team)
    factory.admin.post(f"/channels/{created['id']}/members", {"user_id": member.user["id"]})
    return created


def _post(api: Api, channel_id: str, message: str = "hi", **extra: Any) -> dict[str, Any]:
    body = {"channel_id": channel_id, "message": message, **extra}
    created: dict[str, Any] = api.post("/posts", body, expect=201)
    return created


def test_the_message_limit_is_16383_characters(member: Api, channel: dict[str, Any]) -> None:
    """16,383 characters (counted as code points, not bytes) fit; 16,384 are a 400."""
    at_limit = _post(member, channel["id"], "é" * (LIMIT - 1) + "😀")
    assert len(at_limit["message"]) == LIMIT
    too_long = member.request(
        "POST", "/posts", {"channel_id": channel["id"], "message": "x" * (LIMIT + 1)}
    )
    assert_app_error(too_long, 400, "model.post.is_valid.message_length.app_error")
    patched = member.request(
        "PUT", f"/posts/{at_limit['id']}/patch", {"message": "y" * (LIMIT + 1)}
    )
    assert_app_error(patched, 400, "model.post.is_valid.message_length.app_error")
    assert member.get(f"/posts/{at_limit['id']}")["message"] == at_limit["message"]


def test_reserved_props_are_stripped_on_create(member: Api, channel: dict[str, Any]) -> None:
    """A user cannot make a post look like a webhook's: reserved props are dropped, others kept."""
    post = _post(member, channel["id"], props={**RESERVED, "colour": "teal"})
    assert post["props"] == {"colour": "teal"}
    assert member.get(f"/posts/{post['id']}")["props"] == {"colour": "teal"}
    listing = member.get(f"/channels/{channel['id']}/posts")
    assert listing["posts"][post["id"]]["props"] == {"colour": "teal"}


@pytest.mark.parametrize("path", ["/posts/{id}/patch", "/posts/{id}"])
def test_reserved_props_are_stripped_on_edit(
    member: Api, channel: dict[str, Any], path: str
) -> None:
    """Patch and update drop reserved props too, and keep the message when only props change."""
    post = _post(member, channel["id"], "original")
    edited = member.put(path.replace("{id}", post["id"]), {"props": {**RESERVED, "k": "v"}})
    assert edited["props"] == {"k": "v"}
    assert edited["message"] == "original"
    assert member.get(f"/posts/{post['id']}")["props"] == {"k": "v"}


def test_only_the_author_or_an_admin_edits_and_deletes(
    admin: Api, factory: Factory, team: dict[str, Any], member: Api, channel: dict[str, Any]
) -> None:
    """Another member gets 403 on edit and delete; the author and the team admin may."""
    other = factory.user()
    factory.join(team, other)
    post = _post(member, channel["id"], "mine")
    for method, body in (("PUT", {"message": "hijacked"}), ("DELETE", None)):
        response = other.request(
            method, f"/posts/{post['id']}/patch" if body else f"/posts/{post['id']}", body
        )
        assert_app_error(response, 403, "api.context.permissions.app_error")
    edited = member.put(f"/posts/{post['id']}/patch", {"message": "mine, edited"})
    assert edited["message"] == "mine, edited"
    assert edited["edit_at"] >= edited["create_at"] > 0
    by_admin = admin.put(f"/posts/{post['id']}/patch", {"message": "moderated"})
    assert by_admin["user_id"] == member.user["id"]
    assert member.delete(f"/posts/{post['id']}") == {"status": "OK"}
    assert_app_error(member.request("GET", f"/posts/{post['id']}"), 404)
    assert post["id"] not in member.get(f"/channels/{channel['id']}/posts")["order"]


def test_threads_list_the_root_first(member: Api, channel: dict[str, Any]) -> None:
    """A thread's order starts with the root, then replies oldest first; any member of it works."""
    root = _post(member, channel["id"], "root")
    replies = [_post(member, channel["id"], f"reply {n}", root_id=root["id"]) for n in range(3)]
    for anchor in (root, replies[1]):
        thread = member.get(f"/posts/{anchor['id']}/thread")
        assert thread["order"] == [root["id"]] + [r["id"] for r in replies]
        assert set(thread["posts"]) == set(thread["order"])
    listing = member.get(f"/channels/{channel['id']}/posts")
    assert listing["posts"][root["id"]]["reply_count"] == 3


def test_a_reply_to_a_reply_is_a_400(
    member: Api, channel: dict[str, Any], factory: Factory
) -> None:
    """Replying to a reply, to a missing post or to another channel's post is a 400."""
    root = _post(member, channel["id"], "root")
    reply = _post(member, channel["id"], "reply", root_id=root["id"])
    elsewhere = _post(factory.admin, factory.channel(factory.team())["id"], "elsewhere")
    for root_id in (reply["id"], "x" * 26, elsewhere["id"], "junk"):
        response = member.request(
            "POST", "/posts", {"channel_id": channel["id"], "message": "r", "root_id": root_id}
        )
        assert_app_error(response, 400, "api.post.create_post.root_id.app_error")


def test_deleting_a_root_deletes_its_thread(member: Api, channel: dict[str, Any]) -> None:
    """When the root goes, its replies go with it."""
    root = _post(member, channel["id"], "root")
    reply = _post(member, channel["id"], "reply", root_id=root["id"])
    member.delete(f"/posts/{root['id']}")
    assert_app_error(member.request("GET", f"/posts/{reply['id']}"), 404)
    assert_app_error(member.request("GET", f"/posts/{root['id']}/thread"), 404)


def test_private_channels_are_for_members(
    factory: Factory, team: dict[str, Any], member: Api
) -> None:
    """A team member outside a private channel cannot read, post in, or list it: the same 404
    as for a channel or post that does not exist (no existence oracle)."""
    owner = factory.user()
    factory.join(team, owner)
    secret = factory.channel(team, owner=owner, private=True)
    post = _post(owner, secret["id"], "secret")
    for method, path, body in (
        ("GET", f"/channels/{secret['id']}", None),
        ("GET", f"/channels/{secret['id']}/posts", None),
        ("GET", f"/channels/{secret['id']}/members", None),
        ("GET", f"/posts/{post['id']}", None),
        ("GET", f"/posts/{post['id']}/thread", None),
        ("POST", "/posts", {"channel_id": secret["id"], "message": "let me in"}),
        ("POST", f"/channels/{secret['id']}/members", {"user_id": member.user["id"]}),
    ):
        response = member.request(method, path, body)
        missing = member.request(
            method,
            path.replace(secret["id"], RANDOM_ID).replace(post["id"], RANDOM_ID),
            body and {k: (RANDOM_ID if v == secret["id"] else v) for k, v in body.items()},
        )
        error = assert_app_error(response, 404)
        assert error["id"] == assert_app_error(missing, 404)["id"], (method, path)
    assert secret["id"] not in {c["id"] for c in member.get(f"/teams/{team['id']}/channels")}
    owner.post(f"/channels/{secret['id']}/members", {"user_id": member.user["id"]}, expect=201)
    assert member.get(f"/channels/{secret['id']}/posts")["order"] == [post["id"]]


def test_public_channels_are_readable_by_the_team_only(
    factory: Factory, team: dict[str, Any], channel: dict[str, Any]
) -> None:
    """Team members outside a public channel read it but cannot post (403); outsiders of the
    open team are refused reading too (403: a public channel of an open team is no secret)."""
    reader = factory.user()
    factory.join(team, reader)
    outsider = factory.user()
    post = _post(factory.admin, channel["id"], "public")
    assert reader.get(f"/posts/{post['id']}")["message"] == "public"
    posting = reader.request("POST", "/posts", {"channel_id": channel["id"], "message": "x"})
    assert_app_error(posting, 403)
    assert_app_error(
        outsider.request("GET", f"/channels/{channel['id']}/posts"),
        403,
        "api.context.permissions.app_error",
    )
    assert_app_error(
        outsider.request("GET", f"/posts/{post['id']}"), 403, "api.context.permissions.app_error"
    )


def test_direct_messages(admin: Api, factory: Factory, team: dict[str, Any], member: Api) -> None:
    """``/channels/direct`` makes one DM per pair (either order); only the two read or post."""
    other = factory.user()
    pair = [member.user["id"], other.user["id"]]
    dm = member.post("/channels/direct", pair, expect=201)
    assert dm["type"] == "D"
    assert dm["team_id"] == ""
    assert dm["name"] == "__".join(sorted(pair))
    assert other.post("/channels/direct", pair[::-1], expect=201)["id"] == dm["id"]
    post = _post(member, dm["id"], "psst")
    assert other.get(f"/channels/{dm['id']}/posts")["order"] == [post["id"]]
    members = {m["user_id"] for m in other.get(f"/channels/{dm['id']}/members")}
    assert members == set(pair)

    third = factory.user()
    assert_app_error(third.request("GET", f"/channels/{dm['id']}/posts"), 404)
    assert_app_error(
        third.request("POST", "/posts", {"channel_id": dm["id"], "message": "hi"}), 404
    )
    assert_app_error(third.request("POST", "/channels/direct", pair), 403)
    assert_app_error(admin.request("POST", "/posts", {"channel_id": dm["id"], "message": "x"}), 403)
    add = member.request("POST", f"/channels/{dm['id']}/members", {"user_id": third.user["id"]})
    assert_app_error(add, 400)
    # DMs are listed beside each team's channels.
    assert dm["id"] in {c["id"] for c in member.get(f"/users/me/teams/{team['id']}/channels")}


def test_a_self_dm_has_one_member(member: Api) -> None:
    """A DM with yourself is allowed and has you as its only member."""
    me = member.user["id"]
    dm = member.post("/channels/direct", [me, me], expect=201)
    assert [m["user_id"] for m in member.get(f"/channels/{dm['id']}/members")] == [me]


def test_posts_list_newest_first_with_anchors(member: Api, channel: dict[str, Any]) -> None:
    """Channel posts come newest first; ``before`` and ``after`` page around an anchor post."""
    ids = [_post(member, channel["id"], f"m{n}")["id"] for n in range(5)]
    listing = member.get(f"/channels/{channel['id']}/posts")
    assert listing["order"] == ids[::-1]
    before = member.get(f"/channels/{channel['id']}/posts", params={"before": ids[2]})
    assert before["order"] == [ids[1], ids[0]]
    after = member.get(f"/channels/{channel['id']}/posts", params={"after": ids[2]})
    assert after["order"] == [ids[4], ids[3]]
    for name in ("before", "after", "since"):
        bad = member.request("GET", f"/channels/{channel['id']}/posts", params={name: "junk"})
        assert_app_error(bad, 400, "api.context.invalid_param.app_error")


def test_posting_marks_the_channel_read_for_the_author(
    admin: Api, member: Api, channel: dict[str, Any]
) -> None:
    """The author's unread count stays at zero; other members see the new messages as unread."""
    for n in range(3):
        _post(member, channel["id"], f"count {n}")
    total = member.get(f"/channels/{channel['id']}")["total_msg_count"]
    assert total == 3
    counts = {m["user_id"]: m["msg_count"] for m in admin.get(f"/channels/{channel['id']}/members")}
    assert counts[member.user["id"]] == total
    assert counts[admin.user["id"]] < total
