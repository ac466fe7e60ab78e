"""Posts: create (and fire outgoing hooks through the outbox), read, edit, delete, threads.

Creating a post never contacts a receiver: the post and one delivery row per (matched hook,
callback URL) are written in one transaction, and the worker delivers after commit.
"""

import json
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain import permissions as perm
from tidings.domain import server_config
from tidings.domain.posts import (
    MAX_MESSAGE_RUNES,
    MAX_PENDING_POST_ID_RUNES,
    MAX_TYPE_RUNES,
    Post,
    strip_reserved_props,
)
from tidings.domain.teams import Channel, ChannelType, Team
from tidings.domain.users import User
from tidings.domain.wire import post_json, post_list_json, posted_event_data
from tidings.errors import BadRequest, NotFound, permission_error
from tidings.events import Event
from tidings.ids import is_valid_id, new_id
from tidings.services.runtime import Runtime
from tidings.services.teams import channel_refusal, get_channel
from tidings.store import hooks as hook_store
from tidings.store import posts as store
from tidings.store import teams as team_store
from tidings.store import users as user_store
from tidings.webhooks.matching import HookIndex, Match
from tidings.webhooks.payloads import build_payload_fields, encode_body
from tidings.webhooks.queue import NewDelivery, enqueue


def _not_found() -> NotFound:
    return NotFound("app.post.get.app_error", "Unable to get the post.")


def _check_message(message: str) -> None:
    if len(message) > MAX_MESSAGE_RUNES:
        raise BadRequest(
            "model.post.is_valid.message_length.app_error",
            f"Message must be {MAX_MESSAGE_RUNES} characters or fewer.",
        )


def _check_props(props: dict[str, Any]) -> None:
    if len(json.dumps(props, ensure_ascii=False)) > 760_000:
        raise BadRequest("model.post.is_valid.props.app_error", "Invalid props.")


async def _hook_index(rt: Runtime, conn: AsyncConnection, team_id: str, version: int) -> HookIndex:
    """The team's match index, rebuilt only when one of its hooks, or a hook creator's
    activity, changed (``version``): a deactivated creator's hooks are left out."""
    cached = rt.hook_indexes.get(team_id)
    if cached is not None and cached[0] == version:
        index: HookIndex = cached[1]
        return index
    index = HookIndex.build(await hook_store.list_matchable_hooks(conn, team_id))
    rt.hook_indexes[team_id] = (version, index)
    return index


def _deliveries_for(
    matches: list[Match], post: Post, team: Team, channel: Channel, author: User
) -> list[NewDelivery]:
    new: list[NewDelivery] = []
    for match in matches:
        fields = build_payload_fields(
            match.hook,
            post,
            team,
            channel,
            author_username=author.username,
            trigger_word=match.trigger_word,
        )
        body, content_type = encode_body(match.hook, fields)
        new.extend(
            NewDelivery(
                hook_id=match.hook.id,
                post_id=post.id,
                channel_id=channel.id,
                url=url,
                content_type=content_type,
                body=body,
                trigger_word=match.trigger_word,
                root_id=post.root_id or post.id,
            )
            for url in match.hook.callback_urls
        )
    return new


async def create_post(
    rt: Runtime,
    actor: User,
    channel_id: str,
    message: str,
    *,
    root_id: str = "",
    props: dict[str, Any] | None = None,
    file_ids: tuple[str, ...] = (),
    pending_post_id: str = "",
    post_type: str = "",
) -> Post:
    """Save a user's post and, in the same transaction, queue the deliveries of the hooks it fires."""
    _check_message(message)
    if (
        post_type.startswith("system_")
        or (post_type and not post_type.startswith("custom_"))
        or len(post_type) > MAX_TYPE_RUNES
    ):
        raise BadRequest(
            "api.context.invalid_param.app_error", "Invalid post.type parameter.", "name=post.type"
        )
    if len(pending_post_id) > MAX_PENDING_POST_ID_RUNES:
        raise BadRequest(
            "model.post.is_valid.pending_post_id.app_error", "Invalid pending post id."
        )
    clean_props = strip_reserved_props(props or {})
    _check_props(clean_props)
    config = await rt.config()
    hooks_on = server_config.webhook_settings(config).enabled
    now = rt.clock.now_ms()
    post = Post(
        id=new_id(),
        create_at=now,
        update_at=now,
        edit_at=0,
        delete_at=0,
        user_id=actor.id,
        channel_id=channel_id,
        root_id=root_id,
        message=message,
        type=post_type,
        props=clean_props,
        file_ids=file_ids,
        pending_post_id=pending_post_id,
    )
    queued: list[str] = []
    async with rt.db.transaction() as conn:
        channel, member = (
            await team_store.find_channel_with_member(conn, channel_id, actor.id)
            if is_valid_id(channel_id)
            else (None, None)
        )
        if channel is None or channel.delete_at:
            raise NotFound(
                "app.channel.get.existing.app_error", "Unable to find the existing channel."
            )
        if not perm.can_post(actor, channel, member):
            team_member = (
                await team_store.find_team_member(conn, channel.team_id, actor.id)
                if channel.team_id
                else None
            )
            if not perm.can_read_channel(actor, channel, team_member, member):
                # A private channel or DM as if it did not exist; a public one of an open team
                # refused with 403, its existence being no secret.
                team = (
                    await team_store.find_team(conn, channel.team_id) if channel.team_id else None
                )
                raise channel_refusal(actor, channel, team)
            raise permission_error(actor.id, perm.CREATE_POST)
        if root_id:
            root = await store.find_post(conn, root_id) if is_valid_id(root_id) else None
            if root is None or root.delete_at or root.channel_id != channel_id or root.root_id:
                raise BadRequest(
                    "api.post.create_post.root_id.app_error", "Invalid RootId parameter."
                )
        await store.insert_posts(conn, [post])
        await team_store.touch_channel(conn, channel_id, now)
        if member is not None:
            await team_store.mark_viewed(conn, channel_id, actor.id, now)
        if hooks_on and channel.team_id and channel.type == ChannelType.PUBLIC:
            found = await team_store.find_team_with_hooks_version(conn, channel.team_id)
            if found is not None:
                team, version = found
                index = await _hook_index(rt, conn, team.id, version)
                deliveries = _deliveries_for(
                    index.match(channel_id, message), post, team, channel, actor
                )
                queued = await enqueue(conn, deliveries, now)
        member_ids = await team_store.channel_member_ids(conn, channel_id)
        mentions = await user_store.mentioned_user_ids(conn, message, member_ids, actor.id)
    rt.events.publish(
        posted_event(
            post, channel, sender_name=f"@{actor.username}", mentions=mentions, set_online=True
        ),
        member_ids,
    )
    if queued:
        rt.outbox_signal.set()
    return post


def posted_event(
    post: Post, channel: Channel, *, sender_name: str, mentions: list[str], set_online: bool
) -> Event:
    return Event(
        "posted",
        posted_event_data(
            post, channel, sender_name=sender_name, mentions=mentions, set_online=set_online
        ),
        {"channel_id": channel.id},
    )


async def _readable_post(rt: Runtime, actor: User, post_id: str) -> tuple[Post, Channel]:
    async with rt.db.transaction() as conn:
        post = await store.find_post(conn, post_id) if is_valid_id(post_id) else None
    if post is None or post.delete_at:
        raise _not_found()
    try:
        channel = await get_channel(rt, actor, post.channel_id)
    except NotFound:
        # A post in a channel the actor may not read is as absent as a missing post (a public
        # channel of an open team is refused with get_channel's 403 instead: no secret there).
        raise _not_found() from None
    return post, channel


async def get_post(rt: Runtime, actor: User, post_id: str) -> Post:
    post, _ = await _readable_post(rt, actor, post_id)
    return post


async def get_thread(rt: Runtime, actor: User, post_id: str) -> dict[str, Any]:
    post, _ = await _readable_post(rt, actor, post_id)
    root_id = post.root_id or post.id
    async with rt.db.transaction() as conn:
        thread = await store.list_thread(conn, root_id)
        counts = await store.reply_counts(conn, {root_id})
    result = post_list_json(thread, counts)
    # Mattermost puts the root first in a thread's order.
    result["order"] = [root_id] + [p.id for p in reversed(thread) if p.id != root_id]
    return result


async def list_channel_posts(
    rt: Runtime,
    actor: User,
    channel_id: str,
    page: int,
    per_page: int,
    *,
    since: int = 0,
    before: str = "",
    after: str = "",
    include_deleted: bool = False,
) -> dict[str, Any]:
    await get_channel(rt, actor, channel_id)
    async with rt.db.transaction() as conn:
        before_at = after_at = None
        for ref, name in ((before, "before"), (after, "after")):
            if ref:
                anchor = await store.find_post(conn, ref) if is_valid_id(ref) else None
                if anchor is None:
                    raise BadRequest(
                        "api.context.invalid_param.app_error",
                        f"Invalid {name} parameter.",
                        f"name={name}",
                    )
                if name == "before":
                    before_at = anchor.create_at
                else:
                    after_at = anchor.create_at
        posts = await store.list_channel_posts(
            conn,
            channel_id,
            page * per_page,
            per_page,
            since=since,
            before_create_at=before_at,
            after_create_at=after_at,
            include_deleted=include_deleted and actor.is_system_admin,
        )
        roots = {p.root_id or p.id for p in posts}
        counts = await store.reply_counts(conn, roots)
    return post_list_json(posts, counts)


async def patch_post(
    rt: Runtime, actor: User, post_id: str, message: str | None, props: dict[str, Any] | None
) -> Post:
    """Edit the message (and non-reserved props); the author or a team admin may."""
    post, channel = await _readable_post(rt, actor, post_id)
    async with rt.db.transaction() as conn:
        team_member = (
            await team_store.find_team_member(conn, channel.team_id, actor.id)
            if channel.team_id
            else None
        )
    if not perm.can_edit_post(actor, post.user_id, team_member):
        raise permission_error(actor.id, perm.EDIT_OTHERS_POSTS)
    changes: dict[str, Any] = {}
    if message is not None:
        _check_message(message)
        changes["message"] = message
    if props is not None:
        kept = {k: v for k, v in post.props.items() if k not in strip_reserved_props(post.props)}
        new_props = {**strip_reserved_props(props), **kept}
        _check_props(new_props)
        changes["props"] = new_props
    now = rt.clock.now_ms()
    updated = replace(
        post, update_at=now, edit_at=now if "message" in changes else post.edit_at, **changes
    )
    async with rt.db.transaction() as conn:
        await store.update_post(conn, post_id, update_at=now, edit_at=updated.edit_at, **changes)
        member_ids = await team_store.channel_member_ids(conn, post.channel_id)
    rt.events.publish(
        Event(
            "post_edited", {"post": json.dumps(post_json(updated))}, {"channel_id": post.channel_id}
        ),
        member_ids,
    )
    return updated


async def delete_post(rt: Runtime, actor: User, post_id: str) -> None:
    post, channel = await _readable_post(rt, actor, post_id)
    async with rt.db.transaction() as conn:
        team_member = (
            await team_store.find_team_member(conn, channel.team_id, actor.id)
            if channel.team_id
            else None
        )
    if not perm.can_edit_post(actor, post.user_id, team_member):
        raise permission_error(actor.id, perm.DELETE_OTHERS_POSTS)
    now = rt.clock.now_ms()
    async with rt.db.transaction() as conn:
        await store.delete_post(conn, post, now)
        member_ids = await team_store.channel_member_ids(conn, post.channel_id)
    deleted = replace(post, delete_at=now, update_at=now)
    rt.events.publish(
        Event(
            "post_deleted",
            {"post": json.dumps(post_json(deleted))},
            {"channel_id": post.channel_id},
        ),
        member_ids,
    )
