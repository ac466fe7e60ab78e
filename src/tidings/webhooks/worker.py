"""The only delivery loop: claim due deliveries, send them within caps, record, reschedule.

One worker runs inside ``tidings serve``; ``tidings worker`` runs the same class as its own
process. Everything that can go wrong with a receiver is a value here (an ``HttpOutcome``, a
``ReplyError``), never an exception that stops the loop. Results are written back in batches
by one flusher task, because a transaction per delivery would make the database the bottleneck.

Concurrency: at most ``worker_concurrency`` requests at once, and at most
``OutgoingWebhookMaxConcurrencyPerDestination`` to one scheme+host+port, so a hanging receiver
holds only its own slots.

Imports ``tidings.webhooks.*``, ``tidings.store``, ``tidings.domain`` and ``tidings.events``.
"""

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from tidings.clock import Clock
from tidings.config import Settings
from tidings.domain import server_config
from tidings.domain.deliveries import Attempt, Delivery, DeliveryStatus, ErrorKind
from tidings.domain.hooks import OutgoingHook
from tidings.domain.posts import Post
from tidings.domain.server_config import ConfigDocument, WebhookSettings
from tidings.domain.wire import posted_event_data
from tidings.events import Event, EventHub
from tidings.ids import new_id
from tidings.store import hooks as hook_store
from tidings.store import posts as post_store
from tidings.store import teams as team_store
from tidings.store import users as user_store
from tidings.store.database import Database
from tidings.webhooks import queue
from tidings.webhooks.client import HttpOutcome, WebhookClient
from tidings.webhooks.policy import Outcome, RetryPolicy, classify, next_delay_seconds
from tidings.webhooks.replies import (
    ReplyError,
    build_reply_posts,
    parse_reply,
    user_ids_in_reply,
)
from tidings.webhooks.signing import mask_secret_headers, signature_headers

logger = logging.getLogger(__name__)

EXCERPT_BYTES = 64 * 1024
STOP_GRACE_SECONDS = 10.0


class WorkerDeps(Protocol):
    """What the worker needs from the process (the server's Runtime satisfies it)."""

    settings: Settings
    db: Database
    clock: Clock
    events: EventHub
    outbox_signal: asyncio.Event

    def config(self) -> Awaitable[ConfigDocument]: ...


@dataclass
class _Context:
    """What one claimed batch shares: the settings of the moment and the hooks involved."""

    settings: WebhookSettings
    hooks: dict[str, OutgoingHook]


def destination(url: str) -> str:
    """The per-destination cap's key: scheme, host and port."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{parts.hostname}:{port or (443 if parts.scheme == 'https' else 80)}"


class Worker:
    """Claims, delivers and records; start it, and stop it to drain cleanly."""

    def __init__(
        self,
        deps: WorkerDeps,
        client: WebhookClient | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.deps = deps
        self.client = client or WebhookClient()
        self._rand = rand
        self._running = False
        self._loop_task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._pending: list[queue.Finish] = []
        self._flush_wanted = asyncio.Event()
        self._destinations: dict[str, asyncio.Semaphore] = {}
        self._destination_cap = 0
        self._slots = asyncio.Semaphore(deps.settings.worker_concurrency)
        self.stats: dict[str, int] = defaultdict(int)

    @classmethod
    def from_runtime(cls, deps: WorkerDeps) -> "Worker":
        return cls(deps)

    async def start(self) -> None:
        await self.client.start()
        self._running = True
        self._loop_task = asyncio.create_task(self._run(), name="webhook-worker")
        self._flush_task = asyncio.create_task(self._flusher(), name="webhook-flusher")

    async def stop(self) -> None:
        """Stop claiming, let requests under way finish (briefly), record them, close the client.

        Anything cut off stays ``in_flight`` and is retried with the same delivery id once its
        lease expires: at-least-once, never lost.
        """
        self._running = False
        self.deps.outbox_signal.set()
        if self._loop_task is not None:
            await self._loop_task
        if self._in_flight:
            _done, pending = await asyncio.wait(self._in_flight, timeout=STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
        if self._flush_task is not None:
            self._flush_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush_task
        await self._flush()
        await self.client.close()

    async def _run(self) -> None:
        settings = self.deps.settings
        while self._running:
            try:
                claimed = await self._claim_batch()
            except Exception:
                logger.exception("claiming deliveries failed; retrying")
                await asyncio.sleep(1)
                continue
            if claimed == 0:
                self.deps.outbox_signal.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.deps.outbox_signal.wait(), settings.worker_poll_interval_seconds
                    )

    async def _claim_batch(self) -> int:
        settings = self.deps.settings
        free = settings.worker_concurrency - len(self._in_flight)
        if free <= 0:
            await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
            return 1
        hook_settings = server_config.webhook_settings(await self.deps.config())
        self.client.set_allowlist(hook_settings.allowlist)
        now = self.deps.clock.now_ms()
        claimed = await queue.claim(
            self.deps.db,
            min(free, settings.worker_batch_size),
            int(settings.worker_lease_seconds * 1000),
            now,
        )
        if not claimed:
            return 0
        async with self.deps.db.transaction() as conn:
            hooks = await hook_store.find_hooks(conn, {d.hook_id for d in claimed})
        context = _Context(settings=hook_settings, hooks=hooks)
        for delivery in claimed:
            task = asyncio.create_task(self._deliver(delivery, context))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(claimed)

    def _destination_slot(self, url: str, cap: int) -> asyncio.Semaphore:
        if cap != self._destination_cap:
            # A changed cap applies to new destinations at once and to busy ones as they idle.
            self._destinations = {k: v for k, v in self._destinations.items() if v.locked()}
            self._destination_cap = cap
        key = destination(url)
        slot = self._destinations.get(key)
        if slot is None:
            slot = self._destinations[key] = asyncio.Semaphore(cap)
        return slot

    async def _deliver(self, delivery: Delivery, context: _Context) -> None:
        try:
            finish = await self._attempt(delivery, context)
        except Exception as exc:  # a bug must not kill the loop: record it as a failed attempt
            logger.exception("delivery %s crashed", delivery.id)
            finish = self._verdict(
                delivery,
                context,
                _crash_outcome(exc),
                started_at=self.deps.clock.now_ms(),
                headers={},
            )
        self._pending.append(finish)
        self._flush_wanted.set()

    async def _attempt(self, delivery: Delivery, context: _Context) -> queue.Finish:
        hook = context.hooks.get(delivery.hook_id)
        started_at = self.deps.clock.now_ms()
        if hook is None or hook.delete_at or not hook.enabled:
            why = (
                "the hook was deleted" if hook is None or hook.delete_at else "the hook is disabled"
            )
            outcome = HttpOutcome(
                0, {}, b"", False, 0, ErrorKind.INVALID_URL, f"not sent: {why}", None
            )
            return self._verdict(delivery, context, outcome, started_at=started_at, headers={})
        headers = {
            "Content-Type": delivery.content_type,
            "Accept": "application/json",
            **signature_headers(
                hook.signing_secret, delivery.id, started_at // 1000, delivery.body
            ),
        }
        timeout = float(hook.timeout_seconds or context.settings.timeout_seconds)
        slot = self._destination_slot(delivery.url, context.settings.per_destination_cap)
        async with slot, self._slots:
            outcome = await self.client.post(delivery.url, delivery.body, headers, timeout)
        return self._verdict(
            delivery,
            context,
            outcome,
            started_at=started_at,
            headers=headers,
            reply_posts=await self._reply_posts(delivery, hook, context, outcome),
        )

    async def _reply_posts(
        self, delivery: Delivery, hook: OutgoingHook, context: _Context, outcome: HttpOutcome
    ) -> list[Post] | ReplyError:
        """The posts a 2xx reply makes (none if already posted), or why it cannot post."""
        if classify(outcome.status_code or None, outcome.error_kind) != Outcome.SUCCESS:
            return []
        if delivery.reply_posted:
            return []
        try:
            reply = parse_reply(outcome.body, outcome.truncated)
            if reply is None:
                return []
            async with self.deps.db.transaction() as conn:
                trigger = await post_store.find_post(conn, delivery.post_id)
                usernames = await user_store.usernames_by_id(conn, user_ids_in_reply(reply))
                creator = await user_store.find_user(conn, hook.creator_id)
            if trigger is None:
                return ReplyError("app.post.get.app_error", "the triggering post no longer exists")
            specs = build_reply_posts(
                reply,
                hook,
                trigger,
                username_override_enabled=context.settings.username_override,
                icon_override_enabled=context.settings.icon_override,
                usernames_by_id=usernames,
                creator_is_bot=bool(creator and creator.is_bot),
            )
        except ReplyError as error:
            return error
        now = self.deps.clock.now_ms()
        return [
            Post(
                id=new_id(),
                create_at=now + i,
                update_at=now + i,
                edit_at=0,
                delete_at=0,
                user_id=hook.creator_id,
                channel_id=delivery.channel_id,
                root_id=spec.root_id,
                message=spec.message,
                type=spec.type,
                props=spec.props,
            )
            for i, spec in enumerate(specs)
        ]

    def _verdict(
        self,
        delivery: Delivery,
        context: _Context,
        outcome: HttpOutcome,
        *,
        started_at: int,
        headers: dict[str, str],
        reply_posts: list[Post] | ReplyError | None = None,
    ) -> queue.Finish:
        """Turn an outcome into the delivery's next state (pure but for the clock and rand)."""
        verdict = classify(outcome.status_code or None, outcome.error_kind)
        error_kind, error_message = outcome.error_kind, outcome.error_message
        posts: list[Post] = []
        if isinstance(reply_posts, ReplyError):
            error_kind, error_message = ErrorKind.BAD_REPLY, f"reply not posted: {reply_posts}"
        elif reply_posts:
            posts = reply_posts
        next_at = 0
        if verdict == Outcome.SUCCESS:
            status = DeliveryStatus.SUCCEEDED
        elif verdict == Outcome.RETRY:
            policy = RetryPolicy(schedule_seconds=context.settings.retry_schedule_seconds)
            now_s = self.deps.clock.now_ms() / 1000
            delay = next_delay_seconds(
                policy, delivery.attempt_count, outcome.retry_after, self._rand, now_s
            )
            if delay is None:
                status = DeliveryStatus.FAILED
            else:
                status = DeliveryStatus.PENDING
                next_at = self.deps.clock.now_ms() + int(delay * 1000)
        else:
            status = DeliveryStatus.FAILED
        self.stats[status.value] += 1
        attempt = Attempt(
            id=new_id(),
            delivery_id=delivery.id,
            number=delivery.attempt_count,
            started_at=started_at,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            error_kind=error_kind.value,
            error_message=error_message,
            request_headers=mask_secret_headers(headers),
            response_headers=outcome.headers,
            response_excerpt=outcome.body[:EXCERPT_BYTES].decode("utf-8", errors="replace"),
        )
        return queue.Finish(
            delivery=delivery,
            status=status,
            attempt=attempt,
            next_attempt_at=next_at,
            reply_posts=posts,
        )

    async def _flusher(self) -> None:
        while True:
            await self._flush_wanted.wait()
            self._flush_wanted.clear()
            try:
                await self._flush()
            except Exception:
                logger.exception("recording delivery results failed; will retry")
                await asyncio.sleep(0.5)
                self._flush_wanted.set()

    async def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            inserted = await queue.finish(self.deps.db, batch, self.deps.clock.now_ms())
        except Exception:
            self._pending = batch + self._pending
            raise
        await self._announce([p for posts in inserted for p in posts])

    async def _announce(self, posts: list[Post]) -> None:
        """Tell channel members about reply posts, as the override name when there is one."""
        if not posts:
            return
        async with self.deps.db.transaction() as conn:
            for post in posts:
                channel = await team_store.find_channel(conn, post.channel_id)
                if channel is None:
                    continue
                members = await team_store.channel_member_ids(conn, post.channel_id)
                creator = await user_store.find_user(conn, post.user_id)
                sender = str(
                    post.props.get("override_username")
                    or (f"@{creator.username}" if creator else "")
                )
                data = posted_event_data(
                    post, channel, sender_name=sender, mentions=[], set_online=False
                )
                self.deps.events.publish(Event("posted", data, {"channel_id": channel.id}), members)


def _crash_outcome(exc: Exception) -> HttpOutcome:
    return HttpOutcome(
        0, {}, b"", False, 0, ErrorKind.PROTOCOL, f"internal error: {type(exc).__name__}", None
    )
