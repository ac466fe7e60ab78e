"""Who the login limiter counts as the client, through ``tidings serve``'s own uvicorn set-up
(``cli.uvicorn_config``): a local proxy's ``X-Forwarded-For`` by default, never a header alone
once ``TIDINGS_FORWARDED_ALLOW_IPS`` is empty."""

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from support import free_port
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


def test_behind_a_local_proxy_each_forwarded_client_has_its_own_budget(database_url: str) -> None:
    """By default the proxy on this host is believed: the client it names in X-Forwarded-For
    is the limiter's address, so one client's failures do not lock out another."""
    with _served(database_url, "127.0.0.1,::1") as url, httpx.Client(base_url=url) as client:
        assert [_login_status(client, "192.0.2.1") for _ in range(3)] == [401, 401, 429]
        assert _login_status(client, "192.0.2.2") == 401
        # The proxy appends the real peer: what a client wrote before it does not count.
        assert _login_status(client, "203.0.113.9, 192.0.2.1") == 429


def test_with_no_trusted_proxy_the_tcp_peer_is_the_address(database_url: str) -> None:
    """With TIDINGS_FORWARDED_ALLOW_IPS empty, X-Forwarded-For is ignored: a client cannot
    name itself a fresh address to get a fresh budget."""
    with _served(database_url, "") as url, httpx.Client(base_url=url) as client:
        assert [_login_status(client, "192.0.2.1") for _ in range(3)] == [401, 401, 429]
        assert _login_status(client, "192.0.2.2") == 429
