"""The 12-field body (REF §3.1–3.2): Go's bytes for the form and the JSON encodings."""

import dataclasses
import json
from typing import Any

import pytest

from tidings.domain.hooks import OutgoingHook
from tidings.domain.posts import Post
from tidings.domain.teams import Channel, ChannelType, Team, TeamType
from tidings.webhooks.payloads import (
    Extension,
    PayloadFields,
    build_payload_fields,
    carries_token,
    encode_body,
    encode_form,
    encode_json,
    with_token,
)

# The team and channel of every payload built here (the team's display name is not sent).
TEAM = Team(
    id="team1",
    create_at=1,
    update_at=1,
    delete_at=0,
    name="core",
    display_name="Core Team",
    type=TeamType.OPEN,
)
CHANNEL = Channel(
    id="chan1",
    create_at=1,
    update_at=1,
    delete_at=0,
    team_id="team1",
    type=ChannelType.PUBLIC,
    name="town-square",
    display_name="Town Square",
)


def make_fields(**overrides: Any) -> PayloadFields:
    """Short, readable values so the expected bytes can be written by hand."""
    values: dict[str, Any] = {
        "token": "tok",
        "team_id": "team1",
        "team_domain": "core",
        "channel_id": "chan1",
        "channel_name": "town-square",
        "timestamp_ms": 123000,
        "user_id": "user1",
        "user_name": "alice",
        "post_id": "post1",
        "text": "hello world",
        "trigger_word": "hello",
        "file_ids": ("f1", "f2"),
    }
    values.update(overrides)
    return PayloadFields(**values)


def make_hook(content_type: str) -> OutgoingHook:
    return OutgoingHook(
        id="h" * 26,
        token="tok",
        create_at=1,
        update_at=1,
        delete_at=0,
        creator_id="c" * 26,
        channel_id="chan1",
        team_id="team1",
        trigger_words=("hello",),
        trigger_when=0,
        callback_urls=("http://127.0.0.1:9/",),
        content_type=content_type,
    )


def test_form_body_is_go_url_values_encode() -> None:
    """Sorted keys, ``+`` for space, ``%2C`` in file ids and ``timestamp`` in seconds."""
    assert encode_form(make_fields()) == (
        b"channel_id=chan1&channel_name=town-square&file_ids=f1%2Cf2&post_id=post1"
        b"&team_domain=core&team_id=team1&text=hello+world&timestamp=123&token=tok"
        b"&trigger_word=hello&user_id=user1&user_name=alice"
    )


def test_form_timestamp_is_whole_seconds_rounded_down() -> None:
    """123999 ms is sent as 123 seconds, as Go's integer division does."""
    assert b"&timestamp=123&" in encode_form(make_fields(timestamp_ms=123999))


def test_form_escapes_unicode_and_reserved_characters() -> None:
    """Non-ASCII is UTF-8 percent-encoded in upper-case hex; only ``-_.~`` stay bare."""
    body = encode_form(make_fields(text="café & ü=1?/~-._ +#%"))
    assert b"&text=caf%C3%A9+%26+%C3%BC%3D1%3F%2F~-._+%2B%23%25&" in body


def test_form_with_no_files_sends_an_empty_file_ids() -> None:
    """A post without files still sends the ``file_ids`` key, empty."""
    assert encode_form(make_fields(file_ids=())).startswith(
        b"channel_id=chan1&channel_name=town-square&file_ids=&post_id="
    )


def test_json_body_is_go_json_marshal() -> None:
    """Keys in struct order, no spaces, ``timestamp`` a number of milliseconds."""
    assert encode_json(make_fields()) == (
        b'{"token":"tok","team_id":"team1","team_domain":"core","channel_id":"chan1",'
        b'"channel_name":"town-square","timestamp":123000,"user_id":"user1",'
        b'"user_name":"alice","post_id":"post1","text":"hello world",'
        b'"trigger_word":"hello","file_ids":"f1,f2"}'
    )


def test_json_escapes_html_characters_and_line_separators_like_go() -> None:
    """``<``, ``>``, ``&``, U+2028 and U+2029 are escaped; other non-ASCII stays raw UTF-8."""
    body = encode_json(make_fields(text='a<b>&c\u2028d\u2029 é 本 "q" \\ \n\t\x01'))
    expected_text = (
        b'"text":"a\\u003cb\\u003e\\u0026c\\u2028d\\u2029 '
        + "é 本".encode()
        + b' \\"q\\" \\\\ \\n\\t\\u0001"'
    )
    assert expected_text in body


def test_lone_surrogate_is_sent_as_replacement_character() -> None:
    """A string that cannot be UTF-8 encoded carries U+FFFD instead, as Go would."""
    fields = make_fields(text="a\ud800b")
    assert '"text":"a\ufffdb"'.encode() in encode_json(fields)
    assert b"&text=a%EF%BF%BDb&" in encode_form(fields)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", "application/json"),
        ("", "application/x-www-form-urlencoded"),
        ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
        ("Application/JSON", "application/x-www-form-urlencoded"),
        ("application/json; charset=utf-8", "application/x-www-form-urlencoded"),
    ],
)
def test_only_exact_application_json_selects_json(content_type: str, expected: str) -> None:
    """The hook's content_type must equal ``application/json`` exactly to get a JSON body."""
    body, header = encode_body(make_hook(content_type), make_fields())
    assert header == expected
    assert body.startswith(b"{") == (expected == "application/json")


def test_payload_fields_come_from_hook_post_team_and_channel() -> None:
    """Team and channel contribute their names (slugs), the post its message and files."""
    hook = make_hook("application/json")
    post = Post(
        id="post1",
        create_at=1_700_000_123_456,
        update_at=1_700_000_123_456,
        edit_at=0,
        delete_at=0,
        user_id="user1",
        channel_id="chan1",
        root_id="",
        message="hello there",
        file_ids=("f1", "f2"),
    )
    team, channel = TEAM, CHANNEL
    fields = build_payload_fields(
        hook, post, team, channel, author_username="alice", trigger_word="hello"
    )
    assert fields == make_fields(timestamp_ms=1_700_000_123_456, text="hello there")


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_body_knows_the_token_it_was_built_with(content_type: str) -> None:
    """The body carries its own token, not another, even when the text quotes a token."""
    fields = make_fields(token="a&b c", text='token=x&"token":"x"')
    body, sent_as = encode_body(make_hook(content_type), fields)
    assert carries_token(body, sent_as, "a&b c")
    assert not carries_token(body, sent_as, "x")
    assert not carries_token(body, sent_as, "a&b")


ODD_TEXTS = [
    "hello world",
    "a&b=c+d %41 <b>x</b> & \u2028 \u2029 caf\u00e9 \U0001f680",
    'token=x&"token":"x"',
    "",
]


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("text", ODD_TEXTS)
def test_a_body_re_tokened_is_the_body_a_fresh_encoding_gives(content_type: str, text: str) -> None:
    """A retry after a token regeneration sends exactly what encoding with the new token gives."""
    hook = make_hook(content_type)
    old, sent_as = encode_body(hook, make_fields(token="old-token", text=text))
    fresh, _ = encode_body(hook, make_fields(token="new token&=", text=text))
    assert with_token(old, sent_as, "new token&=") == fresh
    assert with_token(old, sent_as, "old-token") == old


# --- the extended payload (issue #13) --------------------------------------------------------

EXTENSION = Extension(
    root_id="root1", channel_type="O", from_bot=True, response_url="http://x/hooks/responses/s"
)


def _world(
    *, extended: bool, content_type: str, root_id: str = "", depth: int = 0
) -> tuple[OutgoingHook, Post, Team, Channel]:
    hook = dataclasses.replace(make_hook(content_type), extended_payload=extended)
    post = Post(
        id="post1",
        create_at=123_456,
        update_at=123_456,
        edit_at=0,
        delete_at=0,
        user_id="user1",
        channel_id="chan1",
        root_id=root_id,
        message="hello <world> & more",
        file_ids=("f1",),
        webhook_depth=depth,
    )
    return hook, post, TEAM, CHANNEL


def _encoded(
    content_type: str, *, extended: bool, response_url: str = "", bot: bool = False, **post: Any
) -> bytes:
    hook, the_post, team, channel = _world(extended=extended, content_type=content_type, **post)
    fields = build_payload_fields(
        hook,
        the_post,
        team,
        channel,
        author_username="alice",
        trigger_word="hello",
        author_is_bot=bot,
        response_url=response_url,
    )
    return encode_body(hook, fields)[0]


def test_a_hook_that_does_not_opt_in_sends_mattermosts_bytes() -> None:
    """Without ``extended_payload`` the body is the 12 fields only, to the byte, in both
    encodings, whatever the post's thread, depth or author and whatever response URL exists."""
    pinned_json = (
        b'{"token":"tok","team_id":"team1","team_domain":"core","channel_id":"chan1",'
        b'"channel_name":"town-square","timestamp":123456,"user_id":"user1",'
        b'"user_name":"alice","post_id":"post1","text":"hello \\u003cworld\\u003e \\u0026 more",'
        b'"trigger_word":"hello","file_ids":"f1"}'
    )
    pinned_form = (
        b"channel_id=chan1&channel_name=town-square&file_ids=f1&post_id=post1"
        b"&team_domain=core&team_id=team1&text=hello+%3Cworld%3E+%26+more&timestamp=123"
        b"&token=tok&trigger_word=hello&user_id=user1&user_name=alice"
    )
    for extras in ({}, {"root_id": "root1", "depth": 2, "bot": True, "response_url": "http://x"}):
        assert _encoded("application/json", extended=False, **extras) == pinned_json
        assert _encoded("", extended=False, **extras) == pinned_form


def test_an_extended_json_body_adds_four_keys_after_file_ids_in_order() -> None:
    """root_id, channel_type, from_bot (a JSON boolean), response_url follow file_ids."""
    body = _encoded(
        "application/json", extended=True, root_id="root1", response_url="http://s/hooks/r/a&b"
    )
    assert body == (
        b'{"token":"tok","team_id":"team1","team_domain":"core","channel_id":"chan1",'
        b'"channel_name":"town-square","timestamp":123456,"user_id":"user1",'
        b'"user_name":"alice","post_id":"post1","text":"hello \\u003cworld\\u003e \\u0026 more",'
        b'"trigger_word":"hello","file_ids":"f1","root_id":"root1","channel_type":"O",'
        b'"from_bot":false,"response_url":"http://s/hooks/r/a\\u0026b"}'
    )
    assert list(json.loads(body))[-5:] == [
        "file_ids",
        "root_id",
        "channel_type",
        "from_bot",
        "response_url",
    ]


def test_an_extended_form_body_sorts_the_four_keys_in() -> None:
    """In the form the new keys take their sorted places; from_bot is ``true``/``false``."""
    body = _encoded("", extended=True, bot=True, response_url="http://s/hooks/responses/x")
    assert body == (
        b"channel_id=chan1&channel_name=town-square&channel_type=O&file_ids=f1&from_bot=true"
        b"&post_id=post1&response_url=http%3A%2F%2Fs%2Fhooks%2Fresponses%2Fx&root_id="
        b"&team_domain=core&team_id=team1&text=hello+%3Cworld%3E+%26+more&timestamp=123"
        b"&token=tok&trigger_word=hello&user_id=user1&user_name=alice"
    )


@pytest.mark.parametrize(
    ("bot", "depth", "expected"),
    [(False, 0, False), (True, 0, True), (False, 1, True), (True, 3, True)],
)
def test_from_bot_is_a_bot_author_or_a_webhook_reply(bot: bool, depth: int, expected: bool) -> None:
    """from_bot: the author is a bot account, or the post is a webhook reply (depth > 0)."""
    body = _encoded("application/json", extended=True, bot=bot, depth=depth)
    assert json.loads(body)["from_bot"] is expected


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_an_extended_body_re_tokened_is_the_body_a_fresh_encoding_gives(content_type: str) -> None:
    """with_token keeps the extension's keys, order and boolean."""
    hook = dataclasses.replace(make_hook(content_type), extended_payload=True)
    old, sent_as = encode_body(hook, make_fields(token="old", extension=EXTENSION))
    fresh, _ = encode_body(hook, make_fields(token="new&token", extension=EXTENSION))
    assert with_token(old, sent_as, "new&token") == fresh
    assert carries_token(fresh, sent_as, "new&token")
