"""Reading the delivery log (the outbox's writes live in ``tidings.store.outbox``)."""

from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.engine import Connection

from tidings.domain.deliveries import Attempt, Delivery, DeliveryStatus, ErrorKind
from tidings.store.schema import deliveries, delivery_attempts


def delivery_from_row(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        hook_id=row.hook_id,
        post_id=row.post_id,
        channel_id=row.channel_id,
        url=row.url,
        status=DeliveryStatus(row.status),
        content_type=row.content_type,
        body=bytes(row.body),
        trigger_word=row.trigger_word,
        create_at=row.create_at,
        update_at=row.update_at,
        next_attempt_at=row.next_attempt_at,
        attempt_count=row.attempt_count,
        lease_expires_at=row.lease_expires_at,
        reply_posted=row.reply_posted,
        last_status_code=row.last_status_code,
        last_error_kind=row.last_error_kind,
        last_error=row.last_error,
        root_id=row.root_id,
        response_uses=row.response_uses,
        post_depth=row.post_depth,
    )


def _attempt(row: Any) -> Attempt:
    return Attempt(
        id=row.id,
        delivery_id=row.delivery_id,
        number=row.number,
        started_at=row.started_at,
        duration_ms=row.duration_ms,
        status_code=row.status_code,
        error_kind=row.error_kind,
        error_message=row.error_message,
        request_headers=dict(row.request_headers or {}),
        response_headers=dict(row.response_headers or {}),
        response_excerpt=row.response_excerpt,
    )


def list_deliveries(
    conn: Connection, hook_id: str, status: str | None, offset: int, limit: int
) -> list[Delivery]:
    """A hook's deliveries, newest first."""
    query = select(deliveries).where(deliveries.c.hook_id == hook_id)
    if status:
        query = query.where(deliveries.c.status == status)
    query = query.order_by(deliveries.c.create_at.desc(), deliveries.c.id.desc())
    rows = conn.execute(query.offset(offset).limit(limit))
    return [delivery_from_row(r) for r in rows]


def find_delivery(conn: Connection, delivery_id: str) -> Delivery | None:
    row = (conn.execute(select(deliveries).where(deliveries.c.id == delivery_id))).first()
    return delivery_from_row(row) if row else None


def list_attempts(conn: Connection, delivery_id: str) -> list[Attempt]:
    rows = conn.execute(
        select(delivery_attempts)
        .where(delivery_attempts.c.delivery_id == delivery_id)
        .order_by(delivery_attempts.c.started_at, delivery_attempts.c.number)
    )
    return [_attempt(r) for r in rows]


def count_by_status(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(deliveries.c.status, func.count()).group_by(deliveries.c.status))
    return {r[0]: int(r[1]) for r in rows}


def prune_finished(conn: Connection, older_than_ms: int, limit: int = 1000) -> int:
    """Delete up to ``limit`` finished deliveries (and their attempts) last touched before the cutoff."""
    finished = [DeliveryStatus.SUCCEEDED.value, DeliveryStatus.FAILED.value]
    ids = [
        r.id
        for r in conn.execute(
            select(deliveries.c.id)
            .where(and_(deliveries.c.status.in_(finished), deliveries.c.update_at < older_than_ms))
            .limit(limit)
        )
    ]
    if ids:
        conn.execute(delete(delivery_attempts).where(delivery_attempts.c.delivery_id.in_(ids)))
        conn.execute(delete(deliveries).where(deliveries.c.id.in_(ids)))
    return len(ids)


def failure_streak(conn: Connection, hook_id: str, since_ms: int) -> tuple[int, int]:
    """(failed deliveries, oldest failure's create_at) since the hook's last success or ``since_ms``.

    Pings (no post) do not count: they are the owner's experiments, not traffic. Nor do
    deliveries never sent (``not_sent``: the owner was deactivated): they say nothing about
    the receiver.
    """
    last_ok = (
        conn.execute(
            select(func.max(deliveries.c.update_at)).where(
                deliveries.c.hook_id == hook_id,
                deliveries.c.status == DeliveryStatus.SUCCEEDED.value,
                deliveries.c.post_id != "",
            )
        )
    ).scalar()
    start = max(int(last_ok or 0), since_ms)
    row = (
        conn.execute(
            select(func.count(), func.min(deliveries.c.create_at)).where(
                deliveries.c.hook_id == hook_id,
                deliveries.c.status == DeliveryStatus.FAILED.value,
                deliveries.c.post_id != "",
                deliveries.c.last_error_kind != ErrorKind.NOT_SENT.value,
                deliveries.c.update_at > start,
            )
        )
    ).one()
    return int(row[0]), int(row[1] or 0)
