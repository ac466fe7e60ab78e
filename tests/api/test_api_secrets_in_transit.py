"""Secrets in transit: responses carrying tokens or signing secrets are ``no-store``, and the
API documentation page loads only from this server (it works offline, no CDN)."""

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from support import Api, Factory, ServerThread

pytestmark = pytest.mark.db


def test_login_and_hook_secrets_are_never_cached(
    anonymous: Api, admin: Api, factory: Factory, webhooks_on: Api
) -> None:
    """The login's Token and every hook response with a token or signing secret say no-store."""
    login = anonymous.request(
        "POST", "/users/login", {"login_id": "admin", "password": "correct-horse-9"}
    )
    assert login.headers["Cache-Control"] == "no-store"
    team = factory.team()
    body: dict[str, Any] = {
        "team_id": team["id"],
        "trigger_words": ["cache"],
        "callback_urls": ["http://127.0.0.1:9/hook"],
    }
    created = admin.request("POST", "/hooks/outgoing", body)
    assert created.status_code == 201
    hook_id = created.json()["id"]
    responses = [
        created,
        admin.request("GET", f"/hooks/outgoing/{hook_id}"),
        admin.request("GET", "/hooks/outgoing", params={"team_id": team["id"]}),
        admin.request("PUT", f"/hooks/outgoing/{hook_id}", {**body, "id": hook_id}),
        admin.request("POST", f"/hooks/outgoing/{hook_id}/regen_token"),
    ]
    for response in responses:
        assert response.status_code in (200, 201), response.text
        assert response.json()
        assert response.headers["Cache-Control"] == "no-store", response.request.url


def test_team_answers_with_the_invite_id_are_never_cached(factory: Factory) -> None:
    """A team's invite id opens sign-up into it: every answer that shows it to a team admin is
    no-store; a member's view, without it, may be cached as before."""
    owner, member = factory.user(), factory.user()
    team = factory.team(owner)
    factory.join(team, member)
    paths = [
        f"/teams/{team['id']}",
        f"/teams/name/{team['name']}",
        "/teams",
        f"/users/{owner.user['id']}/teams",
    ]
    for path in paths:
        shown = owner.request("GET", path)
        assert shown.status_code == 200, shown.text
        assert team["invite_id"] in shown.text
        assert shown.headers.get("Cache-Control") == "no-store", path
    for path in (f"/teams/{team['id']}", f"/teams/name/{team['name']}"):
        hidden = member.request("GET", path)
        assert hidden.status_code == 200, hidden.text
        assert not hidden.json()["invite_id"]
        assert hidden.headers.get("Cache-Control") != "no-store", path


def test_the_docs_page_loads_only_same_origin_assets(server: ServerThread) -> None:
    """Every script, stylesheet and icon of ``/api/v4/docs`` is served by us and answers 200."""
    docs_url = f"{server.url}/api/v4/docs"
    page = httpx.get(docs_url)
    assert page.status_code == 200
    referenced = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text)
    referenced += re.findall(r"""url\s*:\s*["']([^"']+)["']""", page.text)
    assert any(ref.endswith(".js") for ref in referenced)
    assert any(ref.endswith(".css") for ref in referenced)
    for ref in referenced:
        absolute = urljoin(docs_url, ref)
        assert urlsplit(absolute).netloc == server.settings.listen, ref
        assert httpx.get(absolute).status_code == 200, ref
    assert not re.search(r"https?://(?!" + re.escape(server.settings.listen) + ")", page.text)
