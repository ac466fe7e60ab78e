"""Conflict keys (the stored form of the hook conflict rule) say exactly what hooks_conflict says."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.domain.hooks import (
    OutgoingHook,
    conflict_key_count,
    conflict_keys,
    hooks_conflict,
)
from tidings.ids import new_id

TEAM = new_id()
CHANNEL = new_id()


def hook(words: tuple[str, ...], urls: tuple[str, ...], channel_id: str = CHANNEL) -> OutgoingHook:
    return OutgoingHook(
        id=new_id(),
        token=new_id(),
        create_at=1,
        update_at=1,
        delete_at=0,
        creator_id=new_id(),
        channel_id=channel_id,
        team_id=TEAM,
        trigger_words=words,
        trigger_when=0,
        callback_urls=urls,
    )


def keys_conflict(a: OutgoingHook, b: OutgoingHook) -> bool:
    """The rule as the conflict index applies it: same channel and a shared key."""
    return a.channel_id == b.channel_id and bool(conflict_keys(a) & conflict_keys(b))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((("a", "b"), ("u",)), (("b",), ("u", "v")), True),
        ((("a",), ("u",)), (("b",), ("u",)), False),  # a shared URL alone
        ((("a",), ("u",)), (("a",), ("v",)), False),  # a shared word alone
        (((), ("u",)), ((), ("u",)), False),  # no words: never a conflict
        ((("a", "a"), ("u", "u")), (("a",), ("u",)), True),  # repeats change nothing
    ],
)
def test_keys_agree_with_the_rule(
    a: tuple[tuple[str, ...], tuple[str, ...]],
    b: tuple[tuple[str, ...], tuple[str, ...]],
    expected: bool,
) -> None:
    """A shared word and a shared URL, in one channel, and nothing less, is a conflict."""
    first, second = hook(*a), hook(*b)
    assert hooks_conflict(first, second) is expected
    assert keys_conflict(first, second) is expected


def test_channels_must_match() -> None:
    """The same word and URL in another channel (or team-wide) is no conflict."""
    first = hook(("a",), ("u",))
    for channel_id in (new_id(), ""):
        other = hook(("a",), ("u",), channel_id)
        assert not hooks_conflict(first, other)
        assert not keys_conflict(first, other)


names = st.text(alphabet="abc", min_size=0, max_size=2)


@given(
    st.lists(names, max_size=4),
    st.lists(names, max_size=3),
    st.lists(names, max_size=4),
    st.lists(names, max_size=3),
)
def test_keys_agree_with_the_rule_everywhere(
    words_a: list[str], urls_a: list[str], words_b: list[str], urls_b: list[str]
) -> None:
    """For any word and URL lists, sharing a key is the same as conflicting."""
    first, second = hook(tuple(words_a), tuple(urls_a)), hook(tuple(words_b), tuple(urls_b))
    assert keys_conflict(first, second) == hooks_conflict(first, second)
    assert conflict_key_count(first) == len(conflict_keys(first))
