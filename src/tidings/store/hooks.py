"""Queries on outgoing hooks, returning domain objects, and the hooks' conflict index.

Every write of a hook here keeps its rows in ``hook_conflict_keys`` (or ``wide_hooks``) in step,
in the same transaction: a live hook has one row per (trigger word, callback URL) pair, and a
pair another hook of the team and channel already holds is refused by the primary key
(:class:`HookConflict`). A hook with more than :data:`WIDE_HOOK_KEYS` pairs is listed in
``wide_hooks`` instead, and the services compare it with its channel's hooks one by one.
"""

import json
from collections.abc import Iterable, Sequence
from hashlib import blake2b
from itertools import islice
from typing import Any

from sqlalchemy import and_, bindparam, delete, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from tidings.domain.hooks import OutgoingHook, conflict_key_count, conflict_keys
from tidings.domain.teams import ChannelType
from tidings.store.schema import (
    channel_members,
    channels,
    hook_conflict_keys,
    outgoing_hooks,
    users,
    wide_hooks,
)

# Up to this many (word, URL) pairs a hook's conflicts are found by its keys. Real hooks have a
# handful; a valid hook may have 511 × 113, which as rows would make one request write megabytes.
WIDE_HOOK_KEYS = 256

# Bound parameters per statement when looking keys up (well under every backend's limit).
_KEYS_PER_STATEMENT = 500


class HookConflict(Exception):
    """Another live hook of the same team and channel holds one of the hook's (word, URL) pairs.

    Raised when the database refused the hook's conflict keys; the transaction must end.
    """


def _hook(row: Any) -> OutgoingHook:
    return OutgoingHook(
        id=row.id,
        token=row.token,
        create_at=row.create_at,
        update_at=row.update_at,
        delete_at=row.delete_at,
        creator_id=row.creator_id,
        channel_id=row.channel_id,
        team_id=row.team_id,
        trigger_words=tuple(row.trigger_words or ()),
        trigger_when=row.trigger_when,
        callback_urls=tuple(row.callback_urls or ()),
        display_name=row.display_name,
        description=row.description,
        content_type=row.content_type,
        username=row.username,
        icon_url=row.icon_url,
        signing_secret=row.signing_secret,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        timeout_seconds=row.timeout_seconds or 0,
        extended_payload=row.extended_payload,
        trigger_on_bot_posts=row.trigger_on_bot_posts,
        stopped_reason=row.stopped_reason,
    )


def _values(hook: OutgoingHook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "token": hook.token,
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
        "signing_secret": hook.signing_secret,
        "enabled": hook.enabled,
        "disabled_reason": hook.disabled_reason,
        "timeout_seconds": hook.timeout_seconds,
        "extended_payload": hook.extended_payload,
        "trigger_on_bot_posts": hook.trigger_on_bot_posts,
        "stopped_reason": hook.stopped_reason,
    }


def pair_digest(word: str, url: str) -> str:
    """The stored form of a (trigger word, callback URL) pair: 32 hex digits.

    ``json.dumps`` (ASCII, escaping) keeps every pair distinct and encodable, lone surrogates
    included. Migration 0004 computes the same digest; the two must not drift.
    """
    return blake2b(json.dumps([word, url]).encode(), digest_size=16).hexdigest()


def is_wide(hook: OutgoingHook) -> bool:
    """Whether the hook's conflicts are found by comparing it with its channel's hooks (it has
    too many pairs to store) rather than by its keys."""
    return conflict_key_count(hook) > WIDE_HOOK_KEYS


def _key_rows(hook: OutgoingHook) -> list[dict[str, Any]]:
    return [
        {
            "team_id": hook.team_id,
            "channel_id": hook.channel_id,
            "pair_digest": pair_digest(word, url),
            "hook_id": hook.id,
        }
        for word, url in conflict_keys(hook)
    ]


_INSERT = outgoing_hooks.insert()
_INSERT_KEYS = hook_conflict_keys.insert()


def _index(conn: Connection, hooks: Iterable[OutgoingHook]) -> None:
    """Write the conflict index rows of the live ones of ``hooks``."""
    keys: list[dict[str, Any]] = []
    wide: list[dict[str, Any]] = []
    for hook in hooks:
        if hook.delete_at:
            continue
        if is_wide(hook):
            wide.append(
                {"team_id": hook.team_id, "channel_id": hook.channel_id, "hook_id": hook.id}
            )
        else:
            keys.extend(_key_rows(hook))
    if wide:
        conn.execute(wide_hooks.insert(), wide)
    if keys:
        try:
            conn.execute(_INSERT_KEYS, keys)
        except IntegrityError as error:
            raise HookConflict from error


def _unindex(conn: Connection, hook: OutgoingHook) -> None:
    """Remove the conflict index rows of ``hook`` as it was stored."""
    if hook.delete_at:
        return
    if is_wide(hook):
        conn.execute(
            delete(wide_hooks).where(
                wide_hooks.c.team_id == hook.team_id,
                wide_hooks.c.channel_id == hook.channel_id,
                wide_hooks.c.hook_id == hook.id,
            )
        )
    elif conflict_key_count(hook):
        conn.execute(delete(hook_conflict_keys).where(hook_conflict_keys.c.hook_id == hook.id))


def _indexed_as(hook: OutgoingHook) -> tuple[Any, ...]:
    """What a hook's conflict index rows depend on."""
    return (
        hook.delete_at == 0,
        hook.team_id,
        hook.channel_id,
        frozenset(hook.trigger_words),
        frozenset(hook.callback_urls),
    )


def insert_hook(conn: Connection, hook: OutgoingHook) -> None:
    """Insert a hook and its conflict keys; :class:`HookConflict` if another hook holds one."""
    conn.execute(_INSERT, _values(hook))
    _index(conn, [hook])


def insert_hooks(conn: Connection, hooks: Sequence[OutgoingHook]) -> None:
    """Insert many hooks in batched statements (bulk loads: benchmarks, scale tests)."""
    if hooks:
        conn.execute(_INSERT, [_values(hook) for hook in hooks])
        _index(conn, hooks)


def save_hook(conn: Connection, hook: OutgoingHook, *, before: OutgoingHook) -> None:
    """Overwrite every stored field with ``hook``'s; ``before`` is the hook as stored.

    When its channel, words, URLs or deletion changed, its conflict keys are replaced
    (:class:`HookConflict` if another hook holds one of the new keys).
    """
    values = _values(hook)
    del values["id"]
    conn.execute(update(outgoing_hooks).where(outgoing_hooks.c.id == hook.id).values(**values))
    if _indexed_as(before) != _indexed_as(hook):
        _unindex(conn, before)
        _index(conn, [hook])


def _chunks(values: Iterable[str], size: int) -> Iterable[list[str]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk


def holds_conflict_keys(conn: Connection, hook: OutgoingHook) -> bool:
    """Whether another live hook of the team and channel holds one of ``hook``'s pairs (for a
    hook whose keys are not about to be inserted; an insert finds out by itself)."""
    digests = {pair_digest(word, url) for word, url in conflict_keys(hook)}
    for chunk in _chunks(digests, _KEYS_PER_STATEMENT):
        found = conn.execute(
            select(hook_conflict_keys.c.hook_id)
            .where(
                hook_conflict_keys.c.team_id == hook.team_id,
                hook_conflict_keys.c.channel_id == hook.channel_id,
                hook_conflict_keys.c.pair_digest.in_(chunk),
                hook_conflict_keys.c.hook_id != hook.id,
            )
            .limit(1)
        ).first()
        if found is not None:
            return True
    return False


_WIDE = (
    select(outgoing_hooks)
    .select_from(wide_hooks.join(outgoing_hooks, outgoing_hooks.c.id == wide_hooks.c.hook_id))
    .where(
        wide_hooks.c.team_id == bindparam("b_team"),
        wide_hooks.c.channel_id == bindparam("b_channel"),
    )
)


def list_wide_hooks(conn: Connection, team_id: str, channel_id: str) -> list[OutgoingHook]:
    """The live hooks of the team and channel that have too many pairs for keys."""
    rows = conn.execute(_WIDE, {"b_team": team_id, "b_channel": channel_id})
    return [_hook(r) for r in rows]


_FIND = select(outgoing_hooks).where(
    outgoing_hooks.c.id == bindparam("b_id"), outgoing_hooks.c.delete_at == 0
)


_FIND_FOR_UPDATE = _FIND.with_for_update()


def find_hook(conn: Connection, hook_id: str, *, for_update: bool = False) -> OutgoingHook | None:
    """A live (not deleted) hook; ``for_update`` locks its row (PostgreSQL) to change it."""
    row = conn.execute(_FIND_FOR_UPDATE if for_update else _FIND, {"b_id": hook_id}).first()
    return _hook(row) if row else None


def find_hooks(conn: Connection, hook_ids: set[str]) -> dict[str, OutgoingHook]:
    """Hooks by id, deleted ones included (a delivery outlives its hook's deletion)."""
    if not hook_ids:
        return {}
    rows = conn.execute(select(outgoing_hooks).where(outgoing_hooks.c.id.in_(hook_ids)))
    return {r.id: _hook(r) for r in rows}


def list_hooks(
    conn: Connection,
    *,
    team_id: str | None = None,
    channel_id: str | None = None,
    creator_id: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[OutgoingHook]:
    query = select(outgoing_hooks).where(outgoing_hooks.c.delete_at == 0)
    if team_id is not None:
        query = query.where(outgoing_hooks.c.team_id == team_id)
    if channel_id is not None:
        query = query.where(outgoing_hooks.c.channel_id == channel_id)
    if creator_id is not None:
        query = query.where(outgoing_hooks.c.creator_id == creator_id)
    query = query.order_by(outgoing_hooks.c.create_at, outgoing_hooks.c.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [_hook(r) for r in (conn.execute(query)).all()]


# The hooks a post may fire: live, not stopped, their creator active and, for a private
# channel's hook, still a member of it. Membership is checked here too, not only through
# ``stopped_reason``: an index rebuilt from this never holds a hook whose creator has left,
# whatever raced with the leaving.
_MATCHABLE_FROM = (
    outgoing_hooks.join(users, users.c.id == outgoing_hooks.c.creator_id)
    .outerjoin(channels, channels.c.id == outgoing_hooks.c.channel_id)
    .outerjoin(
        channel_members,
        and_(
            channel_members.c.channel_id == outgoing_hooks.c.channel_id,
            channel_members.c.user_id == outgoing_hooks.c.creator_id,
        ),
    )
)
_MATCHABLE_WHERE = (
    outgoing_hooks.c.delete_at == 0,
    outgoing_hooks.c.stopped_reason == "",
    users.c.delete_at == 0,
    or_(
        outgoing_hooks.c.channel_id == "",
        channels.c.type != ChannelType.PRIVATE.value,
        channel_members.c.user_id.is_not(None),
    ),
)


def list_matchable_hooks(conn: Connection, team_id: str) -> list[OutgoingHook]:
    """The team's hooks a post may fire: live, not stopped, their creator an active account
    and, in a private channel, a member of it.

    A deactivated owner's hooks stay stored (and fire again on reactivation) but match nothing;
    so do a private channel's hooks whose creator left (until they rejoin).
    """
    query = (
        select(outgoing_hooks)
        .select_from(_MATCHABLE_FROM)
        .where(outgoing_hooks.c.team_id == team_id, *_MATCHABLE_WHERE)
        .order_by(outgoing_hooks.c.create_at, outgoing_hooks.c.id)
    )
    return [_hook(r) for r in (conn.execute(query)).all()]


def list_watching_hook_names(
    conn: Connection, team_id: str, channel_id: str, *, team_wide: bool, limit: int
) -> list[str]:
    """The display names of the enabled hooks among :func:`list_matchable_hooks` that watch
    ``channel_id`` (and, with ``team_wide``, the team's hooks that name no channel), oldest
    first, at most ``limit``."""
    scopes = [channel_id, ""] if team_wide else [channel_id]
    query = (
        select(outgoing_hooks.c.display_name)
        .select_from(_MATCHABLE_FROM)
        .where(
            outgoing_hooks.c.team_id == team_id,
            outgoing_hooks.c.channel_id.in_(scopes),
            outgoing_hooks.c.enabled.is_(True),
            *_MATCHABLE_WHERE,
        )
        .order_by(outgoing_hooks.c.create_at, outgoing_hooks.c.id)
        .limit(limit)
    )
    return [r.display_name for r in conn.execute(query)]


def _creator_channel_hooks(channel_id: str, creator_id: str) -> tuple[Any, ...]:
    return (
        outgoing_hooks.c.channel_id == channel_id,
        outgoing_hooks.c.creator_id == creator_id,
        outgoing_hooks.c.delete_at == 0,
    )


def hold_creator_channel_hooks(conn: Connection, channel_id: str, creator_id: str) -> None:
    """Lock (PostgreSQL) the live hooks ``creator_id`` owns in a channel before a membership
    change takes the team's row: hook rows before the team's, the order hook changes take
    them in (``services.hooks``), so the two never deadlock."""
    conn.execute(
        select(outgoing_hooks.c.id)
        .where(*_creator_channel_hooks(channel_id, creator_id))
        .with_for_update()
    ).all()


def stop_creator_channel_hooks(
    conn: Connection, channel_id: str, creator_id: str, reason: str, now_ms: int
) -> int:
    """Stop the running live hooks ``creator_id`` owns in a channel, saying ``reason``; how
    many were stopped."""
    result = conn.execute(
        update(outgoing_hooks)
        .where(
            *_creator_channel_hooks(channel_id, creator_id), outgoing_hooks.c.stopped_reason == ""
        )
        .values(stopped_reason=reason[:255], update_at=now_ms)
    )
    return int(result.rowcount)


def resume_creator_channel_hooks(
    conn: Connection, channel_id: str, creator_id: str, now_ms: int
) -> int:
    """Clear the stop of the live hooks ``creator_id`` owns in a channel; how many resumed."""
    result = conn.execute(
        update(outgoing_hooks)
        .where(
            *_creator_channel_hooks(channel_id, creator_id), outgoing_hooks.c.stopped_reason != ""
        )
        .values(stopped_reason="", update_at=now_ms)
    )
    return int(result.rowcount)


def list_creator_team_ids(conn: Connection, creator_id: str) -> list[str]:
    """The teams in which ``creator_id`` owns live hooks (their match indexes depend on them)."""
    rows = conn.execute(
        select(outgoing_hooks.c.team_id)
        .where(outgoing_hooks.c.creator_id == creator_id, outgoing_hooks.c.delete_at == 0)
        .distinct()
    )
    return [r.team_id for r in rows]


def claim_failure_notice(conn: Connection, hook_id: str, now_ms: int, every_ms: int) -> bool:
    """Take the right to tell the owner about failures; False if someone did within ``every_ms``."""
    result = conn.execute(
        update(outgoing_hooks)
        .where(
            outgoing_hooks.c.id == hook_id, outgoing_hooks.c.failure_notice_at <= now_ms - every_ms
        )
        .values(failure_notice_at=now_ms)
    )
    return bool(result.rowcount == 1)


def disable_hook(conn: Connection, hook_id: str, reason: str, now_ms: int) -> bool:
    """Disable a live, enabled hook; False if it already was (or is gone)."""
    result = conn.execute(
        update(outgoing_hooks)
        .where(
            outgoing_hooks.c.id == hook_id,
            outgoing_hooks.c.enabled.is_(True),
            outgoing_hooks.c.delete_at == 0,
        )
        .values(enabled=False, disabled_reason=reason[:255], update_at=now_ms)
    )
    return bool(result.rowcount == 1)
