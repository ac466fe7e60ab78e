"""Where a person lands and what the sidebar lists: their teams, channels, DMs and unread marks.

Must not import ``tidings.api`` or ``tidings.store``.
"""

from dataclasses import dataclass

from tidings.domain.teams import Channel, ChannelType, Team
from tidings.domain.users import User
from tidings.errors import Forbidden
from tidings.services import teams as team_service
from tidings.services import users as user_service
from tidings.services.runtime import Runtime


async def home_path(rt: Runtime, user: User) -> str:
    """The first team's Town Square, or the team chooser for someone in no team yet."""
    teams = await team_service.list_my_teams(rt, user)
    if teams:
        return f"/{teams[0].name}/channels/town-square"
    return "/select_team"


@dataclass(frozen=True, slots=True)
class SidebarLink:
    channel_id: str
    label: str
    url: str
    kind: str  # "public", "private" or "direct"
    unread: bool
    current: bool


@dataclass(frozen=True, slots=True)
class Sidebar:
    team: Team
    teams: list[Team]
    public: list[SidebarLink]
    private: list[SidebarLink]
    direct: list[SidebarLink]


def dm_partner_id(channel: Channel, me: str) -> str:
    """The other person of a DM channel (named ``<id>__<id>``); yourself for a self-DM."""
    first, _, second = channel.name.partition("__")
    return second if first == me else first


async def build_sidebar(rt: Runtime, me: User, team: Team, current_id: str) -> Sidebar:
    channels = await team_service.list_my_channels(rt, me, team.id)
    members = {m.channel_id: m for m in await team_service.list_my_channel_members(rt, me, team.id)}
    partner_ids = [dm_partner_id(c, me.id) for c in channels if c.type == ChannelType.DIRECT]
    partners = (
        {u.id: u.username for u in await user_service.list_users(rt, 0, 200, partner_ids)}
        if partner_ids
        else {}
    )
    public: list[SidebarLink] = []
    private: list[SidebarLink] = []
    direct: list[SidebarLink] = []
    for channel in channels:
        member = members.get(channel.id)
        unread = (
            channel.id != current_id
            and member is not None
            and channel.last_post_at > member.last_viewed_at
        )
        if channel.type == ChannelType.DIRECT:
            name = partners.get(dm_partner_id(channel, me.id), "")
            if not name:
                continue
            direct.append(
                SidebarLink(
                    channel.id,
                    name,
                    f"/{team.name}/messages/@{name}",
                    "direct",
                    unread,
                    channel.id == current_id,
                )
            )
            continue
        if channel.type not in (ChannelType.PUBLIC, ChannelType.PRIVATE):
            continue
        link = SidebarLink(
            channel.id,
            channel.display_name or channel.name,
            f"/{team.name}/channels/{channel.name}",
            "public" if channel.type == ChannelType.PUBLIC else "private",
            unread,
            channel.id == current_id,
        )
        (public if channel.type == ChannelType.PUBLIC else private).append(link)
    teams = await team_service.list_my_teams(rt, me)
    by_label = sorted(direct, key=lambda link: link.label)
    return Sidebar(team=team, teams=teams, public=public, private=private, direct=by_label)


async def my_team(rt: Runtime, me: User, name: str) -> Team:
    """The team named in the URL, which the visitor must belong to."""
    team = await team_service.get_team_by_name(rt, me, name)
    if not any(t.id == team.id for t in await team_service.list_my_teams(rt, me)):
        raise Forbidden(
            "web.team.not_member.app_error",
            "You are not a member of this team. Join it from the team list first.",
        )
    return team
