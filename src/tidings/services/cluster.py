"""This process's link to the others on the same PostgreSQL: one event stream, one truth about
sessions.

Why: a browser is connected to one ``tidings serve`` process, but the post it should see may be
made through another, and the reply to it written by a ``tidings worker``. Every process runs one
:class:`Cluster`:

- **Publishing.** The event hub hands every event it publishes to :meth:`Cluster.share_event`,
  and ``services.users`` hands over every ended session and changed user. Nothing is written
  in the request's transaction: notices wait in a list, and one publisher task appends them to
  the ``cluster_events`` log in batches, after the commits that caused them, with one ``NOTIFY``
  per batch (a ``NOTIFY`` in every post's transaction would take PostgreSQL's database-wide
  notify lock at each commit).
- **Listening.** A reader ``LISTEN``s for those wake-ups and reads the log by sequence number,
  so every notice is applied once and in the order it was appended. When the listening
  connection drops it is made again, and the reader polls meanwhile, so a gap is read, not lost.
  If the reader could not read for nearly as long as the log is kept, it may have missed
  notices: then it closes every websocket (clients reconnect and fetch afresh) and forgets every
  cached session.

Order: a process that listens delivers even its *own* events to its websockets in log order
(the publisher keeps them in memory, keyed by the sequence numbers the append returned, and the
reader hands them over when it reaches those numbers). So every socket, on any process, sees a
channel's events in one order: the log's. That costs the local socket one batch append (a few
ms); when the numbers the append returned follow straight on from what the reader has seen, the
publisher delivers at once, without reading its rows back. Session changes are applied here at
once, before they are shared: they are about security, not order.

A request that published waits, before its response starts, for its own notices to reach the
log (:meth:`Cluster.watch_request`, :meth:`Cluster.sent`): its client's next request may go to
another process, and must find there what this one caused. A request that published nothing
(a health check, a read) never waits.

SQLite has a single server process: there the cluster does nothing.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any

from tidings.clock import Clock
from tidings.events import CLOSE_FELL_BEHIND, Event, EventHub
from tidings.ids import new_id
from tidings.services.session_cache import SessionCache
from tidings.store import cluster_events as log_store
from tidings.store.database import Connection, Database, Subscription

logger = logging.getLogger(__name__)

BATCH = 500  # notices appended in one transaction
READ_BATCH = 1000  # rows read at once while catching up
MAX_PENDING = 100_000  # notices held while the database is unreachable; older ones are dropped
KEEP_SECONDS = 600.0  # how long the log keeps a notice
SWEEP_EVERY_SECONDS = 60.0
# With the listening connection up, the reader still reads this often, in case a wake-up was
# missed; with it down, it reads every POLL_SECONDS and tries to listen again.
IDLE_READ_SECONDS = 5.0
POLL_SECONDS = 0.25
RETRY_SECONDS = 1.0
STOP_WAIT_SECONDS = 5.0
SEND_WAIT_SECONDS = 2.0  # the longest a response waits for its notices to reach the log
STALL_SECONDS = 2.0  # how long the reader waits for the publisher to claim a row of its own
# A reader that could not read for this long may have lost notices to the sweep.
STALE_SECONDS = KEEP_SECONDS - 2 * SWEEP_EVERY_SECONDS


@dataclass
class RequestNotices:
    """What one request has queued: its response waits until the log holds notices up to
    ``upto`` (0: it queued none)."""

    upto: int = 0


# The request being served in this task, if any (``Cluster.watch_request``).
_REQUEST: ContextVar[RequestNotices | None] = ContextVar("tidings_cluster_request", default=None)


class Cluster:
    """Shares this process's events and session changes, and applies the others'."""

    def __init__(self, db: Database, events: EventHub, sessions: SessionCache, clock: Clock):
        self._db = db
        self._events = events
        self._sessions = sessions
        self._clock = clock
        self.origin = ""
        # Notices waiting to be appended, each with the event to deliver here once it is in
        # the log (None: nothing to deliver, or delivered already).
        self._pending: list[_Pending] = []
        self._has_pending = asyncio.Event()
        # This process's appended events, by sequence number, until the reader reaches them.
        self._own: dict[int, tuple[Event, frozenset[str]]] = {}
        self._appended_upto = 0
        self._listening = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_seq = 0
        self._stalled_since: float | None = None
        self._check_rewind = False
        # Notices queued and appended (or given up) so far, and requests waiting for theirs.
        self._queued_total = 0
        self._settled_total = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._reading = False  # the reader awaits rows it has not yet handled
        self._subscription: Subscription | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def start(self, *, listen: bool = True) -> None:
        """Begin sharing (and, with ``listen``, applying other processes' notices). A no-op on
        SQLite. The origin is made here, in the process that runs, not when the module loads:
        processes forked from one parent must not share it."""
        if self._db.is_sqlite or self.running:
            return
        self.origin = new_id()
        self._events.outlet = self.share_event
        if listen:
            self._last_seq = self._appended_upto = await self._db.read(log_store.latest_seq)
            self._listening = True
            self._tasks.append(asyncio.create_task(self._read_loop(), name="cluster-reader"))
        self._tasks.insert(0, asyncio.create_task(self._publish_loop(), name="cluster-publisher"))

    async def stop(self) -> None:
        """Stop, after appending what is still pending (for at most ``STOP_WAIT_SECONDS``)."""
        if not self.running:
            return
        self._events.outlet = None
        publisher = self._tasks[0]
        self._stopping = True
        self._has_pending.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(publisher), STOP_WAIT_SECONDS)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._stopping = self._listening = False
        self._own.clear()
        self._pending.clear()
        self._settled(self._queued_total - self._settled_total)

    # --- publishing -------------------------------------------------------------------------------

    def share_event(self, event: Event, user_ids: frozenset[str]) -> None:
        """The hub's outlet: ``event`` for ``user_ids``, here (in log order, when this process
        listens) and in every other process."""
        if not user_ids:
            return
        if not self._listening:
            self._events.deliver(event, user_ids)
        notice = {
            "kind": "event",
            "event": event.event,
            "data": event.data,
            "broadcast": event.broadcast,
            "users": sorted(user_ids),
        }
        self._queue(notice, (event, user_ids) if self._listening else None)

    def share_sessions_ended(self, user_id: str, token_hashes: Iterable[str]) -> None:
        """These sessions ended: every process forgets them and closes their websockets."""
        if self.running:
            self._queue(
                {"kind": "sessions_ended", "user": user_id, "sessions": list(token_hashes)}, None
            )

    def share_user_changed(self, user_id: str) -> None:
        """This user's row changed: every process forgets the sessions it remembers of them."""
        if self.running:
            self._queue({"kind": "user_changed", "user": user_id}, None)

    def _queue(self, notice: dict[str, Any], local: tuple[Event, frozenset[str]] | None) -> None:
        if len(self._pending) >= MAX_PENDING:
            del self._pending[:BATCH]
            self._settled(BATCH)
            logger.error("the cluster event log is unreachable; dropped %d old notices", BATCH)
        self._pending.append((notice, local))
        self._queued_total += 1
        request = _REQUEST.get()
        if request is not None:
            request.upto = self._queued_total
        self._has_pending.set()

    @staticmethod
    def watch_request() -> RequestNotices:
        """Start counting what the request served in this task queues (called as it begins,
        by ``api.errors.RequestContextMiddleware``)."""
        request = RequestNotices()
        _REQUEST.set(request)
        return request

    async def sent(self, request: RequestNotices) -> None:
        """Wait until ``request``'s notices are in the log (at most ``SEND_WAIT_SECONDS``): what
        a request caused is there before its client can make the next request, perhaps through
        another process, so a client posting twice through a round-robin proxy sees its posts
        in the order it made them, on every socket."""
        if self._settled_total >= request.upto:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((request.upto, waiter))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(waiter), SEND_WAIT_SECONDS)

    def _settled(self, count: int) -> None:
        self._settled_total += count
        waiting = []
        for target, waiter in self._waiters:
            if target <= self._settled_total:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((target, waiter))
        self._waiters = waiting

    async def _publish_loop(self) -> None:
        next_sweep = self._clock.monotonic() + SWEEP_EVERY_SECONDS
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._has_pending.wait(), SWEEP_EVERY_SECONDS)
            self._has_pending.clear()
            while self._pending:
                batch = self._pending[:BATCH]
                del self._pending[:BATCH]
                try:
                    seqs = await self._db.write(
                        partial(
                            _append_notices,
                            origin=self.origin,
                            notices=[notice for notice, _ in batch],
                            now_ms=self._clock.now_ms(),
                        )
                    )
                except Exception:
                    logger.exception("appending %d notices to the cluster log failed", len(batch))
                    self._pending[:0] = batch  # keep the order; try again shortly
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                self._appended(batch, seqs)
                self._settled(len(batch))
            if self._stopping:
                return
            if self._clock.monotonic() >= next_sweep:
                next_sweep = self._clock.monotonic() + SWEEP_EVERY_SECONDS
                await self._sweep()

    def _appended(self, batch: list["_Pending"], seqs: list[int]) -> None:
        """Keep the batch's events for the reader, which delivers them when it reaches them."""
        if not self._listening:
            return
        if not self._reading and seqs[0] == self._last_seq + 1 and not self._own:
            # Nothing came between what the reader has seen and this batch (appends are
            # serialised, so the numbers say so): deliver now, without reading the rows back.
            for _, local in batch:
                if local is not None:
                    self._events.deliver(*local)
            self._last_seq = self._appended_upto = seqs[-1]
            return
        for (_, local), seq in zip(batch, seqs, strict=True):
            if local is not None:
                self._own[seq] = local
        self._appended_upto = max(self._appended_upto, *seqs)
        self._wake.set()

    async def _sweep(self) -> None:
        before = self._clock.now_ms() - int(KEEP_SECONDS * 1000)
        try:
            await self._db.write(partial(log_store.sweep_events, before_ms=before), background=True)
        except Exception:
            logger.exception("sweeping the cluster event log failed")

    # --- listening --------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        last_read = self._clock.monotonic()
        try:
            while True:
                if self._subscription is None or self._subscription.closed:
                    self._subscription = await self._subscribe(self._subscription)
                wait = IDLE_READ_SECONDS if self._subscription is not None else POLL_SECONDS
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                self._wake.clear()
                try:
                    await self._catch_up(stale=self._clock.monotonic() - last_read > STALE_SECONDS)
                except Exception:
                    logger.exception("reading the cluster event log failed")
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                last_read = self._clock.monotonic()
        finally:
            if self._subscription is not None:
                await self._subscription.close()
                self._subscription = None

    async def _subscribe(self, old: Subscription | None) -> Subscription | None:
        if old is not None:
            logger.warning("the cluster's listening connection closed; listening again")
            await old.close()
        try:
            subscription = await self._db.listen(
                log_store.WAKE_CHANNEL, self._woken, on_close=self._wake.set
            )
        except Exception:
            logger.exception("listening for cluster events failed; polling meanwhile")
            await asyncio.sleep(RETRY_SECONDS)
            return None
        self._wake.set()  # read whatever came while no one listened
        self._check_rewind = old is not None
        return subscription

    def _woken(self, origin: str) -> None:
        # This process's own appends wake the reader from the publisher, with its events kept.
        if origin != self.origin:
            self._wake.set()

    async def _catch_up(self, *, stale: bool) -> None:
        if self._check_rewind:
            # After a lost connection: a database that crashed may have lost the log's last
            # rows (their commits do not wait for the disk) and will number new ones again
            # from below what this process has read, which it would then skip.
            self._check_rewind = False
            stale = stale or await self._db.read(log_store.latest_seq) < self._last_seq
        if stale:
            # The sweep may have taken notices this process never read.
            closed = self._events.close_all(CLOSE_FELL_BEHIND)
            self._sessions.forget_all()
            self._last_seq = await self._db.read(log_store.latest_seq)
            self._own = {seq: kept for seq, kept in self._own.items() if seq > self._last_seq}
            logger.warning("lost touch with the cluster event log; closed %d websockets", closed)
            return
        while True:
            self._reading = True
            try:
                rows = await self._read_after(self._last_seq)
            finally:
                self._reading = False
            for seq, origin, body in rows:
                if origin == self.origin:
                    if seq > self._appended_upto and not self._stalled_too_long():
                        # Committed, but the publisher has not kept its events yet: it wakes
                        # the reader again when it has.
                        return
                    self._stalled_since = None
                    kept = self._own.pop(seq, None)
                    if kept is not None:
                        self._events.deliver(*kept)
                else:
                    self._apply(body)
                self._last_seq = seq
            if len(rows) < READ_BATCH:
                return

    async def _read_after(self, seq: int) -> list[tuple[int, str, str]]:
        """The next rows after ``seq``: on the listening connection while it is up (no thread
        hop, no transaction of its own), else through the pool."""
        subscription = self._subscription
        if subscription is not None and not subscription.closed:
            return await log_store.events_after_listening(
                subscription, seq, READ_BATCH, self.origin
            )
        return await self._db.read(
            partial(log_store.events_after, seq=seq, limit=READ_BATCH, own=self.origin)
        )

    def _stalled_too_long(self) -> bool:
        """Whether the reader has waited ``STALL_SECONDS`` for the publisher to claim a row of
        this process's. An append whose commit reached the database but whose answer was lost
        leaves such a row, which no publisher will claim: it must not hold up the log."""
        now = self._clock.monotonic()
        if self._stalled_since is None:
            self._stalled_since = now
            asyncio.get_running_loop().call_later(STALL_SECONDS, self._wake.set)
        return now - self._stalled_since >= STALL_SECONDS

    def _apply(self, body: str) -> None:
        """Act on another process's notice here; a malformed one is logged and skipped."""
        try:
            notice = json.loads(body)
            kind = notice["kind"]
            if kind == "event":
                event = Event(str(notice["event"]), dict(notice["data"]), dict(notice["broadcast"]))
                self._events.deliver(event, [str(u) for u in notice["users"]])
            elif kind == "sessions_ended":
                hashes = [str(h) for h in notice["sessions"]]
                self._sessions.forget_sessions(hashes)
                self._events.end_sessions(str(notice["user"]), hashes)
            elif kind == "user_changed":
                self._sessions.forget_user(str(notice["user"]))
            else:
                logger.warning("ignoring a cluster notice of unknown kind %r", kind)
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a malformed cluster notice")


# A notice waiting to be appended, and the event to deliver here once it is in the log.
_Pending = tuple[dict[str, Any], tuple[Event, frozenset[str]] | None]


def _append_notices(
    conn: Connection, *, origin: str, notices: list[dict[str, Any]], now_ms: int
) -> list[int]:
    """One unit: encode the batch (on the database's thread, not the event loop) and append it;
    the sequence numbers given, in order."""
    return log_store.append_events(conn, origin, [json.dumps(n) for n in notices], now_ms)
