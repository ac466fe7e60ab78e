"""The shipped deployment, for real: ``tidings serve`` processes behind Debian's nginx running
``deploy/nginx/tidings.conf`` (tests/nginx_support.py), over HTTPS with a throwaway certificate.

Most tests use a front with one backend, so they hold on SQLite too and a websocket and the post
it should hear about meet in one process. Sharing the load needs two backends on one database,
which is PostgreSQL's job: those tests skip on SQLite.
"""

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from nginx_support import NginxFront, running_nginx
from support import PASSWORD, TidingsProcess, cookie_flags, fresh_database, running_tidings

pytestmark = pytest.mark.db

LOGIN_FAILURES_PER_MINUTE = 3
TIMEOUT = 15.0


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deploy")


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def backend(database: str, folder: Path) -> Iterator[TidingsProcess]:
    """``tidings serve`` as the systemd unit runs it: believing the proxy on this host."""
    with running_tidings(
        "serve",
        database,
        folder / "serve-a.log",
        login_failures_per_minute=str(LOGIN_FAILURES_PER_MINUTE),
    ) as serve:
        yield serve.wait_serving()


@pytest.fixture(scope="module")
def front(backend: TidingsProcess, folder: Path) -> Iterator[NginxFront]:
    with running_nginx([backend.listen], folder / "nginx-one") as nginx:
        yield nginx


def _client(front: NginxFront, source: str = "127.0.0.1") -> httpx.Client:
    """An HTTPS client of the front that verifies its certificate, connecting from ``source``:
    every 127.x address is this machine, so each one is a different client to nginx."""
    transport = httpx.HTTPTransport(verify=front.ssl_context(), local_address=source)
    return httpx.Client(base_url=front.https_url, transport=transport, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def admin(front: NginxFront) -> dict[str, Any]:
    """The first account of the fresh database, made and signed in through nginx."""
    with _client(front) as client:
        body = {"username": "boss", "email": "boss@example.test", "password": PASSWORD}
        assert client.post("/api/v4/users", json=body).status_code == 201
        login = client.post("/api/v4/users/login", json={"login_id": "boss", "password": PASSWORD})
        assert login.status_code == 200, login.text
        return {"token": login.headers["Token"], "user": login.json()}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _make_user(front: NginxFront, admin: dict[str, Any], username: str) -> None:
    body = {"username": username, "email": f"{username}@example.test", "password": PASSWORD}
    with _client(front) as client:
        made = client.post("/api/v4/users", json=body, headers=_bearer(admin["token"]))
    assert made.status_code == 201, made.text


def test_a_login_through_nginx_gets_secure_cookies_that_work(
    front: NginxFront, admin: dict[str, Any]
) -> None:
    """nginx ends TLS and tells the server so (X-Forwarded-Proto), which believes it from this
    host: the session cookies are Secure, and the browser's cookie then signs it in."""
    with _client(front) as client:
        login = client.post("/api/v4/users/login", json={"login_id": "boss", "password": PASSWORD})
        assert login.status_code == 200
        assert cookie_flags(login) == {"MMAUTHTOKEN": True, "MMUSERID": True, "MMCSRF": True}
        assert login.headers["strict-transport-security"] == "max-age=31536000"
        me = client.get("/api/v4/users/me")  # the cookies alone, as a browser sends them
    assert me.status_code == 200
    assert me.json()["username"] == "boss"


def test_plain_http_is_sent_to_https(front: NginxFront) -> None:
    """Port 80 only redirects, keeping the path and query."""
    response = httpx.get(front.http_url + "/login?redirect_to=/boss", timeout=TIMEOUT)
    assert response.status_code == 301
    assert response.headers["location"] == front.https_url + "/login?redirect_to=/boss"


def _next_event(ws: ClientConnection, name: str) -> dict[str, Any]:
    while True:
        message = json.loads(ws.recv(timeout=TIMEOUT))
        if message.get("event") == name:
            return message  # type: ignore[no-any-return]


def test_a_websocket_through_nginx_hears_a_post_made_through_nginx(
    front: NginxFront, admin: dict[str, Any]
) -> None:
    """The upgrade passes through nginx (its own location, long timeouts): the socket gets
    ``hello``, then the ``posted`` event of a post made through nginx on the same backend."""
    headers = _bearer(admin["token"])
    with _client(front) as client:
        team = client.post(
            "/api/v4/teams", json={"name": "deploy", "display_name": "Deploy"}, headers=headers
        ).json()
        body = {"team_id": team["id"], "name": "ops", "display_name": "Ops", "type": "O"}
        channel = client.post("/api/v4/channels", json=body, headers=headers).json()
        with connect(
            front.wss_url,
            ssl=front.ssl_context(),
            additional_headers=headers,
            open_timeout=TIMEOUT,
        ) as ws:
            hello = _next_event(ws, "hello")
            assert hello["broadcast"]["user_id"] == admin["user"]["id"]
            post = client.post(
                "/api/v4/posts",
                json={"channel_id": channel["id"], "message": "through the proxy"},
                headers=headers,
            ).json()
            posted = _next_event(ws, "posted")
    assert json.loads(posted["data"]["post"])["id"] == post["id"]


def test_the_web_clients_websocket_passes_its_same_origin_check(
    front: NginxFront, admin: dict[str, Any]
) -> None:
    """A browser's socket carries the cookie and its page's Origin. nginx passes the Host the
    browser used (port included), so the server recognises its own origin through the proxy,
    and still refuses another site's."""
    cookie = {"Cookie": f"MMAUTHTOKEN={admin['token']}"}
    with connect(
        front.wss_url,
        ssl=front.ssl_context(),
        additional_headers={**cookie, "Origin": front.https_url},
        open_timeout=TIMEOUT,
    ) as ws:
        assert _next_event(ws, "hello")["broadcast"]["user_id"] == admin["user"]["id"]
    with pytest.raises(InvalidStatus) as refused:
        connect(
            front.wss_url,
            ssl=front.ssl_context(),
            additional_headers={**cookie, "Origin": "https://elsewhere.example"},
            open_timeout=TIMEOUT,
        )
    assert refused.value.response.status_code == 403


def _failed_logins(client: httpx.Client, count: int, **headers: str) -> list[int]:
    body = {"login_id": "limited", "password": "not the password"}
    return [
        client.post("/api/v4/users/login", json=body, headers=headers).status_code
        for _ in range(count)
    ]


def test_the_login_limiter_counts_the_client_nginx_saw(
    front: NginxFront, admin: dict[str, Any]
) -> None:
    """Failed logins are counted per client address, and behind nginx that is the address
    nginx took the connection from, not nginx's own (one attacker would lock an account for
    everyone) and not whatever the client wrote in X-Forwarded-For (a fresh budget per try).

    nginx replaces X-Forwarded-For rather than appending to it. That matters for a client that
    is itself in TIDINGS_FORWARDED_ALLOW_IPS, such as any process on this host: an appended
    header would end in that trusted address, so the server would take the client's own
    entry before it as the address, and a forged entry would buy a fresh budget."""
    _make_user(front, admin, "limited")
    over = [401] * LOGIN_FAILURES_PER_MINUTE + [429]
    with _client(front, "127.0.0.2") as attacker:
        assert _failed_logins(attacker, LOGIN_FAILURES_PER_MINUTE + 1) == over
        assert _failed_logins(attacker, 1, **{"X-Forwarded-For": "192.0.2.77"}) == [429]
    with _client(front, "127.0.0.3") as owner:
        assert _failed_logins(owner, 1) == [401]
        login = owner.post(
            "/api/v4/users/login", json={"login_id": "limited", "password": PASSWORD}
        )
        assert login.status_code == 200
    with _client(front, "127.0.0.1") as local:
        assert _failed_logins(local, LOGIN_FAILURES_PER_MINUTE + 1) == over
        assert _failed_logins(local, 1, **{"X-Forwarded-For": "192.0.2.78"}) == [429]


def test_a_body_over_the_servers_limit_gets_its_own_413(
    front: NginxFront, admin: dict[str, Any]
) -> None:
    """nginx's client_max_body_size sits just above the server's default
    MaximumPayloadSizeBytes (300,000): a body between the two reaches the server, which answers
    with Mattermost's error, and a far larger one is refused by nginx without being passed on."""
    headers = {**_bearer(admin["token"]), "Content-Type": "application/json"}
    with _client(front) as client:
        over_server = client.post(
            "/api/v4/posts?probe=big", content=b" " * 301_000, headers=headers
        )
        over_nginx = client.post("/api/v4/posts?probe=big", content=b" " * 400_000, headers=headers)
    assert over_server.status_code == 413
    assert over_server.json()["id"] == "api.context.request_body_too_large.app_error"
    assert over_nginx.status_code == 413
    assert over_nginx.headers["content-type"] == "text/html"  # nginx's own page
    logged = front.wait_logged("probe=big", 2)
    assert [bool(entry.upstreams) for entry in logged] == [True, False]


def _postgresql_only() -> None:
    if not os.environ.get("TIDINGS_TEST_DATABASE_URL"):
        pytest.skip(
            "two `tidings serve` processes need PostgreSQL (TIDINGS_TEST_DATABASE_URL); "
            "the one-backend nginx tests here ran on SQLite"
        )


def test_requests_are_shared_between_two_backends(
    database: str, backend: TidingsProcess, admin: dict[str, Any], folder: Path
) -> None:
    """Round-robin over two servers on one database: each answers about half, as nginx's own
    access log records, and a session made through one is good on the other."""
    _postgresql_only()
    with (
        running_tidings("serve", database, folder / "serve-b.log") as other,
        running_nginx([backend.listen, other.wait_serving().listen], folder / "nginx-two") as front,
        _client(front) as client,
    ):
        login = client.post("/api/v4/users/login", json={"login_id": "boss", "password": PASSWORD})
        token = login.headers["Token"]
        statuses = [
            client.get("/api/v4/users/me?probe=shared", headers=_bearer(token)).status_code
            for _ in range(10)
        ]
        served = [entry.upstreams[-1] for entry in front.wait_logged("probe=shared", 10)]
    assert statuses == [200] * 10
    counts = {address: served.count(address) for address in (backend.listen, other.listen)}
    assert min(counts.values()) >= 4, counts


def test_a_stopped_backend_costs_no_failed_request(
    database: str, backend: TidingsProcess, admin: dict[str, Any], folder: Path
) -> None:
    """Stop one of two servers: the next request nginx gives it fails to connect, nginx passes
    it to the other (nothing was sent, so even a POST is safe to retry) and leaves the stopped
    one out for fail_timeout. No client sees an error."""
    _postgresql_only()
    headers = _bearer(admin["token"])
    with (
        running_tidings("serve", database, folder / "serve-c.log") as doomed,
        running_nginx(
            [backend.listen, doomed.wait_serving().listen], folder / "nginx-stop"
        ) as front,
        _client(front) as client,
    ):
        team = client.post(
            "/api/v4/teams", json={"name": "failover", "display_name": "F"}, headers=headers
        ).json()
        body = {"team_id": team["id"], "name": "town", "display_name": "Town", "type": "O"}
        channel = client.post("/api/v4/channels", json=body, headers=headers).json()
        doomed.stop()
        # POSTs first: one of the first two is nginx's next pick of the stopped server.
        statuses = [
            client.post(
                "/api/v4/posts?probe=stopped",
                json={"channel_id": channel["id"], "message": f"still here {n}"},
                headers=headers,
            ).status_code
            for n in range(10)
        ]
        statuses += [
            client.get("/api/v4/users/me?probe=stopped", headers=headers).status_code
            for _ in range(10)
        ]
        entries = front.wait_logged("probe=stopped", 20)
        posts = client.get(f"/api/v4/channels/{channel['id']}/posts", headers=headers).json()
    assert statuses == [201] * 10 + [200] * 10
    assert len(posts["order"]) == 10  # each made once: the retried POST had not been sent
    assert {entry.upstreams[-1] for entry in entries} == {backend.listen}
    tried_doomed = [entry for entry in entries if doomed.listen in entry.upstreams]
    assert len(tried_doomed) == 1, entries
    assert tried_doomed[0].request.startswith("POST /api/v4/posts")
    assert tried_doomed[0].upstreams == (doomed.listen, backend.listen)
