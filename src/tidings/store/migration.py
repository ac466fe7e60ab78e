"""Applying Alembic migrations from code (``tidings migrate`` and every command's start).

Alembic's environment (``migrations/env.py``) runs on the connection opened here, made by the
same engine factory as the server's, with the same pragmas.

Many processes may start at once (``serve`` and ``worker`` on several machines, a restart of
all of them), and each migrates first. Two of them upgrading one database at once collide: on
PostgreSQL the loser fails on duplicate types and tables; on SQLite, where Alembic commits after
each revision, the second can read the version between two of the first's revisions and run
the next one twice. So the upgrade runs under a lock: the first process takes it and migrates,
the others wait, then find the schema at head and do nothing. A database already at head — every
start but the first after an upgrade — is seen so before any lock is asked for: commands started
side by side (a script running ten ``tidings hook create`` at once) neither wait for each other
nor print that they wait.

- PostgreSQL: a session-level advisory lock, held by the migrating connection, so a process
  that dies mid-migration releases it (and its transaction rolls back); it works across
  machines.
- SQLite: an exclusive ``flock`` on a file beside the database (``tidings.db-migration-lock``).
  Not SQLite's own write lock: a waiting process would give up after its busy timeout (30 s),
  and rewriting a large table can take longer.
"""

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from tidings.store.database import create_engine, is_memory_sqlite, normalise_url

MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_lock's key: any fixed 64-bit number, the same in every Tidings version (so old and
# new processes exclude each other too): the bytes of "tidings".
LOCK_KEY = int.from_bytes(b"tidings", "big")
WAITING = "another process is migrating the database; waiting for it to finish"
logger = logging.getLogger(__name__)


class SchemaAhead(Exception):
    """The database was migrated by a newer Tidings than this one: refusing to run on it."""


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our scripts and ``url``, with no ini file needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema, once however many processes ask.

    Synchronous and short; every command calls it before it starts. Raises
    :class:`SchemaAhead` when the database is at a revision this version does not know."""
    config = alembic_config(url)
    scripts = ScriptDirectory.from_config(config)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if _at_head(conn, scripts):
                return
            with _exclusive(conn, url):
                if _at_head(conn, scripts):
                    return  # another process migrated while this one waited
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
    finally:
        engine.dispose()


@contextlib.contextmanager
def _exclusive(conn: Connection, url: str) -> Iterator[None]:
    """Hold the migration lock for the block, saying so when another process has it (a long
    migration, or one stuck behind an old process's open transaction, is then visible)."""
    if conn.dialect.name == "postgresql":
        with _advisory_lock(conn):
            yield
    elif is_memory_sqlite(url):
        yield  # no other process can see this database
    else:
        with _file_lock(Path(f"{make_url(normalise_url(url)).database}-migration-lock")):
            yield


@contextlib.contextmanager
def _advisory_lock(conn: Connection) -> Iterator[None]:
    key = {"key": LOCK_KEY}
    if not conn.execute(text("SELECT pg_try_advisory_lock(:key)"), key).scalar():
        logger.warning(WAITING)
        conn.execute(text("SELECT pg_advisory_lock(:key)"), key)
    # The lock is the session's: it outlives this transaction, which Alembic must not find open.
    conn.commit()
    try:
        yield
    finally:
        conn.rollback()
        conn.execute(text("SELECT pg_advisory_unlock(:key)"), key)
        conn.commit()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.warning(WAITING)
            fcntl.flock(handle, fcntl.LOCK_EX)
        # Closing the file releases the lock; so does the process's death.
        yield


def _at_head(conn: Connection, scripts: ScriptDirectory) -> bool:
    """Whether the schema is at this version's head; raises :class:`SchemaAhead` when it is at
    a revision this version does not know (an older Tidings started after a newer one migrated:
    say so instead of Alembic's "Can't locate revision" traceback)."""
    known = {script.revision for script in scripts.walk_revisions()}
    current = set(MigrationContext.configure(conn).get_current_heads())
    conn.commit()
    unknown = sorted(current - known)
    if unknown:
        raise SchemaAhead(
            f"the database's schema is at revision {', '.join(unknown)}, newer than this "
            f"Tidings knows (its newest is {scripts.get_current_head()}): run the newer version"
        )
    return current == set(scripts.get_heads())
