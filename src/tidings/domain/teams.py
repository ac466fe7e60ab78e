"""Teams, channels and memberships. Pure; no I/O."""

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}[a-z0-9]$|^[a-z0-9]$")
CHANNEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
RESERVED_TEAM_NAMES = frozenset(
    {
        "admin_console",
        "api",
        "login",
        "logout",
        "signup",
        "signup_user_complete",
        "static",
        "select_team",
        "create_team",
        "help",
        "docs",
        "oauth",
        "plugins",
        "metrics",
        "error",
        "landing",
    }
)
DEFAULT_CHANNELS = (("town-square", "Town Square"), ("off-topic", "Off-Topic"))


class TeamType(StrEnum):
    OPEN = "O"
    INVITE = "I"


class ChannelType(StrEnum):
    PUBLIC = "O"
    PRIVATE = "P"
    DIRECT = "D"
    GROUP = "G"


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    create_at: int
    update_at: int
    delete_at: int
    name: str
    display_name: str
    type: TeamType
    description: str = ""
    email: str = ""
    invite_id: str = ""
    allow_open_invite: bool = False


@dataclass(frozen=True, slots=True)
class TeamMember:
    team_id: str
    user_id: str
    roles: str
    delete_at: int = 0

    @property
    def is_team_admin(self) -> bool:
        return "team_admin" in self.roles.split()


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    create_at: int
    update_at: int
    delete_at: int
    team_id: str
    type: ChannelType
    name: str
    display_name: str
    header: str = ""
    purpose: str = ""
    creator_id: str = ""
    last_post_at: int = 0
    total_msg_count: int = 0
    props: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelMember:
    channel_id: str
    user_id: str
    roles: str
    last_viewed_at: int = 0
    msg_count: int = 0
    mention_count: int = 0


def is_valid_team_name(name: str) -> bool:
    """A URL slug of 2–64 lower-case letters, digits, ``-`` and ``_`` that no page already uses."""
    return (
        2 <= len(name) <= 64 and bool(NAME_PATTERN.match(name)) and name not in RESERVED_TEAM_NAMES
    )


def is_valid_channel_name(name: str) -> bool:
    """Mattermost's channel-name characters, 1–64 of them."""
    return bool(CHANNEL_NAME_PATTERN.match(name))


def direct_channel_name(user_a: str, user_b: str) -> str:
    """Mattermost names a DM channel by its two user ids, sorted, joined by ``__``."""
    first, second = sorted((user_a, user_b))
    return f"{first}__{second}"
