"""Deferred replies: a receiver posts its reply to the delivery's ``response_url`` later.

Slow bots (builds, AI models) cannot answer within the request's timeout. A hook with
``extended_payload`` sends each delivery a ``response_url`` (``webhooks/response_urls.py``);
a ``POST`` of a reply JSON there — the same fields and rules as a direct reply, parsed and built
by ``webhooks/replies.py`` — posts it as the hook's reply in the delivery's channel (and thread,
for ``response_type: comment``). It works for ``OutgoingWebhookResponseUrlMinutes`` after the
delivery was created and at most :data:`MAX_USES` times, and only while the hook could still
deliver (not deleted, not disabled, its owner active).

The secret in the URL is the credential, so nothing here needs a session. Each use is counted
atomically with the posts' insert (``store/responses.spend_response_use``) and recorded in the
delivery's log as an attempt row of kind ``response_url``. A body refused as a reply (400) is
neither counted nor recorded: it changes nothing, and recording it would let the holder of a
secret write rows without bound.
"""

import logging
import time
from dataclasses import dataclass

from tidings.domain.deliveries import RESPONSE_URL_KIND, Attempt, ResponseTarget
from tidings.domain.hooks import OutgoingHook
from tidings.domain.posts import Post
from tidings.domain.users import User
from tidings.errors import BadRequest, FeatureDisabled, Gone, NotFound, PayloadTooLarge
from tidings.ids import new_id
from tidings.services.chains import Chained, chain_committed, queue_chained_deliveries
from tidings.services.runtime import Runtime
from tidings.store import hooks as hook_store
from tidings.store import users as user_store
from tidings.store.database import Connection
from tidings.store.outbox import insert_attempts, insert_reply_posts
from tidings.store.responses import find_response_target, spend_response_use
from tidings.webhooks.announcements import announce_posts
from tidings.webhooks.replies import (
    ReplyError,
    build_reply_posts,
    parse_reply,
    reply_posts,
    user_ids_in_reply,
)
from tidings.webhooks.response_urls import MAX_SECRET_CHARS, MAX_USES, expires_at, secret_digest

logger = logging.getLogger(__name__)

EXCERPT_BYTES = 64 * 1024
"""How much of a posted reply the delivery log keeps (as for a receiver's response)."""


@dataclass(frozen=True, slots=True)
class DeferredReply:
    """What a use of a ``response_url`` posted, and how many uses it has left."""

    posts: list[Post]
    uses_left: int


def _unknown() -> NotFound:
    return NotFound(
        "api.webhooks.response_url.not_found.app_error", "No delivery has this response URL."
    )


def _gone(why: str) -> Gone:
    return Gone("api.webhooks.response_url.gone.app_error", f"This response URL {why}.", why)


def _gone_reason(
    target: ResponseTarget,
    hook: OutgoingHook | None,
    creator: User | None,
    *,
    now_ms: int,
    minutes: int,
) -> str:
    """Why the delivery's ``response_url`` no longer posts, or "" while it does."""
    if hook is None or hook.delete_at:
        return "belongs to a deleted hook"
    if not hook.enabled:
        return "belongs to a disabled hook"
    if creator is None or creator.delete_at:
        return "belongs to a hook whose owner is deactivated"
    if now_ms > expires_at(target.create_at, minutes):
        return f"has expired ({minutes} minutes after the delivery)"
    if target.response_uses >= MAX_USES:
        return f"has been used {MAX_USES} times"
    return ""


def _reply_error(error: ReplyError) -> BadRequest:
    return BadRequest(error.error_id, f"The reply cannot be posted: {error.message}")


def _nothing_to_post() -> BadRequest:
    return BadRequest(
        "api.webhooks.response_url.empty.app_error",
        "The reply has neither text nor attachments: nothing to post.",
    )


async def post_deferred_reply(
    rt: Runtime, secret: str, body: bytes, *, truncated: bool
) -> DeferredReply:
    """Post ``body`` (a reply JSON, at most 1 MiB; ``truncated`` when the sender sent more) as
    the hook's reply to the delivery whose ``response_url`` holds ``secret``.

    404 for an unknown secret; 410 when it expired, is used up, or its hook can no longer
    deliver; 400 (nothing posted, no use spent) for a body that is no postable reply.
    """
    started = time.monotonic()
    if not secret or len(secret) > MAX_SECRET_CHARS:
        raise _unknown()
    digest = secret_digest(secret)
    settings = await rt.webhook_settings()
    if not settings.enabled:
        raise FeatureDisabled(
            "api.outgoing_webhook.disabled.app_error", "Outgoing webhooks have been disabled."
        )
    now = rt.clock.now_ms()
    minutes = settings.response_url_minutes

    def look_up(conn: Connection) -> tuple[ResponseTarget, OutgoingHook | None, User | None]:
        target = find_response_target(conn, digest)
        if target is None:
            raise _unknown()
        hook = hook_store.find_hook(conn, target.hook_id)
        creator = user_store.find_user(conn, hook.creator_id) if hook is not None else None
        return target, hook, creator

    target, hook, creator = await rt.db.read(look_up)
    if why := _gone_reason(target, hook, creator, now_ms=now, minutes=minutes):
        raise _gone(why)
    assert hook is not None
    assert creator is not None
    if truncated:
        raise PayloadTooLarge(
            "api.webhooks.response_url.too_large.app_error", "The reply is larger than 1 MiB."
        )
    try:
        reply = parse_reply(body)
        if reply is None:
            raise _nothing_to_post()
        mentioned = user_ids_in_reply(reply)
        usernames = (
            await rt.db.read(lambda conn: user_store.usernames_by_id(conn, mentioned))
            if mentioned
            else {}
        )
        specs = build_reply_posts(
            reply,
            hook,
            _thread_of(target),
            username_override_enabled=settings.username_override,
            icon_override_enabled=settings.icon_override,
            usernames_by_id=usernames,
            creator_is_bot=creator.is_bot,
        )
    except ReplyError as error:
        raise _reply_error(error) from None
    if not specs:
        raise _nothing_to_post()
    posts = reply_posts(
        specs,
        creator_id=hook.creator_id,
        channel_id=target.channel_id,
        now_ms=now,
        depth=target.post_depth + 1,
    )

    def write(conn: Connection) -> tuple[int, Chained]:
        use = spend_response_use(
            conn,
            target.delivery_id,
            max_uses=MAX_USES,
            created_after_ms=now - minutes * 60_000,
        )
        if use is None:  # another use got there first, or the minute turned meanwhile
            raise _gone(f"has been used {MAX_USES} times or has expired")
        insert_reply_posts(conn, posts)
        insert_attempts(conn, [_use_record(target, use, now, started, body, len(posts))])
        # A deferred reply is a reply like any other: hooks that opted in fire on it, queued
        # in this unit so a crash cannot post the reply and lose them.
        return use, queue_chained_deliveries(rt, conn, posts, settings, now)

    use, chained = await rt.db.write(write)
    chain_committed(rt, chained)
    try:
        await announce_posts(rt.db, rt.events, [(p, f"@{creator.username}") for p in posts])
    except Exception:
        # Committed already: browsers show the reply on reload.
        logger.exception("announcing a deferred reply of delivery %s failed", target.delivery_id)
    return DeferredReply(posts=posts, uses_left=MAX_USES - use)


def _thread_of(target: ResponseTarget) -> Post:
    """All a reply needs of its trigger: the thread to answer in, recorded at enqueue time."""
    return Post(
        id=target.root_id or target.post_id,
        create_at=0,
        update_at=0,
        edit_at=0,
        delete_at=0,
        user_id="",
        channel_id=target.channel_id,
        root_id="",
        message="",
    )


def _use_record(
    target: ResponseTarget, use: int, now: int, started: float, body: bytes, post_count: int
) -> Attempt:
    """The delivery log's row for one use: numbered by the use, what Tidings answered, and the
    reply as the receiver posted it."""
    return Attempt(
        id=new_id(),
        delivery_id=target.delivery_id,
        number=use,
        started_at=now,
        duration_ms=int((time.monotonic() - started) * 1000),
        status_code=200,
        error_kind=RESPONSE_URL_KIND,
        error_message=f"deferred reply {use} of {MAX_USES}: {post_count} post(s)",
        request_headers={},
        response_headers={},
        response_excerpt=body[:EXCERPT_BYTES].decode("utf-8", errors="replace"),
    )
