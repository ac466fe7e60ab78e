"""Receivers' replies becoming posts, end to end (spec §7, REF §4, §8.3–8.4): overrides, threads,
Slack conversions, splitting, attachments, several URLs, unusable replies, websocket events."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hooks_support import (
    Scene,
    attempt_rows,
    channel_hook,
    channel_posts,
    finished_deliveries,
    form,
    make_hook,
    send,
    service_settings,
    wait_webhook_posts,
)
from websockets.sync.client import connect

from support import Api, Receiver, ServerThread, running_receiver

pytestmark = [pytest.mark.db, pytest.mark.usefixtures("no_retries")]

MAX_RUNES = 16_383


def overrides(admin: Api, on: bool) -> Any:
    return service_settings(admin, EnablePostUsernameOverride=on, EnablePostIconOverride=on)


def answer_to(scene: Scene, receiver: Receiver, reply: Any, message: str = "go") -> dict[str, Any]:
    """Post ``message`` and return the single webhook post the reply made."""
    receiver.reply = reply
    send(scene.poster, scene.channel, message)
    (post,) = wait_webhook_posts(scene.poster, scene.channel["id"])
    return post


ICON_HOOK = {"username": "some-user-name", "icon_url": "http://some-icon/", "display_name": "Bot"}


def test_overrides_off_post_as_the_creator(scene: Scene, receiver: Receiver, admin: Api) -> None:
    """Overrides off: no override props; reply props kept except the ones only the server sets."""
    channel_hook(scene, receiver, **ICON_HOOK)
    reply = {
        "text": "sample response text from test server",
        "username": "webhookuser",
        "icon_url": "http://webhook/icon",
        "props": {
            "foo": "bar",
            "from_webhook": "false",
            "override_username": "evil",
            "webhook_display_name": "fake",
        },
    }
    with overrides(admin, False):
        post = answer_to(scene, receiver, reply)
    assert post["message"] == "sample response text from test server"
    assert post["user_id"] == scene.owner.user["id"]
    assert post["props"]["from_webhook"] == "true"
    assert post["props"]["webhook_display_name"] == "Bot"
    assert post["props"]["foo"] == "bar"
    assert "override_username" not in post["props"]
    assert "override_icon_url" not in post["props"]


def test_overrides_on_use_the_hooks_name_and_icon(
    scene: Scene, receiver: Receiver, admin: Api
) -> None:
    """Overrides on: the hook's username and icon_url label the post."""
    channel_hook(scene, receiver, **ICON_HOOK)
    with overrides(admin, True):
        post = answer_to(scene, receiver, {"text": "hi"})
    assert post["props"]["override_username"] == "some-user-name"
    assert post["props"]["override_icon_url"] == "http://some-icon/"


def test_the_replys_name_and_icon_win(scene: Scene, receiver: Receiver, admin: Api) -> None:
    """Overrides on and the reply names itself: the reply's username and icon_url win."""
    channel_hook(scene, receiver, **ICON_HOOK)
    reply = {"text": "hi", "username": "webhookuser", "icon_url": "http://webhook/icon"}
    with overrides(admin, True):
        post = answer_to(scene, receiver, reply)
    assert post["props"]["override_username"] == "webhookuser"
    assert post["props"]["override_icon_url"] == "http://webhook/icon"


def test_default_override_name_is_webhook(scene: Scene, receiver: Receiver, admin: Api) -> None:
    """Username override on with no name anywhere: the post is labelled "webhook"."""
    channel_hook(scene, receiver)
    with overrides(admin, True):
        post = answer_to(scene, receiver, {"text": "hi"})
    assert post["props"]["override_username"] == "webhook"
    assert "override_icon_url" not in post["props"]


@pytest.mark.parametrize("icon_override", [True, False])
def test_icon_emoji_is_honoured_when_icon_override_is_on(
    scene: Scene, receiver: Receiver, admin: Api, icon_override: bool
) -> None:
    """icon_emoji becomes override_icon_emoji only while EnablePostIconOverride is on."""
    channel_hook(scene, receiver)
    with service_settings(admin, EnablePostIconOverride=icon_override):
        post = answer_to(scene, receiver, {"text": "hi", "icon_emoji": ":robot_face:"})
    if icon_override:
        assert post["props"]["override_icon_emoji"] == ":robot_face:"
    else:
        assert "override_icon_emoji" not in post["props"]


def test_comment_replies_go_to_the_thread_root(scene: Scene, receiver: Receiver) -> None:
    """response_type comment answers in the trigger's thread, at its root even for a reply."""
    channel_hook(scene, receiver)
    receiver.reply = {"text": "in thread", "response_type": "comment"}
    root = send(scene.poster, scene.channel, "root")
    wait_webhook_posts(scene.poster, scene.channel["id"], 1)
    reply = send(scene.poster, scene.channel, "a reply", root_id=root["id"])
    answers = wait_webhook_posts(scene.poster, scene.channel["id"], 2)
    assert [a["root_id"] for a in answers] == [root["id"], root["id"]]
    thread = scene.poster.get(f"/posts/{reply['id']}/thread")
    assert thread["order"][0] == root["id"]
    assert set(thread["order"]) == {root["id"], reply["id"], *(a["id"] for a in answers)}


def test_other_response_types_post_in_the_channel(scene: Scene, receiver: Receiver) -> None:
    """Any response_type but "comment" makes a top-level post; a custom_ type is kept."""
    channel_hook(scene, receiver)
    post = answer_to(scene, receiver, {"text": "top", "response_type": "post", "type": "custom_as"})
    assert post["root_id"] == ""
    assert post["type"] == "custom_as"


SLACK_CASES = [
    ("<https://mattermost.com|Mattermost>", "[Mattermost](https://mattermost.com)"),
    (
        "Click <http://www.mattermost.com/|here> for a link.",
        "Click [here](http://www.mattermost.com/) for a link.",
    ),
    ("<!channel> foo <!channel>", "@channel foo @channel"),
    ("<!here> bar <!here>", "@here bar @here"),
    ("<!all> bar <!all>", "@all bar @all"),
    ("`<>|<>|`", "`<>|<>|`"),
    ("< | \n|\n>", "< | \n|\n>"),
    (
        "`if(status_int < QUERY_UNKNOWN || status_int >= QUERY_STATUS_MAX)`",
        "`if(status_int < QUERY_UNKNOWN || status_int >= QUERY_STATUS_MAX)`",
    ),
    (
        "commit 1\nAuthor: foo <foo@example.org>\n test | 1 +",
        "commit 1\nAuthor: foo <foo@example.org>\n test | 1 +",
    ),
    ("<http://www.mattermost.com/>", "<http://www.mattermost.com/>"),
    ("hi <@U024BE7LH>", "hi <@U024BE7LH>"),
]


def test_slack_text_conversions(scene: Scene, receiver: Receiver) -> None:
    """<url|text> becomes a link, <!channel> a mention, <@id> a username; the rest is unchanged."""
    channel_hook(scene, receiver)
    replies = {f"case{i}": text for i, (text, _) in enumerate(SLACK_CASES)}
    replies["user"] = f"<@{scene.poster.user['id']}> hello"

    def reply(request: Any) -> dict[str, str]:
        return {"text": replies[form(request.body)["text"]], "response_type": "comment"}

    receiver.reply = reply
    triggers = {key: send(scene.poster, scene.channel, key)["id"] for key in replies}
    answers = wait_webhook_posts(scene.poster, scene.channel["id"], len(replies))
    by_trigger = {a["root_id"]: a["message"] for a in answers}
    for i, (_, expected) in enumerate(SLACK_CASES):
        assert by_trigger[triggers[f"case{i}"]] == expected
    assert by_trigger[triggers["user"]] == f"@{scene.poster.user['username']} hello"


def test_long_replies_are_split_in_order(scene: Scene, receiver: Receiver) -> None:
    """A reply over 16,383 characters becomes several posts, in order, with nothing lost."""
    channel_hook(scene, receiver)
    text = "".join(chr(ord("a") + i % 26) for i in range(2 * MAX_RUNES + 100)).replace("m", "本")
    receiver.reply = {"text": text}
    send(scene.poster, scene.channel, "go")
    parts = wait_webhook_posts(scene.poster, scene.channel["id"], 3)
    assert [len(p["message"]) for p in parts] == [MAX_RUNES, MAX_RUNES, 100]
    assert "".join(p["message"] for p in parts) == text
    assert all(p["props"]["from_webhook"] == "true" for p in parts)


def test_attachments_are_kept_as_slack_attachments(scene: Scene, receiver: Receiver) -> None:
    """Top-level attachments land in props with type slack_attachment, text converted."""
    channel_hook(scene, receiver)
    reply = {
        "attachments": [
            None,
            {
                "pretext": "<!channel> build",
                "text": "see <http://ci.test/1|log>",
                "color": "#FF0000",
                "fields": [{"title": "Tests", "value": 948, "short": "true"}],
            },
        ]
    }
    post = answer_to(scene, receiver, reply)
    assert post["message"] == ""
    assert post["type"] == "slack_attachment"
    (attachment,) = post["props"]["attachments"]
    assert attachment["pretext"] == "@channel build"
    assert attachment["text"] == "see [log](http://ci.test/1)"
    assert attachment["color"] == "#FF0000"
    assert attachment["fields"] == [{"title": "Tests", "value": "948", "short": True}]


def test_every_callback_url_is_called(scene: Scene, receiver: Receiver) -> None:
    """A hook with two URLs calls both; each reply becomes a post."""
    with running_receiver() as second:
        second.reply = {"text": "from second"}
        receiver.reply = {"text": "from first"}
        make_hook(
            scene.owner, scene.team, [receiver.url, second.url], channel_id=scene.channel["id"]
        )
        post = send(scene.poster, scene.channel, "go")
        receiver.wait_for(1)
        second.wait_for(1)
        answers = wait_webhook_posts(scene.poster, scene.channel["id"], 2)
    assert sorted(a["message"] for a in answers) == ["from first", "from second"]
    assert form(receiver.requests[0].body)["post_id"] == post["id"]
    assert receiver.requests[0].headers["webhook-id"] != second.requests[0].headers["webhook-id"]


UNUSABLE = [
    pytest.param(200, None, "succeeded", "", id="empty-body"),
    pytest.param(200, b"aaaaaaaa", "succeeded", "bad_reply", id="not-json"),
    pytest.param(
        200, b'{"text": "x", "type": "system_generic"}', "succeeded", "bad_reply", id="system-type"
    ),
    pytest.param(
        200, b'{"text": "' + b"a" * (1 << 20) + b'"}', "succeeded", "bad_reply", id="over-1MiB"
    ),
    pytest.param(404, b'{"text": "hi"}', "failed", "http_status", id="404"),
    pytest.param(500, b'{"text": "hi"}', "failed", "http_status", id="500"),
]


@pytest.mark.parametrize(("status", "body", "outcome", "kind"), UNUSABLE)
def test_unusable_replies_post_nothing_and_are_logged(
    server: ServerThread,
    scene: Scene,
    receiver: Receiver,
    status: int,
    body: bytes | None,
    outcome: str,
    kind: str,
) -> None:
    """Empty, non-JSON, invalid, oversized or non-2xx replies post nothing; the attempt is a row."""
    channel_hook(scene, receiver)
    receiver.status = status
    receiver.reply = body
    post = send(scene.poster, scene.channel, "go")
    (delivery,) = finished_deliveries(server, post_id=post["id"])
    assert delivery["status"] == outcome
    assert delivery["reply_posted"] is False
    assert delivery["last_error_kind"] == kind
    (attempt,) = attempt_rows(server, delivery["id"])
    assert attempt["status_code"] == status
    assert attempt["error_kind"] == kind
    assert len(receiver.requests) == 1
    assert [p["id"] for p in channel_posts(scene.poster, scene.channel["id"])] == [post["id"]]


def _posted_events(ws: Any, timeout: float) -> Iterator[dict[str, Any]]:
    while True:
        frame = json.loads(ws.recv(timeout=timeout))
        if frame.get("event") == "posted":
            yield frame["data"]


def test_websocket_sender_name_is_the_override_name(
    server: ServerThread, scene: Scene, receiver: Receiver, admin: Api
) -> None:
    """The posted event of a reply names the override username and does not set anyone online."""
    channel_hook(scene, receiver)
    url = server.url.replace("http://", "ws://") + "/api/v4/websocket"
    with (
        overrides(admin, True),
        connect(url, additional_headers={"Authorization": f"Bearer {scene.poster.token}"}) as ws,
    ):
        assert json.loads(ws.recv(timeout=5))["event"] == "hello"
        receiver.reply = {"text": "hi", "username": "robot"}
        post = send(scene.poster, scene.channel, "go")
        events = _posted_events(ws, timeout=10)
        mine = next(events)
        assert json.loads(mine["post"])["id"] == post["id"]
        assert mine["sender_name"] == f"@{scene.poster.user['username']}"
        answer = next(events)
    reply_post = json.loads(answer["post"])
    assert reply_post["props"]["from_webhook"] == "true"
    assert answer["sender_name"] == "robot"
    assert answer["set_online"] is False


def test_a_reply_that_mentions_someone_names_them_in_the_event(
    server: ServerThread, scene: Scene, receiver: Receiver
) -> None:
    """A webhook reply's posted event lists the members it @-mentions, so they are notified."""
    channel_hook(scene, receiver)
    url = server.url.replace("http://", "ws://") + "/api/v4/websocket"
    with connect(url, additional_headers={"Authorization": f"Bearer {scene.poster.token}"}) as ws:
        assert json.loads(ws.recv(timeout=5))["event"] == "hello"
        receiver.reply = {"text": f"done, @{scene.poster.user['username']}."}
        send(scene.poster, scene.channel, "go")
        events = _posted_events(ws, timeout=10)
        next(events)
        answer = next(events)
    assert json.loads(answer["mentions"]) == [scene.poster.user["id"]]
