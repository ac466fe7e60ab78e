"""A callback's reply turned into posts (REF §4.1–4.5, spec §7).

Receivers were written against Mattermost's Go server, so the parser decodes the way Go's
``encoding/json`` does (first value only, keys in any letter case, the last repeat wins, Slack's
string booleans), and the builder repeats Mattermost's steps: Slack text conversions, link
syntax, overrides behind their settings, attachments, and splitting a long reply into several
posts. Where Tidings deliberately differs (spec §7) the code says so.

The caller reads the body (at most 1 MiB), looks up the user ids the reply mentions
(:func:`user_ids_in_reply`), then calls :func:`build_reply_posts` and inserts the posts.
Every reason a reply cannot be posted is a :class:`ReplyError` with Mattermost's error id.

Pure: imports only the standard library and ``tidings.domain``. No I/O, no database.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from dataclasses import fields as dataclass_fields
from typing import Any

from tidings.domain.hooks import OutgoingHook
from tidings.domain.posts import MAX_MESSAGE_RUNES, MAX_USER_PROPS_RUNES, Post, strip_reserved_props
from tidings.domain.storable import storable_text
from tidings.domain.values import value_object
from tidings.ids import new_id
from tidings.webhooks.slack import (
    convert_attachment_links,
    convert_message_links,
    go_format_value,
    process_slack_text,
    user_ids_mentioned,
)

__all__ = [
    "Attachment",
    "AttachmentField",
    "Reply",
    "ReplyError",
    "ReplyPostSpec",
    "ReplyPriority",
    "build_reply_posts",
    "convert_attachment_links",
    "convert_message_links",
    "go_format_value",
    "parse_reply",
    "process_slack_text",
    "user_ids_in_reply",
    "user_ids_mentioned",
]

DEFAULT_WEBHOOK_USERNAME = "webhook"
SLACK_ATTACHMENT_TYPE = "slack_attachment"
MAX_NESTING = 100
"""Deeper JSON is refused: Python's recursion limit is far below Go's 10,000 levels."""

UNMARSHAL_ERROR = "api.unmarshal_error"
INVALID_PARAM_ERROR = "api.context.invalid_param.app_error"
INVALID_TYPE_ERROR = "model.post.is_valid.type.app_error"
SPLIT_PROPS_ERROR = "web.incoming_webhook.split_props_length.app_error"
MAX_POST_TYPE_RUNES = 26
"""Mattermost's ``Post.IsValid`` refuses a longer type (the same type error id)."""

# Counting needs the encoding only, so one encoder serves every call (``json.dumps`` with options
# builds a new one each time, and reply building measures props JSON for every reply).
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_JSON_WHITESPACE = " \t\n\r"


class ReplyError(ValueError):
    """A reply that cannot be posted; ``error_id`` is Mattermost's id for the same failure."""

    def __init__(self, error_id: str, message: str) -> None:
        super().__init__(f"{error_id}: {message}")
        self.error_id = error_id
        self.message = message


@dataclass(frozen=True)
class AttachmentField:
    """One ``fields`` entry of a Slack attachment; ``value`` is any JSON until processed."""

    title: str = ""
    value: Any = None
    short: bool = False


@dataclass(frozen=True)
class Attachment:
    """A Slack attachment with Mattermost's keys; ``None`` entries are kept until processing."""

    id: int = 0
    fallback: str = ""
    color: str = ""
    pretext: str = ""
    author_name: str = ""
    author_link: str = ""
    author_icon: str = ""
    title: str = ""
    title_link: str = ""
    text: str = ""
    fields: tuple[AttachmentField | None, ...] = ()
    image_url: str = ""
    thumb_url: str = ""
    footer: str = ""
    footer_icon: str = ""
    ts: Any = None
    actions: tuple[Any, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The stored form: keys in Go's struct order, empty ones left out as ``omitempty`` does
        (``ts`` is an interface in Go, so only a null ``ts`` is empty)."""
        out: dict[str, Any] = {}
        for spec in dataclass_fields(self):
            value = getattr(self, spec.name)
            if spec.name == "fields":
                value = [None if item is None else asdict(item) for item in value]
            elif spec.name == "actions":
                value = list(value)
            if value or (spec.name == "ts" and value is not None):
                out[spec.name] = value
        return out


_ATTACHMENT_STRINGS = frozenset(
    spec.name for spec in dataclass_fields(Attachment) if spec.type == "str"
)


@dataclass(frozen=True)
class ReplyPriority:
    """Message priority (new Mattermost); ``priority`` is required when the object is sent."""

    priority: str | None = None
    requested_ack: bool | None = None
    persistent_notifications: bool | None = None


@value_object
class Reply:
    """A decoded reply. ``text`` is None when absent or null, which is not the same as ``""``."""

    text: str | None = None
    username: str = ""
    icon_url: str = ""
    icon_emoji: str = ""  # a Tidings addition (spec §7)
    props: dict[str, Any] | None = None
    attachments: tuple[Attachment | None, ...] = ()
    type: str = ""
    response_type: str = ""
    priority: ReplyPriority | None = None


@value_object
class ReplyPostSpec:
    """One post to insert for a reply, as the hook's creator, in the triggering channel."""

    message: str
    type: str
    root_id: str
    props: dict[str, Any]
    priority: ReplyPriority | None = None


def reply_posts(
    specs: list[ReplyPostSpec], *, creator_id: str, channel_id: str, now_ms: int, depth: int
) -> list[Post]:
    """The posts of a reply's specs, as its hook's creator, a millisecond apart so they keep
    their order, ``depth`` deep in a chain of bots: the worker's direct replies and the deferred
    ones through ``response_url`` are made the same way."""
    return [
        Post(
            id=new_id(),
            create_at=now_ms + i,
            update_at=now_ms + i,
            edit_at=0,
            delete_at=0,
            user_id=creator_id,
            channel_id=channel_id,
            root_id=spec.root_id,
            message=spec.message,
            type=spec.type,
            props=spec.props,
            webhook_depth=depth,
        )
        for i, spec in enumerate(specs)
    ]


# --- decoding -----------------------------------------------------------------------------


class _Object:
    """A JSON object with its key/value pairs in order, repeats kept, for Go-style key matching."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs


def _parse_float(text: str) -> float:
    """Go holds JSON numbers as float64 and refuses what does not fit (and NaN, Infinity)."""
    number = float(text)
    if not math.isfinite(number):
        raise ReplyError(UNMARSHAL_ERROR, f"number {text} is out of range")
    return number


def _parse_int(text: str) -> int:
    _parse_float(text)  # the same range check; the value itself stays exact
    return int(text)


_DECODER = json.JSONDecoder(
    object_pairs_hook=_Object,
    parse_float=_parse_float,
    parse_int=_parse_int,
    parse_constant=_parse_float,
)


def _type_error(what: str, expected: str) -> ReplyError:
    return ReplyError(UNMARSHAL_ERROR, f"{what} must be {expected}")


def _valid_text(value: str) -> str:
    # Every string of a reply passes here. Go decodes a lone surrogate escape to U+FFFD (Python
    # keeps it, and it would not encode); NULs are dropped, as Mattermost does, because
    # PostgreSQL cannot store them. Done at decoding, so lengths and splits count what is stored.
    return storable_text(value)


def _plain(value: Any, depth: int = 0) -> Any:
    """Decoded JSON as plain dicts and lists (the last repeat of a key wins, as in Go maps)."""
    if depth > MAX_NESTING:
        raise ReplyError(UNMARSHAL_ERROR, f"JSON nested deeper than {MAX_NESTING} levels")
    if isinstance(value, _Object):
        return {_valid_text(key): _plain(item, depth + 1) for key, item in value.pairs}
    if isinstance(value, list):
        return [_plain(item, depth + 1) for item in value]
    if isinstance(value, str):
        return _valid_text(value)
    return value


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _type_error(what, "a string")
    return _valid_text(value)


def _object(value: Any, what: str) -> _Object:
    if not isinstance(value, _Object):
        raise _type_error(what, "an object")
    return value


def _array(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _type_error(what, "an array")
    return value


def _pairs(value: Any, what: str) -> Iterator[tuple[str, Any]]:
    """Keys folded to lower case: Go matches struct fields case-insensitively."""
    for key, item in _object(value, what).pairs:
        yield key.casefold(), item


def _slack_bool(value: Any) -> bool:
    """Slack sends ``short`` as a bool or as the strings "true"/"false" in any letter case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _type_error("attachment field short", 'true, false, "true" or "false"')


def _decode_field(value: Any) -> AttachmentField | None:
    if value is None:
        return None
    values: dict[str, Any] = {}
    for name, item in _pairs(value, "attachment field"):
        if name == "title" and item is not None:
            values["title"] = _string(item, "attachment field title")
        elif name == "value":
            values["value"] = _plain(item)
        elif name == "short":
            values["short"] = _slack_bool(item)
    return AttachmentField(**values)


def _decode_attachment(value: Any) -> Attachment | None:
    if value is None:
        return None
    values: dict[str, Any] = {}
    for name, item in _pairs(value, "attachment"):
        if name in _ATTACHMENT_STRINGS:
            if item is not None:  # Go leaves a string field alone on null
                values[name] = _string(item, f"attachment {name}")
        elif name == "id":
            if item is not None:
                if isinstance(item, bool) or not isinstance(item, int) or item.bit_length() > 63:
                    raise _type_error("attachment id", "a 64-bit integer")
                values["id"] = item
        elif name == "fields":
            items = [] if item is None else _array(item, "attachment fields")
            values["fields"] = tuple(_decode_field(entry) for entry in items)
        elif name == "ts":
            values["ts"] = _plain(item)
        elif name == "actions":
            items = [] if item is None else _array(item, "attachment actions")
            for entry in items:
                if entry is not None:
                    _object(entry, "attachment action")
            values["actions"] = tuple(_plain(entry) for entry in items)
    return Attachment(**values)


def _decode_priority(value: Any, earlier: ReplyPriority | None) -> ReplyPriority:
    # Go decodes into the struct a previous "priority" key made, so repeats merge.
    values: dict[str, Any] = asdict(earlier) if earlier else {}
    for name, item in _pairs(value, "priority"):
        if name == "priority":
            values[name] = None if item is None else _string(item, "priority.priority")
        elif name in ("requested_ack", "persistent_notifications"):
            if item is not None and not isinstance(item, bool):
                raise _type_error(f"priority.{name}", "a boolean")
            values[name] = item
    return ReplyPriority(**values)


_REPLY_STRINGS = frozenset({"username", "icon_url", "icon_emoji", "type", "response_type"})


def _decode_reply(value: _Object) -> Reply:
    values: dict[str, Any] = {}
    for name, item in _pairs(value, "the reply"):
        if name == "text":
            values["text"] = None if item is None else _string(item, "text")
        elif name in _REPLY_STRINGS:
            if item is not None:
                values[name] = _string(item, name)
        elif name == "props":
            if item is None:
                values["props"] = None
            else:
                # Go decodes into the map an earlier "props" key made, so repeats merge.
                merged = values.get("props") or {}
                values["props"] = {**merged, **_plain(_object(item, "props"))}
        elif name == "attachments":
            items = [] if item is None else _array(item, "attachments")
            values["attachments"] = tuple(_decode_attachment(entry) for entry in items)
        elif name == "priority":
            earlier = values.get("priority")
            values["priority"] = None if item is None else _decode_priority(item, earlier)
    return Reply(**values)


def parse_reply(body: bytes, truncated: bool = False) -> Reply | None:
    """Decode a callback's reply; None when there is nothing to post.

    ``body`` is what the client read, at most 1 MiB; ``truncated`` says the receiver sent
    more, which makes the reply unusable. Only the first JSON value counts (bytes after it are
    ignored, as Go's decoder does). An empty or all-whitespace body, or ``null``, is None.
    Raises :class:`ReplyError` for anything that is not a JSON object of the right types.
    """
    if truncated:
        raise ReplyError(UNMARSHAL_ERROR, "the reply is larger than 1 MiB")
    # Invalid UTF-8 becomes U+FFFD: inside a string that is what Go does, outside one it is
    # a syntax error either way.
    text = body.decode("utf-8", "replace").lstrip(_JSON_WHITESPACE)
    if not text:
        return None
    try:
        value, _end = _DECODER.raw_decode(text)
        if value is None:
            return None
        if not isinstance(value, _Object):
            raise ReplyError(UNMARSHAL_ERROR, "the reply must be a JSON object")
        return _decode_reply(value)
    except ReplyError:
        raise
    except (ValueError, RecursionError) as error:
        raise ReplyError(UNMARSHAL_ERROR, f"the reply is not valid JSON: {error}") from None


def user_ids_in_reply(reply: Reply) -> set[str]:
    """Every id the Slack conversions will try to resolve, in the text and the attachments."""
    texts = [reply.text or ""]
    for attachment in reply.attachments:
        if attachment is not None:
            texts += (attachment.pretext, attachment.text, attachment.title)
            values = (item.value for item in attachment.fields if item is not None)
            texts += (go_format_value(value) for value in values if value is not None)
    return set().union(*(user_ids_mentioned(text) for text in texts))


def _process_attachment(attachment: Attachment, usernames: Mapping[str, str]) -> Attachment:
    """Slack text everywhere Mattermost applies it; links only in text, pretext and values."""
    kept: list[AttachmentField] = []
    for item in attachment.fields:
        if item is not None and item.value is not None:
            value = process_slack_text(go_format_value(item.value), usernames)
            kept.append(replace(item, value=convert_attachment_links(value)))
        elif item is not None:
            kept.append(item)
    return replace(
        attachment,
        pretext=convert_attachment_links(process_slack_text(attachment.pretext, usernames)),
        text=convert_attachment_links(process_slack_text(attachment.text, usernames)),
        title=process_slack_text(attachment.title, usernames),
        fields=tuple(kept),
    )


# --- building posts -----------------------------------------------------------------------


def _json_runes(value: Any) -> int:
    """Code points in Go's JSON of ``value``: compact, with ``<``, ``>``, ``&`` as ``\\u003c``."""
    text = _COMPACT_JSON.encode(value)
    escaped = text.count("<") + text.count(">") + text.count("&")
    if not text.isascii():
        escaped += text.count("\u2028") + text.count("\u2029")
    return len(text) + 5 * escaped


def _flat_runes_bound(props: dict[str, Any]) -> int:
    """An upper bound of :func:`_json_runes` for a dict of strings; past the limit otherwise,
    which sends the caller to the exact count.

    In JSON a character takes at most six code points (``\\u00XX`` or Go's ``\\u003c``), and
    each member adds its quotes, colon and comma.
    """
    total = 2
    for key, value in props.items():
        if not isinstance(value, str):
            return MAX_USER_PROPS_RUNES + 1
        total += 6 * (len(key) + len(value)) + 6
    return total


def _shorten_text(attachment: dict[str, Any], excess: int) -> dict[str, Any]:
    """Cut an attachment's text so its JSON is ``excess`` code points shorter, or refuse.

    Measured on the encoded text, so ``<`` (six code points in Go's JSON) counts as six.
    """
    text = attachment.get("text", "")
    budget = _json_runes(text) - excess  # for the text's JSON string, quotes included
    if budget < 2:
        raise ReplyError(SPLIT_PROPS_ERROR, f"props are longer than {MAX_USER_PROPS_RUNES}")
    low, high = 0, len(text)  # the longest prefix that fits: JSON length grows with the prefix
    while low < high:
        middle = (low + high + 1) // 2
        if _json_runes(text[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    shorter = {key: value for key, value in attachment.items() if key != "text"}
    if low:
        shorter["text"] = text[:low]
    return shorter


def _split(
    message: str, props: dict[str, Any], attachments: list[dict[str, Any]], max_runes: int
) -> list[tuple[str, dict[str, Any]]]:
    """REF §4.5: hard code-point cuts of the message, then attachments packed into the last
    part while its props JSON stays within the limit, each overflow starting an empty part."""
    if not attachments and _flat_runes_bound(props) <= MAX_USER_PROPS_RUNES:
        # The usual reply: no attachments and a few short strings in props, which cannot reach
        # the limit, so the exact (encoding) count is not needed.
        texts = [message[start : start + max_runes] for start in range(0, len(message), max_runes)]
        return [(text, dict(props)) for text in texts or [""]]
    base_runes = _json_runes(props)
    if base_runes > MAX_USER_PROPS_RUNES:
        raise ReplyError(SPLIT_PROPS_ERROR, f"props are longer than {MAX_USER_PROPS_RUNES}")
    texts = [message[start : start + max_runes] for start in range(0, len(message), max_runes)]
    parts: list[tuple[str, list[dict[str, Any]]]] = [(text, []) for text in texts or [""]]
    # The props JSON of a part grows by ',"attachments":[' … ']' plus one comma per extra item;
    # tracking the sum avoids re-encoding every attachment each time one is added.
    overhead = len('"attachments":[]') + (1 if props else 0)
    packed = 0
    for original in attachments:
        attachment = original
        size = _json_runes(attachment)
        while True:
            held = parts[-1][1]
            total = base_runes + overhead + packed + (1 if held else 0) + size
            if total <= MAX_USER_PROPS_RUNES:
                packed += size + (1 if held else 0)
                held.append(attachment)
                break
            if held:
                parts.append(("", []))
                packed = 0
                continue
            attachment = _shorten_text(attachment, total - MAX_USER_PROPS_RUNES)
            size = _json_runes(attachment)
    return [(text, {**props, "attachments": held} if held else dict(props)) for text, held in parts]


def _reply_props(
    reply: Reply, hook: OutgoingHook, username_override: bool, icon_override: bool, bot: bool
) -> dict[str, Any]:
    """The reply's props minus what only the server may set, plus what the server sets."""
    # Attachments come only from the top-level key (REF §4.3 step 4); a reply cannot claim
    # webhook or bot identity, nor an override the admin did not allow.
    props = strip_reserved_props(reply.props or {})
    props.pop("attachments", None)
    props["from_webhook"] = "true"
    props["webhook_display_name"] = hook.display_name
    if username_override:
        username = reply.username or hook.username or DEFAULT_WEBHOOK_USERNAME
        props["override_username"] = username
    if icon_override:
        if icon_url := reply.icon_url or hook.icon_url:
            props["override_icon_url"] = icon_url
        # Divergence (spec §7): Mattermost drops icon_emoji on outgoing hooks.
        if reply.icon_emoji:
            props["override_icon_emoji"] = reply.icon_emoji
    if bot:
        props["from_bot"] = "true"
    return props


def _check_type(post_type: str) -> None:
    if post_type.startswith("system_"):
        raise ReplyError(INVALID_PARAM_ERROR, "Invalid post.type parameter.")
    if len(post_type) > MAX_POST_TYPE_RUNES:
        raise ReplyError(
            INVALID_TYPE_ERROR, f"Invalid type: longer than {MAX_POST_TYPE_RUNES} characters."
        )
    if post_type not in ("", SLACK_ATTACHMENT_TYPE) and not post_type.startswith("custom_"):
        raise ReplyError(INVALID_TYPE_ERROR, f"Invalid type {post_type!r}.")


def build_reply_posts(
    reply: Reply,
    hook: OutgoingHook,
    trigger_post: Post,
    *,
    username_override_enabled: bool,
    icon_override_enabled: bool,
    usernames_by_id: Mapping[str, str],
    max_message_runes: int = MAX_MESSAGE_RUNES,
    creator_is_bot: bool = False,
) -> list[ReplyPostSpec]:
    """The posts a reply makes, in order; ``[]`` when it has neither text nor attachments.

    ``usernames_by_id`` maps the ids of :func:`user_ids_in_reply` that exist to usernames.
    Raises :class:`ReplyError` when nothing may be posted (a ``system_`` or unknown type, a
    priority without ``priority``, props too large); then no part is posted.
    """
    if max_message_runes < 1:
        raise ValueError("max_message_runes must be positive")
    # REF §4.2: null entries still count here, before they are dropped.
    if reply.text is None and not reply.attachments:
        return []
    _check_type(reply.type)
    if reply.priority is not None and reply.priority.priority is None:
        raise ReplyError(INVALID_PARAM_ERROR, "Invalid webhook.priority.priority parameter.")
    attachments = [
        _process_attachment(attachment, usernames_by_id)
        for attachment in reply.attachments
        if attachment is not None
    ]
    post_type = reply.type or (SLACK_ATTACHMENT_TYPE if attachments else "")
    message = convert_message_links(process_slack_text(reply.text or "", usernames_by_id))
    props = _reply_props(
        reply, hook, username_override_enabled, icon_override_enabled, creator_is_bot
    )
    # Divergence (spec §7): a comment on a reply goes to the thread's root, where Mattermost
    # would make a reply to a reply and lose it.
    root_id = (trigger_post.root_id or trigger_post.id) if reply.response_type == "comment" else ""
    parts = _split(
        message, props, [attachment.to_json() for attachment in attachments], max_message_runes
    )
    return [
        ReplyPostSpec(
            message=text, type=post_type, root_id=root_id, props=part_props, priority=reply.priority
        )
        for text, part_props in parts
    ]
