"""Queries on outgoing hooks, returning domain objects."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from tidings.domain.hooks import OutgoingHook
from tidings.store.schema import outgoing_hooks, users


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
        timeout_seconds=row.timeout_seconds,
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
    }


def insert_hook(conn: Connection, hook: OutgoingHook) -> None:
    insert_hooks(conn, [hook])


def insert_hooks(conn: Connection, hooks: Sequence[OutgoingHook]) -> None:
    """Insert many hooks in one batched statement (bulk loads: benchmarks, scale tests)."""
    if hooks:
        conn.execute(outgoing_hooks.insert(), [_values(hook) for hook in hooks])


def save_hook(conn: Connection, hook: OutgoingHook) -> None:
    """Overwrite every stored field with ``hook``'s."""
    values = _values(hook)
    del values["id"]
    conn.execute(update(outgoing_hooks).where(outgoing_hooks.c.id == hook.id).values(**values))


def find_hook(conn: Connection, hook_id: str) -> OutgoingHook | None:
    """A live (not deleted) hook."""
    row = (
        conn.execute(
            select(outgoing_hooks).where(
                outgoing_hooks.c.id == hook_id, outgoing_hooks.c.delete_at == 0
            )
        )
    ).first()
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


def list_matchable_hooks(conn: Connection, team_id: str) -> list[OutgoingHook]:
    """The team's live hooks whose creator is an active account: the ones a post may fire.

    A deactivated owner's hooks stay stored (and fire again on reactivation) but match nothing.
    """
    query = (
        select(outgoing_hooks)
        .select_from(outgoing_hooks.join(users, users.c.id == outgoing_hooks.c.creator_id))
        .where(
            outgoing_hooks.c.team_id == team_id,
            outgoing_hooks.c.delete_at == 0,
            users.c.delete_at == 0,
        )
        .order_by(outgoing_hooks.c.create_at, outgoing_hooks.c.id)
    )
    return [_hook(r) for r in (conn.execute(query)).all()]


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
