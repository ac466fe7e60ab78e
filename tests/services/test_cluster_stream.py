"""Two servers on one PostgreSQL database behave as one: events and session changes made through
either reach the other's websockets and session cache (``tidings.services.cluster``).

The servers here are two runtimes in this process, each with its own event hub, session cache
and cluster origin, sharing only the database, exactly as two processes do. Real processes are
tested in ``tests/cluster``.
"""

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from support import Api, Factory, ServerThread, first_admin, fresh_database, start_server
from tidings.clock import FakeClock
from tidings.events import CLOSE_FELL_BEHIND, EventHub
from tidings.services.cluster import STALE_SECONDS, Cluster
from tidings.services.session_cache import SessionCache
from tidings.store.cluster_events import APPEND_LOCK_KEY
from tidings.store.database import Connection, Database, create_engine

pytestmark = pytest.mark.db

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[ServerThread, ServerThread]]:
    if not os.environ.get("TIDINGS_TEST_DATABASE_URL"):
        pytest.skip("several server processes need PostgreSQL")
    with fresh_database() as url:
        a = start_server(url, run_worker=False)
        b = start_server(url, run_worker=False)
        try:
            yield a, b
        finally:
            a.stop()
            b.stop()


@pytest.fixture(scope="module")
def admins(pair: tuple[ServerThread, ServerThread]) -> tuple[Api, Api]:
    a, b = pair
    on_a = first_admin(a)
    return on_a, Api(b.url, on_a.token, on_a.user)


@contextlib.contextmanager
def _socket(server: ServerThread, token: str) -> Iterator[ClientConnection]:
    with connect(
        f"ws://{server.settings.listen}/api/v4/websocket",
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=TIMEOUT,
    ) as ws:
        assert json.loads(ws.recv(timeout=TIMEOUT))["event"] == "hello"
        yield ws


def _signed_in_on(server: ServerThread, admin: Api) -> tuple[Api, Api]:
    """A new user, and their session talking to ``server``, which has it cached by now."""
    user = Factory(admin).user()
    there = Api(server.url, user.token, user.user)
    there.get("/users/me")
    return user, there


def _close_code(ws: ClientConnection) -> int | None:
    """Read until the server closes the socket; the code it closed with."""
    try:
        while True:
            ws.recv(timeout=TIMEOUT)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


def _events(ws: ClientConnection, name: str, seconds: float) -> list[dict[str, Any]]:
    """Every ``name`` event arriving within ``seconds`` (all that came, not the first)."""
    found = []
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            message = json.loads(ws.recv(timeout=left))
            if message.get("event") == name:
                found.append(message)
    except TimeoutError:
        pass
    return found


def test_a_post_on_one_server_reaches_sockets_on_both_once_in_order(
    pair: tuple[ServerThread, ServerThread], admins: tuple[Api, Api]
) -> None:
    """Posts made through A and B in turn arrive once each, in the order made, on sockets of
    A and of B."""
    a, b = pair
    on_a, on_b = admins
    factory = Factory(on_a)
    channel = factory.channel(factory.team())
    with _socket(a, on_a.token) as ws_a, _socket(b, on_b.token) as ws_b:
        # One client alternating between the servers, as behind a round-robin proxy.
        made = [
            (on_a, on_b)[i % 2].post("/posts", {"channel_id": channel["id"], "message": f"n{i}"})[
                "id"
            ]
            for i in range(8)
        ]
        seen_a = [json.loads(e["data"]["post"])["id"] for e in _events(ws_a, "posted", 3.0)]
        seen_b = [json.loads(e["data"]["post"])["id"] for e in _events(ws_b, "posted", 1.0)]
    assert seen_a == made
    assert seen_b == made


def test_an_edit_and_a_deletion_reach_the_other_server(
    pair: tuple[ServerThread, ServerThread], admins: tuple[Api, Api]
) -> None:
    """post_edited and post_deleted made through B reach a socket on A."""
    a, _b = pair
    on_a, on_b = admins
    factory = Factory(on_a)
    channel = factory.channel(factory.team())
    post = on_a.post("/posts", {"channel_id": channel["id"], "message": "draft"})
    with _socket(a, on_a.token) as ws_a:
        on_b.put(f"/posts/{post['id']}/patch", {"message": "final"})
        edited = _events(ws_a, "post_edited", 3.0)
        on_b.delete(f"/posts/{post['id']}")
        deleted = _events(ws_a, "post_deleted", 3.0)
    assert [json.loads(e["data"]["post"])["message"] for e in edited] == ["final"]
    assert [json.loads(e["data"]["post"])["id"] for e in deleted] == [post["id"]]


def test_logout_on_one_server_ends_the_session_on_the_other_at_once(
    pair: tuple[ServerThread, ServerThread], admins: tuple[Api, Api]
) -> None:
    """B had the session cached and a socket open with it; A's logout ends both within 1 s."""
    a, b = pair
    user, on_b = _signed_in_on(b, admins[0])
    with _socket(b, user.token) as ws_b:
        Api(a.url, user.token).post("/users/logout")
        ended = time.monotonic()
        code = _close_code(ws_b)
        cut_after = time.monotonic() - ended
    assert code == 1008
    assert cut_after < 1.0
    assert on_b.request("GET", "/users/me").status_code == 401


def test_deactivation_on_one_server_cuts_the_user_off_on_the_other(
    pair: tuple[ServerThread, ServerThread], admins: tuple[Api, Api]
) -> None:
    """An admin deactivates a user through A: B refuses the cached token and closes the socket."""
    _a, b = pair
    user, on_b = _signed_in_on(b, admins[0])
    with _socket(b, user.token) as ws_b:
        admins[0].put(f"/users/{user.user['id']}/active", {"active": False})
        code = _close_code(ws_b)
    assert code == 1008
    assert on_b.request("GET", "/users/me").status_code == 401


def test_a_role_change_on_one_server_is_seen_by_the_other_at_once(
    pair: tuple[ServerThread, ServerThread], admins: tuple[Api, Api]
) -> None:
    """B cached a plain user's session; after A makes them an admin, B's next reads agree."""
    _a, b = pair
    on_a, _ = admins
    user = Factory(on_a).user()
    on_b = Api(b.url, user.token, user.user)
    assert on_b.request("GET", "/config").status_code == 403
    on_a.put(f"/users/{user.user['id']}/roles", {"roles": "system_admin system_user"})
    deadline = time.monotonic() + 1.0
    while on_b.request("GET", "/config").status_code != 200:
        assert time.monotonic() < deadline, "B still saw the old roles after 1 s"
        time.sleep(0.02)


def test_a_response_waits_for_its_own_notices_and_only_for_them(
    pair: tuple[ServerThread, ServerThread], admins: tuple[Api, Api]
) -> None:
    """With the log's appends held up (its lock taken here), a post's response waits for its
    event to reach the log, and answers once it has; a request that published nothing (a
    health check) answers at once meanwhile."""
    a, _b = pair
    on_a, _ = admins
    factory = Factory(on_a)
    channel = factory.channel(factory.team())
    engine = create_engine(a.settings.effective_database_url)
    try:
        with engine.connect() as holder, ThreadPoolExecutor(1) as pool:
            holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})
            posting = pool.submit(
                on_a.post, "/posts", {"channel_id": channel["id"], "message": "m"}
            )
            time.sleep(0.5)
            started = time.monotonic()
            assert on_a.request("GET", "/system/ping").status_code == 200
            ping_took = time.monotonic() - started
            waited = not posting.done()
            holder.rollback()  # releases the lock: the append goes through
            released = time.monotonic()
            posting.result(timeout=TIMEOUT)
            answered_after = time.monotonic() - released
    finally:
        engine.dispose()
    assert waited
    assert ping_took < 0.5
    assert answered_after < 1.0


def test_a_dropped_listening_connection_loses_no_event(
    pair: tuple[ServerThread, ServerThread], admins: tuple[Api, Api]
) -> None:
    """With every LISTEN connection killed by the database, posts made meanwhile still arrive
    on the other server, once each, and live delivery resumes."""
    a, b = pair
    on_a, on_b = admins
    factory = Factory(on_a)
    channel = factory.channel(factory.team())
    with _socket(b, on_b.token) as ws_b:
        killed = a.run(_kill_listeners(a))
        assert killed >= 2  # one per server
        made = [
            on_a.post("/posts", {"channel_id": channel["id"], "message": f"gap {i}"})["id"]
            for i in range(3)
        ]
        seen = [json.loads(e["data"]["post"])["id"] for e in _events(ws_b, "posted", 3.0)]
    assert seen == made


async def _kill_listeners(server: ServerThread) -> int:
    def work(conn: Connection) -> int:
        query = (
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'tidings-listen' AND datname = current_database()"
        )
        return int(conn.execute(text(query)).scalar_one())

    return int(await server.runtime.db.write(work))


async def test_a_reader_that_lost_touch_for_too_long_has_clients_refetch() -> None:
    """After STALE_SECONDS without a successful read the log may have been swept past what the
    process saw: it closes every websocket with 1013 (reconnect and refetch) and forgets every
    cached session, instead of going on as if nothing was missed."""
    if not os.environ.get("TIDINGS_TEST_DATABASE_URL"):
        pytest.skip("the cluster event log runs on PostgreSQL")
    with fresh_database() as url:
        clock = FakeClock()
        events = EventHub()
        sessions = SessionCache()
        db = Database.from_url(url)
        cluster = Cluster(db, events, sessions, clock)
        await cluster.start()
        try:
            listener = events.subscribe("u" * 26, "t" * 64)
            generation = sessions.generation
            await asyncio.sleep(0.3)  # the reader has read once and now waits
            clock.advance(STALE_SECONDS + 1)
            await wait_for_async(lambda: listener.dropped)
            assert listener.close_code == CLOSE_FELL_BEHIND
            assert sessions.generation > generation
        finally:
            await cluster.stop()
            await db.dispose()


async def wait_for_async(predicate: Callable[[], bool], within: float = TIMEOUT) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
