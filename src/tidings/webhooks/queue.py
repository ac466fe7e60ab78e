"""The outbox: deliveries enqueued in the poster's transaction, claimed with a lease, finished in batches.

Why an outbox: the post and its delivery rows commit together, so a crash can neither lose a
delivery nor send one for a post that was rolled back. Why leases: a worker that dies mid-attempt
leaves rows ``in_flight``; once the lease runs out any worker takes them again, with the same
delivery id. The lease's expiry time doubles as a fencing token: a late worker whose lease was
taken over cannot overwrite the new owner's result. On PostgreSQL the claim uses
``FOR UPDATE SKIP LOCKED`` so several workers never claim the same row; on SQLite the write lock
does the same. Status transitions are listed in ``tidings.domain.deliveries``.

Imports ``tidings.store`` and ``tidings.domain``; never services, api or web.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.deliveries import Attempt, Delivery, DeliveryStatus
from tidings.domain.posts import Post
from tidings.ids import new_id
from tidings.store.database import Database
from tidings.store.posts import insert_posts
from tidings.store.schema import deliveries, delivery_attempts
from tidings.store.teams import touch_channel


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """What the poster's transaction knows about a delivery to make."""

    hook_id: str
    post_id: str
    channel_id: str
    url: str
    content_type: str
    body: bytes
    trigger_word: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The worker's verdict on one claimed delivery, written back in a batch.

    ``status`` is the new state: ``succeeded``, ``failed``, or ``pending`` with ``next_attempt_at``.
    ``reply_posts`` are inserted in the same transaction, and only if no reply was posted yet.
    """

    delivery: Delivery
    status: DeliveryStatus
    attempt: Attempt
    next_attempt_at: int = 0
    reply_posts: Sequence[Post] = field(default_factory=tuple)


def _delivery(row: Any) -> Delivery:
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
    )


async def enqueue(conn: AsyncConnection, new: Sequence[NewDelivery], now_ms: int) -> list[str]:
    """Insert pending deliveries in the caller's transaction; return their ids."""
    if not new:
        return []
    rows: list[dict[str, Any]] = [
        {
            "id": new_id(),
            "hook_id": d.hook_id,
            "post_id": d.post_id,
            "channel_id": d.channel_id,
            "url": d.url,
            "status": DeliveryStatus.PENDING.value,
            "content_type": d.content_type,
            "body": d.body,
            "trigger_word": d.trigger_word,
            "create_at": now_ms,
            "update_at": now_ms,
            "next_attempt_at": now_ms,
            "attempt_count": 0,
            "lease_expires_at": 0,
            "reply_posted": False,
            "last_status_code": 0,
            "last_error_kind": "",
            "last_error": "",
        }
        for d in new
    ]
    await conn.execute(deliveries.insert(), rows)
    return [str(r["id"]) for r in rows]


def _due(now_ms: int) -> Any:
    return or_(
        and_(
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= now_ms,
        ),
        and_(
            deliveries.c.status == DeliveryStatus.IN_FLIGHT.value,
            deliveries.c.lease_expires_at < now_ms,
        ),
    )


async def claim(db: Database, limit: int, lease_ms: int, now_ms: int) -> list[Delivery]:
    """Take up to ``limit`` due deliveries (new, retry-due, or with an expired lease)."""
    due_ids = (
        select(deliveries.c.id)
        .where(_due(now_ms))
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(deliveries)
        .where(deliveries.c.id.in_(due_ids.scalar_subquery()))
        .values(
            status=DeliveryStatus.IN_FLIGHT.value,
            lease_expires_at=now_ms + lease_ms,
            attempt_count=deliveries.c.attempt_count + 1,
            update_at=now_ms,
        )
        .returning(*deliveries.c)
    )
    async with db.transaction() as conn:
        rows = (await conn.execute(statement)).all()
    return [_delivery(r) for r in rows]


async def finish(db: Database, results: Sequence[Finish], now_ms: int) -> list[list[Post]]:
    """Record attempts and new states in one transaction.

    Returns, per result, the reply posts actually inserted (empty when the lease was lost or a
    reply had already been posted), so the caller can announce them after commit.
    """
    inserted: list[list[Post]] = []
    if not results:
        return inserted
    async with db.transaction() as conn:
        await conn.execute(
            delivery_attempts.insert(),
            [
                {
                    "id": r.attempt.id,
                    "delivery_id": r.attempt.delivery_id,
                    "number": r.attempt.number,
                    "started_at": r.attempt.started_at,
                    "duration_ms": r.attempt.duration_ms,
                    "status_code": r.attempt.status_code,
                    "error_kind": r.attempt.error_kind,
                    "error_message": r.attempt.error_message[:1024],
                    "request_headers": r.attempt.request_headers,
                    "response_headers": r.attempt.response_headers,
                    "response_excerpt": r.attempt.response_excerpt,
                }
                for r in results
            ],
        )
        for r in results:
            posts_now: list[Post] = []
            owned = and_(
                deliveries.c.id == r.delivery.id,
                deliveries.c.status == DeliveryStatus.IN_FLIGHT.value,
                deliveries.c.lease_expires_at == r.delivery.lease_expires_at,
            )
            values: dict[str, Any] = {
                "status": r.status.value,
                "update_at": now_ms,
                "next_attempt_at": r.next_attempt_at,
                "lease_expires_at": 0,
                "last_status_code": r.attempt.status_code,
                "last_error_kind": r.attempt.error_kind,
                "last_error": r.attempt.error_message[:1024],
            }
            if r.reply_posts:
                # Claim the right to post the reply in the same statement: at most once per delivery.
                result = await conn.execute(
                    update(deliveries)
                    .where(owned, deliveries.c.reply_posted.is_(False))
                    .values(reply_posted=True, **values)
                )
                if result.rowcount == 1:
                    await insert_posts(conn, r.reply_posts)
                    for post in r.reply_posts:
                        await touch_channel(conn, post.channel_id, post.create_at)
                    posts_now = list(r.reply_posts)
                else:
                    await conn.execute(update(deliveries).where(owned).values(**values))
            else:
                await conn.execute(update(deliveries).where(owned).values(**values))
            inserted.append(posts_now)
    return inserted


async def requeue(conn: AsyncConnection, delivery_id: str, now_ms: int) -> None:
    """Start a new attempt chain for a finished delivery (redeliver): same id, same body."""
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            status=DeliveryStatus.PENDING.value,
            next_attempt_at=now_ms,
            attempt_count=0,
            lease_expires_at=0,
            update_at=now_ms,
        )
    )


async def depth(db: Database, now_ms: int) -> tuple[int, int]:
    """(deliveries waiting or in flight, age in ms of the oldest due one) for metrics."""
    async with db.transaction() as conn:
        row = (
            await conn.execute(
                select(func.count(), func.min(deliveries.c.next_attempt_at)).where(
                    deliveries.c.status.in_(
                        [DeliveryStatus.PENDING.value, DeliveryStatus.IN_FLIGHT.value]
                    )
                )
            )
        ).one()
    count, oldest = int(row[0]), row[1]
    return count, max(0, now_ms - int(oldest)) if oldest is not None else 0
