"""Helpers for the web client's tests: headless Chromium, signed-in browser contexts, and the
checks that hostile markup stayed inert."""

import html
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from support import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)",
)


@contextmanager
def chromium() -> Iterator[Browser]:
    """One headless Chromium (Debian's build; never a downloaded one)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def signed_in(
    browser: Browser, base_url: str, login_id: str, viewport: dict[str, int] | None = None
) -> BrowserContext:
    """A browser context holding the cookies ``POST /api/v4/users/login`` sets."""
    response = httpx.post(
        f"{base_url}/api/v4/users/login",
        json={"login_id": login_id, "password": PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    context = browser.new_context(base_url=base_url, viewport=viewport or DESKTOP)
    context.add_cookies(
        [
            {"name": name, "value": value, "url": base_url}
            for name, value in response.cookies.items()
        ]
    )
    return context


def open_live(page: Page, path: str) -> None:
    """Open a channel and wait until its websocket said hello."""
    page.goto(path)
    page.wait_for_selector("body[data-live=true]", timeout=10_000)


# Run in the page: anything that would show hostile markup became live DOM.
INERT_CHECK = """() => {
  const live = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      if (attr.name.toLowerCase().startsWith('on')) live.push(el.tagName + ' ' + attr.name);
      if (['href', 'src', 'action', 'formaction'].includes(attr.name) &&
          /^\\s*(javascript|vbscript|data):/i.test(attr.value))
        live.push(el.tagName + ' ' + attr.name + '=' + attr.value);
    }
  }
  const posts = document.querySelector('#posts');
  for (const el of posts.querySelectorAll('script, iframe, object, embed, style, form, svg, math'))
    live.push('element ' + el.tagName);
  return {pwned: window.__pwned === undefined ? null : window.__pwned, live: live};
}"""


def assert_inert(page: Page) -> None:
    result: dict[str, Any] = page.evaluate(INERT_CHECK)
    assert result == {"pwned": None, "live": []}


def screenshot(page: Page, name: str) -> None:
    """A viewport PNG for the docs (small: no full-page captures).

    Only with ``TIDINGS_SCREENSHOTS=1``: an ordinary test run must not rewrite the docs.
    """
    if os.environ.get("TIDINGS_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def form_token(markup: str) -> str:
    """The hidden ``csrf_token`` a page's first form carries."""
    found = re.search(r'name="csrf_token" value="([^"]*)"', markup)
    assert found is not None, "the page has no form with a csrf_token"
    return found.group(1)


def page_client(base_url: str, login_id: str, password: str = PASSWORD) -> httpx.Client:
    """An HTTP client signed in through the /login page, as a browser would be."""
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)
    token = form_token(client.get("/login").text)
    response = client.post(
        "/login", data={"csrf_token": token, "login_id": login_id, "password": password}
    )
    assert response.status_code == 303, response.text
    return client


def alerts(markup: str) -> list[str]:
    """The text of every role="alert" element: the page's error messages."""
    return [
        html.unescape(re.sub(r"<[^>]+>", "", text)).strip()
        for text in re.findall(r'role="alert"[^>]*>(.*?)</p>', markup, re.S)
    ]
