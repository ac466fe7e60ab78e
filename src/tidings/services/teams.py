"""Teams and channels: create, find, join, leave, members, direct messages.

Each public function is one unit of work (``rt.db.read`` or ``rt.db.write``): the permission
checks run inside it over the rows it reads, so what is checked and what is changed are one
snapshot. Configuration and events are awaited or published outside it. A unit that lost a
race on a unique constraint (two joins, two DMs opened at once) rolled back whole and runs once
more, to answer with what the winner made.
"""

from collections.abc import Callable
from dataclasses import replace

from tidings.domain import permissions as perm
from tidings.domain.hooks import left_channel_reason
from tidings.domain.teams import (
    DEFAULT_CHANNELS,
    Channel,
    ChannelMember,
    ChannelType,
    Team,
    TeamMember,
    TeamType,
    direct_channel_name,
    is_valid_channel_name,
    is_valid_team_name,
)
from tidings.domain.users import User
from tidings.errors import AppError, BadRequest, Conflict, Forbidden, NotFound, permission_error
from tidings.events import Event
from tidings.ids import is_valid_id, new_id
from tidings.services.runtime import Runtime
from tidings.store import hooks as hook_store
from tidings.store import teams as store
from tidings.store import users as user_store
from tidings.store.database import Connection, IntegrityError
from tidings.store.teams import ChannelAccess


def _team_not_found() -> NotFound:
    return NotFound("app.team.get.find.app_error", "Unable to find the existing team.")


def channel_not_found() -> NotFound:
    return NotFound("app.channel.get.existing.app_error", "Unable to find the existing channel.")


def _user_not_found() -> NotFound:
    return NotFound("app.user.missing_account.const", "Unable to find the user.")


def _as_seen_by(actor: User, team: Team, member: TeamMember | None) -> Team:
    """The team as ``actor`` may see it: the invite id (which opens sign-up) and the contact
    email only for its admins, as Mattermost sanitises teams for callers without manage_team."""
    if perm.can_see_team_invite(actor, member):
        return team
    return replace(team, invite_id="", email="")


def _seen_teams(conn: Connection, actor: User, teams: list[Team]) -> list[Team]:
    if actor.is_system_admin:
        return teams
    return [_as_seen_by(actor, t, store.find_team_member(conn, t.id, actor.id)) for t in teams]


def _visible_team(
    conn: Connection, actor: User, team: Team | None
) -> tuple[Team, TeamMember | None]:
    """``team`` and the actor's membership of it, if the actor may see it.

    An invite-only team is invisible to outsiders: the same 404 as a team that does not exist,
    so its id or name cannot be probed.
    """
    member = store.find_team_member(conn, team.id, actor.id) if team else None
    if (
        team is None
        or team.delete_at
        or (not perm.can_view_team(actor, member) and team.type != TeamType.OPEN)
    ):
        raise _team_not_found()
    return team, member


def _load_team(conn: Connection, actor: User, team_id: str) -> tuple[Team, TeamMember | None]:
    team = store.find_team(conn, team_id) if is_valid_id(team_id) else None
    return _visible_team(conn, actor, team)


async def create_team(
    rt: Runtime, actor: User, name: str, display_name: str, team_type: str = "O"
) -> Team:
    """The creator becomes team admin; Town Square and Off-Topic come with every team.

    With ``TeamSettings.EnableTeamCreation`` off only system admins may (``create_team``).
    """
    enabled = bool((await rt.config())["TeamSettings"]["EnableTeamCreation"])
    if not perm.can_create_team(actor, enabled):
        raise permission_error(actor.id, perm.CREATE_TEAM)
    if not is_valid_team_name(name):
        raise BadRequest(
            "model.team.is_valid.name.app_error",
            "Name must be 2 or more lowercase alphanumeric characters.",
        )
    if not 1 <= len(display_name) <= 64:
        raise BadRequest(
            "model.team.is_valid.characters.app_error", "Name must be 1 to 64 characters."
        )
    if team_type not in ("O", "I"):
        raise BadRequest("model.team.is_valid.type.app_error", "Invalid type.")
    now = rt.clock.now_ms()
    team = Team(
        id=new_id(),
        create_at=now,
        update_at=now,
        delete_at=0,
        name=name,
        display_name=display_name,
        type=TeamType(team_type),
        invite_id=new_id(),
        allow_open_invite=team_type == "O",
    )

    def work(conn: Connection) -> None:
        _insert_team(conn, team, actor)

    try:
        await rt.db.write(work)
    except IntegrityError as exc:  # a concurrent create took the name after our check
        raise _team_name_taken() from exc
    return team


def _team_name_taken() -> Conflict:
    return Conflict(
        "store.sql_team.save_team.existing.app_error", "A team with that name already exists."
    )


def _insert_team(conn: Connection, team: Team, actor: User) -> None:
    """The team, its creator as team admin, and its default channels."""
    now = team.create_at
    if store.find_team_by_name(conn, team.name) is not None:
        raise _team_name_taken()
    store.insert_team(conn, team)
    store.upsert_team_member(conn, TeamMember(team.id, actor.id, "team_user team_admin"))
    for channel_name, channel_display in DEFAULT_CHANNELS:
        channel = Channel(
            id=new_id(),
            create_at=now,
            update_at=now,
            delete_at=0,
            team_id=team.id,
            type=ChannelType.PUBLIC,
            name=channel_name,
            display_name=channel_display,
            creator_id=actor.id,
        )
        store.insert_channel(conn, channel)
        store.insert_channel_member(
            conn, ChannelMember(channel.id, actor.id, "channel_user channel_admin")
        )


async def get_team(rt: Runtime, actor: User, team_id: str) -> Team:
    def work(conn: Connection) -> Team:
        return _as_seen_by(actor, *_load_team(conn, actor, team_id))

    return await rt.db.read(work)


async def get_team_invite_id(rt: Runtime, actor: User, team_id: str) -> str:
    """The team's invite id, which lets anyone sign up into it: team and system admins only."""

    def work(conn: Connection) -> str:
        team, member = _load_team(conn, actor, team_id)
        if not perm.can_see_team_invite(actor, member):
            raise permission_error(actor.id, perm.MANAGE_TEAM)
        return team.invite_id

    return await rt.db.read(work)


async def get_team_by_name(rt: Runtime, actor: User, name: str) -> Team:
    def work(conn: Connection) -> Team:
        team = store.find_team_by_name(conn, name)
        return _as_seen_by(actor, *_visible_team(conn, actor, team))

    return await rt.db.read(work)


async def list_teams(rt: Runtime, actor: User, page: int, per_page: int) -> list[Team]:
    """Admins see every team; others see the open ones and their own (filtered in the query,
    so a page is never short of what exists)."""
    visible_to = None if actor.is_system_admin else actor.id

    def work(conn: Connection) -> list[Team]:
        found = store.list_teams(conn, page * per_page, per_page, visible_to=visible_to)
        return _seen_teams(conn, actor, found)

    return await rt.db.read(work)


async def list_my_teams(rt: Runtime, actor: User) -> list[Team]:
    def work(conn: Connection) -> list[Team]:
        return _seen_teams(conn, actor, store.list_user_teams(conn, actor.id))

    return await rt.db.read(work)


async def list_user_teams(rt: Runtime, actor: User, user_id: str) -> list[Team]:
    """The teams of a user: your own, or anyone's for a system admin."""
    if user_id != actor.id and not perm.can_manage_system(actor):
        raise permission_error(actor.id, perm.MANAGE_SYSTEM)

    def work(conn: Connection) -> list[Team]:
        found = user_store.find_user(conn, user_id) if is_valid_id(user_id) else None
        if found is None:
            raise _user_not_found()
        return _seen_teams(conn, actor, store.list_user_teams(conn, found.id))

    return await rt.db.read(work)


def _require_team_view(conn: Connection, actor: User, team_id: str) -> None:
    """Who belongs to a team is for its members and system admins (Mattermost's ``view_team``),
    even when the team itself is open for anyone to see and join."""
    _team, member = _load_team(conn, actor, team_id)
    if not perm.can_view_team(actor, member):
        raise permission_error(actor.id, "view_team")


async def get_team_member(rt: Runtime, actor: User, team_id: str, user_id: str) -> TeamMember:
    def work(conn: Connection) -> TeamMember:
        _require_team_view(conn, actor, team_id)
        member = store.find_team_member(conn, team_id, user_id)
        if member is None:
            raise NotFound(
                "app.team.get_member.missing.app_error",
                "No team member found for that user ID and team ID.",
            )
        return member

    return await rt.db.read(work)


async def list_team_members(
    rt: Runtime, actor: User, team_id: str, page: int, per_page: int
) -> list[TeamMember]:
    def work(conn: Connection) -> list[TeamMember]:
        _require_team_view(conn, actor, team_id)
        return store.list_team_members(conn, team_id, page * per_page, per_page)

    return await rt.db.read(work)


async def add_team_member(rt: Runtime, actor: User, team_id: str, user_id: str) -> TeamMember:
    """Team admins add anyone; anyone may join an open team themselves."""

    def work(conn: Connection) -> tuple[TeamMember, bool]:
        team, actor_member = _load_team(conn, actor, team_id)
        target = user_store.find_user(conn, user_id) if is_valid_id(user_id) else None
        if target is None:
            raise _user_not_found()
        self_join = actor.id == user_id and team.type == TeamType.OPEN
        if not (self_join or perm.is_team_admin(actor, actor_member)):
            raise permission_error(actor.id, "add_user_to_team")
        return _join_team(conn, team.id, user_id)

    return await _write_join_team(rt, work, team_id, user_id)


async def add_team_member_unchecked(rt: Runtime, team_id: str, user_id: str) -> TeamMember:
    """Join the team and its default channels (callers have checked the right to)."""

    def work(conn: Connection) -> tuple[TeamMember, bool]:
        return _join_team(conn, team_id, user_id)

    return await _write_join_team(rt, work, team_id, user_id)


async def _write_join_team(
    rt: Runtime,
    work: Callable[[Connection], tuple[TeamMember, bool]],
    team_id: str,
    user_id: str,
) -> TeamMember:
    """Run a join (``work`` ends in ``_join_team``) and tell the user if it made the membership.

    A failed attempt rolls back whole, so the retry is still one transaction that counts.
    """
    try:
        member, joined = await rt.db.write(work)
    except IntegrityError:
        # A concurrent join of the same user won; the membership it made is the answer.
        member, joined = await rt.db.write(work)
    if joined:
        rt.events.publish(
            Event("added_to_team", {"team_id": team_id, "user_id": user_id}, {"user_id": user_id}),
            [user_id],
        )
    return member


def _join_team(conn: Connection, team_id: str, user_id: str) -> tuple[TeamMember, bool]:
    """(the membership, whether this call made it)."""
    existing = store.find_team_member(conn, team_id, user_id)
    if existing is not None:
        return existing, False
    member = TeamMember(team_id, user_id, "team_user")
    store.upsert_team_member(conn, member)
    for channel_name, _ in DEFAULT_CHANNELS:
        channel = store.find_channel_by_name(conn, team_id, channel_name)
        if channel and store.find_channel_member(conn, channel.id, user_id) is None:
            store.insert_channel_member(conn, ChannelMember(channel.id, user_id, "channel_user"))
    return member, True


def _channel_name_taken() -> BadRequest:
    return BadRequest(
        "store.sql_channel.save_channel.exists.app_error",
        "A channel with that name already exists on the same team.",
    )


async def create_channel(
    rt: Runtime,
    actor: User,
    team_id: str,
    name: str,
    display_name: str,
    channel_type: str = "O",
    purpose: str = "",
    header: str = "",
) -> Channel:
    if channel_type not in ("O", "P"):
        raise BadRequest("model.channel.is_valid.type.app_error", "Invalid type.")
    if not is_valid_channel_name(name):
        raise BadRequest(
            "model.channel.is_valid.2_or_more.app_error",
            "Name must be 1 to 64 lowercase alphanumeric characters.",
        )
    if not 1 <= len(display_name) <= 64:
        raise BadRequest("model.channel.is_valid.display_name.app_error", "Invalid display name.")
    if len(purpose) > 250 or len(header) > 1024:
        raise BadRequest("model.channel.is_valid.purpose.app_error", "Invalid purpose or header.")
    now = rt.clock.now_ms()
    channel = Channel(
        id=new_id(),
        create_at=now,
        update_at=now,
        delete_at=0,
        team_id=team_id,
        type=ChannelType(channel_type),
        name=name,
        display_name=display_name,
        purpose=purpose,
        header=header,
        creator_id=actor.id,
    )

    def work(conn: Connection) -> None:
        _team, member = _load_team(conn, actor, team_id)
        if member is None and not actor.is_system_admin:
            raise permission_error(actor.id, "create_public_channel")
        if store.find_channel_by_name(conn, team_id, name) is not None:
            raise _channel_name_taken()
        store.insert_channel(conn, channel)
        store.insert_channel_member(
            conn, ChannelMember(channel.id, actor.id, "channel_user channel_admin")
        )

    try:
        await rt.db.write(work)
    except IntegrityError as exc:  # a concurrent create took the name after our check
        raise _channel_name_taken() from exc
    rt.events.publish(
        Event(
            "channel_created", {"channel_id": channel.id, "team_id": team_id}, {"team_id": team_id}
        ),
        [actor.id],
    )
    return channel


def _channel_access(
    conn: Connection, actor: User, channel: Channel | None
) -> tuple[Channel, TeamMember | None, ChannelMember | None]:
    """A live channel with the actor's team and channel memberships (404 if there is none)."""
    if channel is None or channel.delete_at:
        raise channel_not_found()
    team_member = (
        store.find_team_member(conn, channel.team_id, actor.id) if channel.team_id else None
    )
    member = store.find_channel_member(conn, channel.id, actor.id)
    return channel, team_member, member


def _load_channel(
    conn: Connection, actor: User, channel_id: str
) -> tuple[Channel, TeamMember | None, ChannelMember | None]:
    channel = store.find_channel(conn, channel_id) if is_valid_id(channel_id) else None
    return _channel_access(conn, actor, channel)


def channel_refusal(actor: User, channel: Channel, team: Team | None) -> AppError:
    """The answer for an actor who may not read ``channel``: for a private channel, a DM or a
    channel of an invite-only team, the 404 of a missing channel (no existence oracle); for a
    public channel of an open team, whose existence is no secret, Mattermost's 403."""
    if perm.hides_channel(channel, team):
        return channel_not_found()
    return permission_error(actor.id, perm.READ_PUBLIC_CHANNEL)


def _refuse_channel(conn: Connection, actor: User, channel: Channel) -> AppError:
    team = store.find_team(conn, channel.team_id) if channel.team_id else None
    return channel_refusal(actor, channel, team)


def _readable_channel(
    conn: Connection, actor: User, found: tuple[Channel, TeamMember | None, ChannelMember | None]
) -> Channel:
    """The channel of ``found`` (from ``_channel_access``) if the actor may read it."""
    channel, team_member, member = found
    if not perm.can_read_channel(actor, channel, team_member, member):
        raise _refuse_channel(conn, actor, channel)
    return channel


def readable_channel(actor: User, access: ChannelAccess | None) -> Channel:
    """The channel of ``access`` (``store.teams.find_channel_access``) if ``actor`` may read
    it, inside a unit of work: the rule of :func:`get_channel` over rows already read (a missing or deleted channel is 404;
    one the actor may not read is refused by ``channel_refusal``)."""
    if access is None or access.channel.delete_at:
        raise channel_not_found()
    if not perm.can_read_channel(actor, access.channel, access.team_member, access.member):
        raise channel_refusal(actor, access.channel, access.team)
    return access.channel


async def get_channel(rt: Runtime, actor: User, channel_id: str) -> Channel:
    """A channel the actor may read; one they may not is refused by ``channel_refusal``."""

    def work(conn: Connection) -> Channel:
        return _readable_channel(conn, actor, _load_channel(conn, actor, channel_id))

    return await rt.db.read(work)


async def get_channel_by_name(rt: Runtime, actor: User, team_id: str, name: str) -> Channel:
    def work(conn: Connection) -> Channel:
        channel = store.find_channel_by_name(conn, team_id, name)
        return _readable_channel(conn, actor, _channel_access(conn, actor, channel))

    return await rt.db.read(work)


async def list_public_channels(
    rt: Runtime, actor: User, team_id: str, page: int, per_page: int
) -> list[Channel]:
    def work(conn: Connection) -> list[Channel]:
        _team, member = _load_team(conn, actor, team_id)
        if member is None and not actor.is_system_admin:
            raise permission_error(actor.id, "list_team_channels")
        return store.list_team_channels(conn, team_id, page * per_page, per_page)

    return await rt.db.read(work)


async def list_my_channels(rt: Runtime, actor: User, team_id: str) -> list[Channel]:
    def work(conn: Connection) -> list[Channel]:
        return store.list_user_channels(conn, actor.id, team_id)

    return await rt.db.read(work)


def _channels_owner(conn: Connection, actor: User, user_id: str, team_id: str) -> str:
    """Whose channels ``actor`` may list: their own, or anyone's for a system admin."""
    if user_id != actor.id and not perm.can_manage_system(actor):
        raise permission_error(actor.id, perm.MANAGE_SYSTEM)
    found = user_store.find_user(conn, user_id) if is_valid_id(user_id) else None
    if found is None:
        raise _user_not_found()
    _load_team(conn, actor, team_id)
    return found.id


def _channel_members_of(conn: Connection, user_id: str, team_id: str) -> list[ChannelMember]:
    """The user's memberships of their channels in a team and of their DMs."""
    channels = store.list_user_channels(conn, user_id, team_id)
    members = [store.find_channel_member(conn, c.id, user_id) for c in channels]
    return [m for m in members if m is not None]


async def list_user_channels(rt: Runtime, actor: User, user_id: str, team_id: str) -> list[Channel]:
    """A user's channels in a team plus their direct messages."""

    def work(conn: Connection) -> list[Channel]:
        owner = _channels_owner(conn, actor, user_id, team_id)
        return store.list_user_channels(conn, owner, team_id)

    return await rt.db.read(work)


async def list_user_channel_members(
    rt: Runtime, actor: User, user_id: str, team_id: str
) -> list[ChannelMember]:
    """A user's memberships of those channels."""

    def work(conn: Connection) -> list[ChannelMember]:
        owner = _channels_owner(conn, actor, user_id, team_id)
        return _channel_members_of(conn, owner, team_id)

    return await rt.db.read(work)


async def list_my_channel_members(rt: Runtime, actor: User, team_id: str) -> list[ChannelMember]:
    def work(conn: Connection) -> list[ChannelMember]:
        return _channel_members_of(conn, actor.id, team_id)

    return await rt.db.read(work)


async def list_channel_members(
    rt: Runtime, actor: User, channel_id: str, page: int, per_page: int
) -> list[ChannelMember]:
    def work(conn: Connection) -> list[ChannelMember]:
        channel = _readable_channel(conn, actor, _load_channel(conn, actor, channel_id))
        return store.list_channel_members(conn, channel.id, page * per_page, per_page)

    return await rt.db.read(work)


async def add_channel_member(
    rt: Runtime, actor: User, channel_id: str, user_id: str
) -> ChannelMember:
    """Join a public channel yourself, or add a teammate to a channel you belong to (a team
    admin to any channel of the team)."""
    now = rt.clock.now_ms()

    def work(conn: Connection) -> tuple[ChannelMember, list[str], str]:
        """(the membership, the channel's members to tell or [], the channel's team)."""
        channel, team_member, member = _load_channel(conn, actor, channel_id)
        if not _may_see_members(actor, channel, team_member, member):
            raise _refuse_channel(conn, actor, channel)
        if channel.type == ChannelType.DIRECT:
            raise BadRequest(
                "api.channel.add_user.to.channel.failed.deleted.app_error",
                "Cannot add members to a direct message channel.",
            )
        if user_id == actor.id:
            if member is not None:
                return member, [], channel.team_id
            if not perm.can_join_channel(actor, channel, team_member):
                raise permission_error(actor.id, "join_public_channels")
        elif not perm.can_manage_channel_members(actor, channel, team_member, member):
            raise permission_error(actor.id, "manage_public_channel_members")
        return (*_join_channel(conn, channel, user_id, now), channel.team_id)

    try:
        new_member, member_ids, team_id = await rt.db.write(work)
    except IntegrityError:
        # A concurrent add of the same user won; the membership it made is the answer.
        new_member, member_ids, team_id = await rt.db.write(work)
    if not member_ids:
        return new_member
    rt.events.publish(
        Event(
            "user_added",
            {"user_id": user_id, "team_id": team_id},
            {"channel_id": channel_id},
        ),
        member_ids,
    )
    return new_member


def _join_channel(
    conn: Connection, channel: Channel, user_id: str, now: int
) -> tuple[ChannelMember, list[str]]:
    """(the membership, the channel's members to tell, or [] when it already existed).

    Joining a private channel resumes the hooks the user owns there, which their leaving
    stopped (:func:`_leave_channel`)."""
    target_team_member = (
        store.find_team_member(conn, channel.team_id, user_id) if is_valid_id(user_id) else None
    )
    if target_team_member is None:
        raise BadRequest(
            "api.channel.add_members.user_denied", "The user is not a member of the team."
        )
    existing = store.find_channel_member(conn, channel.id, user_id)
    if existing is not None:
        return existing, []
    new_member = ChannelMember(channel.id, user_id, "channel_user")
    store.insert_channel_member(conn, new_member)
    if channel.type == ChannelType.PRIVATE and hook_store.resume_creator_channel_hooks(
        conn, channel.id, user_id, now
    ):
        # Their hooks watching the channel fire again: every process's index is rebuilt.
        store.bump_hooks_version(conn, channel.team_id)
    return new_member, store.channel_member_ids(conn, channel.id)


def _leave_channel(conn: Connection, channel: Channel, user_id: str, now: int) -> None:
    """Take ``user_id`` out of ``channel``; in a private channel, in the same transaction,
    stop the hooks they own that watch it (saying why) and mark the team's match index stale.

    The locks come in the order hook changes take them (their hook rows, then the team's row),
    and the team's row before the hooks are read for stopping: a hook the user is creating in
    the channel meanwhile either commits first, and is stopped here, or waits, and finds them
    gone (``services.hooks``).
    """
    private = channel.type == ChannelType.PRIVATE and bool(channel.team_id)
    if private:
        hook_store.hold_creator_channel_hooks(conn, channel.id, user_id)
    store.delete_channel_member(conn, channel.id, user_id)
    if not private:
        return
    store.hold_team(conn, channel.team_id)
    user = user_store.find_user(conn, user_id)
    reason = left_channel_reason(user.username if user else user_id, channel.name)
    if hook_store.stop_creator_channel_hooks(conn, channel.id, user_id, reason, now):
        store.bump_hooks_version(conn, channel.team_id)


def _may_see_members(
    actor: User, channel: Channel, team_member: TeamMember | None, member: ChannelMember | None
) -> bool:
    """Whether the membership routes may admit that the channel exists: its readers, and those
    who manage its members (a team admin outside a private channel of the team)."""
    return perm.can_read_channel(
        actor, channel, team_member, member
    ) or perm.can_manage_channel_members(actor, channel, team_member, member)


async def remove_channel_member(rt: Runtime, actor: User, channel_id: str, user_id: str) -> None:
    """Leave a channel, or remove someone from it; leaving a private channel stops the hooks
    the user owns there (:func:`_leave_channel`)."""
    now = rt.clock.now_ms()

    def work(conn: Connection) -> None:
        channel, team_member, member = _load_channel(conn, actor, channel_id)
        if not _may_see_members(actor, channel, team_member, member):
            raise _refuse_channel(conn, actor, channel)
        if channel.type == ChannelType.DIRECT:
            raise BadRequest(
                "api.channel.remove.direct.app_error", "Cannot leave a direct message channel."
            )
        if user_id != actor.id and not perm.can_manage_channel_members(
            actor, channel, team_member, member
        ):
            raise permission_error(actor.id, "manage_public_channel_members")
        if channel.name == "town-square":
            raise Forbidden(
                "api.channel.remove.default.app_error",
                "Unable to remove user from the default channel.",
            )
        _leave_channel(conn, channel, user_id, now)

    await rt.db.write(work)


async def get_or_create_direct(
    rt: Runtime, actor: User | None, user_a: str, user_b: str
) -> Channel:
    """The one DM channel of two users (``actor`` must be one of them; None = the system)."""
    if actor is not None and actor.id not in (user_a, user_b) and not actor.is_system_admin:
        raise permission_error(actor.id, "create_direct_channel")
    now = rt.clock.now_ms()
    creator_id = actor.id if actor else ""

    def work(conn: Connection) -> tuple[Channel, bool]:
        return _find_or_create_direct(conn, creator_id, user_a, user_b, now)

    try:
        channel, created = await rt.db.write(work)
    except IntegrityError:
        # The same DM was opened concurrently; the channel it made is the answer.
        channel, created = await rt.db.write(work)
    if created:
        rt.events.publish(
            Event("direct_added", {"teammate_id": user_b}, {"channel_id": channel.id}),
            {user_a, user_b},
        )
    return channel


async def find_direct(rt: Runtime, actor: User, user_a: str, user_b: str) -> Channel | None:
    """The DM channel of two users if it exists (read-only: opening a DM page must not make it)."""
    if actor.id not in (user_a, user_b) and not actor.is_system_admin:
        raise permission_error(actor.id, "create_direct_channel")
    name = direct_channel_name(user_a, user_b)

    def work(conn: Connection) -> Channel | None:
        return store.find_channel_by_name(conn, "", name)

    return await rt.db.read(work)


def _find_or_create_direct(
    conn: Connection, creator_id: str, user_a: str, user_b: str, now: int
) -> tuple[Channel, bool]:
    """(the DM channel, whether this call created it)."""
    for user_id in {user_a, user_b}:
        if not is_valid_id(user_id) or user_store.find_user(conn, user_id) is None:
            raise BadRequest(
                "api.channel.create_direct_channel.invalid_user.app_error",
                "Invalid user ID for direct channel creation.",
            )
    name = direct_channel_name(user_a, user_b)
    existing = store.find_channel_by_name(conn, "", name)
    if existing is not None:
        return existing, False
    channel = Channel(
        id=new_id(),
        create_at=now,
        update_at=now,
        delete_at=0,
        team_id="",
        type=ChannelType.DIRECT,
        name=name,
        display_name="",
        creator_id=creator_id,
    )
    store.insert_channel(conn, channel)
    for user_id in {user_a, user_b}:
        store.insert_channel_member(conn, ChannelMember(channel.id, user_id, "channel_user"))
    return channel, True


async def view_channel(rt: Runtime, actor: User, channel_id: str) -> None:
    """Mark the channel read for the actor (clears the unread mark)."""
    now = rt.clock.now_ms()

    def work(conn: Connection) -> None:
        store.mark_viewed(conn, channel_id, actor.id, now)

    await rt.db.write(work)
