"""``tidings backup``: a consistent copy of the SQLite database, taken while the server runs.

SQLite's online backup API (``sqlite3.Connection.backup``) copies the database page by page.
All pages are copied in one step (Python's default), which is one read transaction: in WAL mode
the server's writes carry on beside it, and the copy is the database exactly as it was when the
step began, every transaction committed by then and none after. (Copied in several steps, a
write by another process between two steps would restart the copy.)

The copy is written beside the target under a temporary name, switched out of WAL mode so the
backup is one self-contained file, checked with ``PRAGMA integrity_check``, and only then renamed
into place: the target is never half a backup.

PostgreSQL has its own tools for this (``pg_dump``, or the server's base backups and WAL
archiving); :func:`dump_command` says how to call ``pg_dump`` for the configured database.
"""

import contextlib
import os
import shlex
import sqlite3
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from tidings.store.database import is_memory_sqlite, normalise_url


class BackupRefused(Exception):
    """The backup was not taken (no database, a target in the way, a copy that failed its check)."""


def backup_sqlite(url: str, target: Path, *, replace: bool = False) -> Path:
    """Copy the SQLite database at ``url`` to ``target`` (replacing it only when ``replace``);
    the database file copied."""
    if is_memory_sqlite(url):
        raise BackupRefused("an in-memory database has nothing on disk to back up")
    source_path = Path(make_url(normalise_url(url)).database or "")
    if not source_path.is_file():
        raise BackupRefused(f"there is no database at {source_path}")
    if target.exists() and not replace:
        raise BackupRefused(f"{target} exists: choose another path, or pass --force to replace it")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    try:
        _copy(source_path, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    _sync_directory(target.parent)
    return source_path


def _copy(source_path: Path, partial: Path) -> None:
    # mode=rw: never create a database that is not there; query_only: a backup writes nothing.
    source = sqlite3.connect(f"file:{source_path}?mode=rw", uri=True, timeout=30)
    try:
        source.execute("PRAGMA query_only=ON")
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
            problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
        finally:
            copy.close()
    finally:
        source.close()
    if problems != ["ok"]:
        raise BackupRefused(f"the copy failed its integrity check: {'; '.join(problems[:5])}")


def _sync_directory(folder: Path) -> None:
    """Make the rename itself durable (SQLite synced the file's contents when it committed)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some file systems cannot sync a directory
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


def dump_command(url: str, target: Path) -> str:
    """The ``pg_dump`` command that backs up the PostgreSQL database at ``url`` to ``target``.

    The URL is given in libpq's form (no SQLAlchemy driver name) and without its password, which
    is not echoed to a terminal: pg_dump reads it from ``PGPASSWORD`` or ``~/.pgpass``."""
    parsed = make_url(url)
    libpq = URL.create(
        "postgresql", parsed.username, None, parsed.host, parsed.port, parsed.database, parsed.query
    )
    return shlex.join(
        [
            "pg_dump",
            "--format=custom",
            f"--file={target}",
            libpq.render_as_string(hide_password=False),
        ]
    )
