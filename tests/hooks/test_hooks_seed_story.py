"""The seed's story, told with the ``mattermostdriver`` package: a team admin sets up a ``#build``
hook, a user asks for the status, the receiver answers with the build table, and the answer
appears in the channel."""

import time
from typing import Any
from urllib.parse import urlencode

import pytest
from hooks_support import form, join_channel, signature_ok, wait_webhook_posts
from mattermostdriver import Driver

from support import PASSWORD, Api, Factory, Receiver, ServerThread
from tidings import __version__

pytestmark = pytest.mark.db

BUILD_TABLE = """---
##### Build Break - Project X - December 12, 2015 - 15:32 GMT +0
| Component | Tests Run | Tests Failed |
|:-----------|:------------|:-----------------------------------------------|
| Server | 948 | :white_check_mark: 0 |
| Web Client | 123 | :warning: [2 (see details)](http://linktologs) |
| iOS Client | 78 | :warning: [3 (see details)](http://linktologs) |
---
"""


def driver_for(server: ServerThread, api: Api) -> Driver:
    driver = Driver(
        {
            "url": "127.0.0.1",
            "port": server.settings.port,
            "scheme": "http",
            "basepath": "/api/v4",
            "login_id": api.user["username"],
            "password": PASSWORD,
            "timeout": 10,
        }
    )
    driver.login()
    return driver


def test_build_status_story(
    server: ServerThread, factory: Factory, webhooks_on: Api, receiver: Receiver
) -> None:
    """#build reaches the receiver as Mattermost's form body; its table comes back as a post."""
    lead = factory.user()
    team = factory.team(lead)  # the lead is the team's admin
    channel = factory.channel(team, lead)
    dev = factory.user()
    factory.join(team, dev)
    join_channel(factory.admin, channel, dev)

    admin_driver = driver_for(server, lead)
    found_team = admin_driver.teams.get_team_by_name(team["name"])
    found_channel = admin_driver.channels.get_channel_by_name(found_team["id"], channel["name"])
    hook = admin_driver.webhooks.create_outgoing_hook(
        {
            "team_id": found_team["id"],
            "channel_id": found_channel["id"],
            "display_name": "Build status",
            "trigger_words": ["#build"],
            "trigger_when": 0,
            "callback_urls": [receiver.url],
            "content_type": "application/x-www-form-urlencoded",
        }
    )
    assert admin_driver.webhooks.get_outgoing_hook(hook["id"])["token"] == hook["token"]
    receiver.reply = {"text": BUILD_TABLE}

    dev_driver = driver_for(server, dev)
    post = dev_driver.posts.create_post(
        {"channel_id": channel["id"], "message": "#build Let's see the status"}
    )

    (request,) = receiver.wait_for(1)
    expected_fields = {
        "channel_id": channel["id"],
        "channel_name": channel["name"],
        "file_ids": "",
        "post_id": post["id"],
        "team_domain": team["name"],
        "team_id": team["id"],
        "text": "#build Let's see the status",
        "timestamp": str(post["create_at"] // 1000),
        "token": hook["token"],
        "trigger_word": "#build",
        "user_id": dev.user["id"],
        "user_name": dev.user["username"],
    }
    assert request.body == urlencode(sorted(expected_fields.items())).encode()
    assert form(request.body) == expected_fields
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert request.method == "POST"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers["accept"] == "application/json"
    assert headers["user-agent"] == f"Tidings/{__version__}"
    assert len(headers["webhook-id"]) == 26
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert signature_ok(hook["signing_secret"], headers, request.body)

    (reply,) = wait_webhook_posts(dev, channel["id"])
    assert reply["message"] == BUILD_TABLE
    assert reply["user_id"] == lead.user["id"]
    assert reply["channel_id"] == channel["id"]
    assert reply["root_id"] == ""
    props: dict[str, Any] = reply["props"]
    assert props["from_webhook"] == "true"
    assert props["webhook_display_name"] == "Build status"
    assert "override_username" not in props
    seen = dev_driver.posts.get_posts_for_channel(channel["id"])
    assert seen["posts"][reply["id"]]["message"] == BUILD_TABLE
