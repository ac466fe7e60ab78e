"""The seed, walked as a person would: sign up as the first user, create a team, turn on the
overrides in the System Console, add an outgoing webhook in Integrations, post ``#build …``
in the composer, and see the build table arrive without a reload."""

import json
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import Browser, expect
from web_support import DESKTOP, PHONE, needs_chromium, screenshot

from support import PASSWORD, Receiver, ServerThread, fresh_database, start_server

pytestmark = [pytest.mark.browser, pytest.mark.db, needs_chromium]

BUILD_TABLE = """
---
##### Build Break - Project X - December 12, 2015 - 15:32 GMT +0
| Component | Tests Run | Tests Failed |
|:-----------|:------------|:-----------------------------------------------|
| Server | 948 | :white_check_mark: 0 |
| Web Client | 123 | :warning: [2 (see details)](http://linktologs) |
| iOS Client | 78 | :warning: [3 (see details)](http://linktologs) |
---
"""


@pytest.fixture(scope="module")
def fresh_server() -> Iterator[ServerThread]:
    """A server on an empty database, so the sign-up page makes the first user."""
    with fresh_database() as url:
        server = start_server(url)
        try:
            yield server
        finally:
            server.stop()


def test_seed_build_status_walkthrough(
    fresh_server: ServerThread, browser: Browser, receiver: Receiver
) -> None:
    """First user → team → System Console → hook → `#build` → rendered table, live, with BOT tag."""
    receiver.reply = {"text": BUILD_TABLE, "username": "buildbot"}
    context = browser.new_context(base_url=fresh_server.url, viewport=DESKTOP)
    page = context.new_page()

    # Sign up: a fresh server sends the first visitor to the sign-up page.
    page.goto("/")
    expect(page).to_have_url(f"{fresh_server.url}/signup_user_complete")
    expect(page.get_by_text("the first account becomes the system administrator")).to_be_visible()
    page.get_by_label("Email").fill("lead@example.test")
    page.get_by_label("Username").fill("lead")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{fresh_server.url}/select_team")

    # Create a team.
    page.get_by_role("link", name="Create a team").click()
    page.get_by_label("Team name").fill("Project X")
    page.get_by_role("button", name="Create team").click()
    expect(page).to_have_url(f"{fresh_server.url}/project-x/channels/town-square")

    # System Console → Service Settings: overrides on, the loopback receiver allowed.
    page.get_by_role("link", name="System Console").click()
    expect(page.get_by_role("heading", name="Service Settings")).to_be_visible()
    page.get_by_label("Enable integrations to override usernames").check()
    page.get_by_label("Enable integrations to override profile picture icons").check()
    page.get_by_label("Allow untrusted internal connections to").fill("127.0.0.1")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    expect(page.get_by_label("Enable outgoing webhooks")).to_be_checked()
    screenshot(page, "system-console")

    # Integrations → Outgoing Webhooks → Add.
    page.goto("/project-x/channels/town-square")
    page.get_by_role("link", name="Integrations").click()
    page.get_by_role("link", name="Add Outgoing Webhook").click()
    page.get_by_label("Title").fill("Build status")
    page.get_by_label("Description").fill("Answers #build with the latest test results")
    page.get_by_label("Content type").select_option("application/json")
    page.get_by_label("Channel", exact=True).select_option(label="Town Square")
    page.get_by_label("Trigger words").fill("#build")
    page.get_by_label("First word matches a trigger word exactly").check()
    page.get_by_label("Callback URLs").fill(receiver.url)
    page.evaluate("document.activeElement.blur(); document.getElementById('main').scrollTo(0, 0)")
    screenshot(page, "add-outgoing-webhook")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_text("Setup successful")).to_be_visible()
    card = page.locator(".hook-card").first
    token = card.locator("code.secret").first.inner_text()
    assert len(token) == 26
    expect(card.locator("code.secret").nth(1)).to_contain_text("whsec_")
    expect(card).to_contain_text("#build")
    screenshot(page, "outgoing-webhooks")

    # Post the trigger in the composer; the reply must appear without a reload.
    page.goto("/project-x/channels/town-square")
    page.wait_for_selector("body[data-live=true]")
    page.evaluate("window.__sameDocument = true")
    composer = page.get_by_label("Write to Town Square")
    composer.fill("#build Let's see the status")
    composer.press("Enter")
    reply = page.locator("article.post-bot", has=page.locator("table"))
    expect(reply).to_be_visible(timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True
    expect(composer).to_have_value("")

    expect(reply.locator(".post-author")).to_have_text("buildbot")
    expect(reply.locator(".bot-tag")).to_have_text("BOT")
    expect(reply.locator("h5")).to_have_text(
        "Build Break - Project X - December 12, 2015 - 15:32 GMT +0"
    )
    expect(reply.locator("tbody tr")).to_have_count(3)
    expect(reply.locator("tbody tr").first).to_contain_text("✅ 0")
    expect(reply.locator("tbody tr").nth(1)).to_contain_text("⚠️ 2 (see details)")
    expect(reply.locator("a", has_text="3 (see details)")).to_have_attribute(
        "href", "http://linktologs"
    )
    assert ":white_check_mark:" not in reply.inner_text()

    sent = receiver.requests[0]
    body = json.loads(sent.body) if sent.body.startswith(b"{") else parse_qs(sent.body.decode())
    assert body["token"] in (token, [token])
    assert body["text"] in ("#build Let's see the status", ["#build Let's see the status"])
    screenshot(page, "channel-build-table")

    # The same page on a phone.
    phone = context.new_page()
    phone.set_viewport_size(PHONE)
    phone.goto("/project-x/channels/town-square")
    expect(phone.locator("article.post-bot table")).to_be_visible()
    expect(phone.locator("#sidebar")).not_to_be_in_viewport()
    screenshot(phone, "channel-phone")
    phone.get_by_role("link", name="Show channels").click()
    expect(phone.locator("#sidebar")).to_be_in_viewport()
    context.close()

    # Signed out, a visitor sees the sign-in page.
    visitor = browser.new_context(base_url=fresh_server.url, viewport=DESKTOP).new_page()
    visitor.goto("/project-x/channels/town-square")
    expect(visitor.get_by_role("heading", name="Sign in to Tidings")).to_be_visible()
    screenshot(visitor, "login")
    visitor.context.close()
