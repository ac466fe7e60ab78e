"""Decoding a callback's reply the way Go's encoding/json does (REF §4.1, spec §7)."""

import pytest

from tidings.webhooks.replies import (
    Attachment,
    AttachmentField,
    ReplyError,
    ReplyPriority,
    parse_reply,
)


@pytest.mark.parametrize("body", [b"", b"   ", b" \r\n\t ", b"null", b"  null  trailing"])
def test_empty_body_or_null_means_nothing_to_post(body: bytes) -> None:
    """No JSON value (or ``null``) is "no reply", not an error."""
    assert parse_reply(body) is None


def test_text_is_parsed() -> None:
    """``{"text": "Hello, World!"}`` gives that text."""
    reply = parse_reply(b'{"text": "Hello, World!"}')
    assert reply is not None
    assert reply.text == "Hello, World!"


@pytest.mark.parametrize(
    "body",
    [
        b"aaaaaaaa",
        b'{"text": "unterminated',
        b'{"text": "' + b"a" * (1 << 20),
        b"[1, 2]",
        b'"just a string"',
        b"42",
        b"true",
        b"\xef\xbb\xbf{}",
        b"{'text': 'single quotes'}",
        b'{"text": NaN}',
        b'{"props": {"n": Infinity}}',
        b'{"props": {"n": 1e999}}',
        b'{"props": {"n": ' + b"9" * 400 + b"}}",
    ],
)
def test_non_json_or_non_object_is_an_unmarshal_error(body: bytes) -> None:
    """Bodies Go would refuse raise ReplyError with Mattermost's ``api.unmarshal_error``."""
    with pytest.raises(ReplyError) as raised:
        parse_reply(body)
    assert raised.value.error_id == "api.unmarshal_error"


def test_truncated_body_is_an_error_even_if_it_parses() -> None:
    """A reply cut at 1 MiB is unusable, whatever the first bytes say."""
    with pytest.raises(ReplyError, match="1 MiB"):
        parse_reply(b'{"text": "hi"}', truncated=True)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    """A body nested thousands deep raises ReplyError, never RecursionError."""
    deep = b'{"props": {"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}"
    with pytest.raises(ReplyError):
        parse_reply(deep)
    nested = b'{"props": {"a": ' + b"[" * 500 + b"]" * 500 + b"}}"
    with pytest.raises(ReplyError, match="nested"):
        parse_reply(nested)


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b'{"text": 123}', "text"),
        (b'{"text": ["a"]}', "text"),
        (b'{"username": 1}', "username"),
        (b'{"icon_url": false}', "icon_url"),
        (b'{"type": {}}', "type"),
        (b'{"response_type": 1}', "response_type"),
        (b'{"props": []}', "props"),
        (b'{"props": "x"}', "props"),
        (b'{"attachments": {}}', "attachments"),
        (b'{"attachments": [1]}', "attachment"),
        (b'{"attachments": [{"text": 5}]}', "attachment text"),
        (b'{"attachments": [{"id": 1.5}]}', "attachment id"),
        (b'{"attachments": [{"id": "7"}]}', "attachment id"),
        (b'{"attachments": [{"fields": {}}]}', "attachment fields"),
        (b'{"attachments": [{"fields": [{"title": 1}]}]}', "attachment field title"),
        (b'{"attachments": [{"actions": [1]}]}', "attachment action"),
        (b'{"priority": "high"}', "priority"),
        (b'{"priority": {"requested_ack": "yes"}}', "priority.requested_ack"),
    ],
)
def test_wrong_types_are_unmarshal_errors(body: bytes, what: str) -> None:
    """A value of the wrong JSON type anywhere spoils the whole reply."""
    with pytest.raises(ReplyError, match=what) as raised:
        parse_reply(body)
    assert raised.value.error_id == "api.unmarshal_error"


def test_absent_null_and_empty_text_are_told_apart() -> None:
    """Absent and null text are None; an empty string is kept (it still makes a post)."""
    assert parse_reply(b"{}") == parse_reply(b'{"text": null}')
    reply = parse_reply(b'{"text": null}')
    assert reply is not None
    assert reply.text is None
    empty = parse_reply(b'{"text": ""}')
    assert empty is not None
    assert empty.text == ""


def test_keys_match_in_any_letter_case_and_the_last_wins() -> None:
    """``Text`` fills ``text``; of several spellings the last one counts, as in Go."""
    reply = parse_reply(
        b'{"Text": "a", "USERNAME": "bot", "tExT": "b", "Response_Type": "comment"}'
    )
    assert reply is not None
    assert (reply.text, reply.username, reply.response_type) == ("b", "bot", "comment")


def test_null_resets_text_but_not_other_strings() -> None:
    """Go sets a pointer field to nil on null but leaves a plain string field as it was."""
    reply = parse_reply(b'{"text": "a", "TEXT": null, "username": "u", "Username": null}')
    assert reply is not None
    assert reply.text is None
    assert reply.username == "u"


def test_bytes_after_the_first_value_are_ignored() -> None:
    """Only the first JSON value is decoded; trailing junk does not matter."""
    reply = parse_reply(b'\n  {"text": "first"} {"text": "second"} garbage {')
    assert reply is not None
    assert reply.text == "first"


def test_unknown_keys_are_ignored() -> None:
    """Slash-command keys such as ``extra_responses`` and ``goto_location`` mean nothing here."""
    reply = parse_reply(b'{"text": "x", "extra_responses": [1], "goto_location": 5, "foo": {}}')
    assert reply is not None
    assert reply.text == "x"


def test_all_reply_fields_are_read() -> None:
    """username, icon_url, icon_emoji, props, attachments, type, response_type, priority."""
    reply = parse_reply(
        b'{"text": "t", "username": "u", "icon_url": "http://i/", "icon_emoji": ":robot_face:",'
        b' "props": {"a": [1, {"b": null}]}, "attachments": [{"text": "at"}],'
        b' "type": "custom_x", "response_type": "comment",'
        b' "priority": {"priority": "urgent", "requested_ack": true}}'
    )
    assert reply is not None
    assert reply.username == "u"
    assert reply.icon_url == "http://i/"
    assert reply.icon_emoji == ":robot_face:"
    assert reply.props == {"a": [1, {"b": None}]}
    assert reply.attachments == (Attachment(text="at"),)
    assert reply.type == "custom_x"
    assert reply.response_type == "comment"
    assert reply.priority == ReplyPriority(priority="urgent", requested_ack=True)


def test_repeated_props_merge_like_a_go_map() -> None:
    """Go decodes a second ``props`` into the same map, so keys from both survive."""
    reply = parse_reply(b'{"props": {"a": 1, "b": 1}, "Props": {"b": 2}}')
    assert reply is not None
    assert reply.props == {"a": 1, "b": 2}


def test_attachment_nulls_are_kept_for_the_post_or_not_decision() -> None:
    """Null attachments and fields survive parsing; the builder drops them later."""
    reply = parse_reply(b'{"attachments": [null, {"Pretext": "p", "fields": [null, {}]}]}')
    assert reply is not None
    assert reply.attachments == (
        None,
        Attachment(pretext="p", fields=(None, AttachmentField())),
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"true", True),
        (b"false", False),
        (b'"true"', True),
        (b'"FALSE"', False),
        (b'"True"', True),
        (b'"fAlSe"', False),
    ],
)
def test_short_accepts_bools_and_their_strings(raw: bytes, expected: bool) -> None:
    """``short`` is a bool or "true"/"false" in any letter case (Slack sends strings)."""
    body = b'{"attachments": [{"fields": [{"title": "t", "value": "v", "short": ' + raw + b"}]}]}"
    reply = parse_reply(body)
    assert reply is not None
    attachment = reply.attachments[0]
    assert attachment is not None
    assert attachment.fields == (AttachmentField(title="t", value="v", short=expected),)


@pytest.mark.parametrize("raw", [b'"yes"', b"1", b"0", b"null", b"[]", b'""'])
def test_short_refuses_anything_else(raw: bytes) -> None:
    """Any other ``short`` value is a decode error for the whole reply."""
    body = b'{"text": "x", "attachments": [{"fields": [{"short": ' + raw + b"}]}]}"
    with pytest.raises(ReplyError, match="short"):
        parse_reply(body)


def test_attachment_keys_match_in_any_case_and_keep_raw_values() -> None:
    """Attachment and field keys fold case too; field values stay JSON until the builder."""
    reply = parse_reply(
        b'{"attachments": [{"ID": 7, "TITLE": "t", "Fields": [{"VALUE": 1000000}],'
        b' "ts": 1500000000, "actions": [{"name": "go"}], "unknown": 1}]}'
    )
    assert reply is not None
    assert reply.attachments == (
        Attachment(
            id=7,
            title="t",
            fields=(AttachmentField(value=1000000),),
            ts=1500000000,
            actions=({"name": "go"},),
        ),
    )


def test_priority_repeats_merge_and_missing_priority_is_kept_for_the_builder() -> None:
    """A priority object without ``priority`` parses; the builder refuses it."""
    reply = parse_reply(b'{"priority": {"requested_ack": true}, "Priority": {}}')
    assert reply is not None
    assert reply.priority == ReplyPriority(priority=None, requested_ack=True)


def test_invalid_utf8_and_lone_surrogates_become_replacement_characters() -> None:
    """Inside strings, bad UTF-8 and unpaired ``\\ud800`` escapes turn into U+FFFD, as in Go."""
    reply = parse_reply(b'{"text": "a\xffb \\ud800 \\ud83d\\ude00", "props": {"k\\udc00": "v"}}')
    assert reply is not None
    assert reply.text == "a\ufffdb \ufffd \U0001f600"
    assert reply.props == {"k\ufffd": "v"}
