"""Chains of bots: webhook reply posts firing the hooks that opted in (``trigger_on_bot_posts``).

A reply post is written by the worker, not through ``create_post``, and fires no hook unless a
hook asks for it. Each post carries its chain depth (``Post.webhook_depth``: 0 for a person's or
a bot account's post, one more for each reply after it), and a reply fires hooks only while its
depth is below ``OutgoingWebhookMaxChainDepth``, so a bot answering itself stops.

The chained deliveries are queued in the unit of work that inserts the reply posts (the
worker's write-back, or a deferred reply's), so a crash between the two cannot lose them.
Matching, the channel gate and the bodies are ``create_post``'s own (``services/posts.py``):
a reply fires an opted-in hook exactly as a user's post with its text would.

Imports ``tidings.services.posts``, ``tidings.store`` and ``tidings.domain``; never the worker,
which is handed :func:`reply_chain` by whoever starts it.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from tidings.domain.outbox import NewDelivery
from tidings.domain.posts import Post
from tidings.domain.server_config import WebhookSettings
from tidings.domain.users import User
from tidings.services.posts import (
    deliveries_for,
    hook_index,
    hooks_fire_in,
    keep_index,
    matching_hooks,
    response_site_url,
)
from tidings.services.runtime import Runtime
from tidings.store import teams as team_store
from tidings.store import users as user_store
from tidings.store.database import Connection
from tidings.store.outbox import enqueue
from tidings.webhooks.matching import HookIndex


@dataclass(frozen=True, slots=True)
class Chained:
    """What queueing a chain leaves for after the commit (:func:`chain_committed`)."""

    queued: int = 0
    # (team id, hooks version, index) for each team whose match index the unit rebuilt.
    rebuilt: tuple[tuple[str, int, HookIndex], ...] = ()


NOTHING_CHAINED = Chained()


def chains_from(post: Post, settings: WebhookSettings) -> bool:
    """Whether ``post``, a webhook's reply, may fire hooks: only while the chain is shorter than
    the limit (depth 1 is the reply to a person's post)."""
    return settings.enabled and post.webhook_depth < settings.max_chain_depth


def queue_chained_deliveries(
    rt: Runtime,
    conn: Connection,
    replies: Sequence[Post],
    settings: WebhookSettings,
    now_ms: int,
) -> Chained:
    """Inside the unit that inserted ``replies`` (webhook reply posts): queue the deliveries of
    the hooks with ``trigger_on_bot_posts`` that they fire. Call :func:`chain_committed` after
    the commit.

    Costs nothing for replies at the depth limit; otherwise one query per (channel, author)
    among the replies (the one ``create_post`` makes: the channel, the team and its hooks
    version) and a look at the team's cached match index, which ends it when no hook in the
    team opted in.
    """
    # Grouped by (channel, author): each group needs one look at the channel, and a team whose
    # index holds no opted-in hook is passed over whole, however many replies the batch has.
    groups: dict[tuple[str, str], list[Post]] = {}
    for post in replies:
        if chains_from(post, settings):
            groups.setdefault((post.channel_id, post.user_id), []).append(post)
    if not groups:
        return NOTHING_CHAINED
    indexes: dict[str, HookIndex] = {}
    rebuilt: list[tuple[str, int, HookIndex]] = []
    authors: dict[str, User | None] = {}
    site_url = response_site_url(rt, settings)
    new: list[NewDelivery] = []
    for (channel_id, user_id), group in groups.items():
        access = team_store.find_channel_access(conn, channel_id, user_id)
        if access is None or access.channel.delete_at or not hooks_fire_in(settings, access):
            continue
        channel = access.channel
        index = indexes.get(channel.team_id)
        if index is None:
            index, fresh = hook_index(rt, conn, channel.team_id, access.hooks_version)
            indexes[channel.team_id] = index
            if fresh:
                rebuilt.append((channel.team_id, access.hooks_version, index))
        team = access.team
        if not index.fires_on_bot_posts or team is None:
            continue
        for post in group:
            matches = matching_hooks(index, channel, post.message, settings, bot_post=True)
            if not matches:
                continue
            if user_id not in authors:
                authors[user_id] = user_store.find_user(conn, user_id)
            author = authors[user_id]
            if author is not None:
                new += deliveries_for(matches, post, team, channel, author, site_url=site_url)
    queued = enqueue(conn, new, now_ms)
    return Chained(queued=len(queued), rebuilt=tuple(rebuilt))


def chain_committed(rt: Runtime, chained: Chained) -> None:
    """After the unit of :func:`queue_chained_deliveries` committed, on the event loop: keep
    the indexes it rebuilt, and wake the worker for the deliveries it queued."""
    for team_id, version, index in chained.rebuilt:
        keep_index(rt, team_id, version, index)
    if chained.queued:
        rt.outbox_signal.set()


def reply_chain(
    rt: Runtime,
) -> Callable[[Connection, Sequence[Post], WebhookSettings, int], Callable[[], None]]:
    """The worker's hook into chains (``Worker(chain=…)``): queue inside its write-back's unit,
    and hand back what to do after the commit."""

    def queue(
        conn: Connection, replies: Sequence[Post], settings: WebhookSettings, now_ms: int
    ) -> Callable[[], None]:
        chained = queue_chained_deliveries(rt, conn, replies, settings, now_ms)
        return partial(chain_committed, rt, chained)

    return queue
