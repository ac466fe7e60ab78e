"""Outgoing hooks: create, list, get, update, delete, regenerate — every rule of REF §1.4–1.6 and §6.1.

Deliberate divergences from Mattermost (spec §1): validation runs on update too; an update merges
(a field missing from the body keeps its value, so the token never blanks); a conflict is 400 on
create and update alike; trigger words with no channel are 400 on both. A non-public channel is
403 on both, with Mattermost's ids: create reuses ``api.outgoing_webhook.disabled.app_error``
(clients match on it), update says ``…not_open…``.

Beyond Mattermost (issue #13): with ``EnableOutgoingWebhooksInPrivateChannels`` on, a hook may
watch a private channel its creator belongs to. Such a hook is *stopped* while its creator is
not a member (``stopped_reason``, set and cleared by ``services.teams`` as they leave and
rejoin); one the creator left stays editable, and stays stopped. A new or moved hook needs the
creator in the channel, checked after the team's row is held, so a creator leaving at the same
moment is either seen here or stops the hook there.

Each call is one unit of work. A conflict (same channel, a shared trigger word and a shared
callback URL) is found through the conflict index kept by ``store.hooks``, never by reading the
team's hooks, so writing a hook costs the same in a team of ten thousand. After a change
commits, this process's cached match index is updated in place (``posts.note_hook_change``).
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

from tidings.domain import permissions as perm
from tidings.domain import server_config
from tidings.domain.hooks import (
    OutgoingHook,
    conflict_key_count,
    hooks_conflict,
    left_channel_reason,
    validate_hook,
)
from tidings.domain.teams import Channel, ChannelType
from tidings.domain.users import User
from tidings.errors import (
    BadRequest,
    FeatureDisabled,
    Forbidden,
    NotFound,
    invalid_body_param,
    invalid_url_param,
    permission_error,
)
from tidings.ids import is_valid_id, new_id
from tidings.services.posts import note_hook_change
from tidings.services.runtime import Runtime
from tidings.services.teams import readable_channel
from tidings.store import hooks as store
from tidings.store import teams as team_store
from tidings.store import users as user_store
from tidings.store.database import Connection
from tidings.webhooks.matching import channel_watchable
from tidings.webhooks.signing import new_signing_secret

CREATE_CONFLICT = "api.webhook.create_outgoing.intersect.app_error"
UPDATE_CONFLICT = "api.webhook.update_outgoing.intersect.app_error"


@dataclass(frozen=True, slots=True)
class HookInput:
    """The fields a client sent; ``None`` means "not in the body"."""

    id: str | None = None
    team_id: str | None = None
    channel_id: str | None = None
    creator_id: str | None = None
    token: str | None = None
    trigger_words: tuple[str, ...] | None = None
    trigger_when: int | None = None
    callback_urls: tuple[str, ...] | None = None
    display_name: str | None = None
    description: str | None = None
    content_type: str | None = None
    username: str | None = None
    icon_url: str | None = None
    timeout_seconds: int | None = None
    extended_payload: bool | None = None
    trigger_on_bot_posts: bool | None = None


@dataclass(frozen=True, slots=True)
class HookSettings:
    """What the configuration says about outgoing hooks, read before a unit of work."""

    enabled: bool
    members_allowed: bool
    private_channels: bool = False


async def hook_settings(rt: Runtime) -> HookSettings:
    config = await rt.config()
    webhooks = server_config.webhook_settings(config)
    return HookSettings(
        enabled=webhooks.enabled,
        members_allowed=bool(config["ServiceSettings"]["EnableMemberOutgoingWebhooks"]),
        private_channels=webhooks.private_channels,
    )


def _disabled() -> FeatureDisabled:
    return FeatureDisabled(
        "api.outgoing_webhook.disabled.app_error",
        "Outgoing webhooks have been disabled by the system admin.",
    )


def _missing() -> NotFound:
    return NotFound("app.webhooks.get_outgoing.app_error", "Unable to get the webhook.")


def _require_enabled(settings: HookSettings) -> None:
    """Raise 501 when the feature is off."""
    if not settings.enabled:
        raise _disabled()


def _team_rights(
    conn: Connection, actor: User, team_id: str, members_allowed: bool
) -> tuple[bool, bool]:
    """(may manage own hooks, may manage others' hooks) in the team."""
    if not team_id:
        return False, False
    member = team_store.find_team_member(conn, team_id, actor.id) if is_valid_id(team_id) else None
    return (
        perm.can_manage_own_hooks(actor, member, members_allowed),
        perm.can_manage_others_hooks(actor, member),
    )


def _not_open(*, creating: bool, private_channels: bool) -> Forbidden:
    """A channel a hook may not watch: today's ids and status, whatever the reason."""
    return Forbidden(
        "api.outgoing_webhook.disabled.app_error"
        if creating
        else "api.webhook.create_outgoing.not_open.app_error",
        "Outgoing webhooks can only be created for public channels, or private channels "
        "their creator belongs to."
        if private_channels
        else "Outgoing webhooks can only be created for public channels.",
    )


def _check_channel_and_triggers(
    conn: Connection,
    actor: User,
    hook: OutgoingHook,
    *,
    before: OutgoingHook | None,
    private_channels: bool,
) -> Channel | None:
    """The channel rules of REF §3, after the actor's own view of the channel: one they may not
    read answers as ``team_service.get_channel`` does (a private channel, a DM or a channel of
    an invite-only team as missing), so naming a channel id on a hook is no existence oracle.

    ``before`` is the hook as stored (None when creating). The private channel a hook already
    watches is kept without the actor's view of it (its creator may have left it; a team admin
    may edit a hook there), the hook itself having told the actor of it. Returns the channel
    (None for a team-wide hook); whether the creator belongs to a private one is
    :func:`_stopped_reason`'s, once the team's row is held.
    """
    creating = before is None
    if hook.channel_id:
        access = (
            team_store.find_channel_access(conn, hook.channel_id, actor.id)
            if is_valid_id(hook.channel_id)
            else None
        )
        kept = (
            before is not None
            and before.channel_id == hook.channel_id
            and access is not None
            and not access.channel.delete_at
            and access.channel.type == ChannelType.PRIVATE
        )
        channel = access.channel if kept and access else readable_channel(actor, access)
        if channel.type != ChannelType.PUBLIC and not (
            channel.type == ChannelType.PRIVATE and private_channels
        ):
            raise _not_open(creating=creating, private_channels=private_channels)
        if channel.team_id != hook.team_id:
            raise Forbidden(
                "api.webhook.create_outgoing.permissions.app_error",
                "Invalid permissions to create outgoing webhook.",
            )
        return channel
    if not hook.trigger_words:
        raise BadRequest(
            "api.webhook.create_outgoing.triggers.app_error",
            "Either trigger_words or channel_id must be set.",
        )
    return None


def _stopped_reason(
    conn: Connection,
    hook: OutgoingHook,
    channel: Channel | None,
    *,
    before: OutgoingHook | None,
    private_channels: bool,
) -> str:
    """The hook's ``stopped_reason`` as written now: "" unless it watches a private channel
    its creator is not in. A new hook, or one moved there, is refused for it (as for a channel
    no hook may watch); a hook that already watched the channel stays stopped, editable."""
    if channel is None or channel.type != ChannelType.PRIVATE:
        return ""
    if team_store.find_channel_member(conn, channel.id, hook.creator_id) is not None:
        return ""
    if before is None or before.channel_id != channel.id:
        raise _not_open(creating=before is None, private_channels=private_channels)
    creator = user_store.find_user(conn, hook.creator_id)
    return left_channel_reason(creator.username if creator else hook.creator_id, channel.name)


def _conflict(error_id: str) -> BadRequest:
    return BadRequest(
        error_id,
        "Outgoing webhooks from the same channel cannot have the same trigger words/callback URLs.",
    )


def _has_conflict(conn: Connection, hook: OutgoingHook, *, by_keys: bool) -> bool:
    """Whether another live hook of the team and channel shares a word and a URL with ``hook``.

    Reads no more than the channel's wide hooks (usually none); the keys of the others are
    looked up when ``by_keys``, and otherwise left to the insert that follows, which the
    database refuses (``store.HookConflict``). Only a wide hook is compared with every hook of
    its channel.
    """
    if not conflict_key_count(hook):
        return False
    if store.is_wide(hook):
        others = store.list_hooks(conn, team_id=hook.team_id, channel_id=hook.channel_id)
    else:
        if by_keys and store.holds_conflict_keys(conn, hook):
            return True
        others = store.list_wide_hooks(conn, hook.team_id, hook.channel_id)
    return any(other.id != hook.id and hooks_conflict(hook, other) for other in others)


def _check_conflicts_and_validate(conn: Connection, hook: OutgoingHook, error_id: str) -> None:
    """A conflict, then REF §1.3's rules: a hook both conflicting and invalid is refused for the
    conflict, as when conflicts were found by reading every hook of the team."""
    try:
        validate_hook(hook)
    except BadRequest:
        if _has_conflict(conn, hook, by_keys=True):
            raise _conflict(error_id) from None
        raise
    if _has_conflict(conn, hook, by_keys=False):
        raise _conflict(error_id)


@dataclass(frozen=True, slots=True)
class _Written:
    """A hook as a unit of work stored it, and what this process's match index needs to know."""

    hook: OutgoingHook
    hooks_version: int | None
    creator_active: bool


def _lock_for_change(conn: Connection, hook: OutgoingHook) -> tuple[int | None, bool]:
    """(the team's new hooks version, whether the hook's creator is active), taking the locks a
    hook change holds on PostgreSQL in the one order every writer takes them — the hook's row
    (taken by the caller), then its creator's, then its team's — so none of them deadlock:
    deactivating the creator waits, or is waited for, and the team's hook changes take turns,
    which keeps their conflict checks from racing. SQLite's single writer needs none of it."""
    creator_active = user_store.hold_active_user(conn, hook.creator_id)
    return team_store.next_hooks_version(conn, hook.team_id), creator_active


def _note(rt: Runtime, written: _Written) -> OutgoingHook:
    """After commit: this process's cached match index follows the change."""
    hook = written.hook
    if written.hooks_version is not None:
        matchable = hook if written.creator_active else None
        note_hook_change(rt, hook.team_id, written.hooks_version, hook.id, matchable)
    return hook


async def create_hook(rt: Runtime, actor: User, data: HookInput) -> OutgoingHook:
    team_id = data.team_id or ""
    settings = await hook_settings(rt)
    now = rt.clock.now_ms()
    hook_id, token, secret = new_id(), data.token or new_id(), new_signing_secret()

    def work(conn: Connection) -> _Written:
        own, _ = _team_rights(conn, actor, team_id, settings.members_allowed)
        if not own:
            raise permission_error(actor.id, perm.MANAGE_OWN_HOOKS)
        creator_id = actor.id
        if data.creator_id and data.creator_id != actor.id:
            # The creator owns the hook's notices and its fate when deactivated: only a system
            # admin may name someone else (Mattermost lets manage_others_outgoing_webhooks do
            # it, which team admins hold; they could then pin hooks on any account of the server).
            if not perm.can_create_hook_for_others(actor):
                raise permission_error(actor.id, perm.MANAGE_OTHERS_HOOKS)
            creator = (
                user_store.find_user(conn, data.creator_id)
                if is_valid_id(data.creator_id)
                else None
            )
            if creator is None:
                raise NotFound("app.user.missing_account.const", "Unable to find the user.")
            creator_id = creator.id
        _require_enabled(settings)
        if data.id:
            raise BadRequest(
                "app.webhooks.save_outgoing.override.app_error",
                "You cannot overwrite an existing OutgoingWebhook.",
            )
        hook = OutgoingHook(
            id=hook_id,
            token=token,
            create_at=now,
            update_at=now,
            delete_at=0,
            creator_id=creator_id,
            channel_id=data.channel_id or "",
            team_id=team_id,
            trigger_words=data.trigger_words or (),
            trigger_when=data.trigger_when or 0,
            callback_urls=data.callback_urls or (),
            display_name=data.display_name or "",
            description=data.description or "",
            content_type=data.content_type or "",
            username=data.username or "",
            icon_url=data.icon_url or "",
            signing_secret=secret,
            timeout_seconds=data.timeout_seconds or 0,
            extended_payload=bool(data.extended_payload),
            trigger_on_bot_posts=bool(data.trigger_on_bot_posts),
        )
        channel = _check_channel_and_triggers(
            conn, actor, hook, before=None, private_channels=settings.private_channels
        )
        version, creator_active = _lock_for_change(conn, hook)
        _stopped_reason(
            conn, hook, channel, before=None, private_channels=settings.private_channels
        )
        _check_conflicts_and_validate(conn, hook, CREATE_CONFLICT)
        try:
            store.insert_hook(conn, hook)
        except store.HookConflict:
            raise _conflict(CREATE_CONFLICT) from None
        return _Written(hook, version, creator_active)

    return _note(rt, await rt.db.write(work))


def load_hook_for_change(
    conn: Connection, actor: User, hook_id: str, settings: HookSettings, *, lock: bool = False
) -> OutgoingHook:
    """Load, then check rights: 400 malformed id, 501 off, 404 missing, 403 not allowed.

    Runs inside a unit of work (the delivery log's services check their rights with it too);
    ``lock`` holds the hook's row (PostgreSQL) for a unit that changes it.
    """
    if not is_valid_id(hook_id):
        raise invalid_url_param("hook_id")
    _require_enabled(settings)
    hook = store.find_hook(conn, hook_id, for_update=lock)
    if hook is None:
        raise _missing()
    own, others = _team_rights(conn, actor, hook.team_id, settings.members_allowed)
    if not own:
        raise permission_error(actor.id, perm.MANAGE_OWN_HOOKS)
    if hook.creator_id != actor.id and not others:
        raise permission_error(actor.id, perm.MANAGE_OTHERS_HOOKS)
    return hook


async def get_hook(rt: Runtime, actor: User, hook_id: str) -> OutgoingHook:
    settings = await hook_settings(rt)
    return await rt.db.read(lambda conn: load_hook_for_change(conn, actor, hook_id, settings))


async def list_hooks(
    rt: Runtime,
    actor: User,
    *,
    team_id: str = "",
    channel_id: str = "",
    page: int = 0,
    per_page: int = 60,
) -> list[OutgoingHook]:
    """``channel_id`` wins over ``team_id``; with neither, only system admins may list (all teams)."""
    settings = await hook_settings(rt)

    def work(conn: Connection) -> list[OutgoingHook]:
        _require_enabled(settings)
        creator_id: str | None = None
        if channel_id:
            channel = team_store.find_channel(conn, channel_id) if is_valid_id(channel_id) else None
            own, others = _team_rights(
                conn, actor, channel.team_id if channel else "", settings.members_allowed
            )
            if channel is None or not own:
                raise permission_error(actor.id, perm.MANAGE_OWN_HOOKS)
            creator_id = None if others else actor.id
            filters = {"channel_id": channel_id}
        elif team_id:
            own, others = _team_rights(conn, actor, team_id, settings.members_allowed)
            if not own:
                raise permission_error(actor.id, perm.MANAGE_OWN_HOOKS)
            creator_id = None if others else actor.id
            filters = {"team_id": team_id}
        else:
            if not perm.can_manage_system(actor):
                raise permission_error(actor.id, perm.MANAGE_OTHERS_HOOKS)
            filters = {}
        return store.list_hooks(
            conn, creator_id=creator_id, offset=page * per_page, limit=per_page, **filters
        )

    return await rt.db.read(work)


def _merged(hook: OutgoingHook, data: HookInput, now: int) -> OutgoingHook:
    """``hook`` with the fields the client sent (a missing field keeps its value)."""
    return replace(
        hook,
        update_at=max(now, hook.update_at + 1),
        channel_id=hook.channel_id if data.channel_id is None else data.channel_id,
        token=data.token or hook.token,
        trigger_words=hook.trigger_words if data.trigger_words is None else data.trigger_words,
        trigger_when=hook.trigger_when if data.trigger_when is None else data.trigger_when,
        callback_urls=hook.callback_urls if data.callback_urls is None else data.callback_urls,
        display_name=hook.display_name if data.display_name is None else data.display_name,
        description=hook.description if data.description is None else data.description,
        content_type=hook.content_type if data.content_type is None else data.content_type,
        username=hook.username if data.username is None else data.username,
        icon_url=hook.icon_url if data.icon_url is None else data.icon_url,
        timeout_seconds=(
            hook.timeout_seconds if data.timeout_seconds is None else data.timeout_seconds
        ),
        extended_payload=(
            hook.extended_payload if data.extended_payload is None else data.extended_payload
        ),
        trigger_on_bot_posts=(
            hook.trigger_on_bot_posts
            if data.trigger_on_bot_posts is None
            else data.trigger_on_bot_posts
        ),
    )


async def update_hook(rt: Runtime, actor: User, hook_id: str, data: HookInput) -> OutgoingHook:
    if data.id is not None and data.id != hook_id:
        raise invalid_body_param("hook_id")
    settings = await hook_settings(rt)
    now = rt.clock.now_ms()

    def work(conn: Connection) -> _Written:
        hook = load_hook_for_change(conn, actor, hook_id, settings, lock=True)
        if data.team_id and data.team_id != hook.team_id:
            raise BadRequest(
                "api.webhook.team_mismatch.app_error", "Unable to update webhook across teams."
            )
        updated = _merged(hook, data, now)
        channel = _check_channel_and_triggers(
            conn, actor, updated, before=hook, private_channels=settings.private_channels
        )
        version, creator_active = _lock_for_change(conn, hook)
        stopped = _stopped_reason(
            conn, updated, channel, before=hook, private_channels=settings.private_channels
        )
        updated = replace(updated, stopped_reason=stopped)
        _check_conflicts_and_validate(conn, updated, UPDATE_CONFLICT)
        try:
            store.save_hook(conn, updated, before=hook)
        except store.HookConflict:
            raise _conflict(UPDATE_CONFLICT) from None
        return _Written(updated, version, creator_active)

    return _note(rt, await rt.db.write(work))


async def _change_hook(
    rt: Runtime, actor: User, hook_id: str, change: Callable[[OutgoingHook], OutgoingHook]
) -> OutgoingHook:
    """Load a hook the actor may change, store ``change(hook)``: one unit of work."""
    settings = await hook_settings(rt)

    def work(conn: Connection) -> _Written:
        hook = load_hook_for_change(conn, actor, hook_id, settings, lock=True)
        changed = change(hook)
        version, creator_active = _lock_for_change(conn, hook)
        # Neither its channel, words nor URLs change: no conflict key is written.
        store.save_hook(conn, changed, before=hook)
        return _Written(changed, version, creator_active)

    return _note(rt, await rt.db.write(work))


async def delete_hook(rt: Runtime, actor: User, hook_id: str) -> None:
    now = rt.clock.now_ms()
    await _change_hook(rt, actor, hook_id, lambda hook: replace(hook, delete_at=now, update_at=now))


async def regenerate_token(rt: Runtime, actor: User, hook_id: str) -> OutgoingHook:
    """A new token and a new signing secret together: a leaked pair is replaced as a pair."""
    now = rt.clock.now_ms()
    token, secret = new_id(), new_signing_secret()
    return await _change_hook(
        rt,
        actor,
        hook_id,
        lambda hook: replace(
            hook, token=token, signing_secret=secret, update_at=max(now, hook.update_at + 1)
        ),
    )


async def set_hook_enabled(
    rt: Runtime, actor: User, hook_id: str, enabled: bool, reason: str = ""
) -> OutgoingHook:
    """Re-enable a hook the engine disabled (or disable one by hand)."""
    now = rt.clock.now_ms()
    return await _change_hook(
        rt,
        actor,
        hook_id,
        lambda hook: replace(
            hook,
            enabled=enabled,
            disabled_reason="" if enabled else reason,
            update_at=max(now, hook.update_at + 1),
        ),
    )


WATCHERS_SHOWN = 20


@dataclass(frozen=True, slots=True)
class Watchers:
    """The hooks that receive a channel's posts, as its members are told of them."""

    names: tuple[str, ...]
    more: bool  # more than ``names`` hold


async def list_watching_hooks(rt: Runtime, actor: User, channel_id: str) -> Watchers:
    """The display names of the outgoing hooks a post in the channel fires now, for the
    channel's members only (anyone else, even one who may read it, is told of none).

    Members of a private channel should know that what they write there leaves the server; a
    public channel's members see its hooks and the team's trigger-word hooks. Names only: no
    URL, token or owner. At most :data:`WATCHERS_SHOWN`.
    """
    webhooks = await rt.webhook_settings()
    if not webhooks.enabled or not is_valid_id(channel_id):
        return Watchers((), False)

    def work(conn: Connection) -> list[str]:
        access = team_store.find_channel_access(conn, channel_id, actor.id)
        if access is None or access.member is None or access.channel.delete_at:
            return []
        channel = access.channel
        if not channel.team_id or not channel_watchable(
            channel.type, private_channels=webhooks.private_channels
        ):
            return []
        return store.list_watching_hook_names(
            conn,
            channel.team_id,
            channel.id,
            team_wide=channel.type == ChannelType.PUBLIC,
            limit=WATCHERS_SHOWN + 1,
        )

    names = [name or "Outgoing webhook" for name in await rt.db.read(work)]
    return Watchers(tuple(names[:WATCHERS_SHOWN]), len(names) > WATCHERS_SHOWN)
