"""Posts and their limits. Pure; no I/O."""

import re
from dataclasses import field
from typing import Any

from tidings.domain.values import value_object

MAX_MESSAGE_RUNES = 16383
MAX_PROPS_RUNES = 800_000
MAX_USER_PROPS_RUNES = 760_000
# The widths of the ``type`` and ``pending_post_id`` columns (PostgreSQL enforces them).
MAX_TYPE_RUNES = 64
MAX_PENDING_POST_ID_RUNES = 64
RESERVED_PROPS = frozenset(
    {
        "from_webhook",
        "override_username",
        "override_icon_url",
        "override_icon_emoji",
        "webhook_display_name",
        "from_bot",
    }
)


@value_object
class Post:
    """A message in a channel. ``create_at`` etc. are Unix milliseconds, as in Mattermost."""

    id: str
    create_at: int
    update_at: int
    edit_at: int
    delete_at: int
    user_id: str
    channel_id: str
    root_id: str
    message: str
    type: str = ""
    props: dict[str, Any] = field(default_factory=dict)
    file_ids: tuple[str, ...] = ()
    pending_post_id: str = ""
    is_pinned: bool = False
    # 0 for a person's or a bot account's post; n + 1 for a webhook's reply to a post of depth n
    # (store/schema.py). Not in Mattermost's JSON.
    webhook_depth: int = 0

    @property
    def is_from_webhook(self) -> bool:
        return self.props.get("from_webhook") == "true"


def strip_reserved_props(props: dict[str, Any]) -> dict[str, Any]:
    """Users may not claim to be a webhook: the BOT tag must mean something."""
    return {key: value for key, value in props.items() if key not in RESERVED_PROPS}


MENTION_PATTERN = re.compile(r"@([a-z0-9._-]+)")
BROADCAST_MENTIONS = frozenset({"channel", "all", "here"})


def mentioned_names(message: str) -> set[str]:
    """The @names a message mentions (lower-cased), broadcast words included."""
    if "@" not in message:
        return set()
    return {name.rstrip(".") for name in MENTION_PATTERN.findall(message.lower())}
