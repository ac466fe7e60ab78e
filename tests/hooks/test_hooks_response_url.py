"""The extended payload and deferred replies through ``response_url`` (issue #13 items 2–3), end
to end with real receivers: the body's four keys, replies posted later, and every way a
``response_url`` stops working."""

import json
import threading
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hooks_support import (
    Scene,
    channel_posts,
    delivery_rows,
    form,
    make_hook,
    send,
    service_settings,
    wait_webhook_posts,
)
from sqlalchemy import select, update
from websockets.sync.client import connect

from support import Api, Receiver, ServerThread, running_receiver
from tidings.store.schema import deliveries, posts
from tidings.webhooks.response_urls import secret_digest

pytestmark = [pytest.mark.db, pytest.mark.usefixtures("no_retries")]

DAY_MS = 24 * 3600 * 1000


def extended_hook(scene: Scene, receiver: Receiver, **fields: Any) -> dict[str, Any]:
    return make_hook(
        scene.owner,
        scene.team,
        [receiver.url],
        channel_id=scene.channel["id"],
        extended_payload=True,
        content_type="application/json",
        **fields,
    )


def response_url_of(receiver: Receiver, index: int = 0) -> str:
    request = receiver.wait_for(index + 1)[index]
    return str(json.loads(request.body)["response_url"])


def deliver_once(scene: Scene, receiver: Receiver, message: str = "go") -> tuple[dict, str]:
    """Post ``message`` to a receiver that answers empty; (the post, its response_url)."""
    receiver.reply = None
    post = send(scene.poster, scene.channel, message)
    return post, response_url_of(receiver)


def post_reply(url: str, reply: Any) -> httpx.Response:
    content = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
    return httpx.post(url, content=content, timeout=10)


def assert_mattermost_error(response: httpx.Response, status: int, error_id: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["id"] == error_id
    assert body["status_code"] == status
    assert body["message"]
    assert "request_id" in body


def test_a_default_body_is_mattermosts_byte_for_byte(scene: Scene, receiver: Receiver) -> None:
    """Without extended_payload the receiver gets exactly the 12 fields, form and JSON."""
    receiver.reply = None
    form_hook = make_hook(scene.owner, scene.team, [receiver.url], channel_id=scene.channel["id"])
    post = send(scene.poster, scene.channel, "plain <text> & more")
    (request,) = receiver.wait_for(1)
    expected = {
        "channel_id": scene.channel["id"],
        "channel_name": scene.channel["name"],
        "file_ids": "",
        "post_id": post["id"],
        "team_domain": scene.team["name"],
        "team_id": scene.team["id"],
        "text": "plain <text> & more",
        "timestamp": str(post["create_at"] // 1000),
        "token": form_hook["token"],
        "trigger_word": "",
        "user_id": scene.poster.user["id"],
        "user_name": scene.poster.user["username"],
    }
    assert request.body == urlencode(sorted(expected.items())).encode()
    scene.owner.delete(f"/hooks/outgoing/{form_hook['id']}")

    json_hook = make_hook(
        scene.owner,
        scene.team,
        [receiver.url],
        channel_id=scene.channel["id"],
        content_type="application/json",
    )
    post = send(scene.poster, scene.channel, "second")
    request = receiver.wait_for(2)[1]
    assert (
        request.body
        == (
            f'{{"token":"{json_hook["token"]}","team_id":"{scene.team["id"]}",'
            f'"team_domain":"{scene.team["name"]}","channel_id":"{scene.channel["id"]}",'
            f'"channel_name":"{scene.channel["name"]}","timestamp":{post["create_at"]},'
            f'"user_id":"{scene.poster.user["id"]}","user_name":"{scene.poster.user["username"]}",'
            f'"post_id":"{post["id"]}","text":"second","trigger_word":"","file_ids":""}}'
        ).encode()
    )


def test_an_extended_body_carries_the_four_keys_in_order(
    scene: Scene, receiver: Receiver, server: ServerThread
) -> None:
    """JSON: root_id, channel_type, from_bot, response_url after file_ids; form: sorted in."""
    extended_hook(scene, receiver)
    receiver.reply = None
    root = send(scene.poster, scene.channel, "root")
    reply = send(scene.poster, scene.channel, "in thread", root_id=root["id"])
    first, second = receiver.wait_for(2)
    keys = list(json.loads(first.body))
    assert keys[-5:] == ["file_ids", "root_id", "channel_type", "from_bot", "response_url"]
    assert len(keys) == 16
    body = json.loads(second.body)
    assert body["post_id"] == reply["id"]
    assert body["root_id"] == root["id"]
    assert json.loads(first.body)["root_id"] == ""
    assert body["channel_type"] == "O"
    assert body["from_bot"] is False
    assert b'"from_bot":false,"response_url":"' in second.body
    assert body["response_url"].startswith(f"{server.url}/hooks/responses/")

    form_receiver = Receiver()
    try:
        form_receiver.reply = None
        make_hook(
            scene.owner,
            scene.team,
            [form_receiver.url],
            channel_id=scene.channel["id"],
            extended_payload=True,
        )
        send(scene.poster, scene.channel, "form please")
        (request,) = form_receiver.wait_for(1)
        sent = form(request.body)
        assert sent["from_bot"] == "false"
        assert sent["channel_type"] == "O"
        assert sent["root_id"] == ""
        assert sent["response_url"].startswith(f"{server.url}/hooks/responses/")
        names = [pair.split("=")[0] for pair in request.body.decode().split("&")]
        assert names == sorted(names)
        assert len(names) == 16
    finally:
        form_receiver.close()


def test_each_callback_url_gets_its_own_secret_stored_only_as_a_digest(
    scene: Scene, server: ServerThread
) -> None:
    """Two URLs, two response_urls; the deliveries hold their sha256, not the secrets."""
    with running_receiver() as one, running_receiver() as two:
        one.reply = two.reply = None
        make_hook(
            scene.owner,
            scene.team,
            [one.url, two.url],
            channel_id=scene.channel["id"],
            extended_payload=True,
            content_type="application/json",
        )
        post = send(scene.poster, scene.channel, "two receivers")
        urls = {response_url_of(one), response_url_of(two)}
    assert len(urls) == 2
    secrets = {url.rsplit("/", 1)[1] for url in urls}
    assert all(len(s) >= 43 for s in secrets)
    rows = delivery_rows(server, post_id=post["id"])
    assert {r["response_secret_hash"] for r in rows} == {secret_digest(s) for s in secrets}


def test_the_response_url_follows_site_url(scene: Scene, receiver: Receiver, admin: Api) -> None:
    """With ServiceSettings.SiteURL set, response URLs start with it."""
    extended_hook(scene, receiver)
    with service_settings(admin, SiteURL="https://chat.example.test/"):
        _post, url = deliver_once(scene, receiver)
    assert url.startswith("https://chat.example.test/hooks/responses/")


def test_an_empty_answer_then_a_reply_three_seconds_later(
    scene: Scene, receiver: Receiver, server: ServerThread
) -> None:
    """The receiver answers at once with nothing and replies 3 s later through response_url:
    the reply is the hook's, in the triggering post's thread, and in the delivery's log."""
    hook = extended_hook(scene, receiver, display_name="Slow")
    receiver.reply = None
    root = send(scene.poster, scene.channel, "root of the thread")
    post = send(scene.poster, scene.channel, "slow job please", root_id=root["id"])
    # The two posts' deliveries are independent and may arrive in either order.
    bodies = [json.loads(r.body) for r in receiver.wait_for(2)]
    (url,) = [b["response_url"] for b in bodies if b["post_id"] == post["id"]]
    answers: list[httpx.Response] = []

    def later() -> None:
        time.sleep(3)
        answers.append(post_reply(url, {"text": "done at last", "response_type": "comment"}))

    worker = threading.Thread(target=later)
    started = time.monotonic()
    worker.start()
    (reply,) = wait_webhook_posts(scene.poster, scene.channel["id"], timeout=15)
    assert time.monotonic() - started >= 2.9
    worker.join(10)
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].json()["uses_left"] == 4
    assert answers[0].json()["post_ids"] == [reply["id"]]
    assert reply["message"] == "done at last"
    assert reply["user_id"] == scene.owner.user["id"]
    assert reply["root_id"] == root["id"]
    assert reply["props"]["from_webhook"] == "true"
    assert reply["props"]["webhook_display_name"] == "Slow"

    async def depth() -> int:
        query = select(posts.c.webhook_depth).where(posts.c.id == reply["id"])
        return int(await server.runtime.db.read(lambda conn: conn.execute(query).scalar_one()))

    assert server.run(depth()) == 1
    found = scene.owner.get(f"/hooks/outgoing/{hook['id']}/deliveries")
    (delivery,) = [d for d in found if d["post_id"] == post["id"]]
    assert delivery["response_uses"] == 1
    detail = scene.owner.get(f"/hooks/outgoing/{hook['id']}/deliveries/{delivery['id']}")
    use = detail["attempts"][-1]
    assert use["error_kind"] == "response_url"
    assert use["number"] == 1
    assert use["status_code"] == 200
    assert "done at last" in use["response_body"]
    channel = scene.poster.get(f"/channels/{scene.channel['id']}")
    assert channel["last_post_at"] == reply["create_at"]


def test_the_sixth_use_answers_410(scene: Scene, receiver: Receiver) -> None:
    """Five replies are posted; the sixth is refused as gone, and nothing more is posted."""
    extended_hook(scene, receiver)
    _post, url = deliver_once(scene, receiver)
    for n in range(5):
        answer = post_reply(url, {"text": f"part {n}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["uses_left"] == 4 - n
    assert_mattermost_error(
        post_reply(url, {"text": "one too many"}), 410, "api.webhooks.response_url.gone.app_error"
    )
    messages = [p["message"] for p in channel_posts(scene.poster, scene.channel["id"])]
    assert messages[-5:] == [f"part {n}" for n in range(5)]
    assert "one too many" not in messages


def test_two_uses_at_once_cannot_both_be_the_fifth(scene: Scene, receiver: Receiver) -> None:
    """Four uses spent, two at once: exactly one is posted, the other answers 410."""
    extended_hook(scene, receiver)
    _post, url = deliver_once(scene, receiver)
    for n in range(4):
        assert post_reply(url, {"text": f"early {n}"}).status_code == 200
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def race(n: int) -> None:
        barrier.wait()
        statuses.append(post_reply(url, {"text": f"racer {n}"}).status_code)

    racers = [threading.Thread(target=race, args=(n,)) for n in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(15)
    assert sorted(statuses) == [200, 410]
    messages = [p["message"] for p in channel_posts(scene.poster, scene.channel["id"])]
    assert sum(m.startswith("racer") for m in messages) == 1


def test_an_unknown_response_url_answers_404(server: ServerThread) -> None:
    """A secret no delivery has is 404 with Mattermost's error shape."""
    for secret in ("x" * 43, "y", "z" * 500):
        answer = post_reply(f"{server.url}/hooks/responses/{secret}", {"text": "hi"})
        assert_mattermost_error(answer, 404, "api.webhooks.response_url.not_found.app_error")


def test_an_expired_response_url_answers_410(
    scene: Scene, receiver: Receiver, server: ServerThread
) -> None:
    """A delivery older than OutgoingWebhookResponseUrlMinutes no longer takes replies."""
    extended_hook(scene, receiver)
    post, url = deliver_once(scene, receiver)

    async def age() -> None:
        statement = (
            update(deliveries)
            .where(deliveries.c.post_id == post["id"])
            .values(create_at=deliveries.c.create_at - 31 * 60 * 1000)
        )
        await server.runtime.db.write(lambda conn: conn.execute(statement))

    server.run(age())
    answer = post_reply(url, {"text": "too late"})
    assert_mattermost_error(answer, 410, "api.webhooks.response_url.gone.app_error")
    assert "expired" in answer.json()["message"]
    assert not [
        p for p in channel_posts(scene.poster, scene.channel["id"]) if "too late" in p["message"]
    ]


def test_a_deleted_hooks_response_url_answers_410(scene: Scene, receiver: Receiver) -> None:
    """Deleting the hook ends its response URLs."""
    hook = extended_hook(scene, receiver)
    _post, url = deliver_once(scene, receiver)
    scene.owner.delete(f"/hooks/outgoing/{hook['id']}")
    answer = post_reply(url, {"text": "orphan"})
    assert_mattermost_error(answer, 410, "api.webhooks.response_url.gone.app_error")
    assert "deleted" in answer.json()["message"]


@pytest.mark.parametrize(
    ("body", "error_id", "says"),
    [
        (b"{not json", "api.unmarshal_error", "not valid JSON"),
        (b'["a list"]', "api.unmarshal_error", "JSON object"),
        (b'{"text": 5}', "api.unmarshal_error", "text must be a string"),
        (b'{"text": "x", "type": "system_join"}', "api.context.invalid_param.app_error", "type"),
        (b"{}", "api.webhooks.response_url.empty.app_error", "nothing to post"),
        (b"", "api.webhooks.response_url.empty.app_error", "nothing to post"),
    ],
)
def test_a_bad_reply_body_is_400_and_posts_nothing(
    scene: Scene, receiver: Receiver, body: bytes, error_id: str, says: str
) -> None:
    """A body that is no postable reply: 400 with the reason, nothing posted, no use spent."""
    hook = extended_hook(scene, receiver)
    _post, url = deliver_once(scene, receiver)
    answer = post_reply(url, body)
    assert_mattermost_error(answer, 400, error_id)
    assert says in answer.json()["message"]
    assert not [
        p
        for p in channel_posts(scene.poster, scene.channel["id"])
        if p["props"].get("from_webhook")
    ]
    (delivery,) = scene.owner.get(f"/hooks/outgoing/{hook['id']}/deliveries")
    assert delivery["response_uses"] == 0
    ok = post_reply(url, {"text": "fixed"})
    assert ok.json()["uses_left"] == 4


def test_a_reply_over_the_size_cap_is_refused(scene: Scene, receiver: Receiver, admin: Api) -> None:
    """Bodies are bounded: over the server's payload maximum, and over a reply's 1 MiB even
    when that maximum is higher, 413 and nothing posted."""
    extended_hook(scene, receiver)
    _post, url = deliver_once(scene, receiver)
    with service_settings(admin, MaximumPayloadSizeBytes=10_000):
        assert post_reply(url, {"text": "x" * 20_000}).status_code == 413
    with service_settings(admin, MaximumPayloadSizeBytes=4 * 1024 * 1024):
        answer = post_reply(url, {"text": "y" * (1024 * 1024 + 10)})
    assert_mattermost_error(answer, 413, "api.webhooks.response_url.too_large.app_error")
    webhook_made = [
        p
        for p in channel_posts(scene.poster, scene.channel["id"])
        if p["props"].get("from_webhook")
    ]
    assert webhook_made == []


def test_a_deferred_reply_is_announced_live(
    server: ServerThread, scene: Scene, receiver: Receiver
) -> None:
    """Channel members connected by websocket get the deferred reply's posted event, with its
    @-mentions, as for a direct reply."""
    extended_hook(scene, receiver)
    _post, url = deliver_once(scene, receiver)
    ws_url = server.url.replace("http://", "ws://") + "/api/v4/websocket"
    headers = {"Authorization": f"Bearer {scene.poster.token}"}
    with connect(ws_url, additional_headers=headers) as ws:
        assert json.loads(ws.recv(timeout=5))["event"] == "hello"
        mention = f"@{scene.poster.user['username']}"
        assert post_reply(url, {"text": f"ready, {mention}"}).status_code == 200
        while True:
            event = json.loads(ws.recv(timeout=10))
            if event["event"] == "posted":
                break
    data = event["data"]
    assert json.loads(data["post"])["message"] == f"ready, {mention}"
    assert data["sender_name"] == f"@{scene.owner.user['username']}"
    assert json.loads(data["mentions"]) == [scene.poster.user["id"]]


def test_overrides_are_gated_as_for_a_direct_reply(
    scene: Scene, receiver: Receiver, admin: Api
) -> None:
    """The reply's username shows only while the System Console allows username overrides."""
    extended_hook(scene, receiver)
    _post, url = deliver_once(scene, receiver)
    with service_settings(admin, EnablePostUsernameOverride=False):
        assert post_reply(url, {"text": "plain", "username": "robot"}).status_code == 200
    with service_settings(admin, EnablePostUsernameOverride=True):
        assert post_reply(url, {"text": "named", "username": "robot"}).status_code == 200
    plain, named = wait_webhook_posts(scene.poster, scene.channel["id"], count=2)
    assert "override_username" not in plain["props"]
    assert named["props"]["override_username"] == "robot"
