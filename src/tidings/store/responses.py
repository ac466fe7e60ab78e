"""Deferred replies' SQL: the delivery a ``response_url`` secret belongs to, and its uses.

A use is counted by one conditional ``UPDATE … RETURNING``: the row is changed only while it
has uses left and is young enough, so two replies at once can never both be the fifth — on
PostgreSQL the second waits for the first's row lock and then sees its count, on SQLite the one
write lock orders them. The rules (how many, how long) are the caller's.

Imports ``tidings.domain`` and ``tidings.store``.
"""

from sqlalchemy import bindparam, select, update

from tidings.domain.deliveries import ResponseTarget
from tidings.store.database import Connection
from tidings.store.schema import deliveries

_FIND = select(
    deliveries.c.id,
    deliveries.c.hook_id,
    deliveries.c.post_id,
    deliveries.c.root_id,
    deliveries.c.channel_id,
    deliveries.c.create_at,
    deliveries.c.post_depth,
    deliveries.c.response_uses,
).where(deliveries.c.response_secret_hash == bindparam("b_digest"))

_SPEND = (
    update(deliveries)
    .where(
        deliveries.c.id == bindparam("b_id"),
        deliveries.c.response_uses < bindparam("b_max"),
        deliveries.c.create_at >= bindparam("b_created_after"),
    )
    .values(response_uses=deliveries.c.response_uses + 1)
    .returning(deliveries.c.response_uses)
)


def find_response_target(conn: Connection, digest: str) -> ResponseTarget | None:
    """The delivery whose ``response_url`` secret has this sha256 (``ix_deliveries_response_
    secret``); None for an unknown one. ``""`` matches nothing: deliveries without a secret."""
    if not digest:
        return None
    row = conn.execute(_FIND, {"b_digest": digest}).first()
    if row is None:
        return None
    return ResponseTarget(
        delivery_id=row.id,
        hook_id=row.hook_id,
        post_id=row.post_id,
        root_id=row.root_id,
        channel_id=row.channel_id,
        create_at=row.create_at,
        post_depth=row.post_depth,
        response_uses=row.response_uses,
    )


def spend_response_use(
    conn: Connection, delivery_id: str, *, max_uses: int, created_after_ms: int
) -> int | None:
    """Count one use of the delivery's ``response_url``; the use's number (1…``max_uses``), or
    None when none is left or the delivery was created before ``created_after_ms``."""
    row = conn.execute(
        _SPEND,
        {"b_id": delivery_id, "b_max": max_uses, "b_created_after": created_after_ms},
    ).first()
    return None if row is None else int(row[0])
