"""The only delivery loop: claim due deliveries, send them within caps, record, reschedule.

One worker runs inside ``tidings serve``; ``tidings worker`` runs the same class as its own
process. Everything that can go wrong with a receiver is a value here (an ``HttpOutcome``, a
``ReplyError``), never an exception that stops the loop. One delivery's attempt (send,
classify, reply, outcome) is ``webhooks/delivery.py``; this module decides when it happens.

Database work is batched, because a transaction per delivery would make the database the
bottleneck: one claim (one unit of work, ``store/outbox.py``) fetches a batch, the hook cache
the hooks and hook creators it needs; one flusher writes results back many at a time (one unit
per batch, which also queues the deliveries its reply posts fire in hooks that opted in to
bots' posts), then announces reply posts and looks after failing hooks (owner notices,
auto-disable). Housekeeping (``webhooks/housekeeping.py``) requeues deliveries whose worker
died and prunes old log rows.

Concurrency: ``worker_concurrency`` sender tasks pull claimed deliveries from one ready queue.
A delivery holds a slot under its destination (scheme+host+port), its hook's owner and its
hook's team, each capped (``OutgoingWebhookMaxConcurrencyPer{Destination,Owner,Team}``; the
bookkeeping is ``webhooks/slots.py``). A delivery whose key is at its cap waits in that key's
backlog instead of holding a sender; a key may have only so many waiting, the rest go back to
the queue, and while its backlog is full, claims pass the whole destination, owner or team
over. So a hanging receiver holds only its own slots, one user's or one team's many hanging
receivers only their share, and never the pool or the claims. A delivery its hook can no
longer make (hook deleted, disabled or stopped, owner deactivated) is answered before any slot.

Imports ``tidings.webhooks.*``, ``tidings.store``, ``tidings.domain``, ``tidings.events`` and
``tidings.metrics``; the owner-notice callback and the reply chain (``services/chains.py``)
are injected by whoever starts the worker.
"""

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from tidings.clock import Clock
from tidings.config import Settings
from tidings.domain import server_config
from tidings.domain.deliveries import Delivery, DeliveryStatus, ErrorKind
from tidings.domain.hooks import OutgoingHook
from tidings.domain.outbox import DueFloor, Finish, destination
from tidings.domain.posts import Post
from tidings.domain.server_config import ConfigDocument, WebhookSettings
from tidings.domain.users import User
from tidings.events import EventHub
from tidings.store import outbox
from tidings.store import users as user_store
from tidings.store.database import Connection, Database
from tidings.webhooks import slots
from tidings.webhooks.announcements import announce_posts
from tidings.webhooks.client import WebhookClient
from tidings.webhooks.delivery import GIVE_BACK_DELAY_MS, Batch, Courier, Result, not_sendable
from tidings.webhooks.failures import Failure, FailureWatch, Notify
from tidings.webhooks.hookcache import HookCache
from tidings.webhooks.housekeeping import keep_house

logger = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 10.0
FLUSH_BATCH = 200
CLAIM_AHEAD = 8
LEASE_MARGIN_SECONDS = 5
FLUSH_WAIT_SECONDS = 0.002
FLUSH_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Waits between write-back tries while the database fails (the last one repeats)."""
# How long a claim may start past what earlier claims passed over (domain/outbox.DueFloor):
# what lands below it meanwhile waits at most this long.
DUE_FLOOR_MAX_AGE_MS = 1000


ChainReplies = Callable[[Connection, Sequence[Post], WebhookSettings, int], Callable[[], None]]
"""Queues, inside the write-back's unit, the deliveries that reply posts fire in hooks with
``trigger_on_bot_posts`` (``services.chains.reply_chain``); returns what to do after the commit.
Called with the posts inserted, the settings of the moment, and the unit's time."""

# A write-back's chain: ``ChainReplies`` with the moment's settings and time bound.
_Chain = Callable[[Connection, Sequence[Post]], Callable[[], None]]


class WorkerDeps(Protocol):
    """What the worker needs from the process (the server's Runtime satisfies it)."""

    settings: Settings
    db: Database
    clock: Clock
    events: EventHub
    outbox_signal: asyncio.Event

    def config(self) -> Awaitable[ConfigDocument]: ...


@dataclass(slots=True)
class _Job:
    """A claimed delivery on its way; ``keys`` are set once it holds (or waits for) slots."""

    delivery: Delivery
    batch: Batch
    keys: tuple[str, ...] = ()


class Worker:
    """Claims, delivers and records; start it, and stop it to drain cleanly."""

    def __init__(
        self,
        deps: WorkerDeps,
        client: WebhookClient | None = None,
        *,
        notify: Notify | None = None,
        chain: ChainReplies | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.deps = deps
        self._chain = chain
        self.client = client or WebhookClient()
        self._running = False
        self._tasks: list[asyncio.Task[None]] = []
        self._senders: list[asyncio.Task[None]] = []
        self._ready: asyncio.Queue[_Job] = asyncio.Queue()
        # Every claim sets the caps of the moment's settings before any delivery is admitted.
        self._slots: slots.SlotBoard[_Job] = slots.SlotBoard(slots.SlotCaps(1, 1, 1))
        self._held = 0  # claimed and not yet written back
        self._due_floor = DueFloor(DUE_FLOOR_MAX_AGE_MS)
        self._room = asyncio.Event()
        self._pending: list[Result] = []
        self._flush_wanted = asyncio.Event()
        # Held while results are written back: stop() waits for a write under way rather than
        # cancel it (the unit would commit anyway, and the final flush would write it again).
        self._flushing = asyncio.Lock()
        self._failures = FailureWatch(deps.db, deps.clock, deps.config, notify)
        self._hook_cache = HookCache(deps.clock)
        self._courier = Courier(
            self.client, _WorkerStorage(deps.db, self._hook_cache), deps.clock, rand
        )

    @classmethod
    def from_runtime(
        cls, deps: WorkerDeps, notify: Notify | None = None, chain: ChainReplies | None = None
    ) -> "Worker":
        return cls(deps, notify=notify, chain=chain)

    async def start(self) -> None:
        await self.client.start()
        self._running = True
        for name, work in (
            ("claims", self._run),
            ("flusher", self._flusher),
            ("housekeeping", self._housekeeping),
        ):
            self._tasks.append(asyncio.create_task(work(), name=f"webhook-{name}"))
        self._senders = [
            asyncio.create_task(self._sender(), name=f"webhook-sender-{i}")
            for i in range(self.deps.settings.worker_concurrency)
        ]

    async def stop(self) -> None:
        """Stop claiming, let requests under way finish (briefly), record them, close the client.

        Deliveries claimed but not yet sent are given back to the queue at once; anything cut
        off mid-request stays ``in_flight`` and is retried with the same delivery id once its
        lease expires: at-least-once, never lost.
        """
        self._running = False
        self.deps.outbox_signal.set()
        self._room.set()
        claims, *others = self._tasks
        await claims
        unsent = self._slots.drain()
        while not self._ready.empty():
            unsent.append(self._ready.get_nowait())
        for job in unsent:
            self._give_back(job.delivery, delay_ms=0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_GRACE_SECONDS
        while self._held and loop.time() < deadline:
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), max(0.01, deadline - loop.time()))
        for task in self._senders:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._flushing:
            for task in others:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            await self._flush()
        except Exception:
            # The database is failing: stop anyway. What was not written stays in_flight and
            # is retried with the same delivery id once its lease expires.
            logger.exception("could not record %d results while stopping", len(self._pending))
        finally:
            await self.client.close()

    # --- claiming ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while self._running:
            # Cleared before the claim, so a delivery queued while it runs (or after it came
            # back short) wakes the wait below at once.
            self.deps.outbox_signal.clear()
            try:
                more = await self._claim_batch()
            except Exception:
                logger.exception("claiming deliveries failed; retrying")
                await asyncio.sleep(1)
                continue
            if not more:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.deps.outbox_signal.wait(),
                        self.deps.settings.worker_poll_interval_seconds,
                    )

    async def _claim_batch(self) -> bool:
        """Claim what is due; True when more may be due right away (the claim was full, or a
        destination's room cut it short), False when it came back short and the next claim can
        wait for a delivery to be queued (or the poll interval)."""
        settings = self.deps.settings
        # Claim ahead of the senders so the next batch is ready when they free up, and claim
        # in sizeable batches: every claim costs a database round trip.
        capacity = CLAIM_AHEAD * settings.worker_concurrency
        free = capacity - self._held
        if self._held and free < min(capacity // 2, settings.worker_batch_size):
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), settings.worker_poll_interval_seconds)
            return True
        hook_settings = server_config.webhook_settings(await self.deps.config())
        self.client.set_allowlist(hook_settings.allowlist)
        self._make_ready(self._slots.set_caps(self._caps(hook_settings)))
        room = self._slots.claim_room()
        saturated, rooms, fresh = room.saturated, room.rooms, room.fresh
        limit = min(free, settings.worker_batch_size)
        claimed = await self.deps.db.write(
            partial(
                outbox.claim,
                limit=limit,
                lease_ms=int(settings.worker_lease_seconds * 1000),
                now_ms=self.deps.clock.now_ms(),
                skip_destinations=saturated.destinations,
                skip_owners=saturated.owners,
                skip_teams=saturated.teams,
                destination_rooms=rooms,
                default_room=fresh,
                floor=self._due_floor,
            )
        )
        if not claimed:
            return False
        hooks, creators = await self._hook_cache.load(self.deps.db, {d.hook_id for d in claimed})
        batch = Batch(settings=hook_settings, hooks=hooks, creators=creators)
        self._held += len(claimed)
        taken: dict[str, int] = {}
        for delivery in claimed:
            key = destination(delivery.url)
            taken[key] = taken.get(key, 0) + 1
            self._slots.coming(key)
            self._ready.put_nowait(_Job(delivery, batch))
        return len(claimed) >= limit or any(n >= rooms.get(d, fresh) for d, n in taken.items())

    def _caps(self, settings: WebhookSettings) -> slots.SlotCaps:
        return slots.slot_caps(
            settings.per_destination_cap,
            settings.per_owner_cap,
            settings.per_team_cap,
            self.deps.settings.worker_concurrency,
        )

    # --- one delivery --------------------------------------------------------------------------

    async def _sender(self) -> None:
        """One of ``worker_concurrency`` tasks: take the next ready delivery and send it.

        A job without keys is fresh from a claim and must get its slots first; a job with keys
        was woken from a backlog and holds them already.
        """
        while True:
            job = await self._ready.get()
            if not job.keys:
                self._slots.arrived(destination(job.delivery.url))
            try:
                if not job.keys and not await self._take_slots(job):
                    continue
            except Exception:
                # A sender must outlive any one delivery: give it back rather than lose it.
                logger.exception("taking slots for delivery %s failed", job.delivery.id)
                self._give_back(job.delivery, delay_ms=GIVE_BACK_DELAY_MS)
                continue
            try:
                if self._lease_too_short(job.delivery, job.batch):
                    # It waited so long for a slot that the lease could run out mid-request and
                    # another worker would send it too: hand it back unsent instead.
                    self._give_back(job.delivery, delay_ms=0)
                else:
                    self._record(await self._courier.deliver(job.delivery, job.batch))
            finally:
                self._make_ready(self._slots.release(job.keys))
                if self._slots.room_back(job.keys):
                    # Wake the claims as a queued delivery would: without this a worker with
                    # one busy receiver sent what it held, then sat idle until the next poll,
                    # over and over (1,506 deliveries/s to one fast receiver; 5,605 with it).
                    self.deps.outbox_signal.set()

    async def _take_slots(self, job: _Job) -> bool:
        """True when ``job`` now holds its slots; otherwise it is answered, waits in a backlog
        (a release hands it back), or goes back to the queue because that backlog is full."""
        delivery, batch = job.delivery, job.batch
        hook = batch.hooks.get(delivery.hook_id)
        if not_sendable(hook, batch.creators.get(hook.creator_id) if hook else None):
            # "Not sent" is final, so it is decided on fresh rows, not on the cache (an owner
            # reactivated a moment ago). No request, so no slot to wait for.
            try:
                hook, creator = await self._hook_cache.reload(self.deps.db, delivery.hook_id)
            except Exception:
                logger.exception("reading hook %s failed", delivery.hook_id)
                self._give_back(delivery, delay_ms=GIVE_BACK_DELAY_MS)
                return False
            if why := not_sendable(hook, creator):
                self._record(self._courier.not_sent(delivery, hook, batch, why))
                return False
            assert hook is not None
            fresh_creators = {creator.id: creator} if creator is not None else {}
            batch = job.batch = dataclasses.replace(
                batch,
                hooks={**batch.hooks, hook.id: hook},
                creators={**batch.creators, **fresh_creators},
            )
        assert hook is not None
        job.keys = slots.slot_keys(destination(delivery.url), hook.creator_id, hook.team_id)
        admission = self._slots.admit(job, job.keys)
        if admission is slots.Admission.FULL:
            self._give_back(delivery, delay_ms=GIVE_BACK_DELAY_MS)
        return admission is slots.Admission.GO

    def _make_ready(self, jobs: list[_Job]) -> None:
        for job in jobs:
            self._ready.put_nowait(job)

    def _lease_too_short(self, delivery: Delivery, batch: Batch) -> bool:
        """True when waiting used up so much of the lease that the request could outlive it.

        Only a delivery that waited counts: with a lease shorter than the timeout from the
        start (an operator's choice), sending at once is still the best we can do.
        """
        hook = batch.hooks.get(delivery.hook_id)
        timeout_s = (hook.timeout_seconds if hook else None) or batch.settings.timeout_seconds
        remaining_ms = delivery.lease_expires_at - self.deps.clock.now_ms()
        waited_ms = self.deps.settings.worker_lease_seconds * 1000 - remaining_ms
        needed_ms = (timeout_s + LEASE_MARGIN_SECONDS) * 1000
        return remaining_ms < needed_ms and waited_ms > remaining_ms

    def _give_back(self, delivery: Delivery, delay_ms: int) -> None:
        """Return a claimed delivery unsent; the claim is not counted as an attempt."""
        self._record(self._courier.given_back(delivery, delay_ms))

    def _record(self, result: Result) -> None:
        self._pending.append(result)
        self._flush_wanted.set()

    async def _housekeeping(self) -> None:
        await keep_house(
            self.deps.db,
            self.deps.clock,
            self.deps.config,
            self.deps.outbox_signal,
            self.deps.settings.worker_lease_seconds,
        )

    # --- writing back --------------------------------------------------------------------------

    async def _flusher(self) -> None:
        failures = 0
        while True:
            await self._flush_wanted.wait()
            self._flush_wanted.clear()
            if len(self._pending) < FLUSH_BATCH:
                await asyncio.sleep(FLUSH_WAIT_SECONDS)  # let a few more results join this batch
            try:
                await self._flush()
                failures = 0
            except Exception:
                # Poison rows are isolated inside _flush, so this is the database failing: wait
                # longer each time, and log each wait once rather than twice a second.
                wait = FLUSH_RETRY_SECONDS[min(failures, len(FLUSH_RETRY_SECONDS) - 1)]
                failures += 1
                logger.exception(
                    "recording %d delivery results failed; retrying in %.1f s",
                    len(self._pending),
                    wait,
                )
                await asyncio.sleep(wait)
                self._flush_wanted.set()

    async def _flush(self) -> None:
        """Write pending results back in one unit; a row that cannot be stored fails alone (see
        ``outbox.finish_isolating``). Raises only when the database itself fails: then nothing
        was written, and the results stay pending for the next try."""
        async with self._flushing:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            try:
                inserted, written, committed = await self._write_back([r.finish for r in batch])
            except BaseException:
                self._pending = batch + self._pending
                raise
            self._held -= len(written)
            self._room.set()
        if committed is not None:
            committed()
        done = [dataclasses.replace(r, finish=f) for r, f in zip(batch, written, strict=True)]
        await self._announce(
            [(p, r.sender_name) for r, posts in zip(done, inserted, strict=True) for p in posts]
        )
        await self._watch_failures(done)

    async def _write_back(
        self, results: list[Finish]
    ) -> tuple[list[list[Post]], list[Finish], Callable[[], None] | None]:
        """(reply posts inserted per result, the results as written, what the chain does after
        the commit): one unit, and only when the batch is refused for its data a second one
        that isolates the bad rows. The deliveries that reply posts fire (hooks with
        ``trigger_on_bot_posts``) are queued in the unit that inserts the posts; a batch without
        replies does not look."""
        now_ms = self.deps.clock.now_ms()
        chain: _Chain | None = None
        if self._chain is not None and any(r.reply_posts for r in results):
            settings = server_config.webhook_settings(await self.deps.config())
            chain = partial(_bound_chain, self._chain, settings, now_ms)
        try:
            return await self.deps.db.write(
                partial(_finish_unit, results=results, now_ms=now_ms, chain=chain)
            )
        except Exception as error:
            if not outbox.is_data_error(error):
                raise
            return await self.deps.db.write(
                partial(_finish_isolating_unit, results=results, now_ms=now_ms, chain=chain)
            )

    async def _announce(self, posts: list[tuple[Post, str]]) -> None:
        """Tell channel members about reply posts, connected to any process (the event hub's
        outlet carries them to the others).

        Best effort: the posts are committed already, so a failure here must not stop the
        flusher from looking after failing hooks; browsers then show the replies on reload.
        """
        try:
            await announce_posts(self.deps.db, self.deps.events, posts)
        except Exception:
            logger.exception("announcing %d reply posts failed", len(posts))

    # --- failing hooks -------------------------------------------------------------------------

    async def _watch_failures(self, results: list[Result]) -> None:
        """Hand the batch's final failures over: not pings, not hooks already out of service,
        and not deliveries never sent (``not_sent`` says nothing about the receiver; a
        deactivated owner must neither be told nor lose the hook for it)."""
        failures = [
            Failure(r.hook, r.verdict, r.finish.attempt)
            for r in results
            if r.hook is not None
            and r.finish.attempt is not None
            and r.finish.attempt.error_kind != ErrorKind.NOT_SENT
            and r.finish.status == DeliveryStatus.FAILED
            and r.finish.delivery.post_id
            and r.hook.enabled
            and not r.hook.delete_at
        ]
        if failures:
            await self._failures.observe(failures)


def _bound_chain(
    queue: ChainReplies,
    settings: WebhookSettings,
    now_ms: int,
    conn: Connection,
    posts: Sequence[Post],
) -> Callable[[], None]:
    return queue(conn, posts, settings, now_ms)


def _finish_unit(
    conn: Connection,
    results: list[Finish],
    now_ms: int,
    chain: _Chain | None,
) -> tuple[list[list[Post]], list[Finish], Callable[[], None] | None]:
    """The write-back's unit: ``outbox.finish``, then the chained deliveries of its posts."""
    inserted = outbox.finish(conn, results, now_ms)
    posts = [p for posts_now in inserted for p in posts_now]
    return inserted, results, chain(conn, posts) if chain is not None and posts else None


def _finish_isolating_unit(
    conn: Connection,
    results: list[Finish],
    now_ms: int,
    chain: _Chain | None,
) -> tuple[list[list[Post]], list[Finish], Callable[[], None] | None]:
    """:func:`_finish_unit` for a batch refused for its data: the chain too goes in a savepoint
    of its own, and is given up (the posts stay) if the database refuses its rows, or the same
    batch would be refused for ever."""
    inserted, written = outbox.finish_isolating(conn, results, now_ms)
    posts = [p for posts_now in inserted for p in posts_now]
    committed = None
    if chain is not None and posts:
        committed = outbox.unless_refused(conn, lambda unit: chain(unit, posts))
    return inserted, written, committed


class _WorkerStorage:
    """What an attempt needs from storage (``delivery.AttemptStorage``): the hook cache's fresh
    reads, and one unit of work per write or look-up."""

    def __init__(self, db: Database, hooks: HookCache) -> None:
        self._db = db
        self._hooks = hooks

    async def reload_hook(self, hook_id: str) -> tuple[OutgoingHook | None, User | None]:
        return await self._hooks.reload(self._db, hook_id)

    async def save_body(self, delivery_id: str, body: bytes) -> None:
        await self._db.write(partial(outbox.replace_body, delivery_id=delivery_id, body=body))

    async def usernames(self, user_ids: set[str]) -> dict[str, str]:
        return await self._db.read(partial(user_store.usernames_by_id, ids=user_ids))
