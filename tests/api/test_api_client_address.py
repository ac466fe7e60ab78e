"""What a reverse proxy's headers change, through ``tidings serve``'s own uvicorn set-up
(``cli.uvicorn_config``): who the login limiter counts as the client (a local proxy's
``X-Forwarded-For`` by default, never a header alone once ``TIDINGS_FORWARDED_ALLOW_IPS`` is
empty) and whether cookies are ``Secure`` (a trusted proxy's ``X-Forwarded-Proto`` only).
tests/deploy/test_nginx.py checks the same through a real nginx. The limiter's tests each have a
database of their own: failures are counted in the database, and other tests' failures from
127.0.0.1 must not spend their budget."""

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from support import PASSWORD, Factory, cookie_flags, free_port, fresh_database
from tidings.app import create_app
from tidings.cli import uvicorn_config
from tidings.config import Settings


@contextmanager
def _served(database_url: str, forwarded_allow_ips: str) -> Iterator[str]:
    """A server run exactly as ``tidings serve`` runs it, on 127.0.0.1 (so we are its proxy)."""
    settings = Settings(
        database_url=database_url,
        listen=f"127.0.0.1:{free_port()}",
        run_worker=False,
        login_failures_per_minute=2,
        forwarded_allow_ips=forwarded_allow_ips,
    )
    server = uvicorn.Server(uvicorn_config(settings, lambda: create_app(settings)))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{settings.listen}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _login_status(client: httpx.Client, forwarded_for: str) -> int:
    body = {"login_id": "nobody-at-all", "password": "wrong password"}
    headers = {"X-Forwarded-For": forwarded_for}
    return client.post("/api/v4/users/login", json=body, headers=headers).status_code


def test_behind_a_local_proxy_each_forwarded_client_has_its_own_budget() -> None:
    """By default the proxy on this host is believed: the client it names in X-Forwarded-For
    is the limiter's address, so one client's failures do not lock out another."""
    with (
        fresh_database() as database_url,
        _served(database_url, "127.0.0.1,::1") as url,
        httpx.Client(base_url=url) as client,
    ):
        assert [_login_status(client, "192.0.2.1") for _ in range(3)] == [401, 401, 429]
        assert _login_status(client, "192.0.2.2") == 401
        # The proxy appends the real peer: what a client wrote before it does not count.
        assert _login_status(client, "203.0.113.9, 192.0.2.1") == 429


def test_with_no_trusted_proxy_the_tcp_peer_is_the_address() -> None:
    """With TIDINGS_FORWARDED_ALLOW_IPS empty, X-Forwarded-For is ignored: a client cannot
    name itself a fresh address to get a fresh budget."""
    with (
        fresh_database() as database_url,
        _served(database_url, "") as url,
        httpx.Client(base_url=url) as client,
    ):
        assert [_login_status(client, "192.0.2.1") for _ in range(3)] == [401, 401, 429]
        assert _login_status(client, "192.0.2.2") == 429


def _secure_flags(client: httpx.Client, username: str, headers: dict[str, str]) -> dict[str, bool]:
    """The cookies of the web login form and of an API login, fetched with ``headers`` by a
    visitor with no cookies yet (a signed-in one is sent on from the form)."""
    client.cookies.clear()
    form = client.get("/login", headers=headers)
    assert form.status_code == 200
    body = {"login_id": username, "password": PASSWORD}
    login = client.post("/api/v4/users/login", json=body, headers=headers)
    assert login.status_code == 200, login.text
    return {**cookie_flags(login), **cookie_flags(form)}


SESSION_COOKIES = {"MMAUTHTOKEN", "MMUSERID", "MMCSRF"}


def test_a_trusted_proxys_https_makes_every_cookie_secure(
    database_url: str, factory: Factory
) -> None:
    """Behind a TLS-terminating proxy the request reaches us as http: only the proxy's
    X-Forwarded-Proto says the browser used https, and then every cookie must be Secure."""
    username = factory.user().user["username"]
    with _served(database_url, "127.0.0.1,::1") as url, httpx.Client(base_url=url) as client:
        secure = _secure_flags(client, username, {"X-Forwarded-Proto": "https"})
        plain = _secure_flags(client, username, {})
    assert secure.keys() > SESSION_COOKIES
    assert all(secure.values()), secure
    assert not any(plain.values()), plain


def test_an_untrusted_peers_https_header_is_ignored(database_url: str, factory: Factory) -> None:
    """From a peer outside TIDINGS_FORWARDED_ALLOW_IPS, X-Forwarded-Proto means nothing: the
    connection is plain http, so no cookie claims to be Secure."""
    username = factory.user().user["username"]
    with _served(database_url, "192.0.2.10") as url, httpx.Client(base_url=url) as client:
        flags = _secure_flags(client, username, {"X-Forwarded-Proto": "https"})
    assert flags.keys() > SESSION_COOKIES
    assert not any(flags.values()), flags
