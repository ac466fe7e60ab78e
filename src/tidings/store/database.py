"""Units of work: one plain function over a synchronous connection, one hand-off to run it.

A service does its transaction as ``await db.write(work)`` or ``await db.read(work)``, where
``work(conn)`` is an ordinary function that runs every statement of the transaction on a
SQLAlchemy Core :class:`~sqlalchemy.engine.Connection` and returns what the service needs. The
event loop hands the whole unit to a database thread once and is woken once when it is done,
instead of hopping to a driver thread and back for every statement (28 hops for one post, when
each statement was awaited on its own).

The same ``work`` serves both backends; where the SQL differs, the difference lives in the
``store`` module beside its twin (``conn.dialect.name``).

SQLite (the embedded default), in WAL mode with ``synchronous=NORMAL`` and foreign keys on:

- one connection writes (:class:`_Writer`); its transactions start with ``BEGIN IMMEDIATE`` so
  a transaction takes the write lock before it reads what it will change. A unit runs **inline**,
  on the caller's thread, when that connection is free and no other process holds the write
  lock; otherwise, and always for units marked ``background`` (housekeeping's deletes of
  thousands of rows, bulk loads), it runs on the **writer thread**, which waits for the lock.
  The worker's claims and write-backs (at most ``worker_batch_size`` rows, a few ms) run inline
  too: on the writer thread they fought the request path for the GIL, and under
  ``bench/load.py`` (200 posters, 20 hooks) moving them inline took 491 → 1,066 posts/s. Why inline: a unit
  of a handful of statements costs ~150 µs, and handing it to a thread cost more than that —
  every statement releases and re-takes the GIL, and each re-take waits for the busy event
  loop (measured in-process: 1.6–1.75× the posts/s inline, CPU per post 880 → 490 µs). Inline
  units never wait: they ask SQLite for the lock with no busy timeout and, refused, go to the
  thread. WAL checkpoints (the writes that fsync) come in two parts, so that writers never
  queue behind one: automatic checkpoints are off, and every ``CHECKPOINT_EVERY`` commits the
  writer thread copies the WAL into the database on a connection of its own, beside the
  writes that go on (a passive checkpoint takes no write lock); then what was appended
  meanwhile is copied on the writing connection, so the next write can start the WAL over. That
  second part is a few dozen pages and one fsync (median 7 ms under ``bench/load.py``). Where it
  runs depends on how busy the writer is: under a steady stream of writes (the last
  ``CHECKPOINT_EVERY`` commits came faster than ``BUSY_COMMITS_PER_SECOND``) the next unit
  does it inline, after its commit, because parking the writes of those milliseconds would
  cost each of them whole event-loop turns (the whole checkpoint on the writing connection,
  25 ms, was the load benchmark's p90); with writes few, the writer thread does it holding the
  connection, and the rare write that comes meanwhile waits those milliseconds rather than
  the event loop stopping for them (``bench/engine_isolation.py``'s delivery p99).
- ``readers`` **reader** threads, each with its own connection marked ``query_only``: WAL lets
  them read a committed snapshot beside the writer, never taking its lock. A unit sent to
  :meth:`Database.read` that tries to write fails at once (``attempt to write a readonly
  database``), so a misfiled write cannot hide.

PostgreSQL: psycopg 3 (synchronous) on a small pool, one thread per pooled connection; reads and
writes share it. Why psycopg in threads rather than asyncpg on the loop is measured in
``docs/dependencies.md``. ``LISTEN`` still uses asyncpg, on a connection of its own.
"""

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Engine, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.pool import NullPool

from tidings.store.compiled import json_text

# What layers above ``store`` may name: the connection a unit of work receives, and the error a
# unique or foreign-key constraint raises (they import neither SQLAlchemy nor a driver).
__all__ = ["Connection", "Database", "IntegrityError", "Subscription"]

T = TypeVar("T")
logger = logging.getLogger(__name__)

# Threads (and so connections) for concurrent reads on SQLite; the writer is one more.
SQLITE_READERS = 2
# pg_stat_activity's application_name of the connections made by ``Database.listen``.
LISTEN_APPLICATION_NAME = "tidings-listen"
# PostgreSQL's pool: this many connections, each served by one thread.
POSTGRES_POOL = 8


def normalise_url(url: str) -> str:
    """Pick the synchronous driver Tidings runs on (``sqlite:`` → pysqlite, ``postgresql:`` →
    psycopg), whatever driver the URL names, so older URLs saying ``+asyncpg`` keep working."""
    parsed = make_url(url)
    backend = parsed.drivername.partition("+")[0]
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+pysqlite")
    elif backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names a SQLite database (one writer at a time, whatever the driver)."""
    return make_url(url).get_backend_name() == "sqlite"


def is_memory_sqlite(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def create_engine(url: str, *, read_only: bool = False, pool_size: int = 1) -> Engine:
    """A synchronous engine for ``url`` with the backend's pragmas (also used by migrations)."""
    url = normalise_url(url)
    if not url.startswith("sqlite"):
        # No pre-ping: it cost a round trip on every unit; a pooled connection the server
        # dropped is found by the unit that uses it, which then runs again (``_run_pooled``).
        return sa_create_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=60,
            json_serializer=json_text,
        )
    engine = sa_create_engine(
        url,
        json_serializer=json_text,
        # Each thread keeps its connection for good (see ``_ThreadConnections``): no pool needed.
        poolclass=NullPool,
        connect_args={"timeout": 30, "check_same_thread": False},
    )
    _configure_sqlite(engine, read_only=read_only)
    return engine


def _configure_sqlite(engine: Engine, *, read_only: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions are deferred and
        # start only at the first write).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        pragmas = [
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA busy_timeout=30000",
        ]
        if read_only:
            pragmas.append("PRAGMA query_only=ON")
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # The writer begins on the driver itself (``_Writer._run``); SQLAlchemy's autobegin
        # inside such a unit joins it.
        if not conn.connection.driver_connection.in_transaction:
            conn.exec_driver_sql(begin)


class _ThreadConnections:
    """One long-lived connection per thread of an executor, opened on first use.

    Checking a connection out of a pool for every unit costs more than many small statements;
    a thread that only ever serves this engine can simply keep its own.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._local = threading.local()
        self._all: list[Connection] = []
        self._lock = threading.Lock()

    def get(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self.engine.connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close_all(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


def _run_unit(connections: _ThreadConnections, work: Callable[[Connection], T]) -> T:
    """Run ``work`` as one transaction on this thread's connection: commit, or roll back."""
    conn = connections.get()
    with conn.begin():
        return work(conn)


# A checkpoint after this many commits; each post commits a few pages (about 17 frames per
# commit under bench/load.py), SQLite's own automatic checkpoint would come every 1,000 pages.
CHECKPOINT_EVERY = 256
# Above this rate of commits the second part of a checkpoint runs inline (see the docstring).
BUSY_COMMITS_PER_SECOND = 512
# How long the writer thread waits for another process's write lock before the unit fails.
LOCK_WAIT_MS = 30_000


class _Busy(Exception):
    """Another process holds the write lock: an inline unit goes to the writer thread."""


class _Writer:
    """SQLite's one writing connection, used by one thread at a time (``lock``): inline by the
    caller when the lock is free, else by the writer thread."""

    def __init__(self, engine: Engine, executor: ThreadPoolExecutor, lock_wait_ms: int) -> None:
        self.engine = engine
        self.executor = executor
        self.lock_wait_ms = lock_wait_ms
        # What the writer thread has queued or is running: inline callers that find the
        # connection in use wait for these instead of queueing behind them.
        self._queued: set[Future[Any]] = set()
        self._queued_lock = threading.Lock()
        self.lock = threading.Lock()
        self._conn: Connection | None = None
        self._busy_ms = -1
        self._commits = 0
        # The writer thread's own connection for the first part of a checkpoint, and whether
        # that part has run, so the next unit on the writing connection does the second.
        self._copier: Any = None
        self._copied = False
        self._counted_since = time.monotonic()

    def try_inline(self, work: Callable[[Connection], T]) -> tuple[bool, T | None]:
        """(True, result) when ``work`` ran here and committed; (False, None) when the
        connection or the database's write lock was taken and nothing ran."""
        if not self.lock.acquire(blocking=False):
            return False, None
        try:
            return True, self._run(work, busy_ms=0)
        except _Busy:
            return False, None
        finally:
            self.lock.release()

    def submit(self, call: Callable[[], T]) -> "Future[T]":
        """Queue ``call`` for the writer thread."""
        future = self.executor.submit(call)
        with self._queued_lock:
            self._queued.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: "Future[Any]") -> None:
        with self._queued_lock:
            self._queued.discard(future)

    def queued(self) -> list["Future[Any]"]:
        with self._queued_lock:
            return list(self._queued)

    def run_waiting(self, work: Callable[[Connection], T]) -> T:
        """On the writer thread: wait for the connection, then for the write lock."""
        with self.lock:
            return self._run(work, busy_ms=self.lock_wait_ms)

    def _run(self, work: Callable[[Connection], T], *, busy_ms: int) -> T:
        conn = self._connection()
        if busy_ms != self._busy_ms:
            self._raw(conn).execute(f"PRAGMA busy_timeout={busy_ms}")
            self._busy_ms = busy_ms
        # BEGIN and COMMIT on the driver: SQLAlchemy's transaction object and its events cost
        # more than SQLite's own begin and commit, twice per unit. Statements that go through
        # ``conn.execute`` join this transaction (the "begin" hook sees it open), and
        # ``conn.commit()``/``conn.rollback()`` afterwards only reset SQLAlchemy's bookkeeping.
        raw = self._raw(conn)
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if busy_ms == 0 and _is_busy_error(exc):
                raise _Busy from exc
            raise _wrapped("BEGIN IMMEDIATE", exc) from exc
        try:
            result = work(conn)
            raw.commit()
        except BaseException as exc:
            raw.rollback()
            conn.rollback()
            if isinstance(exc, sqlite3.Error):
                raise _wrapped("COMMIT", exc) from exc
            raise
        conn.commit()
        if self._copied:
            self._copied = False
            _checkpoint_on(raw)
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY:
            now = time.monotonic()
            busy = BUSY_COMMITS_PER_SECOND * (now - self._counted_since) < CHECKPOINT_EVERY
            self._commits, self._counted_since = 0, now
            self.submit(partial(self._copy_wal, busy=busy))
        return result

    def _copy_wal(self, *, busy: bool) -> None:
        """On the writer thread, not holding the writing connection: the bulk of a checkpoint,
        while writes go on. The frames they append are copied by the next unit (``busy``) or
        here, holding the connection."""
        if self._copier is None:
            self._copier = self.engine.raw_connection()
        if not _checkpoint_on(self._copier.driver_connection):
            return
        if busy:
            self._copied = True
            return
        with self.lock:
            _checkpoint_on(self._raw(self._connection()))

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect()
            self._busy_ms = -1
            self._raw(self._conn).execute("PRAGMA wal_autocheckpoint=0")
        return self._conn

    @staticmethod
    def _raw(conn: Connection) -> sqlite3.Connection:
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        return raw

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._copier is not None:
                self._copier.close()
                self._copier = None


def _checkpoint_on(raw: sqlite3.Connection) -> bool:
    """A passive checkpoint on ``raw``: True when it ran (a failure is logged, and the next
    checkpoint tries again)."""
    try:
        raw.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error:
        logger.exception("WAL checkpoint failed; the next one will try again")
        return False
    return True


def _is_busy_error(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED") or (
        "locked" in str(exc)
    )


def _wrapped(statement: str, exc: sqlite3.Error) -> StatementError:
    """A driver error raised outside SQLAlchemy, as SQLAlchemy would have raised it."""
    return DBAPIError.instance(statement, (), exc, sqlite3.Error)


def _run_pooled(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` as one transaction on a pooled connection; once more on a fresh one if the
    first turned out dead (PostgreSQL restarted, an idle connection cut) before the commit was
    asked for, when nothing of the unit can have been applied. A failure at the commit is not
    retried: the commit may have happened."""
    asked_to_commit = False
    try:
        with engine.begin() as conn:
            result = work(conn)
            asked_to_commit = True
        return result
    except DBAPIError as exc:
        if asked_to_commit or not exc.connection_invalidated:
            raise
        logger.warning("a pooled database connection was dead; running the unit again")
    # SQLAlchemy has dropped every connection pooled before the failure: this one is new.
    with engine.begin() as conn:
        return work(conn)


async def _hand_off(executor: ThreadPoolExecutor, call: Callable[[], T]) -> T:
    """Run ``call`` on one of ``executor``'s threads: the one hop of a unit of work."""
    return await asyncio.get_running_loop().run_in_executor(executor, call)


class Database:
    """Where every transaction runs: :meth:`write` for a unit that may change data, :meth:`read`
    for one that only reads."""

    def __init__(self, url: str, *, lock_wait_ms: int = LOCK_WAIT_MS) -> None:
        """``lock_wait_ms``: SQLite, how long a write waits for another process's lock."""
        self.url = normalise_url(url)
        self.is_sqlite = is_sqlite(self.url)
        self.dialect_name = "sqlite" if self.is_sqlite else "postgresql"
        self._writer: _Writer | None = None
        self._readers: _ThreadConnections | None = None
        self._pool: Engine | None = None
        if self.is_sqlite:
            if is_memory_sqlite(url):
                raise ValueError(
                    "Tidings needs a database file: SQLite in memory is one per connection"
                )
            self._write_executor = ThreadPoolExecutor(1, thread_name_prefix="tidings-db-write")
            self._writer = _Writer(create_engine(url), self._write_executor, lock_wait_ms)
            self._readers = _ThreadConnections(create_engine(url, read_only=True))
            self._read_executor = ThreadPoolExecutor(
                SQLITE_READERS, thread_name_prefix="tidings-db-read"
            )
        else:
            self._pool = create_engine(url, pool_size=POSTGRES_POOL)
            self._write_executor = ThreadPoolExecutor(
                POSTGRES_POOL, thread_name_prefix="tidings-db"
            )
            self._read_executor = self._write_executor

    @classmethod
    def from_url(cls, url: str) -> "Database":
        return cls(url)

    async def write(self, work: Callable[[Connection], T], *, background: bool = False) -> T:
        """Run ``work(conn)`` as one transaction that may write; commits unless it raises.

        ``background``: the unit may take long (housekeeping's deletes, bulk loads), so on
        SQLite it never runs inline on the event loop. Cancelling the caller does not cut
        a unit short once it has started: it commits or rolls back as a whole.
        """
        writer = self._writer
        if writer is not None:
            while not background:
                ran, result = writer.try_inline(work)
                if ran:
                    return result  # type: ignore[return-value]
                # The connection is in use by the writer thread: wait for what it has queued
                # and try again, rather than queue behind it (which, under load, would keep
                # every later unit on the thread). Nothing queued: another process holds the
                # write lock, and the thread waits for it.
                queued = writer.queued()
                if not queued:
                    break
                await asyncio.wait(
                    [asyncio.wrap_future(f) for f in queued], return_when=asyncio.FIRST_COMPLETED
                )
            return await asyncio.wrap_future(writer.submit(partial(writer.run_waiting, work)))
        assert self._pool is not None
        return await _hand_off(self._write_executor, partial(_run_pooled, self._pool, work))

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work(conn)`` as one read-only transaction (a consistent snapshot)."""
        if self._readers is not None:
            return await _hand_off(self._read_executor, partial(_run_unit, self._readers, work))
        assert self._pool is not None
        return await _hand_off(self._read_executor, partial(_run_pooled, self._pool, work))

    async def listen(
        self,
        channel: str,
        on_message: Callable[[str], None],
        on_close: Callable[[], None] | None = None,
    ) -> "Subscription":
        """PostgreSQL: call ``on_message(payload)`` for every ``NOTIFY`` on ``channel``, and
        ``on_close()`` if the connection is lost (notices sent meanwhile are not seen).

        A connection of its own, outside the pool (a listening connection is held for good), on
        asyncpg, whose listeners are called on the event loop.
        """
        if self.is_sqlite:
            raise RuntimeError("LISTEN needs PostgreSQL")
        dsn = make_url(self.url).set(drivername="postgresql")
        # Named, so an operator (or a test) can tell listening connections in pg_stat_activity.
        connection = await asyncpg.connect(
            dsn.render_as_string(hide_password=False),
            server_settings={"application_name": LISTEN_APPLICATION_NAME},
        )
        if on_close is not None:
            connection.add_termination_listener(lambda _connection: on_close())
        await connection.add_listener(channel, lambda *args: on_message(str(args[-1])))
        return Subscription(connection)

    async def dispose(self) -> None:
        """Close every connection and stop the threads (waiting for units in progress)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._close)

    def _close(self) -> None:
        self._write_executor.shutdown(wait=True)
        self._read_executor.shutdown(wait=True)
        if self._writer is not None:
            self._writer.close()
            self._writer.engine.dispose()
        if self._readers is not None:
            self._readers.close_all()
            self._readers.engine.dispose()
        if self._pool is not None:
            self._pool.dispose()


class Subscription:
    """A listening connection made by :meth:`Database.listen`."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    @property
    def closed(self) -> bool:
        return bool(self._connection.is_closed())

    async def fetch(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of ``query`` (asyncpg's ``$1`` placeholders) run on the listening connection
        itself, on the event loop: for a small read made after every wake-up, no pool thread,
        no transaction of its own. Only one caller at a time (asyncpg's rule)."""
        return [tuple(row) for row in await self._connection.fetch(query, *args)]

    async def close(self) -> None:
        if not self._connection.is_closed():
            await self._connection.close()
