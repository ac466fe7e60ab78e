"""Every pattern over reply text runs in linear time: hostile inputs at n and 4n, and at 1 MiB.

A receiver controls up to 1 MiB of reply; one quadratic pattern over it blocked the whole server
(``'<a|' * 40000`` in an attachment took 32.8 s). Each family below is timed at two sizes, and
the larger must cost about four times the smaller (a quadratic pattern costs sixteen), and the
1 MiB case must finish well inside a second. The conversions must also still give exactly what
Mattermost's regular expressions give, which the differential tests check on random text.
"""

import contextlib
import json
import random
import re
import time
from collections.abc import Callable

import pytest

from tidings.domain.hooks import OutgoingHook
from tidings.domain.posts import Post, mentioned_names
from tidings.webhooks.matching import first_word
from tidings.webhooks.replies import (
    ReplyError,
    build_reply_posts,
    parse_reply,
    user_ids_in_reply,
)
from tidings.webhooks.slack import (
    convert_attachment_links,
    convert_message_links,
    process_slack_text,
    user_ids_mentioned,
)

MIB = 1 << 20
# Mattermost's patterns as written (REF §4.4): the reference the linear versions must agree with.
MATTERMOST_MESSAGE_LINK = re.compile(r"<([^\n<|>]+)\|([^|\n>]+)>")
MATTERMOST_ATTACHMENT_LINK = re.compile(r"<([^<|]+)\|([^>]+)>")

# Units repeated to make hostile text: unclosed links, empty parts, links that do match, and
# every mix of the characters the link and mention patterns care about.
HOSTILE_UNITS = [
    "<",
    "<a",
    "<|",
    "<a|",
    "<a|b|",
    "<a|\n",
    "<a|>",
    "<a|b>",
    "<a>|",
    "<<|>",
    "<a|>>",
    "<@",
    "<@a",
    "<@a>",
    "<!channel",
    "a|>",
]


def seconds(work: Callable[[str], object], text: str) -> float:
    """CPU seconds of this thread, the best of three runs: what the work costs, whatever else
    the shared machine is running (wall-clock time under load would make the ratios noise)."""
    best = float("inf")
    for _ in range(3):
        started = time.thread_time()
        work(text)
        best = min(best, time.thread_time() - started)
    return best


def repeated(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def assert_linear(work: Callable[[str], object], unit: str, limit: float = 1.0) -> None:
    """A quarter of a MiB and a whole MiB: 4× the text may cost at most 8× the time (quadratic
    costs 16×; 10 ms of slack absorbs noise on a shared machine), and the MiB is under ``limit``.
    """
    small = seconds(work, repeated(unit, MIB // 4))
    large = seconds(work, repeated(unit, MIB))
    assert large < 8 * small + 0.01, f"{unit!r}: {small:.4f}s at n, {large:.4f}s at 4n"
    assert large < limit, f"{unit!r} * 1 MiB took {large:.2f}s"


CONVERSIONS: list[Callable[[str], object]] = [
    convert_attachment_links,
    convert_message_links,
    user_ids_mentioned,
    lambda text: process_slack_text(text, {"a": "alice"}),
    mentioned_names,
    first_word,
]


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
@pytest.mark.parametrize("work", CONVERSIONS, ids=lambda work: getattr(work, "__name__", "slack"))
def test_slack_conversions_are_linear(work: Callable[[str], object], unit: str) -> None:
    """Link, mention and announcement conversions (and trigger words, @-mentions) scale linearly."""
    assert_linear(work, unit)


@pytest.mark.parametrize("unit", ["@", "@a", "@a.", "a@", "@@a-"])
def test_post_mentions_are_linear(unit: str) -> None:
    """The @-mention scan of a post's message (for notifications) scales linearly."""
    assert_linear(mentioned_names, unit)


@pytest.mark.parametrize("space", [" ", "\u3000", "\t\n"])
def test_first_word_is_linear(space: str) -> None:
    """Leading white space before a trigger word costs one scan, however long it is."""
    assert_linear(first_word, space)


def test_reported_attachment_of_open_links_converts_at_once() -> None:
    """The reported case: ``'<a|' * 40000`` in an attachment took 32.8 s; now well under 0.1 s."""
    text = "<a|" * 40000
    assert seconds(convert_attachment_links, text) < 0.1
    assert convert_attachment_links(text) == text


def _reply_seconds(body: dict[str, object]) -> float:
    """Parse and build a reply's posts the way the worker does, timed."""
    hook = OutgoingHook(
        id="h" * 26,
        create_at=0,
        update_at=0,
        delete_at=0,
        creator_id="u" * 26,
        channel_id="c" * 26,
        team_id="t" * 26,
        trigger_words=("go",),
        trigger_when=0,
        callback_urls=("http://127.0.0.1/",),
        display_name="hook",
        description="",
        content_type="application/json",
        username="",
        icon_url="",
        token="k" * 26,
    )
    post = Post(
        id="p" * 26,
        create_at=0,
        update_at=0,
        edit_at=0,
        delete_at=0,
        user_id="u" * 26,
        channel_id="c" * 26,
        root_id="",
        message="go",
    )
    started = time.thread_time()
    reply = parse_reply(json.dumps(body).encode())
    assert reply is not None
    user_ids_in_reply(reply)
    with contextlib.suppress(ReplyError):  # props too long once escaped: recorded, not posted
        build_reply_posts(
            reply,
            hook,
            post,
            username_override_enabled=False,
            icon_override_enabled=False,
            usernames_by_id={},
        )
    return time.thread_time() - started


@pytest.mark.parametrize("unit", ["<a|", "<a|b|", "<@a", "<a>|", "<a|>"])
def test_a_whole_hostile_reply_is_built_quickly(unit: str) -> None:
    """A 1 MiB reply of hostile text in its text, attachment text, pretext and a field value
    becomes posts in well under two seconds (the quadratic pattern needed about 40 minutes)."""
    half, eighth = repeated(unit, MIB // 2), repeated(unit, MIB // 8 - 64)
    body = {
        "text": half,
        "attachments": [
            {"text": eighth, "pretext": eighth, "fields": [{"title": "f", "value": eighth}]}
        ],
    }
    assert _reply_seconds(body) < 2.0


def _random_texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice("<|>a\nb@!") for _ in range(rng.randint(0, 16))) for _ in range(count)
    ]


def test_attachment_links_match_mattermosts_pattern() -> None:
    """On 50,000 random short texts the linear conversion gives the regular expression's result."""
    for text in _random_texts(1, 50_000):
        expected = MATTERMOST_ATTACHMENT_LINK.sub(r"[\2](\1)", text)
        assert convert_attachment_links(text) == expected, text


def test_message_links_match_mattermosts_pattern() -> None:
    """The message pattern is Mattermost's own, unchanged; this pins it against a rewrite."""
    for text in _random_texts(2, 50_000):
        expected = MATTERMOST_MESSAGE_LINK.sub(r"[\2](\1)", text)
        assert convert_message_links(text) == expected, text
