"""The features beyond Mattermost, walked in a browser: an admin lets hooks watch private
channels in the System Console, adds a hook on a private channel with the extended payload,
bot-post triggering and its own timeout from the Integrations page, and a member's post in that
channel reaches the receiver with the extended keys; the receiver's answer comes back live, and
the bot answering itself stops at the chain depth limit."""

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect
from web_support import needs_chromium, open_live, screenshot, signed_in

from support import Api, Factory, Receiver, ServerThread, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.db, needs_chromium]


@pytest.fixture
def settings_restored(admin: Api) -> Iterator[None]:
    before = admin.get("/config")["ServiceSettings"]
    yield
    keys = ("EnableOutgoingWebhooksInPrivateChannels", "AllowedUntrustedInternalConnections")
    admin.put("/config/patch", {"ServiceSettings": {key: before[key] for key in keys}})


def test_a_private_channel_hook_with_the_new_options(
    server: ServerThread,
    admin: Api,
    factory: Factory,
    browser: Browser,
    receiver: Receiver,
    settings_restored: None,
) -> None:
    """System Console → Integrations (private channel, extended payload, bot posts, 5 s) →
    a post in the channel → an extended JSON body → the reply live; three replies, no more."""
    team = factory.team(admin)
    secret = admin.post(
        "/channels",
        {"team_id": team["id"], "name": "war-room", "display_name": "War Room", "type": "P"},
        expect=201,
    )
    receiver.reply = {"text": "on it"}
    context = signed_in(browser, server.url, admin.user["username"])
    page = context.new_page()

    page.goto("/admin_console/service_settings")
    page.get_by_label("Let outgoing webhooks watch private channels").check()
    page.get_by_label("Allow untrusted internal connections to").fill("127.0.0.1")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()

    page.goto(f"/{team['name']}/integrations/outgoing_webhooks/add")
    page.get_by_label("Title").fill("Incident bot")
    page.get_by_label("Content type").select_option("application/json")
    page.get_by_label("Channel", exact=True).select_option(value=secret["id"])
    page.get_by_label("Callback URLs").fill(receiver.url)
    page.get_by_label("Request timeout (seconds)").fill("5")
    page.get_by_label("Send the extended payload").check()
    page.get_by_label("Fire on other webhooks' replies").check()
    screenshot(page, "add-outgoing-webhook-private")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_text("Setup successful")).to_be_visible()
    card = page.locator(".hook-card").first
    expect(card).to_contain_text("War Room")
    expect(card).to_contain_text("5 s")
    expect(card).to_contain_text("response_url")
    expect(card).to_contain_text("Fires on other webhooks' replies")

    (hook,) = admin.get(f"/hooks/outgoing?team_id={team['id']}")
    assert (hook["channel_id"], hook["timeout_seconds"]) == (secret["id"], 5)
    assert (hook["extended_payload"], hook["trigger_on_bot_posts"]) == (True, True)

    open_live(page, f"/{team['name']}/channels/war-room")
    expect(page.get_by_text("Incident bot")).to_be_visible()  # members see who watches
    composer = page.get_by_label("Write to War Room")
    composer.fill("the database is on fire")
    composer.press("Enter")
    replies = page.locator("article.post-bot")
    expect(replies.first).to_contain_text("on it", timeout=15_000)

    first = json.loads(receiver.requests[0].body)
    keys = list(first)
    assert keys[keys.index("file_ids") + 1 :] == [
        "root_id",
        "channel_type",
        "from_bot",
        "response_url",
    ]
    assert (first["channel_type"], first["from_bot"], first["root_id"]) == ("P", False, "")
    assert first["text"] == "the database is on fire"
    # The hook answers its own replies: depths 0, 1 and 2 fire, the third reply does not.
    wait_until(lambda: len(receiver.requests) >= 3, timeout=20)
    expect(replies).to_have_count(3, timeout=15_000)
    later = [json.loads(r.body) for r in receiver.requests[1:]]
    assert all(body["from_bot"] is True for body in later)
    page.wait_for_timeout(1500)
    assert len(receiver.requests) == 3
    screenshot(page, "private-channel-hook-replies")
    context.close()
