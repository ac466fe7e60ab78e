"""Units of work on a real SQLite file: where they run, what they may do, and what they never do
to the event loop (wait for a lock, or fsync a checkpoint)."""

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import text

from tidings.store.database import CHECKPOINT_EVERY, Connection, Database


def _make(path: Path, **kwargs: int) -> Database:
    return Database(f"sqlite:///{path}", **kwargs)


async def _create_table(db: Database) -> None:
    await db.write(lambda conn: conn.execute(text("CREATE TABLE t (n INTEGER)")))


def _insert(n: int) -> Callable[[Connection], object]:
    return lambda conn: conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})


def _count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())


def test_a_free_writer_runs_the_unit_on_the_callers_thread(tmp_path: Path) -> None:
    seen: list[str] = []

    async def work() -> None:
        db = _make(tmp_path / "a.db")
        try:
            await _create_table(db)
            await db.write(lambda conn: seen.append(threading.current_thread().name))
            await db.write(
                lambda conn: seen.append(threading.current_thread().name), background=True
            )
            assert await db.read(_count) == 0
        finally:
            await db.dispose()

    asyncio.run(work())
    assert seen[0] == threading.current_thread().name
    assert seen[1].startswith("tidings-db-write")


def test_a_read_unit_cannot_write(tmp_path: Path) -> None:
    async def work() -> None:
        db = _make(tmp_path / "r.db")
        try:
            await _create_table(db)
            with pytest.raises(Exception, match="readonly"):
                await db.read(_insert(1))
            assert await db.read(_count) == 0
        finally:
            await db.dispose()

    asyncio.run(work())


def test_a_lock_held_by_another_process_never_blocks_the_event_loop(tmp_path: Path) -> None:
    """Another connection (another process, in production) holds the write lock for 0.5 s: the
    write waits on the writer thread, the loop keeps ticking meanwhile, and the write commits
    once the lock is free."""
    path = tmp_path / "l.db"

    async def work() -> None:
        db = _make(path)
        try:
            await _create_table(db)
            other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            other.execute("BEGIN IMMEDIATE")
            threading.Timer(0.5, other.execute, ["COMMIT"]).start()
            ticks = 0
            stop = False

            async def tick() -> None:
                nonlocal ticks
                while not stop:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.create_task(tick())
            started = time.monotonic()
            await db.write(_insert(1))
            waited = time.monotonic() - started
            stop = True
            await ticker
            other.close()
            assert waited >= 0.4
            # The loop ran all along: ~50 ticks of 10 ms in 0.5 s (generous for a busy machine).
            assert ticks >= 15
            assert await db.read(_count) == 1
        finally:
            await db.dispose()

    asyncio.run(work())


def test_a_lock_outlasting_the_wait_fails_the_unit_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    async def work() -> None:
        db = _make(path, lock_wait_ms=200)
        try:
            await _create_table(db)
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(Exception, match="locked"):
                await db.write(_insert(1))
            other.execute("COMMIT")
            other.close()
            assert await db.read(_count) == 0
            await db.write(_insert(2))
            assert await db.read(_count) == 1
        finally:
            await db.dispose()

    asyncio.run(work())


def test_a_failing_unit_rolls_back_and_the_writer_goes_on(tmp_path: Path) -> None:
    def half_then_fail(conn: Connection) -> None:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        raise ValueError("no")

    async def work() -> None:
        db = _make(tmp_path / "f.db")
        try:
            await _create_table(db)
            with pytest.raises(ValueError, match="no"):
                await db.write(half_then_fail)
            await db.write(_insert(2))
            assert await db.read(_count) == 1
        finally:
            await db.dispose()

    asyncio.run(work())


def _insert_row(conn: Connection, n: int, s: str) -> None:
    conn.execute(text("INSERT INTO t VALUES (:n, :s)"), {"n": n, "s": s})


def _size(path: Path) -> int:
    return path.stat().st_size


def test_the_wal_is_checkpointed_off_the_loop_and_stays_bounded(tmp_path: Path) -> None:
    """Automatic checkpoints are off on the writing connection; every CHECKPOINT_EVERY commits
    the WAL is copied back, so it does not grow without bound — with pauses between the
    rounds, and with writes that never stop (the copy then overlaps them)."""
    path = tmp_path / "c.db"
    wal = Path(f"{path}-wal")
    payload = "x" * 3000

    async def work() -> None:
        db = _make(path)
        try:
            await _create_table(db)
            await db.write(lambda conn: conn.execute(text("ALTER TABLE t ADD COLUMN s TEXT")))
            for round_ in range(6):
                for n in range(CHECKPOINT_EVERY):
                    await db.write(partial(_insert_row, n=n, s=payload))
                await asyncio.sleep(0.2)  # the checkpoint runs on the writer thread
                if round_ == 0:
                    first = _size(wal)
            # A passive checkpoint lets SQLite reuse the WAL from its start: it stops growing.
            assert _size(wal) <= first * 1.5
            for n in range(12 * CHECKPOINT_EVERY):
                await db.write(partial(_insert_row, n=n, s=payload))
            assert _size(wal) <= first * 3
            assert await db.read(_count) == 18 * CHECKPOINT_EVERY
        finally:
            await db.dispose()

    asyncio.run(work())


@pytest.mark.parametrize("busy", [True, False])
def test_writes_go_on_while_the_wal_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, busy: bool
) -> None:
    """The bulk of a checkpoint runs on the writer thread without the writing connection: held
    there, it holds up no write. Writes coming fast, the first unit after it finishes the
    checkpoint inline; coming slowly, the writer thread does."""
    from tidings.store import database

    copying, release = threading.Event(), threading.Event()
    calls: list[str] = []
    real = database._checkpoint_on

    def held(raw: sqlite3.Connection) -> bool:
        calls.append(threading.current_thread().name)
        if threading.current_thread().name.startswith("tidings-db-write"):
            copying.set()
            assert release.wait(10)
        return real(raw)

    monkeypatch.setattr(database, "_checkpoint_on", held)
    # 256 commits in a test take well under half a second (busy at 512 per second); no test
    # commits a billion a second.
    if not busy:
        monkeypatch.setattr(database, "BUSY_COMMITS_PER_SECOND", 10**9)

    async def work() -> None:
        db = _make(tmp_path / "held.db")
        try:
            await _create_table(db)
            for n in range(CHECKPOINT_EVERY):
                await db.write(_insert(n))
            assert await asyncio.to_thread(copying.wait, 5)
            for n in range(50):
                await asyncio.wait_for(db.write(_insert(n)), timeout=1)
            assert calls == ["tidings-db-write_0"]
            release.set()
            extra = 0
            while len(calls) < 2 and extra < 100:
                await asyncio.sleep(0.01)
                await db.write(_insert(extra))
                extra += 1
            finisher = threading.main_thread().name if busy else "tidings-db-write_0"
            assert calls[1] == finisher
            assert await db.read(_count) == CHECKPOINT_EVERY + 50 + extra
        finally:
            release.set()
            await db.dispose()

    asyncio.run(work())


@pytest.mark.db
def test_pooled_connections_cut_by_the_server_cost_no_failed_unit() -> None:
    """PostgreSQL: when the server ends every pooled connection (a restart, an idle timeout),
    the next units run on fresh connections instead of failing, with no ping per unit."""
    url = os.environ.get("TIDINGS_TEST_DATABASE_URL")
    if not url:
        pytest.skip("connection pooling is PostgreSQL's")
    from support import fresh_database

    with fresh_database() as fresh:

        async def run() -> list[int]:
            db = Database.from_url(fresh)
            try:
                pids = await asyncio.gather(*(db.read(_backend_pid) for _ in range(16)))
                admin = Database.from_url(url)
                try:
                    await admin.write(partial(_terminate, pids=sorted(set(pids))))
                finally:
                    await admin.dispose()
                return list(await asyncio.gather(*(db.read(_backend_pid) for _ in range(16))))
            finally:
                await db.dispose()

        after = asyncio.run(run())
    assert len(after) == 16


def _backend_pid(conn: Connection) -> int:
    time.sleep(0.01)  # hold the connection, so the 16 reads spread over the pool
    return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(conn: Connection, pids: list[int]) -> None:
    for pid in pids:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
