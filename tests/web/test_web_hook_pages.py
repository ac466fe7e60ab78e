"""Integrations → Outgoing Webhooks over plain HTTP: the form and its errors, the hook's life
(add, edit, regenerate, delete), the delivery log with ping, redeliver and re-enable."""

import json
import re
from typing import Any

import httpx
import pytest
from web_support import form_token, page_client

from support import Api, Factory, Receiver, ServerThread, wait_until

pytestmark = pytest.mark.db


@pytest.fixture
def team(factory: Factory) -> dict[str, Any]:
    return factory.team()


@pytest.fixture
def admin_pages(server: ServerThread, admin: Api) -> httpx.Client:
    return page_client(server.url, "admin")


def _hook_form(token: str, **values: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "display_name": "",
        "description": "",
        "content_type": "application/x-www-form-urlencoded",
        "channel_id": "",
        "trigger_words": "",
        "trigger_when": "0",
        "callback_urls": "",
        "username": "",
        "icon_url": "",
        "timeout_seconds": "",
        **values,
    }


def test_add_hook_form_shows_service_errors_beside_fields(
    admin_pages: httpx.Client, admin: Api, factory: Factory, team: dict[str, Any]
) -> None:
    """Validation messages come from the service and sit beside the field they concern."""
    base = f"/{team['name']}/integrations/outgoing_webhooks"
    form_page = admin_pages.get(base + "/add").text
    private = factory.channel(team, private=True)
    assert private["id"] not in form_page, "private channels are not offered"
    token = form_token(form_page)
    cases = [
        (
            {"trigger_words": "#build", "callback_urls": "ftp://example.com"},
            "f-callback_urls",
            "Each must be a valid URL",
        ),
        ({"callback_urls": "http://example.com"}, "f-trigger_words", "Either trigger_words"),
        (
            {"channel_id": private["id"], "callback_urls": "http://example.com"},
            "f-channel_id",
            "only be created for public channels",
        ),
        (
            {"trigger_words": "a", "callback_urls": "http://e.com", "timeout_seconds": "x"},
            "f-timeout_seconds",
            "whole number of seconds",
        ),
    ]
    for values, field, message in cases:
        response = admin_pages.post(base + "/add", data=_hook_form(token, **values))
        assert response.status_code in (400, 403), values
        error = re.search(rf'id="{field}-help" role="alert">([^<]*)<', response.text)
        assert error is not None, values
        assert message in error.group(1)
        kept = values.get("callback_urls", "")
        assert f">{kept}</textarea>" in response.text, "what was typed is kept"
    assert admin.get(f"/hooks/outgoing?team_id={team['id']}") == []


def test_hook_lifecycle_through_the_pages(
    admin_pages: httpx.Client, admin: Api, team: dict[str, Any]
) -> None:
    """Add (token and secret shown), edit, regenerate, delete with confirmation."""
    base = f"/{team['name']}/integrations/outgoing_webhooks"
    token = admin_pages.cookies["MMCSRF"]
    town = admin.get(f"/teams/{team['id']}/channels/name/town-square")
    added = admin_pages.post(
        base + "/add",
        data=_hook_form(
            token,
            display_name="Build status",
            channel_id=town["id"],
            trigger_words="#build, deploy",
            trigger_when="1",
            callback_urls="http://example.com/a\n\nhttp://example.com/b\n",
            content_type="application/json",
            username="buildbot",
            timeout_seconds="10",
        ),
    )
    assert added.status_code == 303
    [hook] = admin.get(f"/hooks/outgoing?team_id={team['id']}")
    assert hook["trigger_words"] == ["#build", "deploy"]
    assert hook["callback_urls"] == ["http://example.com/a", "http://example.com/b"]
    assert (hook["trigger_when"], hook["content_type"], hook["timeout_seconds"]) == (
        1,
        "application/json",
        10,
    )
    listing = admin_pages.get(added.headers["location"]).text
    assert "Setup successful" in listing
    assert hook["token"] in listing
    assert hook["signing_secret"] in listing

    edit_page = admin_pages.get(f"{base}/edit?id={hook['id']}").text
    assert "#build, deploy" in edit_page
    assert 'name="timeout_seconds" type="number" value="10"' in edit_page
    server_timeout = admin.get("/config")["ServiceSettings"]["OutgoingIntegrationRequestsTimeout"]
    assert f"uses the server&#39;s timeout ({server_timeout} s)" in edit_page
    edited = admin_pages.post(
        base + "/edit",
        data=_hook_form(
            token,
            id=hook["id"],
            display_name="Renamed",
            channel_id=town["id"],
            trigger_words="#build",
            callback_urls="http://example.com/a",
        ),
    )
    assert edited.status_code == 303
    after = admin.get(f"/hooks/outgoing/{hook['id']}")
    assert (after["display_name"], after["trigger_words"], after["token"]) == (
        "Renamed",
        ["#build"],
        hook["token"],
    )
    assert after["timeout_seconds"] == 0, "an empty timeout is the server's"
    retimed = admin_pages.post(
        base + "/edit",
        data=_hook_form(
            token,
            id=hook["id"],
            display_name="Renamed",
            channel_id=town["id"],
            trigger_words="#build",
            callback_urls="http://example.com/a",
            timeout_seconds="300",
        ),
    )
    assert retimed.status_code == 303
    assert admin.get(f"/hooks/outgoing/{hook['id']}")["timeout_seconds"] == 300
    assert 'type="number" value="300"' in admin_pages.get(f"{base}/edit?id={hook['id']}").text
    too_long = admin_pages.post(
        base + "/edit",
        data=_hook_form(
            token,
            id=hook["id"],
            channel_id=town["id"],
            trigger_words="#build",
            callback_urls="http://example.com/a",
            timeout_seconds="301",
        ),
    )
    assert too_long.status_code == 400
    assert re.search(
        r'id="f-timeout_seconds-help" role="alert">[^<]*between 1 and 300', too_long.text
    )
    assert admin.get(f"/hooks/outgoing/{hook['id']}")["timeout_seconds"] == 300

    admin_pages.post(base + "/regen", data={"csrf_token": token, "id": hook["id"]})
    regenerated = admin.get(f"/hooks/outgoing/{hook['id']}")
    assert regenerated["token"] != hook["token"]
    assert regenerated["signing_secret"] != hook["signing_secret"]

    confirm = admin_pages.get(f"{base}/delete?id={hook['id']}")
    assert "Delete “Renamed”?" in confirm.text
    deleted = admin_pages.post(
        base + "/delete", data={"csrf_token": form_token(confirm.text), "id": hook["id"]}
    )
    assert deleted.status_code == 303
    assert admin.get(f"/hooks/outgoing?team_id={team['id']}") == []


def test_members_without_the_right_see_why(
    server: ServerThread, factory: Factory, team: dict[str, Any]
) -> None:
    """A plain member may not manage hooks (by default) and is told so."""
    member = factory.user()
    factory.join(team, member)
    client = page_client(server.url, member.user["username"])
    response = client.get(f"/{team['name']}/integrations/outgoing_webhooks")
    assert response.status_code == 403
    assert "You do not have the appropriate permissions." in response.text


def test_outgoing_webhooks_switched_off_is_explained(
    admin_pages: httpx.Client, admin: Api, team: dict[str, Any]
) -> None:
    """With the feature off the page says so instead of failing."""
    admin.put("/config/patch", {"ServiceSettings": {"EnableOutgoingWebhooks": False}})
    try:
        response = admin_pages.get(f"/{team['name']}/integrations/outgoing_webhooks")
        assert response.status_code == 200
        assert "Outgoing webhooks have been disabled by the system admin." in response.text
    finally:
        admin.put("/config/patch", {"ServiceSettings": {"EnableOutgoingWebhooks": True}})


def _town_hook(
    admin: Api, team: dict[str, Any], receiver: Receiver, word: str, **fields: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Town Square, a hook there firing on ``word`` to ``receiver``) for the delivery log."""
    town = admin.get(f"/teams/{team['id']}/channels/name/town-square")
    hook = admin.post(
        "/hooks/outgoing",
        {
            "team_id": team["id"],
            "channel_id": town["id"],
            "trigger_words": [word],
            "callback_urls": [receiver.url],
            **fields,
        },
        expect=201,
    )
    return town, hook


def test_delivery_log_ping_redeliver_and_reenable(
    admin_pages: httpx.Client, webhooks_on: Api, team: dict[str, Any], receiver: Receiver
) -> None:
    """Ping shows its result in the log; a delivery can be redelivered; a 410 hook re-enabled."""
    admin = webhooks_on
    base = f"/{team['name']}/integrations/outgoing_webhooks"
    token = admin_pages.cookies["MMCSRF"]
    town, hook = _town_hook(admin, team, receiver, "#log", display_name="Logged")
    pinged = admin_pages.post(base + "/ping", data={"csrf_token": token, "id": hook["id"]})
    assert pinged.status_code == 303
    log = admin_pages.get(pinged.headers["location"]).text
    assert "A test event was sent" in log
    assert "Test event" in log
    assert "succeeded" in log
    [delivery] = admin.get(f"/hooks/outgoing/{hook['id']}/deliveries")
    detail = admin_pages.get(f"{base}/deliveries?id={hook['id']}&delivery={delivery['id']}").text
    assert "Request headers" in detail
    assert "webhook-signature" in detail.lower()

    again = admin_pages.post(
        base + "/deliveries/redeliver",
        data={"csrf_token": token, "id": hook["id"], "delivery": delivery["id"]},
    )
    assert again.status_code == 303
    receiver.wait_for(2)

    receiver.status = 410
    admin.post("/posts", {"channel_id": town["id"], "message": "#log now"}, expect=201)
    wait_until(lambda: not admin.get(f"/hooks/outgoing/{hook['id']}")["enabled"])
    listing = admin_pages.get(base).text
    assert "Disabled" in listing
    assert "Re-enable" in listing
    enabled = admin_pages.post(base + "/enable", data={"csrf_token": token, "id": hook["id"]})
    assert enabled.status_code == 303
    assert admin.get(f"/hooks/outgoing/{hook['id']}")["enabled"] is True


def test_hook_pages_refuse_other_teams_hooks(
    admin_pages: httpx.Client, admin: Api, factory: Factory, team: dict[str, Any]
) -> None:
    """A hook is edited under its own team's URL only."""
    other = factory.team()
    hook = admin.post(
        "/hooks/outgoing",
        {"team_id": other["id"], "trigger_words": ["x"], "callback_urls": ["http://e.example"]},
        expect=201,
    )
    response = admin_pages.get(
        f"/{team['name']}/integrations/outgoing_webhooks/edit?id={hook['id']}"
    )
    assert response.status_code == 404
    assert "Unable to get the webhook." in response.text


def test_delivery_log_redelivers_failed_deliveries_since(
    admin_pages: httpx.Client, webhooks_on: Api, team: dict[str, Any], receiver: Receiver
) -> None:
    """The log's form sends the failed deliveries of the chosen window again and says how many;
    a post without the form's token or with an unknown window is refused and sends nothing."""
    admin = webhooks_on
    base = f"/{team['name']}/integrations/outgoing_webhooks"
    token = admin_pages.cookies["MMCSRF"]
    town, hook = _town_hook(admin, team, receiver, "#lost")
    path = f"/hooks/outgoing/{hook['id']}/deliveries"
    retries = admin.get("/config")["ServiceSettings"]["OutgoingWebhookRetryScheduleSeconds"]
    admin.put("/config/patch", {"ServiceSettings": {"OutgoingWebhookRetryScheduleSeconds": []}})
    try:
        receiver.status = 500
        admin.post("/posts", {"channel_id": town["id"], "message": "#lost one"}, expect=201)
        [failed] = wait_until(lambda: admin.get(path, params={"status": "failed"}))
    finally:
        admin.put(
            "/config/patch", {"ServiceSettings": {"OutgoingWebhookRetryScheduleSeconds": retries}}
        )
    receiver.status = 200

    log = admin_pages.get(f"{base}/deliveries?id={hook['id']}").text
    assert 'action="' + base + '/deliveries/redeliver_failed"' in log
    assert '<option value="3600">the last hour</option>' in log
    form = {"csrf_token": token, "id": hook["id"], "window": "3600"}
    forged = admin_pages.post(
        base + "/deliveries/redeliver_failed", data={**form, "csrf_token": ""}
    )
    assert forged.status_code == 403
    odd = admin_pages.post(base + "/deliveries/redeliver_failed", data={**form, "window": "9"})
    assert odd.status_code == 400
    assert len(receiver.requests) == 1

    sent = admin_pages.post(base + "/deliveries/redeliver_failed", data=form)
    assert sent.status_code == 303
    assert "notice=bulk&count=1&more=0" in sent.headers["location"]
    assert "1 failed delivery was queued again." in admin_pages.get(sent.headers["location"]).text
    again = receiver.wait_for(2)[1]
    assert again.headers["webhook-id"] == failed["id"]
    wait_until(lambda: admin.get(f"{path}/{failed['id']}")["status"] == "succeeded")


def test_the_delivery_log_page_shows_deferred_replies(
    admin_pages: httpx.Client, webhooks_on: Api, team: dict[str, Any], receiver: Receiver
) -> None:
    """A use of a delivery's response_url appears on its page as a deferred reply, with the
    reply as posted."""
    admin = webhooks_on
    base = f"/{team['name']}/integrations/outgoing_webhooks"
    town, hook = _town_hook(
        admin,
        team,
        receiver,
        "#later",
        display_name="Later",
        content_type="application/json",
        extended_payload=True,
    )
    receiver.reply = None
    admin.post("/posts", {"channel_id": town["id"], "message": "#later please"}, expect=201)
    (request,) = receiver.wait_for(1)
    url = json.loads(request.body)["response_url"]
    assert httpx.post(url, json={"text": "LATE-REPLY-TEXT"}, timeout=10).status_code == 200
    [delivery] = admin.get(f"/hooks/outgoing/{hook['id']}/deliveries")
    detail = admin_pages.get(f"{base}/deliveries?id={hook['id']}&delivery={delivery['id']}").text
    assert "Deferred reply 1 through response_url" in detail
    assert "deferred reply 1 of 5: 1 post(s)" in detail
    assert "LATE-REPLY-TEXT" in detail
