"""Domain objects in Mattermost's JSON shapes (snake_case, millisecond times, ``""`` not null).

Pure functions shared by the API, the websocket events and the webhook worker, so a post looks
the same wherever a client meets it. Secrets (hook tokens, signing secrets) are added only when
the caller says the viewer may see them.
"""

import json
from typing import Any

from tidings.domain.deliveries import Attempt, Delivery
from tidings.domain.hooks import OutgoingHook
from tidings.domain.posts import Post
from tidings.domain.teams import Channel, ChannelMember, Team, TeamMember
from tidings.domain.users import User

JSON = dict[str, Any]


def user_json(user: User, *, include_email: bool = True) -> JSON:
    return {
        "id": user.id,
        "create_at": user.create_at,
        "update_at": user.update_at,
        "delete_at": user.delete_at,
        "username": user.username,
        "auth_data": "",
        "auth_service": "",
        "email": user.email if include_email else "",
        "email_verified": True,
        "nickname": user.nickname,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "position": user.position,
        "roles": user.roles,
        "props": user.props,
        "notify_props": {
            "desktop": "mention",
            "email": "true",
            "mention_keys": "",
            "push": "mention",
            "channel": "true",
        },
        "last_password_update": user.last_password_update,
        "locale": user.locale,
        "timezone": {"automaticTimezone": "", "manualTimezone": "", "useAutomaticTimezone": "true"},
        "is_bot": user.is_bot,
        "disable_welcome_email": False,
    }


def team_json(team: Team) -> JSON:
    return {
        "id": team.id,
        "create_at": team.create_at,
        "update_at": team.update_at,
        "delete_at": team.delete_at,
        "display_name": team.display_name,
        "name": team.name,
        "description": team.description,
        "email": team.email,
        "type": team.type.value,
        "company_name": "",
        "allowed_domains": "",
        "invite_id": team.invite_id,
        "allow_open_invite": team.allow_open_invite,
        "scheme_id": "",
        "group_constrained": False,
        # No ``policy_id``: Mattermost documents it as a string and Tidings has no retention
        # policies; leaving it out (rather than null) satisfies the description and clients.
    }


def team_member_json(member: TeamMember) -> JSON:
    roles = member.roles.split()
    return {
        "team_id": member.team_id,
        "user_id": member.user_id,
        "roles": member.roles,
        "delete_at": member.delete_at,
        "scheme_user": "team_user" in roles,
        "scheme_admin": "team_admin" in roles,
        "explicit_roles": "",
    }


def channel_json(channel: Channel) -> JSON:
    return {
        "id": channel.id,
        "create_at": channel.create_at,
        "update_at": channel.update_at,
        "delete_at": channel.delete_at,
        "team_id": channel.team_id,
        "type": channel.type.value,
        "display_name": channel.display_name,
        "name": channel.name,
        "header": channel.header,
        "purpose": channel.purpose,
        "last_post_at": channel.last_post_at,
        "total_msg_count": channel.total_msg_count,
        "extra_update_at": 0,
        "creator_id": channel.creator_id,
        "scheme_id": None,
        "props": None,
        "group_constrained": None,
        "shared": None,
        "total_msg_count_root": channel.total_msg_count,
        "policy_id": None,
        "last_root_post_at": channel.last_post_at,
    }


def channel_member_json(member: ChannelMember) -> JSON:
    roles = member.roles.split()
    return {
        "channel_id": member.channel_id,
        "user_id": member.user_id,
        "roles": member.roles,
        "last_viewed_at": member.last_viewed_at,
        "msg_count": member.msg_count,
        "mention_count": member.mention_count,
        "mention_count_root": member.mention_count,
        "msg_count_root": member.msg_count,
        "notify_props": {
            "desktop": "default",
            "email": "default",
            "mark_unread": "all",
            "push": "default",
        },
        "last_update_at": member.last_viewed_at,
        "scheme_guest": False,
        "scheme_user": "channel_user" in roles,
        "scheme_admin": "channel_admin" in roles,
        "explicit_roles": "",
    }


def post_json(post: Post, reply_count: int = 0, last_reply_at: int = 0) -> JSON:
    return {
        "id": post.id,
        "create_at": post.create_at,
        "update_at": post.update_at,
        "edit_at": post.edit_at,
        "delete_at": post.delete_at,
        "is_pinned": post.is_pinned,
        "user_id": post.user_id,
        "channel_id": post.channel_id,
        "root_id": post.root_id,
        "original_id": "",
        "message": post.message,
        "type": post.type,
        "props": post.props,
        "hashtags": "",
        "file_ids": list(post.file_ids),
        "pending_post_id": post.pending_post_id,
        "reply_count": reply_count,
        "last_reply_at": last_reply_at,
        "participants": None,
        "metadata": {},
    }


def post_list_json(posts: list[Post], counts: dict[str, tuple[int, int]] | None = None) -> JSON:
    """Mattermost's PostList: ``order`` newest first, ``posts`` by id."""
    counts = counts or {}
    return {
        "order": [p.id for p in posts],
        "posts": {p.id: post_json(p, *counts.get(p.root_id or p.id, (0, 0))) for p in posts},
        "next_post_id": "",
        "prev_post_id": "",
        "has_next": False,
        "first_inaccessible_post_time": 0,
    }


def posted_event_data(
    post: Post, channel: Channel, *, sender_name: str, mentions: list[str], set_online: bool
) -> JSON:
    """The ``posted`` websocket event's data; ``post`` is the Post as a JSON string, as clients expect."""
    return {
        "channel_display_name": channel.display_name,
        "channel_name": channel.name,
        "channel_type": channel.type.value,
        "post": json.dumps(post_json(post)),
        "sender_name": sender_name,
        "set_online": set_online,
        "team_id": channel.team_id,
        "mentions": json.dumps(mentions) if mentions else "",
    }


def hook_json(hook: OutgoingHook, *, show_secrets: bool) -> JSON:
    """Token and signing secret only for the owner and admins; others see them blank."""
    return {
        "id": hook.id,
        "token": hook.token if show_secrets else "",
        "create_at": hook.create_at,
        "update_at": hook.update_at,
        "delete_at": hook.delete_at,
        "creator_id": hook.creator_id,
        "channel_id": hook.channel_id,
        "team_id": hook.team_id,
        "trigger_words": list(hook.trigger_words),
        "trigger_when": hook.trigger_when,
        "callback_urls": list(hook.callback_urls),
        "display_name": hook.display_name,
        "description": hook.description,
        "content_type": hook.content_type,
        "username": hook.username,
        "icon_url": hook.icon_url,
        "signing_secret": hook.signing_secret if show_secrets else "",
        "enabled": hook.enabled,
        "disabled_reason": hook.disabled_reason,
        "timeout_seconds": hook.timeout_seconds,
        "extended_payload": hook.extended_payload,
        "trigger_on_bot_posts": hook.trigger_on_bot_posts,
        "stopped_reason": hook.stopped_reason,
    }


def attempt_json(attempt: Attempt) -> JSON:
    return {
        "id": attempt.id,
        "number": attempt.number,
        "started_at": attempt.started_at,
        "duration_ms": attempt.duration_ms,
        "status_code": attempt.status_code,
        "error_kind": attempt.error_kind,
        "error_message": attempt.error_message,
        "request_headers": attempt.request_headers,
        "response_headers": attempt.response_headers,
        "response_body": attempt.response_excerpt,
    }


def delivery_json(delivery: Delivery, attempts: list[Attempt] | None = None) -> JSON:
    """A delivery for its hook's owner and admins (the body holds the hook's token)."""
    data: JSON = {
        "id": delivery.id,
        "hook_id": delivery.hook_id,
        "post_id": delivery.post_id,
        "channel_id": delivery.channel_id,
        "url": delivery.url,
        "status": delivery.status.value,
        "is_ping": delivery.post_id == "",
        "trigger_word": delivery.trigger_word,
        "content_type": delivery.content_type,
        "create_at": delivery.create_at,
        "update_at": delivery.update_at,
        "next_attempt_at": delivery.next_attempt_at,
        "attempt_count": delivery.attempt_count,
        "reply_posted": delivery.reply_posted,
        "last_status_code": delivery.last_status_code,
        "last_error_kind": delivery.last_error_kind,
        "last_error": delivery.last_error,
        "response_uses": delivery.response_uses,
    }
    if attempts is not None:
        data["request_body"] = delivery.body.decode("utf-8", errors="replace")
        data["attempts"] = [attempt_json(a) for a in attempts]
    return data
