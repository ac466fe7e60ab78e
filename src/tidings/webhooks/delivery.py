"""One delivery's attempt: send → classify → reply → outcome.

The worker (``webhooks/worker.py``) decides when a delivery goes (claims, caps, leases) and
writes results back in batches; this module is what happens to one claimed delivery in
between: check that its hook can still make it, re-encode a body whose hook's token was
regenerated, sign and send, turn a 2xx reply into posts, and decide the delivery's next state.
Whatever a receiver does comes back as a value (a :class:`Result` whose attempt says what went
wrong), never as an exception that would stop the worker.

It reaches storage only through :class:`AttemptStorage` (look-ups on rare paths, each a unit of
work of its own) and the network only through a :class:`Poster`, so it is tested with fakes
and no database.

Imports ``tidings.domain``, the pure webhook parts, ``tidings.clock`` and ``tidings.metrics``;
never ``tidings.store``.
"""

import dataclasses
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from tidings import metrics
from tidings.clock import Clock
from tidings.domain.deliveries import Attempt, Delivery, DeliveryStatus, ErrorKind
from tidings.domain.hooks import OutgoingHook
from tidings.domain.outbox import Finish
from tidings.domain.posts import Post
from tidings.domain.server_config import WebhookSettings
from tidings.domain.users import User
from tidings.domain.values import value_object
from tidings.ids import new_id
from tidings.webhooks.client import HttpOutcome
from tidings.webhooks.payloads import carries_token, with_token
from tidings.webhooks.policy import Outcome, RetryPolicy, classify, next_delay_seconds
from tidings.webhooks.replies import (
    ReplyError,
    build_reply_posts,
    parse_reply,
    reply_posts,
    user_ids_in_reply,
)
from tidings.webhooks.signing import mask_secret_headers, signature_headers

logger = logging.getLogger(__name__)

EXCERPT_BYTES = 64 * 1024
GIVE_BACK_DELAY_MS = 1000
"""A delivery given back because its backlog is full (or its hook could not be read) is
claimable again after this; claims skip a full key anyway, so this only keeps a key at the
edge from being claimed and refused at every poll."""


class Poster(Protocol):
    """What sends a request (``WebhookClient``): never raises for network trouble."""

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_seconds: float
    ) -> HttpOutcome: ...


class AttemptStorage(Protocol):
    """What an attempt reads or writes besides its batch: only when a hook's token changed, or
    a reply mentions users."""

    async def reload_hook(self, hook_id: str) -> tuple[OutgoingHook | None, User | None]:
        """The hook and its creator as stored now, whatever a cache holds."""
        ...

    async def save_body(self, delivery_id: str, body: bytes) -> None:
        """Store the body a delivery is about to be sent with."""
        ...

    async def usernames(self, user_ids: set[str]) -> dict[str, str]:
        """user id → username, for the ids that exist."""
        ...


@dataclass(frozen=True)
class Batch:
    """What one claimed batch shares: the settings of the moment and the rows it refers to."""

    settings: WebhookSettings
    hooks: dict[str, OutgoingHook]
    creators: dict[str, User]


@value_object
class Result:
    """One delivery's outcome, on its way to the write-back: the new state, what the attempt
    meant (for the failure watch), the hook it was for, and the reply posts' sender name."""

    finish: Finish
    verdict: Outcome
    hook: OutgoingHook | None
    sender_name: str


class Courier:
    """Makes one attempt of one claimed delivery, as :meth:`deliver`; or answers a delivery
    that is not sent (:meth:`not_sent`, :meth:`given_back`)."""

    def __init__(
        self,
        client: Poster,
        storage: AttemptStorage,
        clock: Clock,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._storage = storage
        self._clock = clock
        self._rand = rand

    async def deliver(self, delivery: Delivery, batch: Batch) -> Result:
        """Send ``delivery`` and say what comes of it. Never raises: a bug becomes a failed
        ``protocol`` attempt (retried like one), so one delivery cannot stop a sender."""
        hook = batch.hooks.get(delivery.hook_id)
        try:
            return await self._attempt(delivery, hook, batch)
        except Exception as exc:
            logger.exception("delivery %s crashed", delivery.id)
            outcome = outcome_without_request(
                ErrorKind.PROTOCOL, f"internal error: {type(exc).__name__}"
            )
            return self._verdict(delivery, hook, batch, outcome, self._clock.now_ms(), {}, [])

    def not_sent(
        self, delivery: Delivery, hook: OutgoingHook | None, batch: Batch, why: str
    ) -> Result:
        """The verdict on a delivery its hook can no longer make: failed, ``not_sent``."""
        outcome = outcome_without_request(ErrorKind.NOT_SENT, f"not sent: {why}")
        return self._verdict(delivery, hook, batch, outcome, self._clock.now_ms(), {}, [])

    def given_back(self, delivery: Delivery, delay_ms: int) -> Result:
        """A claimed delivery returned unsent, due again after ``delay_ms``; the claim is not
        counted as an attempt."""
        finish = Finish(
            delivery=delivery,
            status=DeliveryStatus.PENDING,
            attempt=None,
            next_attempt_at=self._clock.now_ms() + delay_ms,
        )
        return Result(finish=finish, verdict=Outcome.RETRY, hook=None, sender_name="")

    async def _attempt(self, delivery: Delivery, hook: OutgoingHook | None, batch: Batch) -> Result:
        started_at = self._clock.now_ms()
        creator = batch.creators.get(hook.creator_id) if hook is not None else None
        if hook is not None and not carries_token(delivery.body, delivery.content_type, hook.token):
            try:
                hook, creator = await self._storage.reload_hook(hook.id)
                if hook is not None and not carries_token(
                    delivery.body, delivery.content_type, hook.token
                ):
                    delivery = await self._retoken(delivery, hook.token)
            except Exception:
                # The database failing is no verdict on the receiver: try again later, with no
                # attempt counted and nothing for the failure watch.
                logger.exception("re-reading hook %s before sending failed", delivery.hook_id)
                return self.given_back(delivery, GIVE_BACK_DELAY_MS)
        if hook is None or not_sendable(hook, creator):  # changed since the batch was claimed
            return self.not_sent(delivery, hook, batch, not_sendable(hook, creator))
        headers = {
            "Content-Type": delivery.content_type,
            "Accept": "application/json",
            **signature_headers(
                hook.signing_secret, delivery.id, started_at // 1000, delivery.body
            ),
        }
        timeout = float(hook.timeout_seconds or batch.settings.timeout_seconds)
        outcome = await self._client.post(delivery.url, delivery.body, headers, timeout)
        metrics.attempt_seconds.observe(outcome.duration_ms / 1000)
        replies = await self._reply_posts(delivery, hook, creator, batch, outcome)
        return self._verdict(delivery, hook, batch, outcome, started_at, headers, replies)

    async def _retoken(self, delivery: Delivery, token: str) -> Delivery:
        """The delivery with its body encoded for the hook's current token.

        The token was regenerated after the delivery was queued, and the request is signed with
        the new secret, so it must carry the new token too. The body is saved first so the
        delivery log shows what was sent.
        """
        body = with_token(delivery.body, delivery.content_type, token)
        await self._storage.save_body(delivery.id, body)
        return dataclasses.replace(delivery, body=body)

    async def _reply_posts(
        self,
        delivery: Delivery,
        hook: OutgoingHook,
        creator: User | None,
        batch: Batch,
        outcome: HttpOutcome,
    ) -> list[Post] | ReplyError:
        """The posts a 2xx reply makes (none for pings or if already posted), or why it cannot."""
        if classify(outcome.status_code or None, outcome.error_kind) != Outcome.SUCCESS:
            return []
        if delivery.reply_posted or not delivery.post_id:
            return []
        # All a reply needs of its trigger is the thread to answer in, recorded at enqueue time.
        thread = delivery.root_id or delivery.post_id
        trigger = Post(
            id=thread,
            create_at=0,
            update_at=0,
            edit_at=0,
            delete_at=0,
            user_id="",
            channel_id=delivery.channel_id,
            root_id="",
            message="",
        )
        try:
            reply = parse_reply(outcome.body, outcome.truncated)
            if reply is None:
                return []
            mentioned = user_ids_in_reply(reply)
            usernames = await self._storage.usernames(mentioned) if mentioned else {}
            specs = build_reply_posts(
                reply,
                hook,
                trigger,
                username_override_enabled=batch.settings.username_override,
                icon_override_enabled=batch.settings.icon_override,
                usernames_by_id=usernames,
                creator_is_bot=bool(creator and creator.is_bot),
            )
        except ReplyError as error:
            return error
        return reply_posts(
            specs,
            creator_id=hook.creator_id,
            channel_id=delivery.channel_id,
            now_ms=self._clock.now_ms(),
            depth=delivery.post_depth + 1,
        )

    def _verdict(
        self,
        delivery: Delivery,
        hook: OutgoingHook | None,
        batch: Batch,
        outcome: HttpOutcome,
        started_at: int,
        headers: dict[str, str],
        replies: list[Post] | ReplyError,
    ) -> Result:
        """Turn an outcome into the delivery's next state."""
        verdict = classify(outcome.status_code or None, outcome.error_kind)
        error_kind, error_message = outcome.error_kind, outcome.error_message
        posts: list[Post] = []
        if isinstance(replies, ReplyError):
            error_kind, error_message = ErrorKind.BAD_REPLY, f"reply not posted: {replies}"
        else:
            posts = replies
        next_at = 0
        status = DeliveryStatus.FAILED
        if verdict == Outcome.SUCCESS:
            status = DeliveryStatus.SUCCEEDED
        elif verdict == Outcome.RETRY and delivery.post_id:  # pings are answered, not retried
            policy = RetryPolicy(schedule_seconds=batch.settings.retry_schedule_seconds)
            now_ms = self._clock.now_ms()
            delay = next_delay_seconds(
                policy, delivery.attempt_count, outcome.retry_after, self._rand, now_ms / 1000
            )
            if delay is not None:
                status = DeliveryStatus.PENDING
                next_at = now_ms + int(delay * 1000)
        metrics.attempt_outcome(verdict.value).inc()
        if status != DeliveryStatus.PENDING:
            metrics.finished_status(status.value).inc()
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
        creator = batch.creators.get(hook.creator_id) if hook else None
        sender = f"@{creator.username}" if creator else ""
        finish = Finish(
            delivery=delivery,
            status=status,
            attempt=attempt,
            next_attempt_at=next_at,
            reply_posts=posts,
        )
        return Result(finish=finish, verdict=verdict, hook=hook, sender_name=sender)


def not_sendable(hook: OutgoingHook | None, creator: User | None) -> str:
    """Why the hook (with its creator) can make no delivery now, or "" if it can."""
    if hook is None or hook.delete_at:
        return "the hook was deleted"
    if not hook.enabled:
        return "the hook is disabled"
    if creator is not None and creator.delete_at:
        return "the hook's owner is deactivated"
    if hook.stopped_reason:
        # Queued while its creator was in the private channel it watches; they have left it.
        return f"the hook is stopped ({hook.stopped_reason})"
    return ""


def outcome_without_request(kind: ErrorKind, message: str) -> HttpOutcome:
    """An outcome for an attempt that made no request."""
    return HttpOutcome(0, {}, b"", False, 0, kind, message, None)
