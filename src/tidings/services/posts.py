"""Posts: create (and fire outgoing hooks through the outbox), read, edit, delete, threads.

Creating a post never contacts a receiver: the post and one delivery row per (matched hook,
callback URL) are written in one transaction, and the worker delivers after commit.
"""

import json
from dataclasses import dataclass, replace
from typing import Any

from tidings.domain import permissions as perm
from tidings.domain.hooks import OutgoingHook
from tidings.domain.outbox import NewDelivery
from tidings.domain.posts import (
    MAX_MESSAGE_RUNES,
    MAX_PENDING_POST_ID_RUNES,
    MAX_TYPE_RUNES,
    Post,
    strip_reserved_props,
)
from tidings.domain.server_config import WebhookSettings
from tidings.domain.teams import Channel, Team
from tidings.domain.users import User
from tidings.domain.wire import post_json, post_list_json, posted_event_data
from tidings.errors import BadRequest, NotFound, permission_error
from tidings.events import Event
from tidings.ids import is_valid_id, new_id
from tidings.services.runtime import Runtime
from tidings.services.teams import channel_not_found, channel_refusal, readable_channel
from tidings.store import hooks as hook_store
from tidings.store import posts as store
from tidings.store import teams as team_store
from tidings.store import users as user_store
from tidings.store.database import Connection
from tidings.store.outbox import enqueue
from tidings.store.teams import ChannelAccess
from tidings.webhooks import response_urls
from tidings.webhooks.matching import HookIndex, Match, channel_watchable, match_post
from tidings.webhooks.payloads import build_payload_fields, encode_body
from tidings.webhooks.response_urls import new_response_secret, response_url, secret_digest


def _not_found() -> NotFound:
    return NotFound("app.post.get.app_error", "Unable to get the post.")


def _check_message(message: str) -> None:
    if len(message) > MAX_MESSAGE_RUNES:
        raise BadRequest(
            "model.post.is_valid.message_length.app_error",
            f"Message must be {MAX_MESSAGE_RUNES} characters or fewer.",
        )


def _check_props(props: dict[str, Any]) -> None:
    # Most posts have none: skip building an encoder (the standard library makes one per call
    # with these options) for the two characters of ``{}``.
    if props and len(json.dumps(props, ensure_ascii=False)) > 760_000:
        raise BadRequest("model.post.is_valid.props.app_error", "Invalid props.")


def hooks_fire_in(settings: WebhookSettings, access: ChannelAccess) -> bool:
    """Whether a post in this channel may fire outgoing hooks at all: the one gate a user's
    post (:func:`create_post`) and a webhook's reply (``services/chains.py``) both pass. Hooks
    on, a team's channel, public (Mattermost's rule) or private when the System Console lets
    hooks watch private channels."""
    return (
        settings.enabled
        and access.has_team
        and channel_watchable(access.channel.type, private_channels=settings.private_channels)
    )


def matching_hooks(
    index: HookIndex,
    channel: Channel,
    message: str,
    settings: WebhookSettings,
    *,
    bot_post: bool = False,
) -> list[Match]:
    """The hooks a post with ``message`` fires in ``channel`` (past :func:`hooks_fire_in`), for
    a user's post and a webhook's reply (``bot_post``: only hooks with ``trigger_on_bot_posts``)
    alike, so a rule added here holds for both: a private channel fires only its own hooks."""
    return match_post(
        index,
        channel.id,
        channel.type,
        message,
        private_channels=settings.private_channels,
        bot_post=bot_post,
    )


def hook_index(rt: Runtime, conn: Connection, team_id: str, version: int) -> tuple[HookIndex, bool]:
    """(the team's match index, whether it was rebuilt): rebuilt, inside the caller's unit, only
    when one of its hooks, a hook creator's activity or a private channel's hook creator's
    membership changed (``version``); a deactivated creator's hooks and stopped hooks are left
    out. The unit may run on a database thread, so a rebuilt index is kept by the caller
    afterwards, on the event loop (:func:`keep_index`)."""
    cached = rt.hook_indexes.get(team_id)
    if cached is not None and cached[0] == version:
        index: HookIndex = cached[1]
        return index, False
    return HookIndex.build(hook_store.list_matchable_hooks(conn, team_id)), True


def keep_index(rt: Runtime, team_id: str, version: int, index: HookIndex) -> None:
    """Cache a rebuilt index unless a newer one (``note_hook_change``) got there first."""
    cached = rt.hook_indexes.get(team_id)
    if cached is None or cached[0] <= version:
        rt.hook_indexes[team_id] = (version, index)


def note_hook_change(
    rt: Runtime, team_id: str, version: int, hook_id: str, hook: OutgoingHook | None
) -> None:
    """After a hook change committed as the team's hooks ``version``, on the event loop: this
    process's cached index follows in place (``HookIndex.replacing``, no rebuild) if it is the
    one just before, the change then being all that differs. Any other cached index is left
    for the next post to find stale and rebuild. ``hook`` is None when the hook matches nothing
    any more (deleted, disabled, or its creator deactivated)."""
    cached = rt.hook_indexes.get(team_id)
    if cached is not None and cached[0] == version - 1:
        index: HookIndex = cached[1]
        rt.hook_indexes[team_id] = (version, index.replacing(hook_id, hook))


def deliveries_for(
    matches: list[Match],
    post: Post,
    team: Team,
    channel: Channel,
    author: User,
    *,
    site_url: str,
) -> list[NewDelivery]:
    """The delivery rows of ``post`` for each (matched hook, callback URL), bodies encoded.

    A hook with ``extended_payload`` gets one body per URL, each with its own ``response_url``
    secret (only its digest is stored); the others share one body per hook, Mattermost's bytes.
    ``site_url`` is where response URLs point (:func:`response_site_url`). Also called for
    webhook reply posts (bot chains), whose depth the rows carry on as ``post_depth``.
    """
    new: list[NewDelivery] = []
    for match in matches:
        hook = match.hook
        url_secrets = [
            new_response_secret() if hook.extended_payload else "" for _ in hook.callback_urls
        ]
        bodies: dict[str, tuple[bytes, str]] = {}
        for secret in dict.fromkeys(url_secrets):
            fields = build_payload_fields(
                hook,
                post,
                team,
                channel,
                author_username=author.username,
                trigger_word=match.trigger_word,
                author_is_bot=author.is_bot,
                response_url=response_url(site_url, secret) if secret else "",
            )
            bodies[secret] = encode_body(hook, fields)
        new.extend(
            NewDelivery(
                hook_id=hook.id,
                post_id=post.id,
                channel_id=channel.id,
                url=url,
                content_type=bodies[secret][1],
                body=bodies[secret][0],
                trigger_word=match.trigger_word,
                root_id=post.root_id or post.id,
                post_depth=post.webhook_depth,
                response_secret_hash=secret_digest(secret) if secret else "",
            )
            for url, secret in zip(hook.callback_urls, url_secrets, strict=True)
        )
    return new


def response_site_url(rt: Runtime, settings: WebhookSettings) -> str:
    """Where this server's ``response_url``s point: SiteURL, or the address it listens on."""
    return response_urls.site_url(settings.site_url, rt.settings.host, rt.settings.port)


def _postable_channel(actor: User, access: ChannelAccess | None) -> Channel:
    if access is None or access.channel.delete_at:
        raise channel_not_found()
    channel = access.channel
    if not perm.can_post(actor, channel, access.member):
        if not perm.can_read_channel(actor, channel, access.team_member, access.member):
            # A private channel or DM as if it did not exist; a public one of an open team
            # refused with 403, its existence being no secret.
            raise channel_refusal(actor, channel, access.team)
        raise permission_error(actor.id, perm.CREATE_POST)
    return channel


def _check_root(conn: Connection, root_id: str, channel_id: str) -> None:
    root = store.find_post(conn, root_id) if is_valid_id(root_id) else None
    if root is None or root.delete_at or root.channel_id != channel_id or root.root_id:
        raise BadRequest("api.post.create_post.root_id.app_error", "Invalid RootId parameter.")


@dataclass(frozen=True, slots=True)
class _Saved:
    channel: Channel
    member_ids: list[str]
    mentions: list[str]
    queued: bool
    # (team id, hooks version, index) when the unit rebuilt the team's match index.
    rebuilt: tuple[str, int, HookIndex] | None = None


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
    """Save a user's post and, in the same transaction, queue the deliveries of the hooks it fires.

    The hot path of the server: one unit of work of few, prebuilt statements (the channel with
    the poster's memberships and the team's hooks version; the post; the channel's counters; the
    poster's; the deliveries, only when a hook matched; the members, only when anyone listens).
    """
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
    hook_settings = await rt.webhook_settings()
    if not is_valid_id(channel_id):
        raise channel_not_found()
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
    # The posted event goes to the channel's members who listen; with no listener at all, the
    # members need not be read (nor the mentions worked out).
    announce = rt.events.has_listeners()

    def work(conn: Connection) -> _Saved:
        access = team_store.find_channel_access(conn, channel_id, actor.id)
        channel = _postable_channel(actor, access)
        assert access is not None
        if root_id:
            _check_root(conn, root_id, channel_id)
        member_ids: list[str] = []
        mentions: list[str] = []
        if announce:
            member_ids = team_store.channel_member_ids(conn, channel_id)
            mentions = user_store.mentioned_user_ids(conn, message, member_ids, actor.id)
        store.insert_post(conn, post)
        queued: list[str] = []
        rebuilt: tuple[str, int, HookIndex] | None = None
        if hooks_fire_in(hook_settings, access):
            index, fresh = hook_index(rt, conn, channel.team_id, access.hooks_version)
            if fresh:
                rebuilt = (channel.team_id, access.hooks_version, index)
            matches = matching_hooks(index, channel, message, hook_settings)
            team = access.team if matches else None
            if team is not None:
                new = deliveries_for(
                    matches,
                    post,
                    team,
                    channel,
                    actor,
                    site_url=response_site_url(rt, hook_settings),
                )
                queued = enqueue(conn, new, now)
        # Last (with the poster's read mark, which copies its count): every post of the channel
        # updates this one row, and PostgreSQL holds its lock until the commit, so each
        # statement after it would make the channel's other posters wait that much longer
        # (docs/performance.md, "The cluster").
        team_store.touch_channel(conn, channel_id, now)
        if access.member is not None:
            team_store.mark_viewed_by_poster(conn, channel_id, actor.id, now)
        return _Saved(channel, member_ids, mentions, bool(queued), rebuilt)

    saved = await rt.db.write(work)
    if saved.rebuilt is not None:
        keep_index(rt, *saved.rebuilt)
    if saved.member_ids:
        rt.events.publish(
            posted_event(
                post,
                saved.channel,
                sender_name=f"@{actor.username}",
                mentions=saved.mentions,
                set_online=True,
            ),
            saved.member_ids,
        )
    if saved.queued:
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


def _readable_post(conn: Connection, actor: User, post_id: str) -> tuple[Post, ChannelAccess]:
    """A live post in a channel the actor may read, with that channel's access rows."""
    post = store.find_post(conn, post_id) if is_valid_id(post_id) else None
    if post is None or post.delete_at:
        raise _not_found()
    access = team_store.find_channel_access(conn, post.channel_id, actor.id)
    try:
        readable_channel(actor, access)
    except NotFound:
        # A post in a channel the actor may not read is as absent as a missing post (a public
        # channel of an open team is refused with get_channel's 403 instead: no secret there).
        raise _not_found() from None
    assert access is not None
    return post, access


async def get_post(rt: Runtime, actor: User, post_id: str) -> Post:
    return await rt.db.read(lambda conn: _readable_post(conn, actor, post_id)[0])


async def get_thread(rt: Runtime, actor: User, post_id: str) -> dict[str, Any]:
    def work(conn: Connection) -> tuple[str, list[Post], dict[str, tuple[int, int]]]:
        post, _ = _readable_post(conn, actor, post_id)
        root_id = post.root_id or post.id
        return root_id, store.list_thread(conn, root_id), store.reply_counts(conn, {root_id})

    root_id, thread, counts = await rt.db.read(work)
    result = post_list_json(thread, counts)
    # Mattermost puts the root first in a thread's order.
    result["order"] = [root_id] + [p.id for p in reversed(thread) if p.id != root_id]
    return result


def _anchor_time(conn: Connection, ref: str, name: str) -> int:
    """The create_at of the post a ``before``/``after`` parameter names; 400 if there is none."""
    anchor = store.find_post(conn, ref) if is_valid_id(ref) else None
    if anchor is None:
        raise BadRequest(
            "api.context.invalid_param.app_error", f"Invalid {name} parameter.", f"name={name}"
        )
    return anchor.create_at


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
    def work(conn: Connection) -> tuple[list[Post], dict[str, tuple[int, int]]]:
        access = (
            team_store.find_channel_access(conn, channel_id, actor.id)
            if is_valid_id(channel_id)
            else None
        )
        readable_channel(actor, access)
        before_at = _anchor_time(conn, before, "before") if before else None
        after_at = _anchor_time(conn, after, "after") if after else None
        posts = store.list_channel_posts(
            conn,
            channel_id,
            page * per_page,
            per_page,
            since=since,
            before_create_at=before_at,
            after_create_at=after_at,
            include_deleted=include_deleted and actor.is_system_admin,
        )
        return posts, store.reply_counts(conn, {p.root_id or p.id for p in posts})

    posts, counts = await rt.db.read(work)
    return post_list_json(posts, counts)


async def patch_post(
    rt: Runtime, actor: User, post_id: str, message: str | None, props: dict[str, Any] | None
) -> Post:
    """Edit the message (and non-reserved props); the author or a team admin may."""
    now = rt.clock.now_ms()

    def work(conn: Connection) -> tuple[Post, list[str]]:
        post, access = _readable_post(conn, actor, post_id)
        if not perm.can_edit_post(actor, post.user_id, access.team_member):
            raise permission_error(actor.id, perm.EDIT_OTHERS_POSTS)
        changes: dict[str, Any] = {}
        if message is not None:
            _check_message(message)
            changes["message"] = message
        if props is not None:
            kept = {
                k: v for k, v in post.props.items() if k not in strip_reserved_props(post.props)
            }
            new_props = {**strip_reserved_props(props), **kept}
            _check_props(new_props)
            changes["props"] = new_props
        updated = replace(
            post, update_at=now, edit_at=now if "message" in changes else post.edit_at, **changes
        )
        store.update_post(conn, post_id, update_at=now, edit_at=updated.edit_at, **changes)
        return updated, team_store.channel_member_ids(conn, post.channel_id)

    updated, member_ids = await rt.db.write(work)
    rt.events.publish(
        Event(
            "post_edited",
            {"post": json.dumps(post_json(updated))},
            {"channel_id": updated.channel_id},
        ),
        member_ids,
    )
    return updated


async def delete_post(rt: Runtime, actor: User, post_id: str) -> None:
    now = rt.clock.now_ms()

    def work(conn: Connection) -> tuple[Post, list[str]]:
        post, access = _readable_post(conn, actor, post_id)
        if not perm.can_edit_post(actor, post.user_id, access.team_member):
            raise permission_error(actor.id, perm.DELETE_OTHERS_POSTS)
        store.delete_post(conn, post, now)
        return post, team_store.channel_member_ids(conn, post.channel_id)

    post, member_ids = await rt.db.write(work)
    deleted = replace(post, delete_at=now, update_at=now)
    rt.events.publish(
        Event(
            "post_deleted",
            {"post": json.dumps(post_json(deleted))},
            {"channel_id": post.channel_id},
        ),
        member_ids,
    )
