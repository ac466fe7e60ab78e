"""The channel view in a real browser: hostile replies stay inert, the composer, threads, paging,
unread marks and desktop notifications, and the layout on a phone."""

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from web_support import DESKTOP, PHONE, assert_inert, needs_chromium, open_live, signed_in

from support import Api, Factory, Receiver, ServerThread

pytestmark = [pytest.mark.browser, pytest.mark.db, needs_chromium]

HOSTILE_TEXT = "\n".join(
    [
        "<script>window.__pwned = 'script'</script>",
        "<img src=x onerror=\"window.__pwned = 'img'\">",
        "<svg onload=\"window.__pwned = 'svg'\"></svg>",
        "[click me](javascript:window.__pwned='link')",
        "<a href=\"javascript:window.__pwned='raw'\">raw link</a>",
        "<iframe src=\"javascript:window.__pwned='iframe'\"></iframe>",
        "![x](javascript:window.__pwned='image')",
        "<b onmouseover=\"window.__pwned='hover'\">hover</b>",
    ]
)
HOSTILE_ATTACHMENT = {
    "color": "#fff\" onmouseover=\"window.__pwned='colour'",
    "pretext": "<script>window.__pwned='pretext'</script>",
    "author_name": "<img src=x onerror=\"window.__pwned='author'\">",
    "author_link": "javascript:window.__pwned='author_link'",
    "title": "<i onclick=1>Title</i>",
    "title_link": "javascript:window.__pwned='title'",
    "text": "[x](javascript:window.__pwned='text') <img src=y onerror=\"window.__pwned='t'\">",
    "fields": [{"title": "<script>f()</script>", "value": "<svg onload=f()>", "short": True}],
    "image_url": "javascript:window.__pwned='image'",
    "footer": "<script>window.__pwned='footer'</script>",
}
NOTIFICATION_STUB = """
window.__notes = [];
window.Notification = class {
  constructor(title, options) { window.__notes.push({title: title, body: (options || {}).body}); }
  static get permission() { return 'granted'; }
  static requestPermission() { return Promise.resolve('granted'); }
};
"""


UNLABELLED = """() => Array.from(
  document.querySelectorAll('input:not([type=hidden]), select, textarea, button')
).filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
  && !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim())
).map((el) => el.name || el.id || el.outerHTML)"""


def _town_square(admin: Api, team: dict[str, Any]) -> dict[str, Any]:
    return admin.get(f"/teams/{team['id']}/channels/name/town-square")  # type: ignore[no-any-return]


def _posts(page: Page) -> Any:
    return page.locator("#posts > article.post")


def test_hostile_webhook_reply_and_user_post_stay_inert(
    server: ServerThread,
    browser: Browser,
    overrides_on: Api,
    factory: Factory,
    receiver: Receiver,
) -> None:
    """Scripts, handlers and javascript: links in a reply or in props never run or render live."""
    admin = overrides_on
    team = factory.team()
    town = _town_square(admin, team)
    receiver.reply = {
        "text": HOSTILE_TEXT,
        "username": "<img src=x onerror=\"window.__pwned='name'\">",
        "icon_url": "javascript:window.__pwned='icon'",
        "attachments": [HOSTILE_ATTACHMENT],
    }
    admin.post(
        "/hooks/outgoing",
        {
            "team_id": team["id"],
            "channel_id": town["id"],
            "trigger_words": ["#evil"],
            "callback_urls": [receiver.url],
        },
        expect=201,
    )
    context = signed_in(browser, server.url, "admin")
    page = context.new_page()
    open_live(page, f"/{team['name']}/channels/town-square")
    composer = page.get_by_label("Write to Town Square")
    composer.fill("#evil go")
    composer.press("Enter")
    reply = page.locator("article.post-bot")
    expect(reply).to_have_count(1, timeout=15_000)
    expect(reply.locator(".post-author")).to_have_text(
        "<img src=x onerror=\"window.__pwned='name'\">"
    )
    expect(reply.locator(".message")).to_contain_text("<script>window.__pwned = 'script'</script>")
    expect(reply.locator(".attachment-title")).to_have_text("<i onclick=1>Title</i>")
    expect(reply.locator(".avatar img")).to_have_count(0)

    # A user's own post may carry props.attachments too.
    admin.post(
        "/posts",
        {
            "channel_id": town["id"],
            "message": HOSTILE_TEXT,
            "props": {"attachments": [HOSTILE_ATTACHMENT]},
        },
        expect=201,
    )
    expect(_posts(page)).to_have_count(3)
    page.locator("#posts article.post").last.hover()
    assert_inert(page)

    page.reload()
    expect(_posts(page)).to_have_count(3)
    for post in page.locator("#posts .message a").all():
        post.hover()
    assert_inert(page)
    context.close()


def test_composer_thread_and_older_posts(
    server: ServerThread, browser: Browser, admin: Api, factory: Factory
) -> None:
    """Enter sends, Shift+Enter breaks the line; replies go to the thread panel; older posts load."""
    team = factory.team()
    town = _town_square(admin, team)
    for number in range(34):
        admin.post("/posts", {"channel_id": town["id"], "message": f"old {number}"}, expect=201)
    context = signed_in(browser, server.url, "admin")
    page = context.new_page()
    open_live(page, f"/{team['name']}/channels/town-square")
    expect(_posts(page)).to_have_count(30)
    page.get_by_role("link", name="Load older messages").click()
    expect(_posts(page)).to_have_count(34)
    expect(_posts(page).first).to_contain_text("old 0")
    expect(page.get_by_role("link", name="Load older messages")).to_have_count(0)

    composer = page.get_by_label("Write to Town Square")
    composer.click()
    page.keyboard.type("line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line **two**")
    page.keyboard.press("Enter")
    expect(_posts(page)).to_have_count(35)
    newest = page.locator(f"#post-{_posts(page).last.get_attribute('data-post-id')}")
    expect(newest.locator(".message strong")).to_have_text("two")
    expect(newest.locator(".message br")).to_have_count(1)
    latest = admin.get(f"/channels/{town['id']}/posts?per_page=1")
    assert next(iter(latest["posts"].values()))["message"] == "line one\nline **two**"

    newest.get_by_role("link", name="Reply").click()
    panel = page.locator("#thread")
    expect(panel).to_be_visible()
    assert "?thread=" in page.url
    reply_box = page.get_by_label("Reply to the thread")
    expect(reply_box).to_be_focused()
    reply_box.fill("a reply")
    reply_box.press("Enter")
    expect(panel.locator("article.post")).to_have_count(2)
    expect(_posts(page)).to_have_count(36)
    expect(newest.locator(".reply-link")).to_have_text("1 reply")
    page.get_by_role("link", name="Close thread").click()
    expect(panel).to_be_hidden()
    context.close()


def test_unread_marks_and_desktop_notifications(
    server: ServerThread,
    browser: Browser,
    overrides_on: Api,
    factory: Factory,
    receiver: Receiver,
) -> None:
    """Posts elsewhere mark the sidebar; DMs and webhook mentions notify, as the override name."""
    admin = overrides_on
    team = factory.team()
    member = factory.user()
    factory.join(team, member)
    off_topic = admin.get(f"/teams/{team['id']}/channels/name/off-topic")
    receiver.reply = {"text": "@admin the build is red", "username": "alertbot"}
    admin.post(
        "/hooks/outgoing",
        {
            "team_id": team["id"],
            "channel_id": off_topic["id"],
            "trigger_words": ["#status"],
            "callback_urls": [receiver.url],
        },
        expect=201,
    )
    context = signed_in(browser, server.url, "admin")
    context.add_init_script(NOTIFICATION_STUB)
    page = context.new_page()
    open_live(page, f"/{team['name']}/channels/town-square")

    member.post("/posts", {"channel_id": off_topic["id"], "message": "#status please"}, expect=201)
    expect(page.locator(f'.sidebar [data-channel-id="{off_topic["id"]}"]')).to_have_class(
        "channel-link unread"
    )
    page.wait_for_function("() => window.__notes.length >= 1", timeout=15_000)

    direct = member.post("/channels/direct", [member.user["id"], admin.user["id"]], expect=201)
    member.post("/posts", {"channel_id": direct["id"], "message": "**psst** a secret"}, expect=201)
    page.wait_for_function("() => window.__notes.length >= 2")
    expect(
        page.locator(".sidebar").get_by_role("link", name=member.user["username"])
    ).to_have_count(1)
    notes = page.evaluate("window.__notes")
    assert notes == [
        {"title": "alertbot in Off-Topic", "body": "@admin the build is red"},
        {"title": member.user["username"], "body": "psst a secret"},
    ]
    context.close()


def test_phone_layout_and_keyboard(
    server: ServerThread, browser: Browser, admin: Api, factory: Factory
) -> None:
    """At 390 px nothing overflows and every control is labelled; Tab reaches the composer."""
    person = factory.user(admin=True)  # one team only, so the sidebar is short
    team = factory.team(person)
    context = signed_in(browser, server.url, person.user["username"], viewport=PHONE)
    page = context.new_page()
    for path in (
        f"/{team['name']}/channels/town-square",
        f"/{team['name']}/integrations/outgoing_webhooks",
        f"/{team['name']}/integrations/outgoing_webhooks/add",
        "/admin_console/service_settings",
        "/admin_console/users",
        "/account_settings",
    ):
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], path
        assert page.evaluate(UNLABELLED) == [], path
    page.goto(f"/{team['name']}/channels/town-square")
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    expect(page.get_by_label("Write to Town Square")).to_be_in_viewport()
    page.get_by_role("link", name="Show channels").click()
    expect(page.locator("#sidebar")).to_be_in_viewport()

    page.set_viewport_size(DESKTOP)
    page.goto(f"/{team['name']}/channels/town-square")
    page.evaluate(
        "() => { window.__focused = [];"
        " document.addEventListener('focusin', (e) => window.__focused.push(e.target.id)); }"
    )
    for _ in range(20):
        page.keyboard.press("Tab")
    assert "message" in page.evaluate("window.__focused")
    context.close()
