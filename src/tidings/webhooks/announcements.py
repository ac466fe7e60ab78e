"""``posted`` events for reply posts, wherever they were written.

The worker announces the reply posts it has just committed, wherever it runs: its event hub
carries the events to every other process (:mod:`tidings.services.cluster`), so a browser
connected to any server gets the same event: the channel's members, the
override name as ``sender_name``, and the @-mentions that drive desktop notifications.

Imports ``tidings.store``, ``tidings.domain`` and ``tidings.events``.
"""

from collections.abc import Sequence
from functools import partial

from tidings.domain.posts import Post
from tidings.domain.teams import Channel
from tidings.domain.wire import posted_event_data
from tidings.events import Event, EventHub
from tidings.store import teams as team_store
from tidings.store import users as user_store
from tidings.store.database import Connection, Database


async def announce_posts(db: Database, events: EventHub, posts: Sequence[tuple[Post, str]]) -> None:
    """Publish ``posted`` for each (reply post, creator's @name) to its channel's members."""
    if not posts or not events.has_listeners():
        return
    audience = await db.read(partial(_audience, posts=[post for post, _ in posts]))
    for post, creator_name in posts:
        channel, members, mentions = audience[post.id]
        if channel is None:
            continue
        sender = str(post.props.get("override_username") or creator_name)
        data = posted_event_data(
            post, channel, sender_name=sender, mentions=mentions, set_online=False
        )
        events.publish(Event("posted", data, {"channel_id": channel.id}), members)


def _audience(
    conn: Connection, posts: Sequence[Post]
) -> dict[str, tuple[Channel | None, list[str], list[str]]]:
    """post id → (its channel, the channel's members, the members it mentions), in one read.

    Mentions drive desktop notifications, for webhook replies as for people.
    """
    channels: dict[str, tuple[Channel | None, list[str]]] = {}
    audience: dict[str, tuple[Channel | None, list[str], list[str]]] = {}
    for post in posts:
        if post.channel_id not in channels:
            channels[post.channel_id] = (
                team_store.find_channel(conn, post.channel_id),
                team_store.channel_member_ids(conn, post.channel_id),
            )
        channel, members = channels[post.channel_id]
        mentions = user_store.mentioned_user_ids(conn, post.message, members, post.user_id)
        audience[post.id] = (channel, members, mentions)
    return audience
