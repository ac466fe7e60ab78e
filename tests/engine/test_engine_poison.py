"""A poison value in one reply fails (or is cleaned in) its own delivery, never the batch.

On PostgreSQL a NUL byte or an over-long string cannot be stored; before the fix one such reply
made the whole write-back fail, over and over, and the healthy hooks beside it never got their
replies posted.
"""

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError

from hooks.hooks_support import attempt_rows, delivery_rows, make_hook, send, webhook_posts
from support import (
    Api,
    Factory,
    Receiver,
    ServerThread,
    fresh_database,
    seed_channel_hook,
    wait_until,
)
from tidings.config import Settings
from tidings.domain.deliveries import Attempt, Delivery, DeliveryStatus
from tidings.domain.outbox import Finish
from tidings.domain.posts import Post
from tidings.ids import new_id
from tidings.services import posts as post_service
from tidings.services.runtime import Runtime
from tidings.store import outbox
from tidings.store.database import Database, create_engine
from tidings.store.schema import deliveries, delivery_attempts, posts
from tidings.webhooks.worker import STOP_GRACE_SECONDS, Worker

pytestmark = pytest.mark.db


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {name: Receiver() for name in ("healthy", "nul", "long_type", "nul_body")}
    made["healthy"].reply = {"text": "all good"}
    made["nul"].reply = {
        "text": "a\u0000b",
        "props": {"k\u0000ey": ["v\u0000alue"]},
        "attachments": [{"text": "at\u0000tached", "title": "t\u0000"}],
        "username": "ro\u0000bot",
    }
    made["long_type"].reply = {"text": "typed", "type": "custom_" + "x" * 200}
    made["nul_body"].reply = b"\x00\x00 not json \x00"
    made["nul_body"].headers = {"X-Odd": "yes"}
    yield made
    for r in made.values():
        r.close()


def _hook_scene(
    admin: Api, factory: Factory, receivers: dict[str, Receiver]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    team = factory.team()
    channel = factory.channel(team)
    hooks = {
        name: make_hook(admin, team, [r.url], channel_id=channel["id"], display_name=name)
        for name, r in receivers.items()
    }
    return channel, hooks


def _finished(server: ServerThread, post_id: str, count: int) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        rows = delivery_rows(server, post_id=post_id)
        done = [r for r in rows if r["status"] in ("succeeded", "failed")]
        return rows if len(done) >= count else None

    result: list[dict[str, Any]] = wait_until(check, timeout=15, interval=0.05)
    return result


def test_poison_replies_do_not_wedge_the_batch(
    webhooks_on: Api, factory: Factory, server: ServerThread, receivers: dict[str, Receiver]
) -> None:
    """NUL bytes are stripped, an over-long type is refused, and the healthy reply is posted."""
    admin = webhooks_on
    channel, hooks = _hook_scene(admin, factory, receivers)
    post = send(admin, channel, "ring ring")
    rows = _finished(server, post["id"], count=len(hooks))
    by_hook = {r["hook_id"]: r for r in rows}
    assert all(r["status"] == "succeeded" for r in rows), rows
    posts = wait_until(lambda: (p := webhook_posts(admin, channel["id"])) and len(p) >= 2 and p)
    messages = sorted(p["message"] for p in posts)
    assert messages == ["ab", "all good"]
    cleaned = next(p for p in posts if p["message"] == "ab")
    assert cleaned["props"]["key"] == ["value"]
    assert cleaned["props"]["attachments"][0]["text"] == "attached"
    typed = by_hook[hooks["long_type"]["id"]]
    assert typed["last_error_kind"] == "bad_reply"
    assert "model.post.is_valid.type.app_error" in typed["last_error"]
    odd = attempt_rows(server, by_hook[hooks["nul_body"]["id"]]["id"])
    assert len(odd) == 1
    assert "\x00" not in odd[0]["response_excerpt"]
    assert "not json" in odd[0]["response_excerpt"]
    # Each receiver was asked once: nothing was re-sent because a write-back failed.
    assert [len(r.requests) for r in receivers.values()] == [1, 1, 1, 1]


def test_the_next_batch_after_a_poison_reply_still_flows(
    webhooks_on: Api, factory: Factory, server: ServerThread, receivers: dict[str, Receiver]
) -> None:
    """After a poison reply, later posts keep getting their replies (no stuck flusher)."""
    admin = webhooks_on
    channel, hooks = _hook_scene(admin, factory, receivers)
    for i in range(3):
        post = send(admin, channel, f"round {i}")
        _finished(server, post["id"], count=len(hooks))
    healthy = [p for p in webhook_posts(admin, channel["id"]) if p["message"] == "all good"]
    assert len(healthy) == 3


def _reply_result(
    delivery: Delivery,
    user_id: str,
    channel_id: str,
    now: int,
    post_id: str = "",
    message: str = "reply",
) -> Finish:
    """A successful attempt for ``delivery`` whose reply posts ``message`` as ``post_id``."""
    reply = Post(
        id=post_id or new_id(),
        create_at=now,
        update_at=now,
        edit_at=0,
        delete_at=0,
        user_id=user_id,
        channel_id=channel_id,
        root_id="",
        message=message,
        props={"from_webhook": "true"},
    )
    attempt = Attempt(
        id=new_id(),
        delivery_id=delivery.id,
        number=1,
        started_at=now,
        duration_ms=3,
        status_code=200,
        error_kind="",
        error_message="",
        request_headers={},
        response_headers={"X-A": "b"},
        response_excerpt='{"text":"reply"}',
    )
    return Finish(
        delivery=delivery, status=DeliveryStatus.SUCCEEDED, attempt=attempt, reply_posts=(reply,)
    )


def _all(query: Any) -> Any:
    """A unit of work reading every row ``query`` returns."""

    def work(conn: Connection) -> list[Any]:
        return list(conn.execute(query).all())

    return work


def test_a_batch_that_cannot_be_written_fails_only_its_bad_row() -> None:
    """If a row still fails the write, the batch is split: that row is recorded failed, the rest commit."""

    async def work(url: str) -> None:
        rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
        try:
            seeded = await seed_channel_hook(rt, "boss", "http://127.0.0.1:9/hook")
            triggers = [
                await post_service.create_post(rt, seeded.admin, seeded.channel.id, f"go {i}")
                for i in range(5)
            ]
            now = rt.clock.now_ms()
            claimed = await rt.db.write(
                partial(outbox.claim, limit=10, lease_ms=60_000, now_ms=now)
            )
            assert len(claimed) == 5
            results = []
            for i, delivery in enumerate(sorted(claimed, key=lambda d: d.post_id)):
                # Row 3's reply reuses an existing post's id: no sanitising can save that write.
                post_id = triggers[0].id if i == 3 else new_id()
                results.append(
                    _reply_result(
                        delivery, seeded.admin.id, seeded.channel.id, now, post_id, f"reply {i}"
                    )
                )
            inserted, written = await rt.db.write(
                partial(outbox.finish_isolating, results=results, now_ms=now)
            )
            assert [len(posts) for posts in inserted] == [1, 1, 1, 0, 1]
            assert written[3].status == DeliveryStatus.FAILED
            rows = {r.id: r for r in await rt.db.read(_all(select(deliveries)))}
            attempts = {r.delivery_id: r for r in await rt.db.read(_all(select(delivery_attempts)))}
            replies = [
                r.message
                for r in await rt.db.read(
                    _all(select(posts.c.message).where(posts.c.message.like("reply%")))
                )
            ]
            bad = results[3].delivery.id
            assert rows[bad].status == "failed"
            assert rows[bad].last_error_kind == "unstorable"
            assert attempts[bad].error_kind == "unstorable"
            assert "could not be stored" in attempts[bad].error_message
            others = [r.delivery.id for i, r in enumerate(results) if i != 3]
            assert all(rows[d].status == "succeeded" and rows[d].reply_posted for d in others)
            assert all(attempts[d].response_headers == {"X-A": "b"} for d in others)
            assert sorted(replies) == ["reply 0", "reply 1", "reply 2", "reply 4"]
        finally:
            await rt.db.dispose()

    with fresh_database() as url:
        asyncio.run(work(url))


def test_stopping_finishes_while_results_cannot_be_stored(receiver: Receiver) -> None:
    """With every write-back failing (the attempts table is gone), stop() still returns."""

    async def work(url: str) -> None:
        rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
        try:
            seeded = await seed_channel_hook(rt, "boss", receiver.url)
            await post_service.create_post(rt, seeded.admin, seeded.channel.id, "go")
            await rt.db.write(lambda conn: conn.execute(text("DROP TABLE delivery_attempts")))
            worker = Worker(rt)
            await worker.start()
            await asyncio.to_thread(receiver.wait_for, 1)
            await asyncio.sleep(1.0)  # the flusher fails, backs off and tries again
            started = time.monotonic()
            await asyncio.wait_for(worker.stop(), 30)
            assert time.monotonic() - started < STOP_GRACE_SECONDS + 5
            [(status,)] = await rt.db.read(_all(select(deliveries.c.status)))
            assert status == "in_flight"  # not lost: retried once its lease expires
            assert len(receiver.requests) == 1  # and not re-sent in a loop meanwhile
        finally:
            await rt.db.dispose()

    with fresh_database() as url:
        asyncio.run(work(url))


@contextlib.contextmanager
def _lock_held_briefly(url: str, delivery_id: str, seconds: float) -> Iterator[None]:
    """Another connection holds what :func:`outbox.finish` must lock (SQLite's write lock, or on
    PostgreSQL the delivery row ``FOR UPDATE``) for ``seconds`` from entry, then lets go."""
    locked, release = threading.Event(), threading.Event()

    def hold_sqlite() -> None:
        holder = sqlite3.connect(make_url(url).database or "", isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            locked.set()
            release.wait(seconds)
            holder.execute("ROLLBACK")
        finally:
            holder.close()

    def hold_row() -> None:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(
                    select(deliveries.c.id).where(deliveries.c.id == delivery_id).with_for_update()
                )
                locked.set()
                release.wait(seconds)
        finally:
            engine.dispose()

    sqlite = url.startswith("sqlite")
    thread = threading.Thread(target=hold_sqlite if sqlite else hold_row)
    thread.start()
    try:
        assert locked.wait(10)
        yield
    finally:
        thread.join(seconds + 10)


def test_a_passing_lock_is_retried_not_recorded_unstorable() -> None:
    """A write that fails because the database is busy for a moment (a lock held elsewhere)
    marks nothing: the delivery stays in flight, and its result is stored, reply and all, when
    the flusher tries again."""

    async def work(url: str) -> None:
        sqlite = url.startswith("sqlite")
        if not sqlite:
            # New sessions of this test database give up on a lock after 200 ms.
            engine = create_engine(url)
            with engine.begin() as conn:
                name = make_url(url).database
                conn.execute(text(f"ALTER DATABASE \"{name}\" SET lock_timeout = '200ms'"))
            engine.dispose()
        # On SQLite, a write gives up on another connection's lock after 200 ms.
        rt = Runtime(settings=Settings(database_url=url), db=Database(url, lock_wait_ms=200))
        try:
            seeded = await seed_channel_hook(rt, "boss", "http://127.0.0.1:9/hook")
            await post_service.create_post(rt, seeded.admin, seeded.channel.id, "go")
            now = rt.clock.now_ms()
            [delivery] = await rt.db.write(
                partial(outbox.claim, limit=10, lease_ms=60_000, now_ms=now)
            )
            result = _reply_result(delivery, seeded.admin.id, seeded.channel.id, now)
            write_back = partial(outbox.finish_isolating, results=[result], now_ms=now)
            # The lock outlasts the first try's 200 ms wait but not a second one: a reduced
            # write right after would go through, and must not be made.
            with (
                _lock_held_briefly(url, delivery.id, 0.3),
                pytest.raises(DBAPIError) as raised,
            ):
                await rt.db.write(write_back)
            assert not outbox.is_data_error(raised.value)
            [row] = await rt.db.read(_all(select(deliveries)))
            attempts = await rt.db.read(_all(select(delivery_attempts)))
            assert (row.status, row.last_error_kind, attempts) == ("in_flight", "", [])
            # The flusher tries again later, and now the write goes through.
            inserted, written = await rt.db.write(write_back)
            assert [len(p) for p in inserted] == [1]
            assert written == [result]
            [row] = await rt.db.read(_all(select(deliveries)))
            [attempt] = await rt.db.read(_all(select(delivery_attempts)))
            replies = await rt.db.read(
                _all(select(posts.c.message).where(posts.c.message == "reply"))
            )
            assert (row.status, row.reply_posted, attempt.error_kind) == ("succeeded", True, "")
            assert [r.message for r in replies] == ["reply"]
        finally:
            await rt.db.dispose()

    with fresh_database() as url:
        asyncio.run(work(url))


def test_only_errors_about_the_values_count_as_poison() -> None:
    """sqlite3's own errors, bare and as SQLAlchemy wraps them: a constraint or an unencodable
    value is poison; a locked or closed database is not."""
    conn = sqlite3.connect(":memory:", isolation_level=None, timeout=0)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)")
    conn.execute("INSERT INTO t VALUES (1, 'a')")
    with pytest.raises(sqlite3.IntegrityError) as duplicate:
        conn.execute("INSERT INTO t VALUES (1, 'b')")
    with pytest.raises(UnicodeEncodeError) as surrogate:
        conn.execute("INSERT INTO t VALUES (2, ?)", ("\ud800",))
    conn.close()
    with pytest.raises(sqlite3.ProgrammingError) as closed:
        conn.execute("SELECT 1")
    locked = sqlite3.OperationalError("database is locked")
    assert outbox.is_data_error(duplicate.value)
    assert outbox.is_data_error(surrogate.value)
    assert not outbox.is_data_error(closed.value)
    assert not outbox.is_data_error(locked)
    assert outbox.is_data_error(_wrapped(duplicate.value, sqlite3.Error))
    assert not outbox.is_data_error(_wrapped(closed.value, sqlite3.Error))
    assert not outbox.is_data_error(_wrapped(locked, sqlite3.Error))


def test_postgres_errors_are_told_apart_by_sqlstate_or_class() -> None:
    """psycopg's errors: the server's SQLSTATE decides (22 data, 23 integrity); an error raised
    in the client with no SQLSTATE (a NUL in text) goes by its DB-API class."""
    duplicate = psycopg.errors.UniqueViolation("duplicate key")
    too_long = psycopg.errors.StringDataRightTruncation("value too long")
    nul = psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    lock = psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")
    deadlock = psycopg.errors.DeadlockDetected("deadlock detected")
    missing = psycopg.errors.UndefinedTable("relation does not exist")
    lost = psycopg.OperationalError("server closed the connection unexpectedly")
    for poison in (duplicate, too_long, nul):
        assert outbox.is_data_error(_wrapped(poison, psycopg.Error)), poison
        assert outbox.is_data_error(poison), poison
    for trouble in (lock, deadlock, missing, lost):
        assert not outbox.is_data_error(_wrapped(trouble, psycopg.Error)), trouble
        assert not outbox.is_data_error(trouble), trouble


def _wrapped(error: Exception, driver_error: type[Exception]) -> DBAPIError:
    """``error`` as SQLAlchemy raises it from a statement (the wrapper named after its class)."""
    wrapped = DBAPIError.instance("INSERT …", {}, error, driver_error)
    assert isinstance(wrapped, DBAPIError)
    wrapped.__cause__ = error
    return wrapped


def test_errors_caused_by_values_count_as_poison_wherever_they_sit() -> None:
    """A value error anywhere in the chain of causes is poison (a driver's encoding error may
    reach us wrapped, with no SQLSTATE), and so is a bug in building rows; a lost connection
    or a timeout is not."""
    with pytest.raises(UnicodeEncodeError) as encoding:
        "\ud800".encode()
    wrapped = InterfaceError("INSERT …", {}, RuntimeError("bind failed"))
    wrapped.__cause__ = encoding.value  # as ``raise … from`` sets it
    assert outbox.is_data_error(wrapped)
    assert outbox.is_data_error(TypeError("unsupported operand"))
    assert not outbox.is_data_error(ConnectionResetError("peer reset"))
    assert not outbox.is_data_error(TimeoutError())
    assert not outbox.is_data_error(
        InterfaceError("INSERT …", {}, RuntimeError("closed"), connection_invalidated=True)
    )
