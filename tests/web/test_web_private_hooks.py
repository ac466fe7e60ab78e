"""Hooks and private channels in the web client (issue #13 item 1): the channel page tells its
members which hooks watch it, and the Integrations form offers the private channels the
visitor belongs to while the System Console allows hooks there."""

import html
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from web_support import page_client

from support import Api, Factory, ServerThread

pytestmark = pytest.mark.db

SWITCH = "EnableOutgoingWebhooksInPrivateChannels"


@pytest.fixture
def private_on(admin: Api) -> Iterator[Api]:
    before = admin.get("/config")["ServiceSettings"]
    admin.put("/config/patch", {"ServiceSettings": {SWITCH: True, "EnableOutgoingWebhooks": True}})
    yield admin
    admin.put("/config/patch", {"ServiceSettings": {SWITCH: before[SWITCH]}})


def _hook(api: Api, team: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"team_id": team["id"], "callback_urls": ["http://127.0.0.1:9/secret-path"], **fields}
    return api.post("/hooks/outgoing", body, expect=201)  # type: ignore[no-any-return]


def _watchers(markup: str) -> str:
    found = re.search(r'id="channel-watchers">(.*?)</p>', markup, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else ""


def test_the_channel_page_names_the_hooks_watching_it_to_members(
    server: ServerThread, factory: Factory, private_on: Api
) -> None:
    """Members of a private channel see the display names of its hooks (no URL or token);
    a public channel's members also see the team's trigger-word hooks, a visitor who has not
    joined sees none, and a hook whose creator left is no longer listed."""
    owner, member, visitor = factory.user(), factory.user(), factory.user()
    team = factory.team(owner)
    factory.join(team, member)
    factory.join(team, visitor)
    secret = factory.channel(team, owner, private=True)
    owner.post(f"/channels/{secret['id']}/members", {"user_id": member.user["id"]}, expect=201)
    _hook(owner, team, channel_id=secret["id"], display_name="Build <bot>")
    _hook(owner, team, channel_id=secret["id"], display_name="Deploy bot")
    team_wide = _hook(owner, team, trigger_words=["#ask"], display_name="Ask bot")
    path = f"/{team['name']}/channels/{secret['name']}"

    page = page_client(server.url, member.user["username"]).get(path)
    assert page.status_code == 200
    assert (
        _watchers(page.text) == "Outgoing webhooks watching this channel: Build <bot>, Deploy bot"
    )
    assert "Build &lt;bot&gt;" in page.text
    assert "secret-path" not in page.text
    assert page_client(server.url, visitor.user["username"]).get(path).status_code == 404

    town = f"/{team['name']}/channels/town-square"
    assert _watchers(page_client(server.url, member.user["username"]).get(town).text).endswith(
        ": Ask bot"
    )
    public = factory.channel(team, owner)
    _hook(owner, team, channel_id=public["id"], display_name="Public bot")
    public_path = f"/{team['name']}/channels/{public['name']}"
    assert _watchers(page_client(server.url, owner.user["username"]).get(public_path).text) == (
        "Outgoing webhooks watching this channel: Ask bot, Public bot"
    )
    preview = page_client(server.url, visitor.user["username"]).get(public_path)
    assert preview.status_code == 200
    assert _watchers(preview.text) == ""

    owner.delete(f"/channels/{secret['id']}/members/{owner.user['id']}")
    after = page_client(server.url, member.user["username"]).get(path).text
    assert _watchers(after) == ""
    owner.delete(f"/hooks/outgoing/{team_wide['id']}")


def test_the_form_offers_private_channels_the_visitor_is_in(
    server: ServerThread, factory: Factory, admin: Api, private_on: Api
) -> None:
    """With the switch on the channel list holds the visitor's private channels (not the
    others'); with it off, public channels only."""
    owner = factory.user()
    team = factory.team(owner)
    mine = factory.channel(team, owner, private=True)
    theirs = factory.channel(team, admin, private=True)
    pages: httpx.Client = page_client(server.url, owner.user["username"])
    form_path = f"/{team['name']}/integrations/outgoing_webhooks/add"
    offered = pages.get(form_path).text
    assert f'value="{mine["id"]}"' in offered
    assert f'value="{theirs["id"]}"' not in offered
    admin.put("/config/patch", {"ServiceSettings": {SWITCH: False}})
    assert f'value="{mine["id"]}"' not in pages.get(form_path).text
