"""Several real Tidings processes on one PostgreSQL database, and websocket clients that record
what each server sends them.

The cluster tests need what no in-thread server can give: separate processes that share nothing
but the database, one of which can be killed with SIGKILL. Each process is a real
``python -m tidings`` child (``support.running_tidings``): two ``serve`` processes, A and B, with
their in-process worker off, and one ``worker`` process that makes every delivery.
"""

import contextlib
import json
import os
import signal
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from support import PASSWORD, Api, TidingsProcess, fresh_database, running_tidings

# Waits are generous (a loaded 2-core machine runs three Tidings processes, PostgreSQL and the
# test); what a test asserts about time, it asserts with a bound of its own.
TIMEOUT = 20.0
# How long another process may use a setting it read (the config cache, tidings.services).
CONFIG_CACHE_SECONDS = 1.0
STOP = signal.SIGTERM  # how the processes are ended at the end of the block


def require_postgres() -> None:
    """Skip, saying why, unless the suite runs on PostgreSQL."""
    if not os.environ.get("TIDINGS_TEST_DATABASE_URL", "").startswith("postgres"):
        pytest.skip(
            "several tidings processes need PostgreSQL: set TIDINGS_TEST_DATABASE_URL "
            "(on SQLite one process serves alone)"
        )


@dataclass(frozen=True)
class Cluster:
    """Servers A and B, the worker(s), and the first user (a system admin) signed in on A."""

    database_url: str
    servers: tuple[TidingsProcess, ...]
    workers: tuple[TidingsProcess, ...]
    admin: Api

    @property
    def a(self) -> TidingsProcess:
        return self.servers[0]

    @property
    def b(self) -> TidingsProcess:
        return self.servers[1]

    def logs(self) -> str:
        """The end of every process's output, for a failing test's report."""
        parts = []
        for process in (*self.servers, *self.workers):
            tail = process.log.read_text(errors="replace")[-2500:]
            parts.append(f"--- {process.log.name} (exit {process.popen.poll()}):\n{tail}")
        return "\n".join(parts)


def on(server: TidingsProcess, api: Api) -> Api:
    """The same user with the same token, talking to ``server``."""
    return Api(server.url, api.token, api.user)


@contextlib.contextmanager
def running_cluster(
    folder: Path, *, servers: int = 2, workers: int = 1, **settings: str
) -> Iterator[Cluster]:
    """A fresh database, ``servers`` ``tidings serve`` and ``workers`` ``tidings worker``
    processes on it (``settings`` as ``TIDINGS_*`` for all), the first user signed up through
    A, and loopback receivers allowed. On a failure inside the block the processes' logs are
    printed."""
    require_postgres()
    with fresh_database() as url, contextlib.ExitStack() as stack:
        served = tuple(
            stack.enter_context(
                running_tidings(
                    "serve", url, folder / f"serve-{n}.log", STOP, run_worker="false", **settings
                )
            )
            for n in range(servers)
        )
        working = tuple(
            stack.enter_context(
                running_tidings("worker", url, folder / f"worker-{n}.log", STOP, **settings)
            )
            for n in range(workers)
        )
        for process in served:
            process.wait_serving()
        admin = _first_admin(served[0])
        admin.put(
            "/config/patch",
            {"ServiceSettings": {"AllowedUntrustedInternalConnections": "127.0.0.1"}},
        )
        # Every other process sees the setting once its config cache has expired.
        time.sleep(CONFIG_CACHE_SECONDS + 0.2)
        cluster = Cluster(url, served, working, admin)
        try:
            yield cluster
        except BaseException:
            print(cluster.logs())
            raise


def _first_admin(server: TidingsProcess) -> Api:
    anonymous = Api(server.url)
    body = {"username": "boss", "email": "boss@example.test", "password": PASSWORD}
    anonymous.post("/users", body, expect=201)
    return anonymous.login("boss")


class EventSocket:
    """One websocket connection (to a server, or through nginx to one of them), authenticated
    by a bearer token, read by a thread of its own: every frame after ``hello`` is kept in
    arrival order, and when the server closes the connection, the close code and the moment it
    arrived."""

    def __init__(self, url: str, token: str, tls: ssl.SSLContext | None = None) -> None:
        self.url = url
        self._stack = contextlib.ExitStack()
        self._ws = self._stack.enter_context(
            connect(
                url,
                ssl=tls,
                additional_headers={"Authorization": f"Bearer {token}"},
                open_timeout=TIMEOUT,
            )
        )
        with self._stack.pop_all() as opening:  # closed again unless hello arrives
            hello = json.loads(self._ws.recv(timeout=TIMEOUT))
            if hello.get("event") != "hello":
                raise AssertionError(f"expected hello first, got {hello}")
            self._stack = opening.pop_all()
        self.user_id: str = hello["broadcast"]["user_id"]
        self.frames: list[dict[str, Any]] = []
        self.closed_at: float | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for message in self._ws:
                self.frames.append(json.loads(message))
        except ConnectionClosed:
            pass  # a close code other than 1000/1001 (1008: session ended) ends it this way
        finally:
            self.closed_at = time.monotonic()
            self._closed.set()

    @property
    def close_code(self) -> int | None:
        """The code the server closed with (None while open)."""
        return self._ws.close_code if self._closed.is_set() else None

    def wait_closed(self, timeout: float = TIMEOUT) -> int | None:
        """Wait until the connection is closed; its close code."""
        if not self._closed.wait(timeout):
            raise AssertionError(f"the websocket to {self.url} stayed open {timeout} s")
        return self.close_code

    def events(self, name: str) -> list[dict[str, Any]]:
        """Every frame of event ``name``, in the order received."""
        return [f for f in list(self.frames) if f.get("event") == name]

    def events_of(self, names: Iterable[str]) -> list[dict[str, Any]]:
        """Every frame of any of the events ``names``, in the order received."""
        wanted = set(names)
        return [f for f in list(self.frames) if f.get("event") in wanted]

    def posts(self, name: str) -> list[dict[str, Any]]:
        """The posts carried by ``name`` events (``posted``, ``post_edited``, …), in order."""
        return [json.loads(f["data"]["post"]) for f in self.events(name)]

    def post_ids(self, name: str) -> list[str]:
        return [str(p["id"]) for p in self.posts(name)]

    def close(self) -> None:
        self._stack.close()
        self._thread.join(TIMEOUT)


@contextlib.contextmanager
def event_sockets(
    *connections: tuple[str, str], tls: ssl.SSLContext | None = None
) -> Iterator[list[EventSocket]]:
    """An :class:`EventSocket` per (websocket URL, token), opened in that order, all closed
    when the block ends."""
    opened: list[EventSocket] = []
    try:
        for url, token in connections:
            opened.append(EventSocket(url, token, tls))
        yield opened
    finally:
        for socket in opened:
            socket.close()


def measure_until(predicate: Callable[[], Any], timeout: float = TIMEOUT) -> float:
    """Seconds until ``predicate`` first returns something truthy (polling every 10 ms);
    fails after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met in {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - started
