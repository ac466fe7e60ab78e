"""The body an outgoing hook sends: the 12 fields of REF §3.1 in form or JSON encoding, and the
four more a hook with ``extended_payload`` asks for.

Receivers written for Mattermost or Slack parse these bytes, some of them with hand-rolled code,
so the encoders reproduce Go's output byte for byte: ``url.Values.Encode`` for the form (sorted
keys, ``timestamp`` in seconds) and ``json.Marshal`` for JSON (struct order, ``timestamp`` in
milliseconds, HTML-safe escapes). A hook that does not opt in gets exactly those bytes; an
extended body adds ``root_id``, ``channel_type``, ``from_bot`` and ``response_url``: after
``file_ids`` in that order in JSON (``from_bot`` a JSON boolean), sorted in with the rest in the
form (``from_bot`` as ``true``/``false``).

Pure: imports only the standard library and ``tidings.domain``. No I/O.
"""

import functools
import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from tidings.domain.hooks import FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, OutgoingHook
from tidings.domain.posts import Post
from tidings.domain.teams import Channel, Team

# Go's json.Marshal escapes <, > and & (HTML safety) and U+2028/U+2029 (line ends in JavaScript);
# Python escapes none of them. They can only occur inside strings, so a plain replace is safe.
_GO_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_GO_JSON_ESCAPE_PATTERN = re.compile("[<>&\u2028\u2029]")
# A lone surrogate cannot be UTF-8 encoded; Go would carry U+FFFD in its place.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Extension:
    """The keys of the extended payload (issue #13): thread, channel type, bot origin, and where
    a deferred reply may be posted."""

    root_id: str
    channel_type: str
    from_bot: bool
    response_url: str


@dataclass(frozen=True)
class PayloadFields:
    """What a callback is told about a post; nothing else is sent (REF §3.1)."""

    token: str
    team_id: str
    team_domain: str
    channel_id: str
    channel_name: str
    timestamp_ms: int
    user_id: str
    user_name: str
    post_id: str
    text: str
    trigger_word: str
    file_ids: tuple[str, ...]
    # Only for hooks with extended_payload; None keeps the body Mattermost's to the byte.
    extension: Extension | None = None


def build_payload_fields(
    hook: OutgoingHook,
    post: Post,
    team: Team,
    channel: Channel,
    *,
    author_username: str,
    trigger_word: str,
    author_is_bot: bool = False,
    response_url: str = "",
) -> PayloadFields:
    """Collect the payload for one matched hook; ``trigger_word`` is that hook's own word.

    The strings are keyword-only so they cannot be swapped by accident. ``author_is_bot`` and
    ``response_url`` count only for a hook with ``extended_payload``: ``from_bot`` is true for
    a bot account's post and for a webhook reply (``webhook_depth > 0``).
    """
    extension = None
    if hook.extended_payload:
        extension = Extension(
            root_id=post.root_id,
            channel_type=channel.type.value,
            from_bot=author_is_bot or post.webhook_depth > 0,
            response_url=response_url,
        )
    return PayloadFields(
        token=hook.token,
        team_id=hook.team_id,
        team_domain=team.name,
        channel_id=post.channel_id,
        channel_name=channel.name,
        timestamp_ms=post.create_at,
        user_id=post.user_id,
        user_name=author_username,
        post_id=post.id,
        text=post.message,
        trigger_word=trigger_word,
        file_ids=post.file_ids,
        extension=extension,
    )


def _valid_text(value: str) -> str:
    return _LONE_SURROGATE.sub("\ufffd", value)


def _string_values(fields: PayloadFields) -> dict[str, str]:
    """The eleven string fields under their wire names, in REF §3.1 order (timestamp aside)."""
    values = {
        "token": fields.token,
        "team_id": fields.team_id,
        "team_domain": fields.team_domain,
        "channel_id": fields.channel_id,
        "channel_name": fields.channel_name,
        "user_id": fields.user_id,
        "user_name": fields.user_name,
        "post_id": fields.post_id,
        "text": fields.text,
        "trigger_word": fields.trigger_word,
        "file_ids": ",".join(fields.file_ids),
    }
    return {key: _valid_text(value) for key, value in values.items()}


def encode_form(fields: PayloadFields) -> bytes:
    """``application/x-www-form-urlencoded`` as Go's ``url.Values.Encode`` writes it.

    Keys sorted, space as ``+``, everything but ``A-Za-z0-9-_.~`` percent-encoded in upper-case
    hex, and ``timestamp`` in whole seconds (Mattermost divides the milliseconds by 1000).
    """
    items = _string_values(fields)
    items["timestamp"] = str(fields.timestamp_ms // 1000)
    if (extension := fields.extension) is not None:
        items["root_id"] = _valid_text(extension.root_id)
        items["channel_type"] = _valid_text(extension.channel_type)
        items["from_bot"] = "true" if extension.from_bot else "false"
        items["response_url"] = _valid_text(extension.response_url)
    return urlencode(sorted(items.items())).encode("ascii")


# One encoder for every call: ``json.dumps`` with options builds a new one each time.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _go_json_dumps(value: object) -> str:
    """Compact JSON with non-ASCII kept raw and Go's HTML-safe escapes applied."""
    text = _COMPACT_JSON.encode(value)
    return _GO_JSON_ESCAPE_PATTERN.sub(lambda found: _GO_JSON_ESCAPES[found.group()], text)


def encode_json(fields: PayloadFields) -> bytes:
    """The JSON object Go's ``json.Marshal`` writes: struct order, ``timestamp`` in ms."""
    strings = _string_values(fields)
    ordered: dict[str, str | int | bool] = {}
    for key in ("token", "team_id", "team_domain", "channel_id", "channel_name"):
        ordered[key] = strings[key]
    ordered["timestamp"] = fields.timestamp_ms
    for key in ("user_id", "user_name", "post_id", "text", "trigger_word", "file_ids"):
        ordered[key] = strings[key]
    if (extension := fields.extension) is not None:
        ordered["root_id"] = _valid_text(extension.root_id)
        ordered["channel_type"] = _valid_text(extension.channel_type)
        ordered["from_bot"] = extension.from_bot
        ordered["response_url"] = _valid_text(extension.response_url)
    return _go_json_dumps(ordered).encode("utf-8")


def encode_body(hook: OutgoingHook, fields: PayloadFields) -> tuple[bytes, str]:
    """The request body and its ``Content-Type``: JSON only for exactly ``application/json``."""
    if hook.sends_json:
        return encode_json(fields), JSON_CONTENT_TYPE
    return encode_form(fields), FORM_CONTENT_TYPE


def carries_token(body: bytes, content_type: str, token: str) -> bool:
    """Whether an encoded body was built with ``token``, so a sender can tell whether the body
    matches the hook state it is about to sign with.

    A byte search, not a parse: the worker asks for every delivery. Values are escaped in both
    encodings, so the key-value pair cannot appear inside another field's value.
    """
    needle = _token_needle(content_type, token)
    if content_type == JSON_CONTENT_TYPE:
        return needle in body
    return needle in b"&" + body + b"&"


@functools.lru_cache(maxsize=1024)
def _token_needle(content_type: str, token: str) -> bytes:
    """The encoded ``token`` pair :func:`carries_token` looks for (one per hook, so cached)."""
    if content_type == JSON_CONTENT_TYPE:
        return f'"token":{_go_json_dumps(token)}'.encode()
    return b"&" + urlencode({"token": token}).encode() + b"&"


def with_token(body: bytes, content_type: str, token: str) -> bytes:
    """``body`` as it would have been encoded with ``token`` instead of the one it carries.

    For a delivery queued before its hook's token was regenerated: the retry must carry the
    token that matches the new signing secret, not the revoked one. Both encodings decode back
    to their fields losslessly (our own encoders wrote them), so re-encoding with the one field
    changed gives exactly the bytes a fresh encoding would (an extended body too: JSON keeps
    its key order and ``from_bot`` its boolean through ``json.loads``).
    """
    if content_type == JSON_CONTENT_TYPE:
        fields = json.loads(body)
        fields["token"] = token
        return _go_json_dumps(fields).encode("utf-8")
    pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    return urlencode(
        sorted((key, token if key == "token" else value) for key, value in pairs)
    ).encode("ascii")
