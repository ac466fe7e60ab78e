"""Driver stacks for one post-shaped unit of work, measured side by side (docs/dependencies.md).

    .venv/bin/python bench/db_units.py [--database postgresql://postgres@127.0.0.1:5432/postgres]
        [--concurrency 16] [--duration 4] [--runs 3]

The unit is what creating a post costs the database: read a session by token hash, read the
channel with the poster's membership, insert the post, bump the channel's and the member's
counters, commit. ``--concurrency`` tasks run units back to back on one event loop. Stacks:

- ``async-per-statement``: SQLAlchemy's asyncio extension, each statement awaited (aiosqlite or
  asyncpg) — how Tidings ran before issue #11.
- ``sync-unit``: SQLAlchemy Core on a synchronous driver (pysqlite or psycopg 3), the whole unit
  one function handed to a database thread — how Tidings runs now.
- ``async-run-sync`` (PostgreSQL only): the same synchronous unit through SQLAlchemy's
  ``run_sync`` on asyncpg (greenlets instead of a thread; each statement still a driver await).
- ``asyncpg-raw`` (PostgreSQL only): asyncpg without SQLAlchemy, each statement awaited: the
  fastest the async driver can be.

Prints units/s per stack and each stack's ratio to ``sync-unit`` in the same round.
"""

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

metadata = MetaData()
sessions = Table(
    "bench_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(26)),
    Column("expires_at", BigInteger),
)
channels = Table(
    "bench_channels",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("last_post_at", BigInteger),
    Column("total_msg_count", BigInteger),
)
members = Table(
    "bench_members",
    metadata,
    Column("channel_id", String(26), primary_key=True),
    Column("user_id", String(26), primary_key=True),
    Column("msg_count", BigInteger),
)
posts = Table(
    "bench_posts",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("channel_id", String(26)),
    Column("user_id", String(26)),
    Column("create_at", BigInteger),
    Column("message", Text),
)

TOKEN, USER, CHANNEL = "t" * 64, "u" * 26, "c" * 26
FIND_SESSION = select(sessions.c.user_id).where(
    sessions.c.token_hash == bindparam("token"), sessions.c.expires_at > bindparam("now")
)
FIND_MEMBER = (
    select(channels.c.id, members.c.user_id)
    .select_from(channels.outerjoin(members, members.c.channel_id == channels.c.id))
    .where(channels.c.id == bindparam("channel"), members.c.user_id == bindparam("user"))
)
INSERT_POST = posts.insert()
TOUCH_CHANNEL = (
    update(channels)
    .where(channels.c.id == bindparam("channel"))
    .values(last_post_at=bindparam("now"), total_msg_count=channels.c.total_msg_count + 1)
)
TOUCH_MEMBER = (
    update(members)
    .where(members.c.channel_id == bindparam("channel"), members.c.user_id == bindparam("user"))
    .values(msg_count=members.c.msg_count + 1)
)


def params() -> tuple[int, dict[str, Any]]:
    now = int(time.time() * 1000)
    post = {"id": secrets.token_hex(13), "channel_id": CHANNEL, "user_id": USER}
    return now, post | {"create_at": now, "message": "hello"}


def unit(conn: Connection) -> None:
    now, post = params()
    conn.execute(FIND_SESSION, {"token": TOKEN, "now": now}).one()
    conn.execute(FIND_MEMBER, {"channel": CHANNEL, "user": USER}).one()
    conn.execute(INSERT_POST, post)
    conn.execute(TOUCH_CHANNEL, {"channel": CHANNEL, "now": now})
    conn.execute(TOUCH_MEMBER, {"channel": CHANNEL, "user": USER})


def sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi: Any, _record: Any) -> None:
        dbapi.isolation_level = None
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
            dbapi.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def seed(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        metadata.create_all(conn)
        conn.execute(sessions.insert(), {"token_hash": TOKEN, "user_id": USER, "expires_at": 2**62})
        conn.execute(channels.insert(), {"id": CHANNEL, "last_post_at": 0, "total_msg_count": 0})
        conn.execute(members.insert(), {"channel_id": CHANNEL, "user_id": USER, "msg_count": 0})
    engine.dispose()


async def drive(one: Callable[[], Awaitable[None]], args: argparse.Namespace) -> float:
    stop_at = time.monotonic() + args.duration
    done = 0

    async def task() -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            await one()
            done += 1

    await asyncio.gather(*(task() for _ in range(args.concurrency)))
    return done / args.duration


async def sync_unit(url: str, args: argparse.Namespace) -> float:
    sqlite = url.startswith("sqlite")
    threads = 1 if sqlite else 8
    engine = create_engine(url, pool_size=threads, max_overflow=0)
    if sqlite:
        sqlite_pragmas(engine)
    local = threading.local()

    def run() -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = engine.connect()
        with conn.begin():
            unit(conn)

    executor = ThreadPoolExecutor(threads)
    loop = asyncio.get_running_loop()
    try:
        return await drive(lambda: loop.run_in_executor(executor, run), args)
    finally:
        executor.shutdown()
        engine.dispose()


async def async_per_statement(url: str, args: argparse.Namespace) -> float:
    sqlite = url.startswith("sqlite")
    async_url = url.replace("sqlite://", "sqlite+aiosqlite://").replace(
        "postgresql://", "postgresql+asyncpg://"
    )
    engine = create_async_engine(async_url, **({"pool_size": 1} if sqlite else {"pool_size": 8}))
    if sqlite:
        sqlite_pragmas(engine.sync_engine)

    async def one() -> None:
        now, post = params()
        async with engine.begin() as conn:
            (await conn.execute(FIND_SESSION, {"token": TOKEN, "now": now})).one()
            (await conn.execute(FIND_MEMBER, {"channel": CHANNEL, "user": USER})).one()
            await conn.execute(INSERT_POST, post)
            await conn.execute(TOUCH_CHANNEL, {"channel": CHANNEL, "now": now})
            await conn.execute(TOUCH_MEMBER, {"channel": CHANNEL, "user": USER})

    try:
        return await drive(one, args)
    finally:
        await engine.dispose()


async def async_run_sync(url: str, args: argparse.Namespace) -> float:
    """The same synchronous ``unit`` run on the asyncio engine by ``run_sync`` (greenlets, no
    thread): the statements still go through the async driver one by one."""
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"), pool_size=8)

    async def one() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(unit)

    try:
        return await drive(one, args)
    finally:
        await engine.dispose()


async def asyncpg_raw(url: str, args: argparse.Namespace) -> float:
    import asyncpg

    pool = await asyncpg.create_pool(url, min_size=8, max_size=8)

    async def one() -> None:
        now, post = params()
        async with pool.acquire() as conn, conn.transaction():
            await conn.fetchrow(
                "SELECT user_id FROM bench_sessions WHERE token_hash = $1 AND expires_at > $2",
                TOKEN,
                now,
            )
            await conn.fetchrow(
                "SELECT c.id, m.user_id FROM bench_channels c LEFT JOIN bench_members m "
                "ON m.channel_id = c.id WHERE c.id = $1 AND m.user_id = $2",
                CHANNEL,
                USER,
            )
            await conn.execute(
                "INSERT INTO bench_posts VALUES ($1, $2, $3, $4, $5)",
                post["id"],
                CHANNEL,
                USER,
                now,
                "hello",
            )
            await conn.execute(
                "UPDATE bench_channels SET last_post_at = $1, "
                "total_msg_count = total_msg_count + 1 WHERE id = $2",
                now,
                CHANNEL,
            )
            await conn.execute(
                "UPDATE bench_members SET msg_count = msg_count + 1 "
                "WHERE channel_id = $1 AND user_id = $2",
                CHANNEL,
                USER,
            )

    try:
        return await drive(one, args)
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="a PostgreSQL URL; SQLite in a temporary file if absent")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database or f"sqlite:///{os.path.join(folder, 'units.db')}"
        stacks: dict[str, Callable[[str, argparse.Namespace], Awaitable[float]]] = {
            "sync-unit": sync_unit,
            "async-per-statement": async_per_statement,
        }
        if not url.startswith("sqlite"):
            stacks["async-run-sync"] = async_run_sync
            stacks["asyncpg-raw"] = asyncpg_raw
        ratios: dict[str, list[float]] = {name: [] for name in stacks}
        for number in range(args.runs):
            rates = {}
            for name, stack in stacks.items():
                seed(url)
                rates[name] = asyncio.run(stack(url, args))
                print(
                    json.dumps(
                        {
                            "round": number + 1,
                            "stack": name,
                            "units_per_second": round(rates[name], 1),
                        }
                    )
                )
            for name in stacks:
                ratios[name].append(rates[name] / rates["sync-unit"])
        summary = {
            name: {
                "min": round(min(v), 3),
                "median": round(sorted(v)[len(v) // 2], 3),
                "max": round(max(v), 3),
            }
            for name, v in ratios.items()
        }
        print(json.dumps({"ratio_to_sync_unit": summary}))


if __name__ == "__main__":
    main()
