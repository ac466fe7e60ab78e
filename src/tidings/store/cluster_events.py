"""The cluster event log's SQL: append a batch, read what came after a sequence number, sweep.

Why a table and not ``NOTIFY`` payloads: a notice is lost when the listening connection drops,
and a payload is capped at 8,000 bytes. Rows are numbered, so a process that missed the
wake-up reads by sequence what it has not seen; the ``NOTIFY`` in :func:`append_events` only
says "there is more", once per batch.

Appends are serialised by a transaction-scoped advisory lock taken before the rows get their
numbers: without it, two publishers could commit sequence 6 before 5, and a reader that had
already moved past 6 would never see 5. With it, numbers become visible in order. Imports
nothing from the rest of the package but the schema.
"""

from collections.abc import Sequence

from sqlalchemy import case, delete, func, insert, select, text
from sqlalchemy.engine import Connection

from tidings.store.schema import cluster_events

# The channel whose notices wake the readers, and the advisory lock key of appends
# (an arbitrary constant, the same in every process).
WAKE_CHANNEL = "tidings_cluster_events"
APPEND_LOCK_KEY = 0x7469_6469  # "tidi"


def append_events(conn: Connection, origin: str, bodies: Sequence[str], now_ms: int) -> list[int]:
    """Store ``bodies`` in order, wake the other processes (PostgreSQL), and return the
    sequence numbers given, in the order of ``bodies``."""
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        # The log is a notice board, not a record: a crash may lose its last milliseconds (the
        # posts themselves are committed durably), so its commits need not wait for the disk.
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})
    rows = conn.execute(
        insert(cluster_events).returning(cluster_events.c.seq, sort_by_parameter_order=True),
        [{"origin": origin, "body": body, "created_at": now_ms} for body in bodies],
    )
    seqs = [int(row[0]) for row in rows]
    if postgres:
        conn.execute(select(func.pg_notify(WAKE_CHANNEL, origin)))
    return seqs


def latest_seq(conn: Connection) -> int:
    """The newest sequence number stored (0 for an empty log): where a new reader starts."""
    return int(conn.execute(select(func.coalesce(func.max(cluster_events.c.seq), 0))).scalar_one())


def events_after(conn: Connection, seq: int, limit: int, own: str) -> list[tuple[int, str, str]]:
    """Up to ``limit`` (seq, origin, body) rows numbered after ``seq``, oldest first; the bodies
    of ``own``'s rows are left out (that process holds them in memory)."""
    body = case((cluster_events.c.origin == own, ""), else_=cluster_events.c.body)
    rows = conn.execute(
        select(cluster_events.c.seq, cluster_events.c.origin, body)
        .where(cluster_events.c.seq > seq)
        .order_by(cluster_events.c.seq)
        .limit(limit)
    )
    return [(int(row[0]), str(row[1]), str(row[2])) for row in rows]


def sweep_events(conn: Connection, before_ms: int) -> int:
    """Forget events written before ``before_ms``; how many."""
    result = conn.execute(delete(cluster_events).where(cluster_events.c.created_at < before_ms))
    return int(result.rowcount or 0)
