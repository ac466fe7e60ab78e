"""Which posts fire which hooks, end to end (REF §2, §8.2, spec §2), and the bytes receivers get
(REF §3.2). Whether a post fired is read from the outbox: its delivery rows commit with the post,
so "no rows" right after the API answered means "never fires"."""

import json
from typing import Any

import pytest
from hooks_support import (
    Scene,
    delivery_rows,
    form,
    make_hook,
    send,
    service_settings,
    signature_ok,
    wait_webhook_posts,
)

from support import Api, Factory, Receiver, ServerThread, wait_until

pytestmark = pytest.mark.db


def requests_to(receiver: Receiver, tag: str) -> list[dict[str, str]]:
    return [form(r.body) for r in receiver.requests if r.path.endswith(f"?h={tag}")]


def fired(server: ServerThread, post: dict[str, Any]) -> list[dict[str, Any]]:
    return delivery_rows(server, post_id=post["id"])


def wait_payload(receiver: Receiver, tag: str, post: dict[str, Any]) -> dict[str, str]:
    def check() -> dict[str, str] | None:
        found = [p for p in requests_to(receiver, tag) if p["post_id"] == post["id"]]
        return found[0] if found else None

    result: dict[str, str] = wait_until(check, timeout=10)
    return result


def test_exact_and_prefix_matching(server: ServerThread, scene: Scene, receiver: Receiver) -> None:
    """trigger_when 0 needs the first word to equal a word; 1 needs it to start with one."""
    exact = make_hook(
        scene.owner,
        scene.team,
        [f"{receiver.url}?h=exact"],
        channel_id=scene.channel["id"],
        trigger_words=["triggerword"],
        trigger_when=0,
    )
    prefix = make_hook(
        scene.owner,
        scene.team,
        [f"{receiver.url}?h=prefix"],
        channel_id=scene.channel["id"],
        trigger_words=["other", "trigger", "triggerword"],
        trigger_when=1,
    )
    both = send(scene.poster, scene.channel, "triggerword lorem ipsum")
    assert {r["hook_id"] for r in fired(server, both)} == {exact["id"], prefix["id"]}
    assert wait_payload(receiver, "exact", both)["trigger_word"] == "triggerword"
    # The first listed word that is a prefix, not the longest.
    assert wait_payload(receiver, "prefix", both)["trigger_word"] == "trigger"

    longer = send(scene.poster, scene.channel, "triggerwordaaazzz lorem ipsum")
    assert [r["hook_id"] for r in fired(server, longer)] == [prefix["id"]]
    assert wait_payload(receiver, "prefix", longer)["trigger_word"] == "trigger"

    punctuated = send(scene.poster, scene.channel, "triggerword, hello")
    assert [r["hook_id"] for r in fired(server, punctuated)] == [prefix["id"]]


def test_case_first_word_and_whitespace(
    server: ServerThread, scene: Scene, receiver: Receiver
) -> None:
    """Matching is case-sensitive, looks only at the first word, and splits like Go's Fields."""
    hook = make_hook(scene.owner, scene.team, [f"{receiver.url}?h=w"], trigger_words=["#deploy"])
    for message in ("#Deploy now", "#DEPLOY", "please #deploy", "", "   ", "#deploy\x1cnow"):
        assert fired(server, send(scene.poster, scene.channel, message)) == [], message
    for message in ("#deploy", "  \t#deploy now", "\u3000#deploy\u00a0now", "#deploy\nnow"):
        post = send(scene.poster, scene.channel, message)
        assert [r["hook_id"] for r in fired(server, post)] == [hook["id"]], repr(message)
        payload = wait_payload(receiver, "w", post)
        assert payload["text"] == message  # sent whole, trigger word included
        assert payload["trigger_word"] == "#deploy"


def test_channel_hook_without_words_fires_on_every_post(
    server: ServerThread, scene: Scene, receiver: Receiver, factory: Factory
) -> None:
    """A channel hook with no words fires on every post there (trigger_word ""), not elsewhere."""
    make_hook(scene.owner, scene.team, [f"{receiver.url}?h=all"], channel_id=scene.channel["id"])
    file_ids = ["fileidfileidfileidfileid01", "fileidfileidfileidfileid02"]
    files_only = send(scene.poster, scene.channel, "", file_ids=file_ids)
    payload = wait_payload(receiver, "all", files_only)
    assert payload["text"] == ""
    assert payload["trigger_word"] == ""
    assert payload["file_ids"] == ",".join(file_ids)
    chatter = send(scene.poster, scene.channel, "anything at all")
    assert wait_payload(receiver, "all", chatter)["trigger_word"] == ""
    elsewhere = factory.channel(scene.team, scene.owner)
    assert fired(server, send(scene.owner, elsewhere, "anything at all")) == []


def test_each_payload_carries_its_own_trigger_word(
    server: ServerThread, scene: Scene, receiver: Receiver
) -> None:
    """Two hooks match one post: each payload reports its own hook's word (spec §2 divergence)."""
    make_hook(scene.owner, scene.team, [f"{receiver.url}?h=team"], trigger_words=["alpha"])
    make_hook(
        scene.owner,
        scene.team,
        [f"{receiver.url}?h=chan"],
        channel_id=scene.channel["id"],
        trigger_words=["al"],
        trigger_when=1,
    )
    make_hook(scene.owner, scene.team, [f"{receiver.url}?h=any"], channel_id=scene.channel["id"])
    post = send(scene.poster, scene.channel, "alpha go")
    assert len(fired(server, post)) == 3
    assert wait_payload(receiver, "team", post)["trigger_word"] == "alpha"
    assert wait_payload(receiver, "chan", post)["trigger_word"] == "al"
    assert wait_payload(receiver, "any", post)["trigger_word"] == ""


def test_replies_and_claimed_webhook_props_still_fire(
    server: ServerThread, scene: Scene, receiver: Receiver
) -> None:
    """Thread replies fire hooks, and so do user posts that claim from_webhook in their props."""
    hook = make_hook(scene.owner, scene.team, [f"{receiver.url}?h=r"], trigger_words=["ping"])
    root = send(scene.poster, scene.channel, "ping root")
    reply = send(scene.poster, scene.channel, "ping reply", root_id=root["id"])
    claimed = send(scene.poster, scene.channel, "ping claim", props={"from_webhook": "true"})
    for post in (root, reply, claimed):
        assert [r["hook_id"] for r in fired(server, post)] == [hook["id"]]


def test_webhook_replies_never_fire_hooks(
    server: ServerThread, scene: Scene, receiver: Receiver
) -> None:
    """A reply that starts with the trigger word is posted but fires nothing (loop guard)."""
    make_hook(
        scene.owner,
        scene.team,
        [f"{receiver.url}?h=loop"],
        channel_id=scene.channel["id"],
        trigger_words=["echo"],
    )
    receiver.reply = {"text": "echo echo"}
    post = send(scene.poster, scene.channel, "echo hello")
    (answer,) = wait_webhook_posts(scene.poster, scene.channel["id"])
    assert answer["message"] == "echo echo"
    assert fired(server, answer) == []
    assert len(receiver.requests) == 1
    assert len(fired(server, post)) == 1


def test_private_channels_and_direct_messages_never_fire(
    server: ServerThread, scene: Scene, receiver: Receiver, factory: Factory
) -> None:
    """A team-wide trigger word fires in public channels only, never in private ones or DMs."""
    make_hook(scene.owner, scene.team, [f"{receiver.url}?h=p"], trigger_words=["#anywhere"])
    private = factory.channel(scene.team, scene.owner, private=True)
    assert fired(server, send(scene.owner, private, "#anywhere secret")) == []
    direct = scene.owner.post(
        "/channels/direct", [scene.owner.user["id"], scene.poster.user["id"]], expect=201
    )
    assert fired(server, send(scene.owner, direct, "#anywhere dm")) == []
    assert len(fired(server, send(scene.owner, scene.channel, "#anywhere public"))) == 1


def test_disabled_feature_and_deleted_hooks_do_not_fire(
    server: ServerThread, scene: Scene, receiver: Receiver, admin: Api
) -> None:
    """With EnableOutgoingWebhooks off nothing fires; a deleted hook never fires again."""
    hook = make_hook(scene.owner, scene.team, [f"{receiver.url}?h=d"], trigger_words=["#off"])
    with service_settings(admin, EnableOutgoingWebhooks=False):
        assert fired(server, send(scene.poster, scene.channel, "#off now")) == []
    assert len(fired(server, send(scene.poster, scene.channel, "#off again"))) == 1
    scene.owner.delete(f"/hooks/outgoing/{hook['id']}")
    assert fired(server, send(scene.poster, scene.channel, "#off gone")) == []


@pytest.mark.parametrize("content_type", ["", "application/json"])
def test_edits_are_seen_by_the_next_post(
    server: ServerThread, scene: Scene, receiver: Receiver, content_type: str
) -> None:
    """New words apply to the very next post; so do a regenerated token and signing secret."""
    hook = make_hook(
        scene.owner,
        scene.team,
        [receiver.url],
        trigger_words=["old"],
        content_type=content_type,
    )
    send(scene.poster, scene.channel, "old word")
    receiver.wait_for(1)
    scene.owner.put(f"/hooks/outgoing/{hook['id']}", {"trigger_words": ["new"]})
    assert fired(server, send(scene.poster, scene.channel, "old word")) == []
    fresh = scene.owner.post(f"/hooks/outgoing/{hook['id']}/regen_token", expect=200)
    send(scene.poster, scene.channel, "new word")
    request = receiver.wait_for(2)[1]
    payload = json.loads(request.body) if content_type else form(request.body)
    assert payload["token"] == fresh["token"]
    assert payload["text"] == "new word"
    assert signature_ok(fresh["signing_secret"], request.headers, request.body)


def test_json_body_is_byte_for_byte_go(
    server: ServerThread, scene: Scene, receiver: Receiver
) -> None:
    """content_type application/json: REF §3.2 key order, ms timestamp, Go's HTML escapes."""
    hook = make_hook(
        scene.owner,
        scene.team,
        [receiver.url],
        channel_id=scene.channel["id"],
        trigger_words=["#json"],
        content_type="application/json",
    )
    message = '#json <b> & "q" ünï\u2028end'
    file_ids = ["fileidfileidfileidfileid01"]
    post = send(scene.poster, scene.channel, message, file_ids=file_ids)
    (request,) = receiver.wait_for(1)
    ids = {
        "token": hook["token"],
        "team_id": scene.team["id"],
        "team_domain": scene.team["name"],
        "channel_id": scene.channel["id"],
        "channel_name": scene.channel["name"],
    }
    expected = (
        "{"
        + ",".join(f'"{k}":"{v}"' for k, v in ids.items())
        + f',"timestamp":{post["create_at"]}'
        + f',"user_id":"{scene.poster.user["id"]}"'
        + f',"user_name":"{scene.poster.user["username"]}"'
        + f',"post_id":"{post["id"]}"'
        + ',"text":"#json \\u003cb\\u003e \\u0026 \\"q\\" ünï\\u2028end"'
        + ',"trigger_word":"#json"'
        + f',"file_ids":"{file_ids[0]}"'
        + "}"
    )
    assert request.body == expected.encode()
    assert json.loads(request.body)["text"] == message
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "content_type", ["", "text/plain", "Application/JSON", "application/json; charset=utf-8"]
)
def test_anything_but_exactly_json_is_a_form(
    server: ServerThread, scene: Scene, receiver: Receiver, content_type: str
) -> None:
    """Only the exact string application/json selects JSON; the rest send a form (seconds)."""
    make_hook(
        scene.owner,
        scene.team,
        [receiver.url],
        channel_id=scene.channel["id"],
        content_type=content_type,
    )
    post = send(scene.poster, scene.channel, "a & b = c")
    (request,) = receiver.wait_for(1)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    payload = form(request.body)
    assert payload["timestamp"] == str(post["create_at"] // 1000)
    assert payload["text"] == "a & b = c"
    assert b"text=a+%26+b+%3D+c&" in request.body
