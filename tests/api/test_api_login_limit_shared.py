"""Two ``tidings serve`` processes on one database spend one login budget: failures counted on
either server are refused on both, and a success on one clears the pair for both. (Counted in
memory, each process would give an attacker its own budget.)"""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from mattermost_contract import assert_app_error

from support import PASSWORD, free_port, fresh_database, running_tidings, wait_until

pytestmark = pytest.mark.db

PER_MINUTE = 3
BUDGET = PER_MINUTE * 10
WRONG = "wrong-password"


@contextmanager
def _two_servers(tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with fresh_database() as url, ExitStack() as stack:
        clients = []
        for name in ("a", "b"):
            listen = f"127.0.0.1:{free_port()}"
            stack.enter_context(
                running_tidings(
                    "serve",
                    url,
                    tmp_path / f"serve-{name}.log",
                    listen=listen,
                    run_worker="false",
                    login_failures_per_minute=str(PER_MINUTE),
                )
            )
            client = stack.enter_context(httpx.Client(base_url=f"http://{listen}/api/v4"))
            clients.append(client)
        for client in clients:
            wait_until(lambda c=client: _answers(c), timeout=30)
        yield clients[0], clients[1]


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/system/ping").status_code == 200
    except httpx.TransportError:
        return False


def _login(client: httpx.Client, login_id: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/users/login", json={"login_id": login_id, "password": password})


def _sign_up(client: httpx.Client, name: str, token: str = "") -> None:
    body = {"username": name, "email": f"{name}@example.test", "password": PASSWORD}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    assert client.post("/users", json=body, headers=headers).status_code == 201


def test_two_servers_share_the_login_budget(tmp_path: Path) -> None:
    with _two_servers(tmp_path) as (a, b):
        _sign_up(a, "boss")  # the first account, so the server's admin
        token = _login(a, "boss").headers["Token"]
        _sign_up(a, "victim", token)
        _sign_up(a, "carol", token)

        # One account's budget: two failures on A and one on B make both refuse it.
        assert_app_error(_login(a, "victim", WRONG), 401)
        assert_app_error(_login(b, "victim", WRONG), 401)
        assert_app_error(_login(a, "victim", WRONG), 401)
        for server in (a, b):
            assert_app_error(_login(server, "victim"), 429, "api.user.login.rate_limited.app_error")

        # A success on B clears what A counted.
        assert_app_error(_login(a, "carol", WRONG), 401)
        assert_app_error(_login(a, "carol", WRONG), 401)
        assert _login(b, "carol").status_code == 200
        assert_app_error(_login(a, "carol", WRONG), 401)
        assert_app_error(_login(a, "carol", WRONG), 401)

        # The address's budget over login ids that name no account, spent half on each server.
        for i in range(BUDGET):
            assert_app_error(_login((a, b)[i % 2], f"nobody{i}", WRONG), 401)
        for server in (a, b):
            assert_app_error(_login(server, "nobody-new", WRONG), 429)
        assert _login(b, "boss").status_code == 200  # which never refuses a real account
