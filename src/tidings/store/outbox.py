"""The outbox's SQL: deliveries enqueued in the poster's transaction, claimed with a lease,
finished in batches, released when their worker died.

Each function is (part of) a unit of work over one :class:`Connection`, the same code for SQLite
and PostgreSQL: the worker runs a claim as one unit and a batch's write-back as one unit, with a
handful of statements each, built once here; the rows a write-back inserts or updates go in one
``executemany`` per statement, compiled once per dialect (``store/compiled.py``: the worker does
this many times a second, often for a handful of rows). On PostgreSQL the claim and the release
take their rows ``FOR UPDATE SKIP LOCKED`` so several workers never take the same row, and the
write-back locks the rows it fences on; SQLite's compiler drops those clauses, and its one write
lock (``BEGIN IMMEDIATE``) does the same. The rules (fencing by lease, replying once, what an
unstorable result becomes) are ``tidings.domain.outbox``.

Imports ``tidings.domain``, ``tidings.store``, and the drivers' error classes.
"""

import dataclasses
import logging
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from sqlalchemy import bindparam, exists, func, or_, select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from tidings.domain.deliveries import Attempt, Delivery, DeliveryStatus, ErrorKind
from tidings.domain.outbox import (
    INTERRUPTED_MESSAGE,
    DueFloor,
    Finish,
    NewDelivery,
    Ownership,
    SkipLists,
    WriteBack,
    destination,
    interrupted_attempt,
    latest_by_channel,
    pick_within_room,
    plan_write_back,
    unstorable,
)
from tidings.domain.posts import Post
from tidings.domain.storable import storable_json, storable_text
from tidings.ids import new_id
from tidings.store.compiled import Prepared
from tidings.store.database import Connection
from tidings.store.deliveries import delivery_from_row
from tidings.store.posts import insert_posts_batch
from tidings.store.schema import deliveries, delivery_attempts, outgoing_hooks, posts
from tidings.store.teams import touch_channels

__all__ = [
    "claim",
    "depth",
    "enqueue",
    "finish",
    "finish_isolating",
    "insert_attempts",
    "insert_reply_posts",
    "is_data_error",
    "release_expired",
    "replace_body",
    "requeue",
    "requeue_failed",
    "unless_refused",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

IDS_PER_STATEMENT = 500
"""Values one statement binds for a list (well under SQLite's classic limit of 999)."""


def _length(column: Any) -> int:
    length = column.type.length
    assert isinstance(length, int)
    return length


# Every string the worker stores is bounded by its column, read from the schema.
_ERROR_CHARS = _length(delivery_attempts.c.error_message)
_KIND_CHARS = _length(delivery_attempts.c.error_kind)
_LAST_ERROR_CHARS = _length(deliveries.c.last_error)
_POST_TYPE_CHARS = _length(posts.c.type)

_PENDING = DeliveryStatus.PENDING.value
_IN_FLIGHT = DeliveryStatus.IN_FLIGHT.value
_FAILED = DeliveryStatus.FAILED.value

_INSERT_DELIVERIES = Prepared.insert(deliveries)
_INSERT_ATTEMPTS = Prepared.insert(delivery_attempts)


def enqueue(conn: Connection, new: Sequence[NewDelivery], now_ms: int) -> list[str]:
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
            "status": _PENDING,
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
            "post_depth": d.post_depth,
            "response_secret_hash": d.response_secret_hash,
            "response_uses": 0,
        }
        for d in new
    ]
    _INSERT_DELIVERIES.run_many(conn, rows)
    return [str(r["id"]) for r in rows]


def _due_conditions(skip_destinations: bool, skip_hooks: bool) -> list[Any]:
    conditions = [
        deliveries.c.status == _PENDING,
        deliveries.c.next_attempt_at.between(bindparam("b_from"), bindparam("b_now")),
    ]
    if skip_destinations:
        conditions.append(
            deliveries.c.destination.not_in(bindparam("b_destinations", expanding=True))
        )
    if skip_hooks:
        skipped_hook = or_(
            outgoing_hooks.c.creator_id.in_(bindparam("b_owners", expanding=True)),
            outgoing_hooks.c.team_id.in_(bindparam("b_teams", expanding=True)),
        )
        conditions.append(
            ~exists().where(outgoing_hooks.c.id == deliveries.c.hook_id, skipped_hook)
        )
    return conditions


_CLAIMED_VALUES: dict[str, Any] = {
    "status": _IN_FLIGHT,
    "lease_expires_at": bindparam("b_lease_until"),
    "attempt_count": deliveries.c.attempt_count + 1,
    "update_at": bindparam("b_now"),
}


def _claim_statement(skip_destinations: bool, skip_hooks: bool) -> Any:
    """The claim, passing over listed destinations and/or hooks of listed owners or teams.

    SQLite runs it as a range scan of ``ix_deliveries_due``, which covers the destination and
    id, so a passed-over destination's deliveries cost index entries only (still one each: a
    hanging receiver's backlog of 20,000 costs each claim about 2.7 ms, against 10.6 ms reading
    rows). A passed-over owner or team costs a primary-key look-up of each scanned delivery's
    hook, so that clause is left out when no owner or team is listed.
    """
    due_ids = (
        select(deliveries.c.id)
        .where(*_due_conditions(skip_destinations, skip_hooks))
        .order_by(deliveries.c.next_attempt_at)
        .limit(bindparam("b_limit"))
        .with_for_update(skip_locked=True)
    )
    return (
        update(deliveries)
        .where(deliveries.c.id.in_(due_ids.scalar_subquery()))
        .values(**_CLAIMED_VALUES)
        .returning(*deliveries.c)
    )


def _candidates_statement(skip_destinations: bool, skip_hooks: bool) -> Any:
    """The due deliveries' ids and destinations, oldest due first: a claim that must keep to
    each destination's room picks from these (read from the index alone on SQLite; locked,
    skipping rows other workers hold, on PostgreSQL)."""
    return (
        select(deliveries.c.id, deliveries.c.destination, deliveries.c.next_attempt_at)
        .where(*_due_conditions(skip_destinations, skip_hooks))
        .order_by(deliveries.c.next_attempt_at)
        .limit(bindparam("b_scan"))
        .with_for_update(skip_locked=True)
    )


# The picked ids, claimed if still pending (on PostgreSQL another worker may have taken one
# between the two statements only if it was not locked by the first).
_CLAIM_PICKED = (
    update(deliveries)
    .where(
        deliveries.c.id.in_(bindparam("b_ids", expanding=True)),
        deliveries.c.status == _PENDING,
    )
    .values(**_CLAIMED_VALUES)
    .returning(*deliveries.c)
)

_CLAIMS = {(d, h): _claim_statement(d, h) for d in (False, True) for h in (False, True)}
_CANDIDATES = {(d, h): _candidates_statement(d, h) for d in (False, True) for h in (False, True)}
# How many candidates a room-keeping claim reads per delivery it may claim.
CANDIDATES_PER_CLAIM = 4


def claim(
    conn: Connection,
    limit: int,
    lease_ms: int,
    now_ms: int,
    *,
    skip_destinations: Collection[str] = (),
    skip_owners: Collection[str] = (),
    skip_teams: Collection[str] = (),
    destination_rooms: Mapping[str, int] | None = None,
    default_room: int | None = None,
    floor: DueFloor | None = None,
) -> list[Delivery]:
    """Take up to ``limit`` due pending deliveries, oldest due first, leased until
    ``now_ms + lease_ms``; each claim counts as an attempt.

    ``destination_rooms`` says how many more deliveries the worker can take of some
    destinations (``default_room`` of any other); when one has less room than ``limit``, the
    claim reads the due candidates first and takes no more of a destination than its room
    (:func:`~tidings.domain.outbox.pick_within_room`), in two statements instead of one.

    The ``skip_*`` lists name destinations, hook owners and teams the worker already has
    enough deliveries waiting for, so one hanging receiver's queue, or one user's or team's
    many hooks (also those the worker has not seen yet), cannot crowd everyone else's out of
    the claim. Together they bind at most :data:`IDS_PER_STATEMENT` values. Expired leases are
    put back to pending by :func:`release_expired`, which keeps this query an index range scan.
    ``floor`` (the worker's, kept from claim to claim) lets a claim that passes over the same
    lists as the last one start past what that one found it all passed over.
    """
    skip = SkipLists.within_budget(IDS_PER_STATEMENT, skip_destinations, skip_owners, skip_teams)
    skip_hooks = bool(skip.owners or skip.teams)
    parameters: dict[str, Any] = {
        "b_from": floor.start(skip, now_ms) if floor is not None else 0,
        "b_now": now_ms,
        "b_limit": limit,
        "b_lease_until": now_ms + lease_ms,
    }
    if skip.destinations:
        parameters["b_destinations"] = skip.destinations
    if skip_hooks:
        parameters["b_owners"] = skip.owners
        parameters["b_teams"] = skip.teams
    shape = bool(skip.destinations), skip_hooks
    rooms = destination_rooms or {}
    default = limit if default_room is None else default_room
    passed = set(skip.destinations)
    if default < limit or any(r < limit for d, r in rooms.items() if d not in passed):
        parameters["b_scan"] = limit * CANDIDATES_PER_CLAIM
        candidates = conn.execute(_CANDIDATES[shape], parameters).all()
        if floor is not None and candidates:
            floor.found(skip, candidates[0].next_attempt_at, now_ms)
        picked = pick_within_room(
            [(c.id, c.destination) for c in candidates], rooms, default, limit
        )
        if not picked:
            return []
        rows = conn.execute(
            _CLAIM_PICKED,
            {"b_ids": picked, "b_now": now_ms, "b_lease_until": parameters["b_lease_until"]},
        ).all()
    else:
        rows = conn.execute(_CLAIMS[shape], parameters).all()
        if floor is not None and rows:
            floor.found(skip, min(row.next_attempt_at for row in rows), now_ms)
    return [delivery_from_row(_DeliveryRow._make(row)) for row in rows]


# A claim returns a batch of wide rows, and a SQLAlchemy ``Row`` resolves each attribute in
# Python: read as plain tuples with named fields instead, the claim's share of the database
# thread's time, delivering to the P1 receiver, fell from about a quarter to under a tenth.
_DeliveryRow = namedtuple("_DeliveryRow", [c.name for c in deliveries.c])  # type: ignore[misc]


_OWNED = (
    select(deliveries.c.id, deliveries.c.lease_expires_at, deliveries.c.reply_posted)
    .where(
        deliveries.c.id.in_(bindparam("b_ids", expanding=True)),
        deliveries.c.status == _IN_FLIGHT,
    )
    .with_for_update()
)

_FINISH = Prepared(
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


def finish(conn: Connection, results: Sequence[Finish], now_ms: int) -> list[list[Post]]:
    """Record attempts, new states and reply posts, with a handful of statements per batch.

    Returns, per result, the reply posts actually inserted (empty when the lease was lost or a
    reply had already been posted), so the caller can announce them after commit. When the
    batch is refused for its data (:func:`is_data_error`), its unit rolls back and the caller
    hands the same results to :func:`finish_isolating`.
    """
    if not results:
        return []
    results = [_storable_finish(r) for r in results]
    _INSERT_ATTEMPTS.run_many(
        conn, [_attempt_row(r.attempt) for r in results if r.attempt is not None]
    )
    # Which deliveries are still ours, and which may still post a reply. On PostgreSQL the
    # rows stay locked until commit.
    owned = _owned(conn, [r.delivery.id for r in results])
    writes, inserted = plan_write_back(results, owned)
    _FINISH.run_many(conn, [_finish_row(w, now_ms) for w in writes])
    insert_reply_posts(conn, [p for posts_now in inserted for p in posts_now])
    return inserted


def insert_reply_posts(conn: Connection, new_posts: Sequence[Post]) -> None:
    """Webhook reply posts and their channels' counters: the worker's write-back and deferred
    replies (``services/responses.py``) both write replies through here."""
    new_posts = [_storable_post(p) for p in new_posts]
    insert_posts_batch(conn, new_posts)
    touch_channels(conn, latest_by_channel(new_posts))


def insert_attempts(conn: Connection, attempts: Sequence[Attempt]) -> None:
    """Attempt rows written outside a write-back (a use of a ``response_url``), each text cut
    to its column."""
    _INSERT_ATTEMPTS.run_many(conn, [_attempt_row(a) for a in attempts])


def _owned(conn: Connection, ids: list[str]) -> dict[str, Ownership]:
    owned: dict[str, Ownership] = {}
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        chunk = ids[start : start + IDS_PER_STATEMENT]
        for delivery_id, lease, replied in conn.execute(_OWNED, {"b_ids": chunk}).all():
            owned[delivery_id] = Ownership(lease_expires_at=lease, reply_posted=bool(replied))
    return owned


def _finish_row(write: WriteBack, now_ms: int) -> dict[str, Any]:
    return {
        "b_id": write.delivery_id,
        "b_status": write.status.value,
        "b_next": write.next_attempt_at,
        "b_uncount": write.uncount,
        "b_code": write.status_code,
        "b_kind": storable_text(write.error_kind, _KIND_CHARS),
        "b_error": storable_text(write.error_message, _LAST_ERROR_CHARS),
        "b_reply": write.reply_posted,
        "b_now": now_ms,
    }


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


def finish_isolating(
    conn: Connection, results: Sequence[Finish], now_ms: int
) -> tuple[list[list[Post]], list[Finish]]:
    """:func:`finish` for a batch that was refused for its data: the bad rows fail on their own.

    Each try runs in a savepoint (which :func:`finish` alone does without: a savepoint costs
    two statements, and a refused batch is rare). A chunk refused for its data (see
    :func:`is_data_error`) is split in halves until the rows that fail are alone; each of those
    is written once more in its :func:`~tidings.domain.outbox.unstorable` form, so the others
    commit and nothing spins. Results are written in order. Returns (reply posts inserted per
    result, the results as written).

    Any other failure (a lock, a deadlock, a lost connection), and a row whose reduced form is
    refused too, is raised: it says nothing about the rows, so none is marked, and since the
    unit then rolls back, nothing of the batch was written; the caller tries again later.
    """
    inserted: list[list[Post]] = []
    written: list[Finish] = []
    chunks = [list(results)]  # a stack: the next chunk to write is on top
    while chunks:
        chunk = chunks.pop()
        try:
            with conn.begin_nested():
                inserted += finish(conn, chunk, now_ms)
            written += chunk
            continue
        except Exception as error:
            if not is_data_error(error):
                raise
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
        with conn.begin_nested():
            inserted += finish(conn, [reduced], now_ms)
        written.append(reduced)
    return inserted, written


def unless_refused(conn: Connection, work: Callable[[Connection], _T]) -> _T | None:
    """``work(conn)`` in a savepoint; None, with its writes undone, if the database refused them
    for their values (:func:`is_data_error`). For the chained deliveries of a batch written by
    :func:`finish_isolating`: its posts must commit even if those cannot."""
    try:
        with conn.begin_nested():
            return work(conn)
    except Exception as error:
        if not is_data_error(error):
            raise
        logger.warning("deliveries chained to reply posts could not be stored", exc_info=error)
        return None


# SQLSTATE classes of errors caused by the values written: 22 data exception (NUL in text, too
# long, bad encoding), 23 integrity constraint violation (a duplicate id, a missing parent).
_DATA_SQLSTATE_CLASSES = ("22", "23")


def is_data_error(error: BaseException) -> bool:
    """True when ``error`` is a write refused for the values in it, which trying again would
    only repeat; False for trouble with the database itself (locked, deadlocked, a lost or
    closed connection, a missing table), which passes or needs an operator, not a verdict.

    Classified, in order: a connection SQLAlchemy saw drop is trouble; a Python value error
    anywhere in the chain of causes is data (``sqlite3`` raises ``UnicodeEncodeError`` for a lone
    surrogate, psycopg a ``DataError`` for a NUL, caused by nothing in the server); then the
    driver's error: PostgreSQL's SQLSTATE when the server sent one (psycopg's ``.sqlstate``),
    else its DB-API class (``IntegrityError`` and ``DataError`` are data; ``OperationalError``
    such as "database is locked", ``InterfaceError``, ``ProgrammingError`` are not). An
    exception from no driver (a bug in building the rows) counts as data: isolating the row it
    fails on costs that one delivery, where retrying the whole batch for ever would stall every
    hook.
    """
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return False
    if any(isinstance(e, ValueError | OverflowError) for e in _causes(error)):  # UnicodeError too
        return True
    if isinstance(error, StatementError):
        if error.orig is None:
            return False
        state = _sqlstate(error.orig)
        if state is not None:
            return state[:2] in _DATA_SQLSTATE_CLASSES
        if isinstance(error, DBAPIError):  # SQLAlchemy names its wrapper after the driver's class
            return isinstance(error, IntegrityError | DataError)
        error = error.orig  # raised while executing, by no driver
    state = _sqlstate(error)
    if state is not None:
        return state[:2] in _DATA_SQLSTATE_CLASSES
    if isinstance(
        error,
        sqlite3.IntegrityError | sqlite3.DataError | psycopg.IntegrityError | psycopg.DataError,
    ):
        return True
    if isinstance(error, sqlite3.Error | psycopg.Error):
        return False
    return not isinstance(error, OSError | TimeoutError)


def _sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE PostgreSQL sent with ``error`` (psycopg's ``.sqlstate``), if any."""
    state = getattr(error, "sqlstate", None)
    return state if isinstance(state, str) and state else None


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


_EXPIRED = (
    select(deliveries.c.id, deliveries.c.attempt_count, deliveries.c.update_at)
    .where(
        deliveries.c.status == _IN_FLIGHT,
        deliveries.c.lease_expires_at < bindparam("b_now"),
    )
    .with_for_update(skip_locked=True)
)

_RELEASE = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(
        status=_PENDING,
        lease_expires_at=0,
        update_at=bindparam("b_now"),
        last_status_code=0,
        last_error_kind=ErrorKind.INTERRUPTED.value,
        last_error=INTERRUPTED_MESSAGE,
    )
)


def release_expired(conn: Connection, now_ms: int) -> int:
    """Put deliveries whose worker died (lease expired) back in the queue, same delivery id;
    return how many.

    The cut-off try is logged as an ``interrupted`` attempt
    (:func:`~tidings.domain.outbox.interrupted_attempt`: it started when the delivery was
    claimed, its ``update_at``). On PostgreSQL the rows are locked, so two workers releasing at
    once never log the same try twice.
    """
    expired = conn.execute(_EXPIRED, {"b_now": now_ms}).all()
    if not expired:
        return 0
    attempts = [
        interrupted_attempt(new_id(), row.id, row.attempt_count, row.update_at) for row in expired
    ]
    conn.execute(
        _RELEASE,
        [{"b_id": a.delivery_id, "b_now": now_ms} for a in attempts],
    )
    _INSERT_ATTEMPTS.run_many(conn, [_attempt_row(a) for a in attempts])
    return len(expired)


def replace_body(conn: Connection, delivery_id: str, body: bytes) -> None:
    """Store a delivery's re-encoded body (a retry after its hook's token was regenerated)."""
    conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(body=body))


def requeue(conn: Connection, delivery_id: str, now_ms: int) -> None:
    """Start a new attempt chain for a finished delivery (redeliver): same id, same body."""
    conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            status=_PENDING,
            next_attempt_at=now_ms,
            attempt_count=0,
            lease_expires_at=0,
            update_at=now_ms,
        )
    )


def requeue_failed(
    conn: Connection, hook_id: str, since_ms: int, limit: int, now_ms: int
) -> tuple[int, bool]:
    """Start a new attempt chain for up to ``limit`` of a hook's failed deliveries created at or
    after ``since_ms``, oldest first (bulk redeliver); (how many, whether more remain).

    Two statements whatever the count: one ``UPDATE … WHERE id IN (SELECT … LIMIT)`` and one
    ``EXISTS``. The update repeats the ``failed`` test outside the subquery so that, on
    PostgreSQL, a row another transaction requeued meanwhile is re-checked and left alone
    instead of being counted twice. Pings (no post) are the owner's experiments, not traffic
    lost in an outage, and stay as they are.
    """
    failed = (
        (deliveries.c.hook_id == hook_id)
        & (deliveries.c.status == _FAILED)
        & (deliveries.c.create_at >= since_ms)
        & (deliveries.c.post_id != "")
    )
    oldest = (
        select(deliveries.c.id)
        .where(failed)
        .order_by(deliveries.c.create_at, deliveries.c.id)
        .limit(limit)
    )
    result = conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(oldest), deliveries.c.status == _FAILED)
        .values(
            status=_PENDING,
            next_attempt_at=now_ms,
            attempt_count=0,
            lease_expires_at=0,
            update_at=now_ms,
        )
    )
    more = bool(conn.execute(select(exists().where(failed))).scalar())
    return int(result.rowcount), more


_DEPTH = select(func.count(), func.min(deliveries.c.next_attempt_at)).where(
    deliveries.c.status.in_([_PENDING, _IN_FLIGHT])
)


def depth(conn: Connection, now_ms: int) -> tuple[int, int]:
    """(deliveries waiting or in flight, age in ms of the oldest due one) for metrics."""
    count, oldest = conn.execute(_DEPTH).one()
    return int(count), max(0, now_ms - int(oldest)) if oldest is not None else 0
