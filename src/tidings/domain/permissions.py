"""Who may do what: pure predicates, one per rule, read by the service layer.

Roles follow Mattermost: ``system_admin`` may do everything; ``team_admin`` manages its team and
its team's outgoing hooks; members manage their own hooks only when the admin allows it
(``ServiceSettings.EnableMemberOutgoingWebhooks``, Tidings' stand-in for granting
``manage_own_outgoing_webhooks`` to ``team_user``). Pure; no I/O.
"""

from tidings.domain.teams import Channel, ChannelMember, ChannelType, Team, TeamMember, TeamType
from tidings.domain.users import User

MANAGE_OWN_HOOKS = "manage_own_outgoing_webhooks"
MANAGE_OTHERS_HOOKS = "manage_others_outgoing_webhooks"
MANAGE_SYSTEM = "manage_system"
MANAGE_TEAM = "manage_team"
CREATE_TEAM = "create_team"
READ_CHANNEL = "read_channel"
READ_PUBLIC_CHANNEL = "read_public_channel"
CREATE_POST = "create_post"
EDIT_OTHERS_POSTS = "edit_others_posts"
DELETE_OTHERS_POSTS = "delete_others_posts"
MANAGE_CHANNEL_MEMBERS = "manage_channel_members"


def can_manage_system(user: User) -> bool:
    return user.is_system_admin


def is_team_admin(user: User, member: TeamMember | None) -> bool:
    return user.is_system_admin or (member is not None and member.is_team_admin)


def can_view_team(user: User, member: TeamMember | None) -> bool:
    return user.is_system_admin or member is not None


def can_see_team_invite(user: User, member: TeamMember | None) -> bool:
    """The invite id lets anyone sign up into the team: its admins hand it out, nobody else."""
    return is_team_admin(user, member)


def can_create_team(user: User, creation_enabled: bool) -> bool:
    """``TeamSettings.EnableTeamCreation`` grants ``create_team`` to everyone; off, admins only."""
    return creation_enabled or user.is_system_admin


def can_manage_own_hooks(user: User, member: TeamMember | None, members_allowed: bool) -> bool:
    """Create hooks, and edit the ones you created, in this team."""
    if is_team_admin(user, member):
        return True
    return members_allowed and member is not None


def can_manage_others_hooks(user: User, member: TeamMember | None) -> bool:
    """See and edit every hook of the team, whoever created it."""
    return is_team_admin(user, member)


def can_create_hook_for_others(user: User) -> bool:
    """Name another user as a new hook's creator (``creator_id``): system admins only."""
    return user.is_system_admin


def can_read_channel(
    user: User, channel: Channel, team_member: TeamMember | None, member: ChannelMember | None
) -> bool:
    """Public channels are readable by the team; private ones and DMs by their members."""
    if member is not None or user.is_system_admin:
        return True
    return channel.type == ChannelType.PUBLIC and team_member is not None


def hides_channel(channel: Channel, team: Team | None) -> bool:
    """Whether refusing ``channel`` to someone who may not read it must look like "not found".

    Private channels, DMs and every channel of an invite-only team are secrets to those outside
    (issue #10: no existence oracle). A public channel of an open team is not: anyone may see
    the team, join it and browse its channels, so refusing an outsider is Mattermost's 403
    (``read_public_channel`` at team scope) rather than a pretended 404.
    """
    open_team = team is not None and team.type == TeamType.OPEN and not team.delete_at
    return not (channel.type == ChannelType.PUBLIC and open_team)


def can_post(user: User, channel: Channel, member: ChannelMember | None) -> bool:
    """Posting needs membership (system admins may post anywhere, as in Mattermost)."""
    return member is not None or (user.is_system_admin and channel.type != ChannelType.DIRECT)


def can_join_channel(user: User, channel: Channel, team_member: TeamMember | None) -> bool:
    """Anyone on the team may join a public channel; private ones need an invitation."""
    if channel.type == ChannelType.PUBLIC:
        return team_member is not None or user.is_system_admin
    return False


def can_manage_channel_members(
    user: User, channel: Channel, team_member: TeamMember | None, member: ChannelMember | None
) -> bool:
    """Members of public and private channels may add and remove others; the team's admins
    always, even outside the channel (Mattermost's team admin holds
    ``manage_public_channel_members`` and ``manage_private_channel_members`` at team scope)."""
    if is_team_admin(user, team_member):
        return True
    return channel.type in (ChannelType.PUBLIC, ChannelType.PRIVATE) and member is not None


def can_edit_post(user: User, author_id: str, team_member: TeamMember | None) -> bool:
    return user.id == author_id or is_team_admin(user, team_member)
