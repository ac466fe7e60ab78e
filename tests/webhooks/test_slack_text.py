"""Slack compatibility: announcements, user mentions, link syntax and Go's %v (REF §4.4, §10)."""

import pytest

from tidings.webhooks.replies import (
    convert_attachment_links,
    convert_message_links,
    go_format_value,
    process_slack_text,
    user_ids_mentioned,
)

USER_ID = "k3x1b8e5jpgzxq4n7w6ru1yqfa"
USERNAMES = {USER_ID: "alice"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!channel> foo <!channel>", "@channel foo @channel"),
        ("<!here> bar <!here>", "@here bar @here"),
        ("<!all> bar <!all>", "@all bar @all"),
        ("<!everyone> stays", "<!everyone> stays"),
    ],
)
def test_announcements_become_mentions(text: str, expected: str) -> None:
    """``<!channel>``, ``<!here>`` and ``<!all>`` are replaced everywhere; others are not."""
    assert process_slack_text(text, {}) == expected


def test_known_user_id_becomes_username() -> None:
    """``<@id>`` of an existing user becomes ``@username``."""
    assert process_slack_text(f"<@{USER_ID}> hello <@{USER_ID}>", USERNAMES) == (
        "@alice hello @alice"
    )


def test_unknown_ids_and_labelled_mentions_stay() -> None:
    """Slack ``U…`` ids that are not our users, and ``<@id|name>``, are left as written."""
    text = f"<@U024BE7LH> and <@{USER_ID}|al> and <@bad-id>"
    assert process_slack_text(text, USERNAMES) == text


def test_user_ids_mentioned_lists_candidates_for_lookup() -> None:
    """The caller learns which ids to look up before converting."""
    text = f"<@{USER_ID}> <@U024BE7LH> <@{USER_ID}> <@x|y> <!channel>"
    assert user_ids_mentioned(text) == {USER_ID, "U024BE7LH"}


@pytest.mark.parametrize(
    "text",
    [
        "`<>|<>|`",
        "< | \n|\n>",
        (
            "commit 4f5ab27c0a\n"
            "Author: foo <foo@example.org>\n"
            "Date:   Thu Mar 1 19:46:54 2018 +0300\n\n"
            "    fix the thing\n\n"
            " test | 1 +\n"
            " 1 file changed, 1 insertion(+)"
        ),
        "`if(status_int < QUERY_UNKNOWN || status_int >= QUERY_STATUS_MAX)`",
        "<https://example.com>",
        "<#C123>",
        "<a|b|c>",
    ],
)
def test_message_link_pattern_leaves_code_and_bare_links_alone(text: str) -> None:
    """The strict pattern does not make links out of code, logs or bare ``<url>``."""
    assert convert_message_links(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<https://mattermost.com|Mattermost>", "[Mattermost](https://mattermost.com)"),
        ("<#C123|general>", "[general](#C123)"),
        (
            "see <http://a.b/c?d=1&e=2|the docs> and <http://x|y>",
            ("see [the docs](http://a.b/c?d=1&e=2) and [y](http://x)"),
        ),
    ],
)
def test_message_links_become_markdown(text: str, expected: str) -> None:
    """``<url|label>`` becomes ``[label](url)``."""
    assert convert_message_links(text) == expected


def test_attachment_link_pattern_is_looser() -> None:
    """In attachments the label may hold ``|`` and the link may span lines."""
    assert convert_attachment_links("<http://a|b|c>") == "[b|c](http://a)"
    assert convert_attachment_links("<http://a\n|b\nc>") == "[b\nc](http://a\n)"
    assert convert_message_links("<http://a\n|b\nc>") == "<http://a\n|b\nc>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1000000, "1e+06"),
        (1000000.0, "1e+06"),
        (42, "42"),
        (42.0, "42"),
        (1.5, "1.5"),
        (0.00001, "1e-05"),
        (0.0001, "0.0001"),
        (123456, "123456"),
        (100000, "100000"),
        (1234567, "1.234567e+06"),
        (12345678.9, "1.23456789e+07"),
        (-2.5, "-2.5"),
        (-1e-7, "-1e-07"),
        (1.5e-7, "1.5e-07"),
        (1e21, "1e+21"),
        (1e100, "1e+100"),
        (0, "0"),
        (0.1, "0.1"),
        (123.456, "123.456"),
        (True, "true"),
        (False, "false"),
        ("text", "text"),
        (None, "<nil>"),
        ([1, "a", True], "[1 a true]"),
        ({"b": 1, "a": [2]}, "map[a:[2] b:1]"),
    ],
)
def test_go_format_value_matches_go_percent_v(value: object, expected: str) -> None:
    """JSON values print as Go's ``%v`` prints them (numbers as float64)."""
    assert go_format_value(value) == expected
