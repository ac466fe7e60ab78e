"""Migrations run once however many processes start at once: concurrent ``tidings migrate``
processes on an empty database all succeed and leave it at head, and a migration waits while
another process holds the lock (PostgreSQL's advisory lock, SQLite's lock file)."""

import contextlib
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from subprocess import Popen
from typing import IO

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from support import fresh_database, wait_until
from tidings.store.database import create_engine, normalise_url
from tidings.store.migration import LOCK_KEY, WAITING, alembic_config, upgrade

pytestmark = pytest.mark.db


def _migrate(url: str, folder: Path, stderr: int | IO[str] = subprocess.PIPE) -> Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env |= {"TIDINGS_DATABASE_URL": url, "TIDINGS_DATA_DIR": str(folder)}
    return subprocess.Popen(
        [sys.executable, "-m", "tidings", "migrate"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def _version(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def _head(url: str) -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(alembic_config(url)).get_current_head())


def test_concurrent_migrations_of_an_empty_database_all_succeed(tmp_path: Path) -> None:
    """Three processes migrate one empty database at once: all exit 0, the schema is at head."""
    with fresh_database(migrated=False) as url:
        processes = [_migrate(url, tmp_path) for _ in range(3)]
        results = [(p.wait(60), *p.communicate()) for p in processes]
        for code, out, err in results:
            assert code == 0, err
            assert "database is up to date" in out
        assert _version(url) == [_head(url)]


@contextlib.contextmanager
def _holding_the_lock(url: str) -> Iterator[None]:
    """Hold the migration lock the way a migrating process does."""
    if make_url(url).get_backend_name() == "postgresql":
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
                conn.commit()
                yield
        finally:
            engine.dispose()
        return
    database = make_url(normalise_url(url)).database
    with Path(f"{database}-migration-lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def test_a_migration_waits_for_the_process_holding_the_lock(tmp_path: Path) -> None:
    """While another process holds the lock, ``tidings migrate`` waits (and says so), changing
    nothing; once the lock is free it migrates and exits 0."""
    log = tmp_path / "migrate.log"
    with fresh_database(migrated=False) as url, log.open("w") as sink:
        with _holding_the_lock(url):
            waiting = _migrate(url, tmp_path, stderr=sink)
            wait_until(lambda: WAITING in log.read_text(), timeout=60, interval=0.1)
            time.sleep(1)
            assert waiting.poll() is None, log.read_text()
            engine = create_engine(url)
            try:
                with engine.connect() as conn:
                    tables = conn.dialect.get_table_names(conn)
            finally:
                engine.dispose()
            assert "alembic_version" not in tables
        assert waiting.wait(60) == 0, log.read_text()
        assert "database is up to date" in waiting.communicate()[0]
        assert _version(url) == [_head(url)]
        upgrade(url)  # at head: nothing to do, nothing refused
        assert _version(url) == [_head(url)]


def test_a_database_at_head_is_not_held_up_by_the_lock(tmp_path: Path) -> None:
    """A command started on a migrated database neither waits for the lock nor says it waits,
    even while another process holds it: commands run side by side stay quiet and quick."""
    with fresh_database() as url, _holding_the_lock(url):
        process = _migrate(url, tmp_path)
        code = process.wait(30)
        out, err = process.communicate()
        assert code == 0, err
        assert WAITING not in err
        assert "database is up to date" in out


def test_a_database_migrated_by_a_newer_version_is_refused(tmp_path: Path) -> None:
    """An older Tidings started on a schema it does not know exits 1 with one clear line
    instead of a traceback, and leaves the database alone."""
    with fresh_database() as url:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
        finally:
            engine.dispose()
        process = _migrate(url, tmp_path)
        code = process.wait(60)
        out, err = process.communicate()
        assert code == 1
        assert out == ""
        assert err.strip().splitlines() == [
            f"error: the database's schema is at revision 9999_future, newer than this "
            f"Tidings knows (its newest is {_head(url)}): run the newer version"
        ]
        assert _version(url) == ["9999_future"]
