"""Outgoing webhooks: the hook itself and Mattermost's validation rules (REF §1.3). Pure; no I/O."""

import re
from dataclasses import dataclass
from itertools import product
from urllib.parse import urlsplit

from tidings.errors import BadRequest
from tidings.ids import is_valid_id

JSON_CONTENT_TYPE = "application/json"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_TIMEOUT_SECONDS = 300


@dataclass(frozen=True, slots=True)
class OutgoingHook:
    """A hook as stored. ``signing_secret`` is a Tidings addition (Standard Webhooks)."""

    id: str
    token: str
    create_at: int
    update_at: int
    delete_at: int
    creator_id: str
    channel_id: str
    team_id: str
    trigger_words: tuple[str, ...]
    trigger_when: int
    callback_urls: tuple[str, ...]
    display_name: str = ""
    description: str = ""
    content_type: str = ""
    username: str = ""
    icon_url: str = ""
    signing_secret: str = ""
    enabled: bool = True
    disabled_reason: str = ""
    # 0: the server's OutgoingIntegrationRequestsTimeout; else 1–300 seconds per attempt.
    timeout_seconds: int = 0
    # Beyond Mattermost, each opt-in (docs/integrations.md): root_id, channel_type, from_bot and
    # response_url in the body; firing for webhook reply posts below the chain depth limit.
    extended_payload: bool = False
    trigger_on_bot_posts: bool = False
    # Why an enabled hook does not fire for now ("" while it fires): a private channel's hook
    # whose creator is no longer a member. Set and cleared by membership changes.
    stopped_reason: str = ""

    @property
    def sends_json(self) -> bool:
        """Only the exact string selects JSON; anything else (even "") is form encoding."""
        return self.content_type == JSON_CONTENT_TYPE


def left_channel_reason(username: str, channel_name: str) -> str:
    """The ``stopped_reason`` of a private channel's hook whose creator is not a member."""
    return f"@{username} is no longer a member of ~{channel_name}"


def _go_list_rendering(items: tuple[str, ...]) -> str:
    """How Go's ``%s`` renders a string slice: the length checks measure this form."""
    return "[" + " ".join(items) + "]"


def is_valid_http_url(url: str) -> bool:
    """Mattermost's IsValidHTTPURL: a case-sensitive http(s) prefix and a parseable host."""
    if not (url.startswith("http://") or url.startswith("https://")):
        return False
    if re.search(r"\s", url):
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a junk port
    except ValueError:
        return False
    return bool(parts.scheme) and bool(parts.hostname)


def _blen(value: str) -> int:
    return len(value.encode("utf-8"))


def _invalid(suffix: str, message: str) -> BadRequest:
    return BadRequest(f"model.outgoing_hook.{suffix}", message)


def validate_hook(hook: OutgoingHook) -> None:
    """Apply REF §1.3's rules in order; raise the first failure as a 400."""
    if not is_valid_id(hook.id):
        raise _invalid("is_valid.id.app_error", "Invalid Id.")
    if len(hook.token.encode("utf-8")) != 26:
        raise _invalid("is_valid.token.app_error", "Invalid token.")
    if hook.create_at == 0:
        raise _invalid("is_valid.create_at.app_error", "Create at must be a valid time.")
    if hook.update_at == 0:
        raise _invalid("is_valid.update_at.app_error", "Update at must be a valid time.")
    if not is_valid_id(hook.creator_id):
        raise _invalid("is_valid.user_id.app_error", "Invalid user id.")
    if hook.channel_id and not is_valid_id(hook.channel_id):
        raise _invalid("is_valid.channel_id.app_error", "Invalid channel id.")
    if not is_valid_id(hook.team_id):
        raise _invalid("is_valid.team_id.app_error", "Invalid team ID.")
    if _blen(_go_list_rendering(hook.trigger_words)) > 1024:
        raise _invalid("is_valid.words.app_error", "Invalid trigger words.")
    if any(word == "" for word in hook.trigger_words):
        raise _invalid("is_valid.trigger_words.app_error", "Invalid trigger words.")
    if not hook.callback_urls or _blen(_go_list_rendering(hook.callback_urls)) > 1024:
        raise _invalid("is_valid.callback.app_error", "Invalid callback URLs.")
    if not all(is_valid_http_url(url) for url in hook.callback_urls):
        raise _invalid(
            "is_valid.url.app_error",
            "Invalid callback URLs. Each must be a valid URL and start with http:// or https://.",
        )
    if _blen(hook.display_name) > 64:
        raise _invalid("is_valid.display_name.app_error", "Invalid title.")
    if _blen(hook.description) > 500:
        raise _invalid("is_valid.description.app_error", "Invalid description.")
    if _blen(hook.content_type) > 128:
        raise _invalid("is_valid.content_type.app_error", "Invalid value for content_type.")
    # Mattermost rejects only > 1; we also reject negatives, which could never match a word.
    if hook.trigger_when not in (0, 1):
        raise _invalid("is_valid.content_type.app_error", "Invalid value for content_type.")
    if _blen(hook.username) > 64:
        raise _invalid("username.app_error", "Invalid username.")
    if _blen(hook.icon_url) > 1024:
        raise _invalid("icon_url.app_error", "Invalid icon.")
    if not 0 <= hook.timeout_seconds <= MAX_TIMEOUT_SECONDS:
        raise BadRequest(
            "model.outgoing_hook.is_valid.timeout_seconds.app_error",
            f"timeout_seconds must be between 1 and {MAX_TIMEOUT_SECONDS}, "
            "or 0 for the server's default.",
        )


def hooks_conflict(a: OutgoingHook, b: OutgoingHook) -> bool:
    """Same channel (two empty ones count as equal), a shared URL and a shared trigger word."""
    return (
        a.channel_id == b.channel_id
        and bool(set(a.callback_urls) & set(b.callback_urls))
        and bool(set(a.trigger_words) & set(b.trigger_words))
    )


def conflict_keys(hook: OutgoingHook) -> frozenset[tuple[str, str]]:
    """Every (trigger word, callback URL) pair of ``hook``.

    Two hooks of one channel (or two team-wide ones) share a word and a URL exactly when they
    share a pair, so :func:`hooks_conflict` is "same channel and a shared key": a unique index
    over (team, channel, key) finds a conflict without reading the team's other hooks. A hook
    without trigger words has no key, and conflicts with nothing.
    """
    return frozenset(product(set(hook.trigger_words), set(hook.callback_urls)))


def conflict_key_count(hook: OutgoingHook) -> int:
    """How many keys :func:`conflict_keys` would make, without making them."""
    return len(set(hook.trigger_words)) * len(set(hook.callback_urls))
