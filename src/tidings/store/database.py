"""Engine creation and transactions, tuned per backend.

SQLite: WAL, foreign keys on, ``synchronous=NORMAL``, and ``BEGIN IMMEDIATE`` so a transaction
that will write takes the write lock up front (two deferred transactions that both upgrade would
fail with SQLITE_BUSY instead of waiting). In one process every query goes through a single
connection: waiting for it is an await, whereas SQLite's own busy handler sleeps in steps of up to
100 ms and ruins latency. PostgreSQL: asyncpg with a small pool.

The webhook worker's two hot statements groups (claim a batch, record a batch) are too small and
too frequent for SQLAlchemy's per-statement cost and aiosqlite's thread round trip per statement.
On SQLite, :meth:`Database.sqlite_batch` runs a plain function against the underlying
``sqlite3`` connection as one transaction in one round trip to a helper thread, while the pooled
connection is checked out so nothing else can use it at the same time.
"""

import asyncio
import contextlib
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def normalise_url(url: str) -> str:
    """Pick the async driver when the URL names only the database (``sqlite:``, ``postgresql:``)."""
    parsed = make_url(url)
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite" and driver != "aiosqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres") and driver != "asyncpg":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


T = TypeVar("T")


class _Latest:
    """The most recently opened ``sqlite3`` connection of one engine (its pool holds only one)."""

    def __init__(self) -> None:
        self.ref: weakref.ref[sqlite3.Connection] | None = None

    def get(self) -> sqlite3.Connection | None:
        return self.ref() if self.ref is not None else None


def _recording_factory(latest: _Latest) -> type[sqlite3.Connection]:
    """A ``sqlite3.Connection`` subclass that remembers its newest instance in ``latest``.

    aiosqlite passes ``factory`` on to :func:`sqlite3.connect`, so this is how the raw connection
    under SQLAlchemy's adapter is found through public interfaces only.
    """

    class RecordingConnection(sqlite3.Connection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            latest.ref = weakref.ref(self)

    return RecordingConnection


def create_engine(url: str, latest: _Latest | None = None) -> AsyncEngine:
    """An engine for ``url`` with the backend's pragmas and pool."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        connect_args: dict[str, Any] = {"timeout": 30}
        if latest is not None:
            # The batch functions run on another thread than aiosqlite's, one at a time, while
            # the pool's single connection is checked out: sharing it across threads is safe.
            connect_args |= {"factory": _recording_factory(latest), "check_same_thread": False}
        engine = create_async_engine(
            url,
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
            # Every transaction ends in an explicit commit or rollback, so the pool's own
            # rollback on return would be one more thread round trip for nothing.
            pool_reset_on_return=None,
            connect_args=connect_args,
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions are deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA busy_timeout=30000",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The engine plus the two ways services open a transaction."""

    def __init__(self, engine: AsyncEngine, latest: _Latest | None = None) -> None:
        self.engine = engine
        self._latest = latest
        self._executor: ThreadPoolExecutor | None = None

    @classmethod
    def from_url(cls, url: str) -> "Database":
        latest = _Latest()
        return cls(create_engine(url, latest), latest)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.engine)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One unit of work: commits on success, rolls back on any exception."""
        async with self.engine.begin() as conn:
            yield conn

    @property
    def has_sqlite_batches(self) -> bool:
        """True when :meth:`sqlite_batch` is available (SQLite, engine made by ``from_url``)."""
        return self.is_sqlite and self._latest is not None

    async def sqlite_batch(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the raw SQLite connection as one ``BEGIN IMMEDIATE`` transaction.

        One thread round trip for the whole unit, and none of SQLAlchemy's per-statement work:
        for the worker's batched claims and results. ``work`` commits with the transaction, or
        rolls it back by raising.
        """
        if self._latest is None:
            raise RuntimeError("sqlite_batch needs an engine made by Database.from_url")
        # Entering the context checks the pool's one connection out (opening it if there was
        # none, which updates ``_latest``), so no other task can use it until we are done.
        async with self.engine.connect():
            raw = self._latest.get()
            if raw is None:
                raise RuntimeError("the SQLite connection is gone")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="tidings-sqlite")
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._executor, _in_transaction, raw, work)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                # The connection goes back to the pool only once the thread is done with it.
                while not future.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait({future})
                raise

    async def notify(self, channel: str, payloads: Sequence[str]) -> None:
        """PostgreSQL: ``NOTIFY channel`` once per payload, in one transaction."""
        if self.is_sqlite:
            raise RuntimeError("NOTIFY needs PostgreSQL")
        async with self.transaction() as conn:
            for payload in payloads:
                await conn.execute(select(func.pg_notify(channel, payload)))

    async def listen(self, channel: str, on_message: Callable[[str], None]) -> "Subscription":
        """PostgreSQL: call ``on_message(payload)`` for every ``NOTIFY`` on ``channel``.

        A connection of its own, outside the pool: a listening connection is held for good.
        """
        if self.is_sqlite:
            raise RuntimeError("LISTEN needs PostgreSQL")
        dsn = make_url(self.engine.url).set(drivername="postgresql")
        connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        await connection.add_listener(channel, lambda *args: on_message(str(args[-1])))
        return Subscription(connection)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


class Subscription:
    """A listening connection made by :meth:`Database.listen`."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    @property
    def closed(self) -> bool:
        return bool(self._connection.is_closed())

    async def close(self) -> None:
        if not self._connection.is_closed():
            await self._connection.close()


def _in_transaction(raw: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    raw.execute("BEGIN IMMEDIATE")
    try:
        result = work(raw)
    except BaseException:
        raw.execute("ROLLBACK")
        raise
    raw.execute("COMMIT")
    return result
