"""Queries on teams, channels and memberships, returning domain objects."""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.engine import Connection

from tidings.domain.teams import (
    Channel,
    ChannelMember,
    ChannelType,
    Team,
    TeamMember,
    TeamType,
)
from tidings.store.compiled import Prepared
from tidings.store.schema import channel_members, channels, team_members, teams


def _team(row: Any) -> Team:
    return Team(
        id=row.id,
        create_at=row.create_at,
        update_at=row.update_at,
        delete_at=row.delete_at,
        name=row.name,
        display_name=row.display_name,
        type=TeamType(row.type),
        description=row.description,
        email=row.email,
        invite_id=row.invite_id,
        allow_open_invite=row.allow_open_invite,
    )


def _channel(row: Any) -> Channel:
    return Channel(
        id=row.id,
        create_at=row.create_at,
        update_at=row.update_at,
        delete_at=row.delete_at,
        team_id=row.team_id,
        type=ChannelType(row.type),
        name=row.name,
        display_name=row.display_name,
        header=row.header,
        purpose=row.purpose,
        creator_id=row.creator_id,
        last_post_at=row.last_post_at,
        total_msg_count=row.total_msg_count,
    )


_TEAM_COLUMNS = [c for c in teams.c if c.name != "hooks_version"]


def insert_team(conn: Connection, team: Team) -> None:
    conn.execute(
        teams.insert().values(
            id=team.id,
            create_at=team.create_at,
            update_at=team.update_at,
            delete_at=team.delete_at,
            name=team.name,
            display_name=team.display_name,
            type=team.type.value,
            description=team.description,
            email=team.email,
            invite_id=team.invite_id,
            allow_open_invite=team.allow_open_invite,
            hooks_version=0,
        )
    )


def find_team(conn: Connection, team_id: str) -> Team | None:
    row = (conn.execute(select(*_TEAM_COLUMNS).where(teams.c.id == team_id))).first()
    return _team(row) if row else None


def find_team_by_name(conn: Connection, name: str) -> Team | None:
    row = (conn.execute(select(*_TEAM_COLUMNS).where(teams.c.name == name))).first()
    return _team(row) if row else None


def find_team_by_invite(conn: Connection, invite_id: str) -> Team | None:
    row = (conn.execute(select(*_TEAM_COLUMNS).where(teams.c.invite_id == invite_id))).first()
    return _team(row) if row else None


def list_teams(
    conn: Connection, offset: int, limit: int, *, visible_to: str | None = None
) -> list[Team]:
    """Live teams by name; with ``visible_to``, only open teams and that user's own."""
    query = select(*_TEAM_COLUMNS).where(teams.c.delete_at == 0)
    if visible_to is not None:
        mine = select(team_members.c.team_id).where(
            team_members.c.user_id == visible_to, team_members.c.delete_at == 0
        )
        query = query.where(or_(teams.c.type == TeamType.OPEN.value, teams.c.id.in_(mine)))
    rows = conn.execute(query.order_by(teams.c.name).offset(offset).limit(limit))
    return [_team(r) for r in rows]


def list_user_teams(conn: Connection, user_id: str) -> list[Team]:
    rows = conn.execute(
        select(*_TEAM_COLUMNS)
        .join(team_members, team_members.c.team_id == teams.c.id)
        .where(
            team_members.c.user_id == user_id,
            team_members.c.delete_at == 0,
            teams.c.delete_at == 0,
        )
        .order_by(teams.c.display_name)
    )
    return [_team(r) for r in rows]


def bump_hooks_version(conn: Connection, team_id: str) -> None:
    """Mark the team's cached hook index stale (same transaction as the hook change)."""
    conn.execute(
        update(teams).where(teams.c.id == team_id).values(hooks_version=teams.c.hooks_version + 1)
    )


def upsert_team_member(conn: Connection, member: TeamMember) -> None:
    existing = find_team_member(conn, member.team_id, member.user_id, include_deleted=True)
    if existing is None:
        conn.execute(
            team_members.insert().values(
                team_id=member.team_id, user_id=member.user_id, roles=member.roles, delete_at=0
            )
        )
    else:
        conn.execute(
            update(team_members)
            .where(
                team_members.c.team_id == member.team_id, team_members.c.user_id == member.user_id
            )
            .values(roles=member.roles, delete_at=0)
        )


def find_team_member(
    conn: Connection, team_id: str, user_id: str, *, include_deleted: bool = False
) -> TeamMember | None:
    query = select(team_members).where(
        team_members.c.team_id == team_id, team_members.c.user_id == user_id
    )
    if not include_deleted:
        query = query.where(team_members.c.delete_at == 0)
    row = (conn.execute(query)).first()
    if row is None:
        return None
    return TeamMember(
        team_id=row.team_id, user_id=row.user_id, roles=row.roles, delete_at=row.delete_at
    )


def list_team_members(conn: Connection, team_id: str, offset: int, limit: int) -> list[TeamMember]:
    rows = conn.execute(
        select(team_members)
        .where(team_members.c.team_id == team_id, team_members.c.delete_at == 0)
        .order_by(team_members.c.user_id)
        .offset(offset)
        .limit(limit)
    )
    return [TeamMember(team_id=r.team_id, user_id=r.user_id, roles=r.roles) for r in rows]


def insert_channel(conn: Connection, channel: Channel) -> None:
    conn.execute(
        channels.insert().values(
            id=channel.id,
            create_at=channel.create_at,
            update_at=channel.update_at,
            delete_at=channel.delete_at,
            team_id=channel.team_id,
            type=channel.type.value,
            name=channel.name,
            display_name=channel.display_name,
            header=channel.header,
            purpose=channel.purpose,
            creator_id=channel.creator_id,
            last_post_at=channel.last_post_at,
            total_msg_count=channel.total_msg_count,
        )
    )


def find_channel(conn: Connection, channel_id: str) -> Channel | None:
    row = (conn.execute(select(channels).where(channels.c.id == channel_id))).first()
    return _channel(row) if row else None


def find_channel_by_name(conn: Connection, team_id: str, name: str) -> Channel | None:
    row = (
        conn.execute(select(channels).where(channels.c.team_id == team_id, channels.c.name == name))
    ).first()
    return _channel(row) if row else None


def list_team_channels(
    conn: Connection,
    team_id: str,
    offset: int,
    limit: int,
    types: tuple[ChannelType, ...] = (ChannelType.PUBLIC,),
) -> list[Channel]:
    rows = conn.execute(
        select(channels)
        .where(
            channels.c.team_id == team_id,
            channels.c.delete_at == 0,
            channels.c.type.in_([t.value for t in types]),
        )
        .order_by(channels.c.display_name, channels.c.id)
        .offset(offset)
        .limit(limit)
    )
    return [_channel(r) for r in rows]


def list_user_channels(conn: Connection, user_id: str, team_id: str) -> list[Channel]:
    """The channels of a team the user belongs to, plus the user's DMs (team id ``""``)."""
    rows = conn.execute(
        select(channels)
        .join(channel_members, channel_members.c.channel_id == channels.c.id)
        .where(
            channel_members.c.user_id == user_id,
            channels.c.delete_at == 0,
            channels.c.team_id.in_([team_id, ""]),
        )
        .order_by(channels.c.type, channels.c.display_name)
    )
    return [_channel(r) for r in rows]


_TOUCH = (
    update(channels)
    .where(channels.c.id == bindparam("b_id"))
    .values(
        last_post_at=bindparam("b_at"),
        total_msg_count=channels.c.total_msg_count + bindparam("b_count"),
    )
)
_TOUCH_PREPARED = Prepared(_TOUCH)


def touch_channel(conn: Connection, channel_id: str, at: int, count: int = 1) -> None:
    """Record new posts: last_post_at and the message count move together. Every post runs it,
    so it runs on the driver's cursor (``store/compiled.py``: a tenth of ``conn.execute``)."""
    _TOUCH_PREPARED.run(conn, {"b_id": channel_id, "b_at": at, "b_count": count})


def touch_channels(conn: Connection, latest: Mapping[str, tuple[int, int]]) -> None:
    """``touch_channel`` for several channels in one ``executemany`` (the worker's reply posts;
    ``store/compiled.py``).

    ``latest`` maps channel id → (newest post's create_at, number of new posts).
    """
    _TOUCH_PREPARED.run_many(
        conn, [{"b_id": c, "b_at": at, "b_count": n} for c, (at, n) in latest.items()]
    )


def update_channel(conn: Connection, channel_id: str, **values: Any) -> None:
    conn.execute(update(channels).where(channels.c.id == channel_id).values(**values))


def _member(row: Any) -> ChannelMember:
    return ChannelMember(
        channel_id=row.channel_id,
        user_id=row.user_id,
        roles=row.roles,
        last_viewed_at=row.last_viewed_at,
        msg_count=row.msg_count,
        mention_count=row.mention_count,
    )


def insert_channel_member(conn: Connection, member: ChannelMember) -> None:
    conn.execute(
        channel_members.insert().values(
            channel_id=member.channel_id,
            user_id=member.user_id,
            roles=member.roles,
            last_viewed_at=member.last_viewed_at,
            msg_count=member.msg_count,
            mention_count=member.mention_count,
        )
    )


def find_channel_member(conn: Connection, channel_id: str, user_id: str) -> ChannelMember | None:
    row = (
        conn.execute(
            select(channel_members).where(
                channel_members.c.channel_id == channel_id, channel_members.c.user_id == user_id
            )
        )
    ).first()
    return _member(row) if row else None


def delete_channel_member(conn: Connection, channel_id: str, user_id: str) -> None:
    conn.execute(
        channel_members.delete().where(
            and_(channel_members.c.channel_id == channel_id, channel_members.c.user_id == user_id)
        )
    )


def list_channel_members(
    conn: Connection, channel_id: str, offset: int, limit: int
) -> list[ChannelMember]:
    rows = conn.execute(
        select(channel_members)
        .where(channel_members.c.channel_id == channel_id)
        .order_by(channel_members.c.user_id)
        .offset(offset)
        .limit(limit)
    )
    return [_member(r) for r in rows]


_MEMBER_IDS_PREPARED = Prepared(
    select(channel_members.c.user_id).where(channel_members.c.channel_id == bindparam("b_id"))
)


def channel_member_ids(conn: Connection, channel_id: str) -> list[str]:
    """The channel's members: every post's ``posted`` event goes to them, so it is prebuilt."""
    return [row.user_id for row in _MEMBER_IDS_PREPARED.all(conn, {"b_id": channel_id})]


def mark_viewed(conn: Connection, channel_id: str, user_id: str, at: int) -> None:
    total = select(channels.c.total_msg_count).where(channels.c.id == channel_id)
    conn.execute(
        update(channel_members)
        .where(channel_members.c.channel_id == channel_id, channel_members.c.user_id == user_id)
        .values(
            last_viewed_at=at,
            msg_count=func.coalesce(total.scalar_subquery(), 0),
            mention_count=0,
        )
    )


def count_channel_members(conn: Connection, channel_id: str) -> int:
    return int(
        (
            conn.execute(
                select(func.count())
                .select_from(channel_members)
                .where(channel_members.c.channel_id == channel_id)
            )
        ).scalar_one()
    )


# --- Read once per post: a channel with everything its rules look at --------------------------


class ChannelAccess:
    """A channel as one user meets it: their membership of it and of its team, the team, and the
    team's hooks version. Posting (and a hook naming a channel) needs all of them, so they come
    from one query; the team and the team membership, which only some paths look at, are made
    into objects when first asked for (every post pays for what it builds)."""

    __slots__ = ("_row", "_team", "_user_id", "channel", "hooks_version", "member")

    def __init__(self, row: Any, user_id: str) -> None:
        self._row = row
        self._user_id = user_id
        self._team: Team | None = None
        self.channel = _channel(row)
        self.member = _member(row) if row.user_id is not None else None
        self.hooks_version = int(row.t_hooks_version or 0)

    @property
    def has_team(self) -> bool:
        return self._row.t_id is not None

    @property
    def team(self) -> Team | None:
        if self._team is None and self.has_team:
            self._team = _labelled_team(self._row)
        return self._team

    @property
    def team_member(self) -> TeamMember | None:
        """The user's live membership of the channel's team."""
        row = self._row
        if row.tm_roles is None:
            return None
        return TeamMember(
            team_id=row.team_id,
            user_id=self._user_id,
            roles=row.tm_roles,
            delete_at=row.tm_delete_at,
        )


# Built once: building a statement per call costs several times what executing it does.
# channels' and channel_members' column names do not collide; the team's columns are "t_…",
# the team membership's "tm_…".
_ACCESS = (
    select(
        channels,
        channel_members,
        team_members.c.roles.label("tm_roles"),
        team_members.c.delete_at.label("tm_delete_at"),
        *[c.label(f"t_{c.name}") for c in teams.c],
    )
    .select_from(
        channels.outerjoin(
            channel_members,
            and_(
                channel_members.c.channel_id == channels.c.id,
                channel_members.c.user_id == bindparam("b_user"),
            ),
        )
        .outerjoin(teams, teams.c.id == channels.c.team_id)
        .outerjoin(
            team_members,
            and_(
                team_members.c.team_id == channels.c.team_id,
                team_members.c.user_id == bindparam("b_user"),
                team_members.c.delete_at == 0,
            ),
        )
    )
    .where(channels.c.id == bindparam("b_channel"))
)


def _labelled_team(row: Any) -> Team:
    """``_team`` for the "t_…" columns of ``_ACCESS`` (spelled out: every post reads one)."""
    return Team(
        id=row.t_id,
        create_at=row.t_create_at,
        update_at=row.t_update_at,
        delete_at=row.t_delete_at,
        name=row.t_name,
        display_name=row.t_display_name,
        type=TeamType(row.t_type),
        description=row.t_description,
        email=row.t_email,
        invite_id=row.t_invite_id,
        allow_open_invite=row.t_allow_open_invite,
    )


# Every post runs it: on the driver's cursor (``store/compiled.py``).
_ACCESS_PREPARED = Prepared(_ACCESS)


def find_channel_access(conn: Connection, channel_id: str, user_id: str) -> ChannelAccess | None:
    """The channel (deleted or not), ``user_id``'s live memberships of it and of its team, the
    team and its hooks version, in one query; None if there is no such channel."""
    row = _ACCESS_PREPARED.first(conn, {"b_channel": channel_id, "b_user": user_id})
    return ChannelAccess(row, user_id) if row is not None else None


_MARK_POSTED = (
    update(channel_members)
    .where(
        channel_members.c.channel_id == bindparam("b_channel"),
        channel_members.c.user_id == bindparam("b_user"),
    )
    .values(
        last_viewed_at=bindparam("b_at"),
        msg_count=func.coalesce(
            select(channels.c.total_msg_count)
            .where(channels.c.id == bindparam("b_channel"))
            .scalar_subquery(),
            0,
        ),
        mention_count=0,
    )
)


_MARK_POSTED_PREPARED = Prepared(_MARK_POSTED)


def mark_viewed_by_poster(conn: Connection, channel_id: str, user_id: str, at: int) -> None:
    """``mark_viewed`` for the poster of a new post (after ``touch_channel``), prebuilt: every
    post runs it (compiled, as ``touch_channel``). The poster has read the channel up to their
    own post."""
    _MARK_POSTED_PREPARED.run(conn, {"b_channel": channel_id, "b_user": user_id, "b_at": at})


_NEXT_HOOKS_VERSION = (
    update(teams)
    .where(teams.c.id == bindparam("b_id"))
    .values(hooks_version=teams.c.hooks_version + 1)
    .returning(teams.c.hooks_version)
)


def next_hooks_version(conn: Connection, team_id: str) -> int | None:
    """``bump_hooks_version`` that returns the new version (None if there is no such team).

    The update locks the team's row until the transaction ends, so on PostgreSQL the hook
    changes of one team take turns from here on, and each version names exactly one change.
    """
    value = conn.execute(_NEXT_HOOKS_VERSION, {"b_id": team_id}).scalar()
    return int(value) if value is not None else None


def hold_team(conn: Connection, team_id: str) -> None:
    """Lock the team's row (PostgreSQL) as :func:`next_hooks_version` does, without marking the
    team's match index stale: a membership change that may stop hooks takes it before reading
    which hooks to stop, so a hook created meanwhile is either seen or sees the change."""
    conn.execute(select(teams.c.id).where(teams.c.id == team_id).with_for_update()).all()
