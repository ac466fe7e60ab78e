"""Pages over plain HTTP: the session cookies, CSRF, errors as pages, and each page's forms."""

from typing import Any

import httpx
import pytest
from web_support import alerts, form_token, page_client

from support import PASSWORD, Api, Factory, ServerThread
from tidings.api import common as api_common
from tidings.web import sessions

pytestmark = pytest.mark.db


@pytest.fixture
def team(factory: Factory) -> dict[str, Any]:
    return factory.team()


@pytest.fixture
def admin_pages(server: ServerThread, admin: Api) -> httpx.Client:
    return page_client(server.url, "admin")


def test_cookie_names_match_the_api() -> None:
    """Pages and API share one session, so they must agree on the cookie names."""
    assert (sessions.AUTH_COOKIE, sessions.CSRF_COOKIE, sessions.USER_COOKIE) == (
        api_common.AUTH_COOKIE,
        api_common.CSRF_COOKIE,
        api_common.USER_COOKIE,
    )


def test_login_page_sets_the_api_cookies(server: ServerThread, admin: Api) -> None:
    """Signing in sets MMAUTHTOKEN (HttpOnly), MMCSRF and MMUSERID, usable by the API."""
    client = httpx.Client(base_url=server.url)
    token = form_token(client.get("/login").text)
    response = client.post(
        "/login", data={"csrf_token": token, "login_id": "admin", "password": PASSWORD}
    )
    assert response.status_code == 303
    set_cookies = response.headers.get_list("set-cookie")
    by_name = {c.split("=", 1)[0]: c.lower() for c in set_cookies}
    assert "httponly" in by_name["MMAUTHTOKEN"]
    assert "samesite=lax" in by_name["MMAUTHTOKEN"]
    assert "httponly" not in by_name["MMCSRF"]
    assert client.cookies["MMUSERID"] == admin.user["id"]
    me = client.get("/api/v4/users/me")
    assert me.json()["username"] == "admin"
    # The API accepts a cookie-authenticated change only with the CSRF header.
    body = {"channel_id": "x" * 26, "message": "hi"}
    assert client.post("/api/v4/posts", json=body).status_code == 401
    with_header = client.post(
        "/api/v4/posts", json=body, headers={"X-CSRF-Token": client.cookies["MMCSRF"]}
    )
    assert with_header.status_code != 401


def test_wrong_password_is_an_inline_error(server: ServerThread, admin: Api) -> None:
    """A failed sign-in re-shows the form with the service's message and sets no session."""
    client = httpx.Client(base_url=server.url)
    token = form_token(client.get("/login").text)
    response = client.post(
        "/login", data={"csrf_token": token, "login_id": "admin", "password": "wrong-password"}
    )
    assert response.status_code == 401
    assert alerts(response.text) == ["Enter a valid email or username and/or password."]
    assert "MMAUTHTOKEN" not in client.cookies


def test_login_form_needs_its_form_token(server: ServerThread, admin: Api) -> None:
    """A sign-in posted from elsewhere (no form cookie) is refused, so no one is signed in."""
    response = httpx.post(
        f"{server.url}/login",
        data={"csrf_token": "forged", "login_id": "admin", "password": PASSWORD},
    )
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    assert "MMAUTHTOKEN" not in response.cookies


@pytest.mark.parametrize(
    ("redirect_to", "expected"),
    [
        ("/admin_console/users", "/admin_console/users"),
        ("//evil.example/x", None),
        ("https://evil.example/", None),
        ("/\\evil.example", None),
        ("/\t/evil.example", None),
    ],
)
def test_login_redirects_only_to_local_paths(
    server: ServerThread, admin: Api, redirect_to: str, expected: str | None
) -> None:
    """After sign-in the visitor goes back where they were, never to another site."""
    client = httpx.Client(base_url=server.url)
    token = form_token(client.get("/login").text)
    response = client.post(
        "/login",
        data={
            "csrf_token": token,
            "login_id": "admin",
            "password": PASSWORD,
            "redirect_to": redirect_to,
        },
    )
    location = response.headers["location"]
    if expected:
        assert location == expected
    else:
        assert location.startswith("/")
        assert not location.startswith("//")
        assert "evil" not in location


def test_signed_out_pages_send_to_login(server: ServerThread, team: dict[str, Any]) -> None:
    """Every page needs a session; the sign-in page remembers where the visitor was going."""
    for path in (
        f"/{team['name']}/channels/town-square",
        f"/{team['name']}/integrations/outgoing_webhooks",
        "/admin_console/service_settings",
        "/account_settings",
        "/select_team",
    ):
        response = httpx.get(server.url + path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?redirect_to=%2F")


def test_fragments_answer_401_when_signed_out(server: ServerThread) -> None:
    """The live client's fragments say the session ended instead of redirecting."""
    response = httpx.get(f"{server.url}/web/posts/{'p' * 26}")
    assert response.status_code == 401


def test_channel_form_post_needs_the_csrf_token(
    admin_pages: httpx.Client, admin: Api, team: dict[str, Any]
) -> None:
    """A form post without the session's token posts nothing; with it, the post is made."""
    path = f"/{team['name']}/channels/town-square"
    refused = admin_pages.post(path, data={"message": "forged", "csrf_token": "nope"})
    assert refused.status_code == 403
    token = form_token(admin_pages.get(path).text)
    assert token == admin_pages.cookies["MMCSRF"]
    made = admin_pages.post(path, data={"message": "from the form", "csrf_token": token})
    assert made.status_code == 303
    channel = admin.get(f"/teams/{team['id']}/channels/name/town-square")
    messages = [
        p["message"] for p in admin.get(f"/channels/{channel['id']}/posts")["posts"].values()
    ]
    assert messages == ["from the form"]
    shown = admin_pages.get(path).text
    assert "from the form" in shown


def test_pages_carry_a_strict_content_security_policy(
    admin_pages: httpx.Client, team: dict[str, Any]
) -> None:
    """Scripts may only come from this site: even markup that slipped through could not run."""
    response = admin_pages.get(f"/{team['name']}/channels/town-square")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    "path",
    [
        "/{team}/integrations/outgoing_webhooks/edit?id=junk",
        "/{team}/integrations/outgoing_webhooks/edit?id=" + "h" * 26,
        "/{team}/integrations/outgoing_webhooks/deliveries?id=" + "h" * 26,
        "/{team}/integrations/outgoing_webhooks/delete",
        "/{team}/channels/town-square?before=junk",
        "/{team}/channels/town-square?thread=" + "p" * 26,
        "/{team}/channels/no-such-channel",
        "/{team}/messages/@nobody-here",
        "/no-such-team/channels/town-square",
        "/web/posts/junk",
        "/web/posts/" + "p" * 26 + "/thread",
        "/web/channels/junk/posts?before=junk",
        "/web/teams/junk/sidebar",
    ],
)
def test_bad_input_in_urls_is_a_readable_page(
    admin_pages: httpx.Client, team: dict[str, Any], path: str
) -> None:
    """Junk ids and missing things show the service's message as HTML, never a crash or JSON."""
    response = admin_pages.get(path.replace("{team}", team["name"]))
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text


def test_other_users_cannot_open_the_system_console(server: ServerThread, factory: Factory) -> None:
    """A member gets the permission message, as a page."""
    member = factory.user()
    client = page_client(server.url, member.user["username"])
    response = client.get("/admin_console/service_settings")
    assert response.status_code == 403
    assert "You do not have the appropriate permissions." in response.text
    token = client.cookies["MMCSRF"]
    posted = client.post(
        "/admin_console/service_settings",
        data={"csrf_token": token, "ServiceSettings.EnableOutgoingWebhooks": ""},
    )
    assert posted.status_code == 403


def test_system_console_saves_service_settings(admin_pages: httpx.Client, admin: Api) -> None:
    """Checkboxes and fields become the stored configuration; bad numbers are explained."""
    page = admin_pages.get("/admin_console/service_settings").text
    for label in (
        "Enable outgoing webhooks",
        "Enable integrations to override usernames",
        "Enable integrations to override profile picture icons",
        "Outgoing integration requests timeout (seconds)",
        "Allow untrusted internal connections to",
        "Let outgoing webhooks watch private channels",
        "Deferred replies accepted for (minutes)",
        "Longest chain of bots",
        "Enable team creation",
        "Minimum password length",
        "Require an uppercase letter",
    ):
        assert label in page
    fields = {
        "csrf_token": form_token(page),
        "ServiceSettings.EnableOutgoingWebhooks": "on",
        "ServiceSettings.EnablePostUsernameOverride": "on",
        "ServiceSettings.OutgoingIntegrationRequestsTimeout": "12",
        "ServiceSettings.AllowedUntrustedInternalConnections": "127.0.0.1 10.0.0.0/8",
        "ServiceSettings.OutgoingWebhookRetryScheduleSeconds": "5, 30, 120.5",
        "ServiceSettings.OutgoingWebhookMaxConcurrencyPerDestination": "8",
        "ServiceSettings.OutgoingWebhookMaxConcurrencyPerOwner": "0",
        "ServiceSettings.OutgoingWebhookMaxConcurrencyPerTeam": "0",
        "ServiceSettings.OutgoingWebhookDeliveryRetentionDays": "30",
        "ServiceSettings.OutgoingWebhookAutoDisableHours": "24",
        "ServiceSettings.OutgoingWebhookAutoDisableMinFailures": "10",
        "ServiceSettings.EnableOutgoingWebhooksInPrivateChannels": "on",
        "ServiceSettings.OutgoingWebhookResponseUrlMinutes": "45",
        "ServiceSettings.OutgoingWebhookMaxChainDepth": "2",
        "TeamSettings.SiteName": "Tidings",
        "TeamSettings.EnableTeamCreation": "on",
        "PasswordSettings.MinimumLength": "12",
        "PasswordSettings.Lowercase": "on",
        "PasswordSettings.Number": "on",
        "PasswordSettings.Symbol": "on",
    }
    try:
        saved = admin_pages.post("/admin_console/service_settings", data=fields)
        assert saved.status_code == 303
        service = admin.get("/config")["ServiceSettings"]
        assert service["EnablePostUsernameOverride"] is True
        assert service["EnablePostIconOverride"] is False
        assert service["EnableOutgoingWebhooksInPrivateChannels"] is True
        assert service["OutgoingWebhookResponseUrlMinutes"] == 45
        assert service["OutgoingWebhookMaxChainDepth"] == 2
        assert service["OutgoingIntegrationRequestsTimeout"] == 12
        assert service["AllowedUntrustedInternalConnections"] == "127.0.0.1 10.0.0.0/8"
        assert service["OutgoingWebhookRetryScheduleSeconds"] == [5, 30, 120.5]
        config = admin.get("/config")
        assert config["TeamSettings"]["EnableTeamCreation"] is True
        assert config["PasswordSettings"] == {
            "MinimumLength": 12,
            "Lowercase": True,
            "Uppercase": False,
            "Number": True,
            "Symbol": True,
        }

        bad = admin_pages.post(
            "/admin_console/service_settings",
            data={**fields, "ServiceSettings.OutgoingIntegrationRequestsTimeout": "soon"},
        )
        assert bad.status_code == 400
        assert alerts(bad.text) == [
            "Outgoing integration requests timeout (seconds) must be a whole number."
        ]
        zero = admin_pages.post(
            "/admin_console/service_settings",
            data={**fields, "ServiceSettings.OutgoingIntegrationRequestsTimeout": "0"},
        )
        assert zero.status_code == 400
        assert "must be a positive number" in alerts(zero.text)[0]
        assert admin.get("/config")["ServiceSettings"]["OutgoingIntegrationRequestsTimeout"] == 12
    finally:
        admin.put(
            "/config/patch",
            {
                "ServiceSettings": {
                    "EnablePostUsernameOverride": False,
                    "OutgoingIntegrationRequestsTimeout": 30,
                    "AllowedUntrustedInternalConnections": "",
                    "OutgoingWebhookRetryScheduleSeconds": [5, 30, 120, 600, 1800],
                    "EnableOutgoingWebhooksInPrivateChannels": False,
                    "OutgoingWebhookResponseUrlMinutes": 30,
                    "OutgoingWebhookMaxChainDepth": 3,
                },
                "PasswordSettings": {"MinimumLength": 10, "Symbol": False},
            },
        )


def test_system_console_manages_users(admin_pages: httpx.Client, admin: Api) -> None:
    """Create a user, make them admin, deactivate them; errors show inline."""
    token = admin_pages.cookies["MMCSRF"]
    created = admin_pages.post(
        "/admin_console/users/create",
        data={
            "csrf_token": token,
            "username": "consoleuser",
            "email": "consoleuser@example.test",
            "password": PASSWORD,
        },
    )
    assert created.status_code == 303
    user = admin.get("/users/username/consoleuser")
    assert user["roles"] == "system_user"
    again = admin_pages.post(
        "/admin_console/users/create",
        data={
            "csrf_token": token,
            "username": "consoleuser",
            "email": "other@example.test",
            "password": PASSWORD,
        },
    )
    assert again.status_code == 409
    assert alerts(again.text) == ["An account with that username already exists."]

    admin_pages.post(
        "/admin_console/users/roles",
        data={"csrf_token": token, "user_id": user["id"], "admin": "1"},
    )
    assert "system_admin" in admin.get(f"/users/{user['id']}")["roles"]
    admin_pages.post(
        "/admin_console/users/active", data={"csrf_token": token, "user_id": user["id"]}
    )
    assert admin.get(f"/users/{user['id']}")["delete_at"] > 0
    listing = admin_pages.get("/admin_console/users").text
    assert "@consoleuser" in listing
    assert "Deactivated" in listing
    teams = admin_pages.get("/admin_console/teams")
    assert teams.status_code == 200
    assert "signup_user_complete?id=" in teams.text


def test_names_are_escaped_in_pages(
    admin_pages: httpx.Client, admin: Api, team: dict[str, Any]
) -> None:
    """Display names people choose are text in every page, never markup."""
    channel = admin.post(
        "/channels",
        {
            "team_id": team["id"],
            "name": "xss-channel",
            "display_name": "<img src=x onerror=alert(1)>",
            "type": "O",
        },
        expect=201,
    )
    page = admin_pages.get(f"/{team['name']}/channels/{channel['name']}").text
    assert "<img src=x onerror" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_signup_by_invite_link_joins_the_team(
    server: ServerThread, admin: Api, team: dict[str, Any]
) -> None:
    """The invite link's sign-up creates the account, signs it in and opens the team."""
    client = httpx.Client(base_url=server.url, follow_redirects=False)
    invite = f"/signup_user_complete?id={team['invite_id']}"
    token = form_token(client.get(invite).text)
    response = client.post(
        invite,
        data={
            "csrf_token": token,
            "invite_id": team["invite_id"],
            "email": "invited@example.test",
            "username": "invited",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/{team['name']}/channels/town-square"
    assert client.get(response.headers["location"]).status_code == 200
    stranger = httpx.Client(base_url=server.url)
    token = form_token(stranger.get("/signup_user_complete").text)
    bad = stranger.post(
        "/signup_user_complete",
        data={"csrf_token": token, "email": "x@example.test", "username": "xy1", "password": "p"},
    )
    assert bad.status_code == 400
    assert alerts(bad.text) == [
        "Your password must contain between 10 and 72 characters made up of at least one "
        "lowercase letter, at least one number."
    ]
    closed = stranger.post(
        "/signup_user_complete",
        data={
            "csrf_token": token,
            "email": "x@example.test",
            "username": "xy1",
            "password": PASSWORD,
        },
    )
    assert closed.status_code == 403
    assert "does not allow open signups" in alerts(closed.text)[0]


def test_account_settings_profile_and_password(server: ServerThread, factory: Factory) -> None:
    """Profile changes save; a wrong current password is explained; a right one changes it."""
    user = factory.user()
    client = page_client(server.url, user.user["username"])
    token = client.cookies["MMCSRF"]
    saved = client.post(
        "/account_settings/profile",
        data={"csrf_token": token, "first_name": "Ada", "email": user.user["email"]},
    )
    assert saved.status_code == 303
    assert user.get("/users/me")["first_name"] == "Ada"
    wrong = client.post(
        "/account_settings/password",
        data={
            "csrf_token": token,
            "current_password": "not-it-at-all",
            "new_password": "another-horse-1",
            "confirm_password": "another-horse-1",
        },
    )
    assert wrong.status_code == 400
    assert 'The "Current Password" you entered is incorrect' in alerts(wrong.text)[0]
    changed = client.post(
        "/account_settings/password",
        data={
            "csrf_token": token,
            "current_password": PASSWORD,
            "new_password": "another-horse-1",
            "confirm_password": "another-horse-1",
        },
    )
    assert changed.status_code == 303
    page_client(server.url, user.user["username"], "another-horse-1")


def test_logout_ends_the_session(server: ServerThread, factory: Factory) -> None:
    """Logging out (a CSRF-checked post) ends the session for pages and API alike."""
    user = factory.user()
    client = page_client(server.url, user.user["username"])
    old = client.cookies["MMAUTHTOKEN"]
    confirm = client.get("/logout")
    assert confirm.status_code == 200
    response = client.post("/logout", data={"csrf_token": form_token(confirm.text)})
    assert response.headers["location"] == "/login?extra=logged_out"
    assert "MMAUTHTOKEN" not in client.cookies
    api = httpx.get(f"{server.url}/api/v4/users/me", headers={"Authorization": f"Bearer {old}"})
    assert api.status_code == 401


def test_teams_and_channels_pages(admin_pages: httpx.Client, admin: Api) -> None:
    """Create a team and a private channel from the pages; both appear in the sidebar."""
    token = admin_pages.cookies["MMCSRF"]
    made = admin_pages.post(
        "/create_team", data={"csrf_token": token, "display_name": "Pages Team", "type": "O"}
    )
    assert made.headers["location"] == "/pages-team/channels/town-square"
    bad = admin_pages.post(
        "/create_team", data={"csrf_token": token, "display_name": "Pages Team", "type": "O"}
    )
    assert alerts(bad.text) == ["A team with that name already exists."]
    channel = admin_pages.post(
        "/pages-team/create_channel",
        data={"csrf_token": token, "display_name": "Secret Plans", "type": "P"},
    )
    assert channel.headers["location"] == "/pages-team/channels/secret-plans"
    page = admin_pages.get(channel.headers["location"]).text
    assert "Private channels" in page
    assert "Secret Plans" in page
    assert admin_pages.get("/pages-team").headers["location"] == "/pages-team/channels/town-square"
    assert "Pages Team" in admin_pages.get("/select_team").text


def test_threads_direct_messages_and_joining_without_javascript(
    admin_pages: httpx.Client, admin: Api, factory: Factory, team: dict[str, Any]
) -> None:
    """?thread= shows the thread and its form replies there; a DM opens by a POST (the GET only
    offers the button); Join works."""
    token = admin_pages.cookies["MMCSRF"]
    town = admin.get(f"/teams/{team['id']}/channels/name/town-square")
    root = admin.post("/posts", {"channel_id": town["id"], "message": "root post"}, expect=201)
    path = f"/{team['name']}/channels/town-square"
    page = admin_pages.get(f"{path}?thread={root['id']}").text
    assert f'class="thread-inner" data-root-id="{root["id"]}"' in page
    assert "Reply to the thread" in page
    replied = admin_pages.post(
        path, data={"csrf_token": token, "message": "in the thread", "root_id": root["id"]}
    )
    assert replied.headers["location"] == f"{path}?thread={root['id']}"
    thread = admin.get(f"/posts/{root['id']}/thread")
    assert [thread["posts"][i]["message"] for i in thread["order"]] == [
        "root post",
        "in the thread",
    ]

    member = factory.user()
    factory.join(team, member)
    dm_path = f"/{team['name']}/messages/@{member.user['username']}"
    offer = admin_pages.get(dm_path)
    assert offer.status_code == 200
    assert f'action="{dm_path}/open"' in offer.text
    assert f"Write to @{member.user['username']}" not in offer.text
    mine = admin.get(f"/users/me/teams/{team['id']}/channels")
    assert not [c for c in mine if c["type"] == "D" and member.user["id"] in c["name"]]
    assert admin_pages.post(f"{dm_path}/open", data={"csrf_token": "forged"}).status_code == 403
    opened = admin_pages.post(f"{dm_path}/open", data={"csrf_token": token})
    assert opened.headers["location"] == dm_path
    dm_page = admin_pages.get(dm_path)
    assert dm_page.status_code == 200
    assert f"Write to @{member.user['username']}" in dm_page.text
    admin_pages.post(dm_path, data={"csrf_token": token, "message": "just between us"})
    direct = member.post("/channels/direct", [member.user["id"], admin.user["id"]], expect=201)
    posts = member.get(f"/channels/{direct['id']}/posts")["posts"].values()
    assert [p["message"] for p in posts] == ["just between us"]
    sidebar = admin_pages.get(path).text
    assert f'href="{dm_path}"' in sidebar

    theirs = factory.channel(team, owner=member)
    browse = admin_pages.get(f"/{team['name']}/browse_channels").text
    assert theirs["id"] in browse
    joined = admin_pages.post(
        f"/{team['name']}/browse_channels/join",
        data={"csrf_token": token, "channel_id": theirs["id"]},
    )
    assert joined.headers["location"] == f"/{team['name']}/channels/{theirs['name']}"
    members = admin.get(f"/channels/{theirs['id']}/members")
    assert admin.user["id"] in {m["user_id"] for m in members}


def test_opening_a_public_channel_previews_it_and_joining_is_a_post(
    server: ServerThread, admin: Api, factory: Factory, team: dict[str, Any]
) -> None:
    """A team member who opens a channel they are not in reads it without joining; the page's
    "Join channel" button POSTs (CSRF-checked) and only then are they a member."""
    reader = factory.user()
    factory.join(team, reader)
    channel = factory.channel(team)
    admin.post("/posts", {"channel_id": channel["id"], "message": "before you came"}, expect=201)
    pages = page_client(server.url, reader.user["username"])
    path = f"/{team['name']}/channels/{channel['name']}"
    preview = pages.get(path)
    assert preview.status_code == 200
    assert "before you came" in preview.text
    assert f'action="{path}/join"' in preview.text
    members = {m["user_id"] for m in admin.get(f"/channels/{channel['id']}/members")}
    assert reader.user["id"] not in members
    assert pages.post(f"{path}/join", data={"csrf_token": "forged"}).status_code == 403
    joined = pages.post(f"{path}/join", data={"csrf_token": pages.cookies["MMCSRF"]})
    assert joined.headers["location"] == path
    members = {m["user_id"] for m in admin.get(f"/channels/{channel['id']}/members")}
    assert reader.user["id"] in members
    assert f'action="{path}/join"' not in pages.get(path).text


def test_hidden_channels_and_teams_look_missing_on_pages(
    server: ServerThread, factory: Factory, team: dict[str, Any]
) -> None:
    """A private channel or an invite-only team answers a non-member's page like a missing one;
    the invite link page is for team admins only."""
    owner, member = factory.user(), factory.user()
    factory.join(team, owner)
    factory.join(team, member)
    secret = factory.channel(team, owner=owner, private=True)
    hidden_team = owner.post(
        "/teams", {"name": factory._next("t"), "display_name": "Hidden", "type": "I"}, expect=201
    )
    pages = page_client(server.url, member.user["username"])
    for existing, missing in (
        (f"/{team['name']}/channels/{secret['name']}", f"/{team['name']}/channels/nothing-here"),
        (f"/{hidden_team['name']}/channels/town-square", "/no-such-team-x/channels/town-square"),
    ):
        seen, absent = pages.get(existing), pages.get(missing)
        assert seen.status_code == absent.status_code == 404
        assert alerts(seen.text) == alerts(absent.text)
    assert pages.get(f"/{team['name']}/invite").status_code == 403
    invite_link = f'href="/{team["name"]}/invite"'
    assert invite_link not in pages.get(f"/{team['name']}/channels/town-square").text
    admin_pages = page_client(server.url, "admin")
    assert invite_link in admin_pages.get(f"/{team['name']}/channels/town-square").text
