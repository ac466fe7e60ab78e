"""The outbox's rules, as values: what a delivery to make is, what a write-back may change.

Why an outbox: the post and its delivery rows commit together, so a crash can neither lose a
delivery nor send one for a post that was rolled back. Why leases: a worker that dies mid-attempt
leaves rows ``in_flight``; once the lease runs out any worker takes them again, with the same
delivery id. The lease's expiry time doubles as a fencing token: a late worker whose lease was
taken over cannot overwrite the new owner's result (:func:`plan_write_back`). Status
transitions are listed in ``tidings.domain.deliveries``; the SQL is ``tidings.store.outbox``.

Pure; no I/O.
"""

import dataclasses
import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import field
from urllib.parse import urlsplit

from tidings.domain.deliveries import Attempt, Delivery, DeliveryStatus, ErrorKind
from tidings.domain.posts import Post
from tidings.domain.values import value_object


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
    # The triggering post's webhook_depth; sha256 of the body's response_url secret, if any.
    post_depth: int = 0
    response_secret_hash: str = ""


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


@dataclasses.dataclass(frozen=True, slots=True)
class SkipLists:
    """What one claim passes over: destinations, hook owners and teams the worker already has
    enough deliveries waiting for."""

    destinations: list[str]
    owners: list[str]
    teams: list[str]

    @classmethod
    def within_budget(
        cls,
        budget: int,
        destinations: Collection[str] = (),
        owners: Collection[str] = (),
        teams: Collection[str] = (),
    ) -> "SkipLists":
        """The lists cut to ``budget`` values in all, destinations first, then owners, then
        teams. A key left out only costs a delivery claimed and given back."""
        kept = []
        for values in (destinations, owners, teams):
            taken = list(values)[: max(0, budget)]
            budget -= len(taken)
            kept.append(taken)
        return cls(destinations=kept[0], owners=kept[1], teams=kept[2])


class DueFloor:
    """Where the next claim may start reading the due range: past the deliveries the last
    claim found there that all belonged to what it passed over.

    Why: the due range is read oldest due first, and a hanging receiver's backlog is the
    oldest there is. Every claim passing over a saturated destination read all of its due
    entries again: P4's 2,000 cost each claim 0.45 ms on the event loop, in front of every
    healthy delivery (docs/performance.md). A claim that read anything learns the earliest due
    time it read past the skipped entries (:meth:`found`); the next claim with the same skip
    lists starts there (:meth:`start`).

    What may land below the floor afterwards is only delayed, never lost: a lease put back
    with its old due time, a row another PostgreSQL worker held and let go, a delivery queued
    by a process whose clock runs behind. So the floor is forgotten when the skip lists change
    (room came back) and when it is ``max_age_ms`` old, and a claim then reads the whole range.
    """

    __slots__ = ("_at", "_from", "_lists", "max_age_ms")

    def __init__(self, max_age_ms: int) -> None:
        self.max_age_ms = max_age_ms
        self._lists: SkipLists | None = None
        self._from = 0
        self._at = 0

    def start(self, lists: SkipLists, now_ms: int) -> int:
        """The due time a claim passing over ``lists`` at ``now_ms`` may start from (0: all)."""
        return self._from if self._holds(lists, now_ms) else 0

    def found(self, lists: SkipLists, earliest_due: int, now_ms: int) -> None:
        """A claim passing over ``lists`` read nothing due before ``earliest_due`` but what it
        passed over. A claim that passes over nothing needs no floor."""
        if not (lists.destinations or lists.owners or lists.teams):
            self._lists = None
            return
        if not self._holds(lists, now_ms):
            self._at = now_ms  # a new floor, after a claim that read the whole range
        self._lists, self._from = lists, earliest_due

    def _holds(self, lists: SkipLists, now_ms: int) -> bool:
        """Made for the same lists, and younger than ``max_age_ms`` (a clock that went back
        ends it too)."""
        return self._lists == lists and 0 <= now_ms - self._at < self.max_age_ms


def pick_within_room(
    candidates: Sequence[tuple[str, str]],
    rooms: Mapping[str, int],
    default_room: int,
    limit: int,
) -> list[str]:
    """The ids to claim of due ``(id, destination)`` candidates, in their order: at most
    ``limit``, and of each destination at most its room (``rooms``, else ``default_room``).

    Why: candidates come oldest due first, so a hanging receiver's backlog heads the list as
    soon as one of its slots frees. Claimed whole, all but a few of those would be refused by
    the worker's slots and given back, a write each, while the healthy deliveries behind them
    waited for the next claim.
    """
    left = dict(rooms)
    picked: list[str] = []
    for delivery_id, destination in candidates:
        room = left.get(destination, default_room)
        if room <= 0:
            continue
        left[destination] = room - 1
        picked.append(delivery_id)
        if len(picked) >= limit:
            break
    return picked


@value_object
class Ownership:
    """What the database says of a claimed delivery at write-back: still ``in_flight`` under
    this lease, and whether a reply was posted for it already."""

    lease_expires_at: int
    reply_posted: bool


@value_object
class WriteBack:
    """One result that still owns its delivery, as it is written."""

    delivery_id: str
    status: DeliveryStatus
    next_attempt_at: int
    uncount: int
    """1 when the delivery was given back unsent: its claim was no attempt."""
    status_code: int
    error_kind: str
    error_message: str
    reply_posted: bool


def plan_write_back(
    results: Sequence[Finish], owned: Mapping[str, Ownership]
) -> tuple[list[WriteBack], list[list[Post]]]:
    """The delivery updates, and per result the reply posts to insert now.

    ``owned`` holds the deliveries still ``in_flight``. A result whose delivery is missing
    there, or whose lease changed, lost its claim to a newer owner: the newer result wins and
    this one is dropped, reply posts included. Reply posts are inserted only once per
    delivery: never when one was posted already (a retry after a write-back that committed).
    A result given back unsent keeps the delivery's last attempt's code and error.
    """
    writes: list[WriteBack] = []
    inserted: list[list[Post]] = []
    for r in results:
        d = r.delivery
        row = owned.get(d.id)
        if row is None or row.lease_expires_at != d.lease_expires_at:
            inserted.append([])
            continue
        posts_now = list(r.reply_posts) if r.reply_posts and not row.reply_posted else []
        inserted.append(posts_now)
        attempt = r.attempt
        writes.append(
            WriteBack(
                delivery_id=d.id,
                status=r.status,
                next_attempt_at=r.next_attempt_at,
                uncount=0 if attempt else 1,
                status_code=attempt.status_code if attempt else d.last_status_code,
                error_kind=attempt.error_kind if attempt else d.last_error_kind,
                error_message=attempt.error_message if attempt else d.last_error,
                reply_posted=bool(row.reply_posted or posts_now),
            )
        )
    return writes, inserted


UNSTORABLE_MESSAGE = "the result of this attempt could not be stored ({error}); nothing was posted"


def unstorable(result: Finish, error: BaseException) -> Finish:
    """``result`` reduced to what can always be stored: failed, no reply posts, no headers or
    excerpt, an ``unstorable`` attempt saying why. Not retried: the receiver was reached, and
    a retry would most likely bring the same poison back. A delivery given back unsent (no
    attempt) keeps its new state, without reply posts."""
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


INTERRUPTED_MESSAGE = (
    "cut off: the worker stopped during this attempt (its lease ran out); retried with the same "
    "delivery id"
)


def interrupted_attempt(attempt_id: str, delivery_id: str, number: int, claimed_at: int) -> Attempt:
    """The log's entry for a try cut off by a dying worker: it started when the delivery was
    claimed, and how long it ran is unknown (0), so the log shows every attempt the count says
    was made."""
    return Attempt(
        id=attempt_id,
        delivery_id=delivery_id,
        number=number,
        started_at=claimed_at,
        duration_ms=0,
        status_code=0,
        error_kind=ErrorKind.INTERRUPTED.value,
        error_message=INTERRUPTED_MESSAGE,
        request_headers={},
        response_headers={},
        response_excerpt="",
    )


def latest_by_channel(posts: Sequence[Post]) -> dict[str, tuple[int, int]]:
    """channel id → (newest create_at, number of posts), for the channels' counters."""
    result: dict[str, tuple[int, int]] = {}
    for post in posts:
        latest, count = result.get(post.channel_id, (0, 0))
        result[post.channel_id] = (max(latest, post.create_at), count + 1)
    return result
