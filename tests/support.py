"""Test support: a real Tidings server on a free loopback port, real receivers, and a small API client.

The server runs uvicorn in a thread with its own event loop, so tests (sync or async) talk to it
over real HTTP exactly as clients do. Receivers are real aiohttp servers on 127.0.0.1.
"""

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tidings.app import create_app
from tidings.config import Settings
from tidings.domain.hooks import OutgoingHook
from tidings.domain.teams import Channel
from tidings.domain.users import User
from tidings.services import hooks as hook_service
from tidings.services import settings as settings_service
from tidings.services import teams as team_service
from tidings.services import users as user_service
from tidings.services.hooks import HookInput
from tidings.services.runtime import Runtime
from tidings.store.database import Connection, Database, create_engine, normalise_url
from tidings.store.migration import upgrade
from tidings.store.schema import metadata

PASSWORD = "correct-horse-9"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reset_database(url: str) -> None:
    """Drop every table (ours and Alembic's) and migrate from empty."""

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()
    upgrade(url)


class ServerThread:
    """uvicorn serving ``create_app`` in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime = Runtime(
            settings=settings, db=Database.from_url(settings.effective_database_url)
        )
        self.app = create_app(settings, self.runtime)
        config = uvicorn.Config(
            self.app, host=settings.host, port=settings.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    def _serve(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.server.serve())
        self.loop.run_until_complete(self.runtime.db.dispose())
        self.loop.close()

    @property
    def url(self) -> str:
        return f"http://{self.settings.listen}"

    def start(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``work`` on the server's own event loop (its database pool is bound to it)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)


def start_server(database_url: str, **overrides: Any) -> ServerThread:
    settings = Settings(
        database_url=database_url,
        listen=f"127.0.0.1:{free_port()}",
        **{"worker_poll_interval_seconds": 0.05, **overrides},
    )
    return ServerThread(settings).start()


class ApiError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code} {response.text}")
        self.response = response


@dataclass
class Api:
    """A thin HTTP client that keeps a bearer token."""

    base_url: str
    token: str = ""
    user: dict[str, Any] = field(default_factory=dict)

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        content = kwargs.pop("content", None)
        if body is not None:
            content = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        return httpx.request(
            method,
            self.base_url + "/api/v4" + path,
            content=content,
            headers=headers,
            timeout=30,
            # Plain HTTP on loopback: skipping the TLS context saves ~25 ms per request.
            verify=False,  # noqa: S501
            **kwargs,
        )

    def call(
        self, method: str, path: str, body: Any = None, expect: int | None = None, **kwargs: Any
    ) -> Any:
        response = self.request(method, path, body, **kwargs)
        if expect is not None and response.status_code != expect:
            raise ApiError(response)
        if expect is None and response.status_code >= 400:
            raise ApiError(response)
        return response.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("PUT", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.call("DELETE", path, **kwargs)

    def login(self, login_id: str, password: str = PASSWORD) -> "Api":
        response = self.request(
            "POST", "/users/login", {"login_id": login_id, "password": password}
        )
        if response.status_code != 200:
            raise ApiError(response)
        return Api(self.base_url, response.headers["Token"], response.json())


def cookie_flags(response: httpx.Response) -> dict[str, bool]:
    """Each cookie the response sets, and whether it carries ``Secure``."""
    flags = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        flags.update({name: bool(morsel["secure"]) for name, morsel in jar.items()})
    return flags


def first_admin(server: ServerThread, username: str = "boss") -> Api:
    """Sign up the first user of a fresh server (who becomes its system admin) and log in."""
    anonymous = Api(server.url)
    anonymous.post(
        "/users",
        {"username": username, "email": f"{username}@example.test", "password": PASSWORD},
        expect=201,
    )
    return anonymous.login(username)


class Factory:
    """Makes users, teams and channels with unique names through the API."""

    def __init__(self, admin: Api) -> None:
        self.admin = admin
        self._n = 0

    def _next(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}x{int(time.time() * 1000) % 10_000_000}"

    def user(self, admin: bool = False) -> Api:
        name = self._next("u")
        user = self.admin.post(
            "/users",
            {"username": name, "email": f"{name}@example.test", "password": PASSWORD},
            expect=201,
        )
        if admin:
            self.admin.put(f"/users/{user['id']}/roles", {"roles": "system_admin system_user"})
        return self.admin.login(name)

    def team(self, owner: Api | None = None) -> dict[str, Any]:
        owner = owner or self.admin
        return owner.post(
            "/teams", {"name": self._next("t"), "display_name": "Team", "type": "O"}, expect=201
        )  # type: ignore[no-any-return]

    def join(self, team: dict[str, Any], member: Api) -> None:
        self.admin.post(
            f"/teams/{team['id']}/members",
            {"team_id": team["id"], "user_id": member.user["id"]},
            expect=201,
        )

    def channel(
        self, team: dict[str, Any], owner: Api | None = None, private: bool = False
    ) -> dict[str, Any]:
        owner = owner or self.admin
        body = {
            "team_id": team["id"],
            "name": self._next("c"),
            "display_name": "Channel",
            "type": "P" if private else "O",
        }
        return owner.post("/channels", body, expect=201)  # type: ignore[no-any-return]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


Responder = Callable[[Recorded], Any]


class Receiver:
    """A real HTTP receiver on 127.0.0.1 in its own thread; records requests, answers as told.

    ``respond`` returns a ``web.Response``-like tuple (status, body bytes or JSON-able, headers)
    or an awaitable ``("sleep", seconds)`` directive for hanging receivers.
    """

    def __init__(self, *, cancel_on_disconnect: bool = False) -> None:
        # With ``cancel_on_disconnect`` a hanging handler stops when the client goes away (a
        # timeout, a killed worker), so closing the receiver need not wait for it.
        self.cancel_on_disconnect = cancel_on_disconnect
        self.requests: list[Recorded] = []
        self.status = 200
        self.reply: Any = {"text": "ok"}
        self.delay_seconds = 0.0
        self.headers: dict[str, str] = {}
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        recorded = Recorded(
            request.method, request.path_qs, dict(request.headers), body, time.monotonic()
        )
        self.requests.append(recorded)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        # This request's own record: others may have arrived while it slept.
        reply = self.reply(recorded) if callable(self.reply) else self.reply
        if isinstance(reply, bytes):
            payload = reply
        elif reply is None:
            payload = b""
        else:
            payload = json.dumps(reply).encode()
        return web.Response(
            status=self.status,
            body=payload,
            headers={"Content-Type": "application/json", **self.headers},
        )

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=self.cancel_on_disconnect
        )
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver saw {len(self.requests)} requests, wanted {count}")
            time.sleep(0.01)
        return self.requests

    def close(self) -> None:
        if self._runner is not None:
            fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            with contextlib.suppress(Exception):
                fut.result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def database_url_for_tests(tmp_dir: str) -> str:
    import os

    return os.environ.get("TIDINGS_TEST_DATABASE_URL") or normalise_url(
        f"sqlite:///{tmp_dir}/tidings.db"
    )


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    try:
        yield receiver
    finally:
        receiver.close()


@contextlib.contextmanager
def own_server(
    service_settings: dict[str, Any], **settings: Any
) -> Iterator[tuple[ServerThread, Api]]:
    """A server of its own (``settings`` as :func:`start_server` takes them) on a fresh
    database, with its first user (the system admin) signed in and ``service_settings``
    patched into the System Console's ``ServiceSettings``; stopped afterwards."""
    with fresh_database() as url:
        server = start_server(url, **settings)
        try:
            admin = first_admin(server)
            admin.put("/config/patch", {"ServiceSettings": service_settings})
            yield server, admin
        finally:
            server.stop()


@contextlib.contextmanager
def fresh_database(*, migrated: bool = True) -> Iterator[str]:
    """A brand-new, migrated database of the kind the suite runs on, dropped afterwards.

    SQLite: a file in a temporary folder. PostgreSQL (``TIDINGS_TEST_DATABASE_URL``): a new
    database beside the suite's own, so tests that need an empty server or several processes
    do not disturb the session's server. ``migrated=False``: left empty (SQLite: not even
    created), for tests of migrating itself.
    """
    base = os.environ.get("TIDINGS_TEST_DATABASE_URL", "")
    if not base:
        with tempfile.TemporaryDirectory() as folder:
            url = normalise_url(f"sqlite:///{folder}/fresh.db")
            if migrated:
                upgrade(url)
            yield url
        return
    name = f"tidings_fresh_{os.getpid()}_{int(time.time() * 1000) % 10**9}"
    admin_url = (
        make_url(normalise_url(base)).set(database="postgres").render_as_string(hide_password=False)
    )

    def admin_sql(statement: str) -> None:
        engine = create_engine(admin_url)
        try:
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text(statement))
        finally:
            engine.dispose()

    admin_sql(f'CREATE DATABASE "{name}"')
    url = make_url(normalise_url(base)).set(database=name).render_as_string(hide_password=False)
    try:
        if migrated:
            upgrade(url)
        yield url
    finally:
        admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed_channel_hook` made: an admin, their public channel, a hook on it."""

    admin: User
    channel: Channel
    hook: OutgoingHook


async def seed_channel_hook(
    rt: Runtime,
    name: str,
    callback_url: str,
    *,
    content_type: str = "",
    service_settings: dict[str, Any] | None = None,
) -> Seeded:
    """Through the services: an admin ``name``, a team and a public channel, loopback allowed
    (plus ``service_settings``), and a hook that fires on every post of the channel."""
    admin = await user_service.create_user(
        rt,
        None,
        user_service.NewUser(name, f"{name}@example.test", PASSWORD),
        trusted=True,
    )
    team = await team_service.create_team(rt, admin, name, name.title())
    channel = await team_service.create_channel(rt, admin, team.id, "builds", "Builds")
    settings = {"AllowedUntrustedInternalConnections": "127.0.0.1", **(service_settings or {})}
    await settings_service.patch_config(rt, None, {"ServiceSettings": settings})
    hook = await hook_service.create_hook(
        rt,
        admin,
        HookInput(
            team_id=team.id,
            channel_id=channel.id,
            callback_urls=(callback_url,),
            content_type=content_type,
        ),
    )
    return Seeded(admin, channel, hook)


@dataclass
class TidingsProcess:
    """A ``tidings`` subprocess started by :func:`running_tidings`: its ``Popen`` (a test may
    SIGKILL it) and the address it listens on (``serve`` only; a ``worker`` listens nowhere)."""

    popen: "subprocess.Popen[bytes]"
    listen: str
    log: Path
    stop_signal: signal.Signals

    @property
    def url(self) -> str:
        """Where a ``serve`` process answers (its ``TIDINGS_LISTEN``)."""
        return f"http://{self.listen}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.listen}/api/v4/websocket"

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def wait_serving(self, timeout: float = 60.0) -> "TidingsProcess":
        """Block until a ``serve`` process answers ``/api/v4/system/ping`` (it migrates and
        binds first); fail with its log if it exits or takes longer than ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"tidings exited {self.popen.returncode}:\n{self.log_text()[-3000:]}"
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "/api/v4/system/ping", timeout=2).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                raise AssertionError(f"tidings did not answer on {self.url} in {timeout} s")
            time.sleep(0.05)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown work at all, as when the machine loses power under it."""
        self.popen.kill()
        self.popen.wait(10)

    def stop(self) -> None:
        """End it with its stop signal and wait; a process already ended is left alone."""
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(self.stop_signal)
        try:
            self.popen.wait(20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)


@contextlib.contextmanager
def running_tidings(
    command: str, url: str, log: Path, stop: signal.Signals = signal.SIGTERM, **settings: str
) -> Iterator[TidingsProcess]:
    """``tidings <command>`` (``worker`` or ``serve``) as its own process on the test's database,
    output in ``log``, ended with ``stop`` when the block ends (or earlier, by ``stop()``).
    ``settings`` become ``TIDINGS_<NAME>`` variables (``worker_lease_seconds="2"``); without a
    ``listen`` it gets a free port. A ``serve`` may not answer yet: ``wait_serving()``."""
    listen = settings.pop("listen", "") or f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "TIDINGS_DATABASE_URL": url,
        "TIDINGS_DATA_DIR": str(log.parent),
        "TIDINGS_LISTEN": listen,
        "TIDINGS_WORKER_POLL_INTERVAL_SECONDS": "0.05",
        **{f"TIDINGS_{name.upper()}": value for name, value in settings.items()},
    }
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tidings", command], env=env, stdout=sink, stderr=sink
        )
    running = TidingsProcess(process, env["TIDINGS_LISTEN"], log, stop)
    try:
        yield running
    finally:
        running.stop()


class GatedReads:
    """Wraps ``Database.read`` (install with ``db.read = gated.read``): counts the reads and
    holds each until ``gate`` opens, so a test can see who waits for a read in flight."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.reads = 0
        self.gate = asyncio.Event()
        self.real_read = db.read

    async def read(self, work: Callable[[Connection], Any]) -> Any:
        self.reads += 1
        await self.gate.wait()
        return await self.real_read(work)
