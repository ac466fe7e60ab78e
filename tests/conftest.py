"""Shared fixtures: one real server per test session on a fresh database (SQLite, or PostgreSQL
when ``TIDINGS_TEST_DATABASE_URL`` is set), its first user as admin, factories and receivers."""

import gc
import os
import sys
from collections.abc import Iterator

import pytest

from support import (
    Api,
    Factory,
    Receiver,
    ServerThread,
    database_url_for_tests,
    reset_database,
    start_server,
)
from tidings import process

# Cheap argon2 for the whole test session (servers in threads and `tidings` subprocesses alike):
# hashing at production cost would spend minutes of CPU on throwaway accounts.
os.environ.setdefault("TIDINGS_PASSWORD_HASH_TIME_COST", "1")
os.environ.setdefault("TIDINGS_PASSWORD_HASH_MEMORY_KIB", "1024")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = database_url_for_tests(str(tmp_path_factory.mktemp("db")))
    reset_database(url)
    return url


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[ServerThread]:
    thread = start_server(database_url)
    yield thread
    thread.stop()


@pytest.fixture(scope="session")
def admin(server: ServerThread) -> Api:
    """The first user of the fresh server: a system admin."""
    anonymous = Api(server.url)
    anonymous.post(
        "/users",
        {"username": "admin", "email": "admin@example.test", "password": "correct-horse-9"},
        expect=201,
    )
    return anonymous.login("admin")


@pytest.fixture(scope="session")
def factory(admin: Api) -> Factory:
    return Factory(admin)


@pytest.fixture
def anonymous(server: ServerThread) -> Api:
    return Api(server.url)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def webhooks_on(admin: Api) -> Iterator[Api]:
    """Outgoing webhooks on, loopback receivers allowed, overrides off; restored afterwards."""
    admin.put(
        "/config/patch",
        {
            "ServiceSettings": {
                "EnableOutgoingWebhooks": True,
                "AllowedUntrustedInternalConnections": "127.0.0.1",
                "EnablePostUsernameOverride": False,
                "EnablePostIconOverride": False,
                "OutgoingWebhookRetryScheduleSeconds": [5, 30, 120, 600, 1800],
            }
        },
    )
    yield admin
    admin.put(
        "/config/patch",
        {
            "ServiceSettings": {
                "EnableOutgoingWebhooks": True,
                "AllowedUntrustedInternalConnections": "",
                "EnablePostUsernameOverride": False,
                "EnablePostIconOverride": False,
            }
        },
    )


@pytest.fixture
def served_process(server: ServerThread) -> Iterator[ServerThread]:
    """The shared test server's process made like a ``tidings serve`` process, for tests that
    hold it to latency bounds: tuned as ``serve`` tunes itself (``process.tune``: the GIL switch
    interval), and with the heap every earlier test left behind parked by ``gc.freeze`` — a
    full collection of that heap is the test runner's cost (tens of ms), which a fresh server
    process never pays. Both put back afterwards."""
    before = sys.getswitchinterval()
    process.tune(server.settings)
    gc.freeze()
    yield server
    gc.unfreeze()
    sys.setswitchinterval(before)
