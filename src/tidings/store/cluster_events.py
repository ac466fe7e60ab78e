"""The cluster event log's SQL: append a batch, read what came after a sequence number, sweep.

Why a table and not ``NOTIFY`` payloads: a notice is lost when the listening connection drops,
and a payload is capped at 8,000 bytes. Rows are numbered, so a process that missed the
wake-up reads by sequence what it has not seen; the ``NOTIFY`` in :func:`append_events` only
says "there is more", once per batch.

Appends are serialised by a transaction-scoped advisory lock taken before the rows get their
numbers: without it, two publishers could commit sequence 6 before 5, and a reader that had
already moved past 6 would never see 5. With it, numbers become visible in order.

The reader's read has two forms of one query: on its listening connection (asyncpg, the usual
case) and through the pool (while that connection is down). Imports only ``store``.
"""

from collections.abc import Sequence

from sqlalchemy import bindparam, case, delete, func, insert, select
from sqlalchemy.engine import Connection

from tidings.store.compiled import Prepared
from tidings.store.database import Subscription
from tidings.store.schema import cluster_events

# The channel whose notices wake the readers, and the advisory lock key of appends
# (an arbitrary constant, the same in every process).
WAKE_CHANNEL = "tidings_cluster_events"
APPEND_LOCK_KEY = 0x7469_6469  # "tidi"


# PostgreSQL, before the rows, in one statement: the log is a notice board, not a record (a
# crash may lose its last milliseconds; the posts themselves are committed durably), so its
# commits need not wait for the disk; the lock orders the appends; the wake-up, queued here, is
# sent by PostgreSQL only when the transaction commits.
_BEFORE_APPEND = (
    "SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(%(key)s), "
    "pg_notify(%(channel)s, %(origin)s)"
)
# PostgreSQL: the whole batch in one statement, numbered in the order of the array.
_APPEND_ROWS = (
    "INSERT INTO cluster_events (origin, body, created_at) "
    "SELECT %(origin)s, body, %(now)s FROM unnest(%(bodies)s::text[]) WITH ORDINALITY AS b(body, n) "
    "ORDER BY n RETURNING seq"
)


def append_events(conn: Connection, origin: str, bodies: Sequence[str], now_ms: int) -> list[int]:
    """Store ``bodies`` in order, wake the other processes (PostgreSQL), and return the
    sequence numbers given, in the order of ``bodies``.

    On PostgreSQL two statements on the driver (the appender is hot: one per batch of posts);
    elsewhere the schema's insert."""
    if conn.dialect.name == "postgresql":
        values = {"key": APPEND_LOCK_KEY, "channel": WAKE_CHANNEL, "origin": origin}
        conn.exec_driver_sql(_BEFORE_APPEND, values)
        rows = conn.exec_driver_sql(
            _APPEND_ROWS, {"origin": origin, "now": now_ms, "bodies": list(bodies)}
        )
        # Numbers are drawn in insertion order, which the ORDER BY fixes.
        return sorted(int(row[0]) for row in rows)
    inserted = conn.execute(
        insert(cluster_events).returning(cluster_events.c.seq, sort_by_parameter_order=True),
        [{"origin": origin, "body": body, "created_at": now_ms} for body in bodies],
    )
    return [int(row[0]) for row in inserted]


def latest_seq(conn: Connection) -> int:
    """The newest sequence number stored (0 for an empty log): where a new reader starts."""
    return int(conn.execute(select(func.coalesce(func.max(cluster_events.c.seq), 0))).scalar_one())


# Every reader runs this on every wake-up: prebuilt (``store/compiled.py``).
_AFTER_PREPARED = Prepared(
    select(
        cluster_events.c.seq,
        cluster_events.c.origin,
        case(
            (cluster_events.c.origin == bindparam("b_own"), ""), else_=cluster_events.c.body
        ).label("body"),
    )
    .where(cluster_events.c.seq > bindparam("b_seq"))
    .order_by(cluster_events.c.seq)
    .limit(bindparam("b_limit", literal_execute=False))
)


def events_after(conn: Connection, seq: int, limit: int, own: str) -> list[tuple[int, str, str]]:
    """Up to ``limit`` (seq, origin, body) rows numbered after ``seq``, oldest first; the bodies
    of ``own``'s rows are left out (that process holds them in memory)."""
    rows = _AFTER_PREPARED.all(conn, {"b_seq": seq, "b_limit": limit, "b_own": own})
    return [(int(row.seq), str(row.origin), str(row.body)) for row in rows]


_AFTER_LISTENING = (
    "SELECT seq, origin, CASE WHEN origin = $1 THEN '' ELSE body END FROM cluster_events "
    "WHERE seq > $2 ORDER BY seq LIMIT $3"
)


async def events_after_listening(
    subscription: Subscription, seq: int, limit: int, own: str
) -> list[tuple[int, str, str]]:
    """:func:`events_after` on the listening connection (PostgreSQL): the reader's read after
    every wake-up, without a pool thread's hand-off and a transaction of its own. Measured
    with two servers (``bench/cluster.py``): these reads were a commit and a thread hop per
    post."""
    rows = await subscription.fetch(_AFTER_LISTENING, own, seq, limit)
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def sweep_events(conn: Connection, before_ms: int) -> int:
    """Forget events written before ``before_ms``; how many."""
    result = conn.execute(delete(cluster_events).where(cluster_events.c.created_at < before_ms))
    return int(result.rowcount or 0)
