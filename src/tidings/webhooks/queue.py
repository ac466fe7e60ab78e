"""The outbox: deliveries enqueued in the poster's transaction, claimed with a lease, finished in batches.

Why an outbox: the post and its delivery rows commit together, so a crash can neither lose a
delivery nor send one for a post that was rolled back. Why leases: a worker that dies mid-attempt
leaves rows ``in_flight``; once the lease runs out any worker takes them again, with the same
delivery id. The lease's expiry time doubles as a fencing token: a late worker whose lease was
taken over cannot overwrite the new owner's result. On PostgreSQL the claim uses
``FOR UPDATE SKIP LOCKED`` so several workers never claim the same row; on SQLite the write lock
does the same. Status transitions are listed in ``tidings.domain.deliveries``.

On SQLite, :func:`claim` and :func:`finish` each run as one ``Database.sqlite_batch`` call (one
thread round trip, statements compiled once) instead of a handful of SQLAlchemy executions: the
worker does both many times a second, and that per-statement overhead was most of its CPU. The
SQL is the same either way; :func:`_plan` decides what a batch writes for both backends.

Imports ``tidings.store`` and ``tidings.domain``; never services, api or web.
"""

import dataclasses
import functools
import logging
import sqlite3
from collections import namedtuple
from collections.abc import Collection, Mapping, Sequence
from dataclasses import field
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import bindparam, exists, func, or_, select, update
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.deliveries import Attempt, Delivery, DeliveryStatus, ErrorKind
from tidings.domain.posts import Post
from tidings.domain.storable import storable_json, storable_text
from tidings.domain.values import value_object
from tidings.ids import new_id
from tidings.store.compiled import CompiledStatement
from tidings.store.database import Database
from tidings.store.deliveries import delivery_from_row
from tidings.store.posts import insert_posts, insert_posts_raw
from tidings.store.schema import deliveries, delivery_attempts, outgoing_hooks, posts
from tidings.store.teams import touch_channel, touch_channels_raw

logger = logging.getLogger(__name__)


def _length(column: Any) -> int:
    length = column.type.length
    assert isinstance(length, int)
    return length


# Every string the worker stores is bounded by its column, read from the schema.
_ERROR_CHARS = _length(delivery_attempts.c.error_message)
_KIND_CHARS = _length(delivery_attempts.c.error_kind)
_LAST_ERROR_CHARS = _length(deliveries.c.last_error)
_POST_TYPE_CHARS = _length(posts.c.type)


@value_object
class NewDelivery:
    """What the poster's transaction knows about a delivery to make."""

    hook_id: str
    post_id: str
    channel_id: str
    url: str
    content_type: str
    body: bytes
    trigger_word: str
    root_id: str = ""


@value_object
class Finish:
    """The worker's verdict on one claimed delivery, written back in a batch.

    ``status`` is the new state: ``succeeded``, ``failed``, or ``pending`` with ``next_attempt_at``.
    ``reply_posts`` are inserted in the same transaction, and only if no reply was posted yet.
    ``attempt`` is None when the worker gave the delivery back unsent (its destination was
    saturated, or the worker is stopping): then the claim is not counted as an attempt.
    """

    delivery: Delivery
    status: DeliveryStatus
    attempt: Attempt | None
    next_attempt_at: int = 0
    reply_posts: Sequence[Post] = field(default_factory=tuple)


async def enqueue(conn: AsyncConnection, new: Sequence[NewDelivery], now_ms: int) -> list[str]:
    """Insert pending deliveries in the caller's transaction; return their ids."""
    if not new:
        return []
    rows: list[dict[str, Any]] = [
        {
            "id": new_id(),
            "hook_id": d.hook_id,
            "post_id": d.post_id,
            "root_id": d.root_id,
            "channel_id": d.channel_id,
            "url": d.url,
            "destination": destination(d.url),
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


@functools.lru_cache(maxsize=4096)
def destination(url: str) -> str:
    """The per-destination cap's key: scheme, host and port (remembered: asked per delivery)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    default_port = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{parts.hostname}:{port or default_port}"[:300]


async def claim(
    db: Database,
    limit: int,
    lease_ms: int,
    now_ms: int,
    *,
    skip_destinations: Collection[str] = (),
    skip_owners: Collection[str] = (),
    skip_teams: Collection[str] = (),
) -> list[Delivery]:
    """Take up to ``limit`` due pending deliveries, oldest due first.

    The ``skip_*`` lists name destinations, hook owners and teams the worker already has
    enough deliveries waiting for, so one hanging receiver's queue, or one user's or team's
    many hooks (also those the worker has not seen yet), cannot crowd everyone else's out of
    the claim. Together they bind at most ``_IDS_PER_STATEMENT`` parameters (a key left out
    only costs a delivery claimed and given back). Expired leases are put back to pending by
    :func:`release_expired`, which keeps this query an index range scan.
    """
    skip = _SkipLists.within_budget(skip_destinations, skip_owners, skip_teams)
    if db.has_sqlite_batches:
        return await db.sqlite_batch(partial(_claim_raw, limit, now_ms + lease_ms, now_ms, skip))
    conditions = [
        deliveries.c.status == DeliveryStatus.PENDING.value,
        deliveries.c.next_attempt_at <= now_ms,
    ]
    if skip.destinations:
        conditions.append(deliveries.c.destination.not_in(skip.destinations))
    if skip.owners or skip.teams:
        hook_of_delivery = outgoing_hooks.c.id == deliveries.c.hook_id
        skipped_hook = or_(
            outgoing_hooks.c.creator_id.in_(skip.owners),
            outgoing_hooks.c.team_id.in_(skip.teams),
        )
        conditions.append(~exists().where(hook_of_delivery, skipped_hook))
    due_ids = (
        select(deliveries.c.id)
        .where(*conditions)
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
    return [delivery_from_row(r) for r in rows]


@dataclasses.dataclass(frozen=True, slots=True)
class _SkipLists:
    """What one claim passes over, cut to one shared budget of bound parameters."""

    destinations: list[str]
    owners: list[str]
    teams: list[str]

    @classmethod
    def within_budget(cls, *lists: Collection[str]) -> "_SkipLists":
        budget, kept = _IDS_PER_STATEMENT, []
        for values in lists:
            taken = list(values)[:budget]
            budget -= len(taken)
            kept.append(taken)
        destinations, owners, teams = kept
        return cls(destinations=destinations, owners=owners, teams=teams)


_DeliveryRow = namedtuple("_DeliveryRow", [c.name for c in deliveries.c])  # type: ignore[misc]

# Only column names from the schema and ``?`` placeholders are formatted into these.
_CLAIM_RAW = (
    "UPDATE deliveries SET status = ?, lease_expires_at = ?, attempt_count = attempt_count + 1,"  # noqa: S608
    " update_at = ? WHERE id IN (SELECT id FROM deliveries WHERE status = ?"
    " AND next_attempt_at <= ?{skip} ORDER BY next_attempt_at LIMIT ?)"
    f" RETURNING {', '.join(_DeliveryRow._fields)}"
)
_SKIP_DESTINATIONS_RAW = " AND destination NOT IN ({destinations})"
_SKIP_HOOKS_RAW = (
    " AND NOT EXISTS (SELECT 1 FROM outgoing_hooks WHERE outgoing_hooks.id = deliveries.hook_id"
    " AND (outgoing_hooks.creator_id IN ({owners}) OR outgoing_hooks.team_id IN ({teams})))"
)


def _claim_raw(
    limit: int, lease_until: int, now_ms: int, skip: _SkipLists, conn: sqlite3.Connection
) -> list[Delivery]:
    """:func:`claim` as one SQLite statement (the index range scan of ``ix_deliveries_due``;
    a passed-over owner or team costs a primary-key look-up of each scanned delivery's hook)."""
    clauses = []
    if skip.destinations:
        clauses.append(_SKIP_DESTINATIONS_RAW.format(destinations=_marks(skip.destinations)))
    if skip.owners or skip.teams:
        clauses.append(_SKIP_HOOKS_RAW.format(owners=_marks(skip.owners), teams=_marks(skip.teams)))
    parameters = (
        DeliveryStatus.IN_FLIGHT.value,
        lease_until,
        now_ms,
        DeliveryStatus.PENDING.value,
        now_ms,
        *skip.destinations,
        *skip.owners,
        *skip.teams,
        limit,
    )
    sql = _CLAIM_RAW.format(skip="".join(clauses))
    rows = conn.execute(sql, parameters).fetchall()
    return [delivery_from_row(_DeliveryRow._make(row)) for row in rows]


def _marks(values: Sequence[str]) -> str:
    """``?`` placeholders for ``values``; an empty ``IN ()`` is valid SQLite and matches nothing."""
    return ", ".join("?" * len(values))


async def finish(db: Database, results: Sequence[Finish], now_ms: int) -> list[list[Post]]:
    """Record attempts and new states in one transaction, with a handful of statements per batch.

    Returns, per result, the reply posts actually inserted (empty when the lease was lost or a
    reply had already been posted), so the caller can announce them after commit.
    """
    if not results:
        return []
    results = [_storable_finish(r) for r in results]
    attempts = [_attempt_row(r.attempt) for r in results if r.attempt is not None]
    if db.has_sqlite_batches:
        return await db.sqlite_batch(partial(_finish_raw, results, attempts, now_ms))
    async with db.transaction() as conn:
        if attempts:
            await conn.execute(delivery_attempts.insert(), attempts)
        # Which deliveries are still ours (lease unchanged), and which may still post a reply.
        # On PostgreSQL the rows stay locked until commit.
        owned_rows = (
            await conn.execute(
                select(deliveries.c.id, deliveries.c.lease_expires_at, deliveries.c.reply_posted)
                .where(
                    deliveries.c.id.in_([r.delivery.id for r in results]),
                    deliveries.c.status == DeliveryStatus.IN_FLIGHT.value,
                )
                .with_for_update()
            )
        ).all()
        owned = {row.id: (row.lease_expires_at, bool(row.reply_posted)) for row in owned_rows}
        updates, inserted = _plan(results, owned, now_ms)
        if updates:
            await conn.execute(_FINISH_STATEMENT, updates)
        new_posts = [p for posts in inserted for p in posts]
        await insert_posts(conn, new_posts)
        for channel_id, latest in _latest_by_channel(new_posts).items():
            await touch_channel(conn, channel_id, latest[0], count=latest[1])
    return inserted


_OWNED_RAW = (
    "SELECT id, lease_expires_at, reply_posted FROM deliveries WHERE status = ? AND id IN ({ids})"
)
_IDS_PER_STATEMENT = 500  # well under SQLite's bound-parameter limit


def _finish_raw(
    results: Sequence[Finish],
    attempts: list[dict[str, Any]],
    now_ms: int,
    conn: sqlite3.Connection,
) -> list[list[Post]]:
    """:func:`finish` inside ``Database.sqlite_batch``; SQLite's write lock stands in for
    ``FOR UPDATE``."""
    if attempts:
        _INSERT_ATTEMPT_RAW.execute_many(conn, attempts)
    ids = [r.delivery.id for r in results]
    owned: dict[str, tuple[int, bool]] = {}
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        chunk = ids[start : start + _IDS_PER_STATEMENT]
        sql = _OWNED_RAW.format(ids=", ".join("?" * len(chunk)))
        for delivery_id, lease, replied in conn.execute(
            sql, (DeliveryStatus.IN_FLIGHT.value, *chunk)
        ):
            owned[delivery_id] = (lease, bool(replied))
    updates, inserted = _plan(results, owned, now_ms)
    _FINISH_RAW.execute_many(conn, updates)
    new_posts = [p for posts in inserted for p in posts]
    insert_posts_raw(conn, new_posts)
    touch_channels_raw(conn, _latest_by_channel(new_posts))
    return inserted


def _plan(
    results: Sequence[Finish], owned: Mapping[str, tuple[int, bool]], now_ms: int
) -> tuple[list[dict[str, Any]], list[list[Post]]]:
    """The delivery updates and the reply posts to insert, given which rows are still ours.

    ``owned`` maps the ids still ``in_flight`` to (lease expiry, reply already posted). A row
    whose lease changed was taken over by a newer owner: its result wins and ours is dropped.
    """
    updates: list[dict[str, Any]] = []
    inserted: list[list[Post]] = []
    for r in results:
        row = owned.get(r.delivery.id)
        if row is None or row[0] != r.delivery.lease_expires_at:
            inserted.append([])
            continue
        replied = row[1]
        posts_now = list(r.reply_posts) if r.reply_posts and not replied else []
        inserted.append(posts_now)
        d, attempt = r.delivery, r.attempt
        updates.append(
            {
                "b_id": d.id,
                "b_status": r.status.value,
                "b_next": r.next_attempt_at,
                "b_uncount": 0 if attempt else 1,
                "b_code": attempt.status_code if attempt else d.last_status_code,
                "b_kind": storable_text(
                    attempt.error_kind if attempt else d.last_error_kind, _KIND_CHARS
                ),
                "b_error": storable_text(
                    attempt.error_message if attempt else d.last_error, _LAST_ERROR_CHARS
                ),
                "b_reply": bool(replied or posts_now),
                "b_now": now_ms,
            }
        )
    return updates, inserted


_FINISH_STATEMENT = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        next_attempt_at=bindparam("b_next"),
        attempt_count=deliveries.c.attempt_count - bindparam("b_uncount"),
        lease_expires_at=0,
        last_status_code=bindparam("b_code"),
        last_error_kind=bindparam("b_kind"),
        last_error=bindparam("b_error"),
        reply_posted=bindparam("b_reply"),
        update_at=bindparam("b_now"),
    )
)
_FINISH_RAW = CompiledStatement(_FINISH_STATEMENT)
_INSERT_ATTEMPT_RAW = CompiledStatement.insert(delivery_attempts)


def _attempt_row(attempt: Attempt) -> dict[str, Any]:
    """The attempt as a row, each text cut to its column. The headers are stored as they are:
    the client cleaned the response headers as it read them (``storable_header_text``), and the
    request headers are built from values already stored in this database."""
    return {
        "id": attempt.id,
        "delivery_id": attempt.delivery_id,
        "number": attempt.number,
        "started_at": attempt.started_at,
        "duration_ms": attempt.duration_ms,
        "status_code": attempt.status_code,
        "error_kind": storable_text(attempt.error_kind, _KIND_CHARS),
        "error_message": storable_text(attempt.error_message, _ERROR_CHARS),
        "request_headers": attempt.request_headers,
        "response_headers": attempt.response_headers,
        "response_excerpt": storable_text(attempt.response_excerpt),
    }


def _storable_post(post: Post) -> Post:
    """A reply post made storable: the last-resort check behind ``webhooks/replies.py``, which
    already strips NULs and refuses over-long types, so this seldom changes anything."""
    message = storable_text(post.message)
    post_type = storable_text(post.type, _POST_TYPE_CHARS)
    props = storable_json(post.props)
    if message == post.message and post_type == post.type and props == post.props:
        return post
    return dataclasses.replace(post, message=message, type=post_type, props=props)


def _storable_finish(result: Finish) -> Finish:
    if not result.reply_posts:
        return result
    return dataclasses.replace(
        result, reply_posts=tuple(_storable_post(p) for p in result.reply_posts)
    )


class StorageUnavailable(Exception):
    """The database, not a value, refused a write (locked, deadlocked, disconnected, or even a
    delivery's reduced result failed): nothing more was marked; try the rest again later.

    ``inserted`` and ``written`` cover the results before the failing one, which did commit.
    """

    def __init__(self, inserted: list[list[Post]], written: list[Finish]) -> None:
        super().__init__(f"stored {len(written)} results, then the database failed")
        self.inserted = inserted
        self.written = written


UNSTORABLE_MESSAGE = "the result of this attempt could not be stored ({error}); nothing was posted"


def unstorable(result: Finish, error: BaseException) -> Finish:
    """``result`` reduced to what can always be stored: failed, no reply posts, no headers or
    excerpt, an ``unstorable`` attempt saying why. Not retried: the receiver was reached, and
    a retry would most likely bring the same poison back."""
    message = UNSTORABLE_MESSAGE.format(error=type(error).__name__)
    attempt = result.attempt
    if attempt is not None:
        attempt = dataclasses.replace(
            attempt,
            error_kind=ErrorKind.UNSTORABLE.value,
            error_message=message,
            request_headers={},
            response_headers={},
            response_excerpt="",
        )
    return dataclasses.replace(
        result,
        status=DeliveryStatus.FAILED if attempt is not None else result.status,
        attempt=attempt,
        next_attempt_at=0 if attempt is not None else result.next_attempt_at,
        reply_posts=(),
    )


async def finish_isolating(
    db: Database, results: Sequence[Finish], now_ms: int
) -> tuple[list[list[Post]], list[Finish]]:
    """:func:`finish`, and when a batch cannot be written, the bad rows fail on their own.

    A batch refused for its data (see :func:`is_data_error`) is split in halves until the rows
    that fail are alone; each of those is written once more in its :func:`unstorable` form, so
    the others commit and nothing spins. Any other failure (a lock, a deadlock, a lost
    connection) says nothing about the rows, so none is marked: :class:`StorageUnavailable` is
    raised and the caller tries the rest again later. Results are written in order. Returns
    (reply posts inserted per result, the results as written). Also raises
    :class:`StorageUnavailable` when even the reduced form of one row fails.
    """
    inserted: list[list[Post]] = []
    written: list[Finish] = []
    chunks = [list(results)]  # a stack: the next chunk to write is on top
    while chunks:
        chunk = chunks.pop()
        try:
            inserted += await finish(db, chunk, now_ms)
            written += chunk
            continue
        except Exception as error:
            if not is_data_error(error):
                raise StorageUnavailable(inserted, written) from error
            if len(chunk) > 1:
                middle = len(chunk) // 2
                chunks += (chunk[middle:], chunk[:middle])
                continue
            reduced = unstorable(chunk[0], error)
            logger.warning(
                "the result of delivery %s could not be stored; recording it as failed",
                reduced.delivery.id,
                exc_info=error,
            )
        try:
            inserted += await finish(db, [reduced], now_ms)
        except Exception as again:
            raise StorageUnavailable(inserted, written) from again
        written.append(reduced)
    return inserted, written


# SQLSTATE classes of errors caused by the values written: 22 data exception (NUL in text, too
# long, bad encoding), 23 integrity constraint violation (a duplicate id, a missing parent).
_DATA_SQLSTATE_CLASSES = ("22", "23")


def is_data_error(error: BaseException) -> bool:
    """True when ``error`` is a write refused for the values in it, which trying again would
    only repeat; False for trouble with the database itself (locked, deadlocked, a lost or
    closed connection, a missing table), which passes or needs an operator, not a verdict.

    Covers both write paths: SQLAlchemy's wrappers around asyncpg (classified by SQLSTATE) or
    pysqlite, the raw ``sqlite3`` errors of ``Database.sqlite_batch``, and Python's own value
    errors raised while binding a parameter anywhere in the chain of causes (asyncpg's
    client-side ``DataError`` for a value it cannot encode reaches us as an ``InterfaceError``
    with no SQLSTATE, caused by a ``ValueError``). An exception from neither driver (a bug in
    building the rows) counts as data too: isolating the row it fails on costs that one
    delivery, where retrying the whole batch for ever would stall every hook.
    """
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return False
    chain = _causes(error)
    if any(isinstance(e, ValueError | OverflowError) for e in chain):  # UnicodeError too
        return True
    if isinstance(error, StatementError):
        if error.orig is None:
            return False
        error = error.orig
    if isinstance(error, sqlite3.IntegrityError | sqlite3.DataError):
        return True
    if isinstance(error, sqlite3.Error):
        return False  # OperationalError ("database is locked"), a closed connection, …
    state = getattr(error, "sqlstate", None)
    if isinstance(state, str):
        return state[:2] in _DATA_SQLSTATE_CLASSES
    return not isinstance(error, DBAPIError | OSError | TimeoutError)


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and what caused it (``orig``, ``__cause__``, ``__context__``), each once."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending and len(seen) < 16:
        current = pending.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        orig = getattr(current, "orig", None)
        pending += [
            orig if isinstance(orig, BaseException) else None,
            current.__cause__,
            current.__context__,
        ]
    return seen


def _latest_by_channel(posts: Sequence[Post]) -> dict[str, tuple[int, int]]:
    """channel id → (newest create_at, number of posts) for the channel counters."""
    result: dict[str, tuple[int, int]] = {}
    for post in posts:
        latest, count = result.get(post.channel_id, (0, 0))
        result[post.channel_id] = (max(latest, post.create_at), count + 1)
    return result


INTERRUPTED_MESSAGE = (
    "cut off: the worker stopped during this attempt (its lease ran out); retried with the same "
    "delivery id"
)


async def release_expired(db: Database, now_ms: int) -> int:
    """Put deliveries whose worker died (lease expired) back in the queue, same delivery id.

    The cut-off try is logged as an ``interrupted`` attempt, so the log shows every attempt the
    count says was made: it started when the delivery was claimed (``update_at``), and how long
    it ran is unknown (0). On PostgreSQL the rows are locked, so two workers releasing at once
    never log the same try twice.
    """
    async with db.transaction() as conn:
        expired = (
            await conn.execute(
                select(deliveries.c.id, deliveries.c.attempt_count, deliveries.c.update_at)
                .where(
                    deliveries.c.status == DeliveryStatus.IN_FLIGHT.value,
                    deliveries.c.lease_expires_at < now_ms,
                )
                .with_for_update(skip_locked=True)
            )
        ).all()
        for start in range(0, len(expired), _IDS_PER_STATEMENT):
            chunk = expired[start : start + _IDS_PER_STATEMENT]
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_([row.id for row in chunk]))
                .values(
                    status=DeliveryStatus.PENDING.value,
                    lease_expires_at=0,
                    update_at=now_ms,
                    last_status_code=0,
                    last_error_kind=ErrorKind.INTERRUPTED.value,
                    last_error=INTERRUPTED_MESSAGE,
                )
            )
            await conn.execute(
                delivery_attempts.insert(),
                [
                    _attempt_row(
                        Attempt(
                            id=new_id(),
                            delivery_id=row.id,
                            number=row.attempt_count,
                            started_at=row.update_at,
                            duration_ms=0,
                            status_code=0,
                            error_kind=ErrorKind.INTERRUPTED.value,
                            error_message=INTERRUPTED_MESSAGE,
                            request_headers={},
                            response_headers={},
                            response_excerpt="",
                        )
                    )
                    for row in chunk
                ],
            )
    return len(expired)


async def replace_body(db: Database, delivery_id: str, body: bytes) -> None:
    """Store a delivery's re-encoded body (a retry after its hook's token was regenerated)."""
    async with db.transaction() as conn:
        await conn.execute(
            update(deliveries).where(deliveries.c.id == delivery_id).values(body=body)
        )


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
