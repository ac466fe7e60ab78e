"""Which hooks a post fires: REF §2.2 and the §8.2 matrix, plus Tidings' per-hook trigger word."""

import random
from dataclasses import replace
from typing import Any

import pytest

from tidings.domain.hooks import OutgoingHook
from tidings.domain.teams import ChannelType
from tidings.ids import new_id
from tidings.webhooks.matching import HookIndex, Match, channel_watchable, first_word, match_post

TEAM = new_id()
CHANNEL = new_id()
OTHER_CHANNEL = new_id()


def make_hook(**overrides: Any) -> OutgoingHook:
    """A live hook of TEAM bound to CHANNEL, with no trigger words unless told."""
    values: dict[str, Any] = {
        "id": new_id(),
        "token": new_id(),
        "create_at": 1,
        "update_at": 1,
        "delete_at": 0,
        "creator_id": new_id(),
        "channel_id": CHANNEL,
        "team_id": TEAM,
        "trigger_words": (),
        "trigger_when": 0,
        "callback_urls": ("http://127.0.0.1:9/",),
    }
    values.update(overrides)
    return OutgoingHook(**values)


def words(matches: list[Match]) -> list[str]:
    return [match.trigger_word for match in matches]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("triggerword lorem ipsum", "triggerword"),
        ("  \t\nfirst second", "first"),
        ("", ""),
        (" \t\r\n\v\f ", ""),
        ("one\u00a0two", "one"),
        ("one\u3000two", "one"),
        ("one\u0085two", "one"),
        ("one\u1680two", "one"),
        ("one\u2000two", "one"),
        ("one\u200atwo", "one"),
        ("one\u2028two", "one"),
        ("one\u2029two", "one"),
        ("one\u202ftwo", "one"),
        ("one\u205ftwo", "one"),
        ("one\x1ctwo", "one\x1ctwo"),
        ("one\x1ftwo", "one\x1ftwo"),
        ("one\u200btwo", "one\u200btwo"),
    ],
)
def test_first_word_splits_like_go_strings_fields(message: str, expected: str) -> None:
    """The first word ends at Go's Unicode whitespace, not at Python's extra separators."""
    assert first_word(message) == expected


def test_exact_trigger_word_matches_first_word() -> None:
    """trigger_when 0 fires when the first word equals a trigger word."""
    hook = make_hook(trigger_words=("triggerword",), trigger_when=0)
    matches = HookIndex.build([hook]).match(CHANNEL, "triggerword lorem ipsum")
    assert matches == [Match(hook, "triggerword")]


def test_exact_trigger_word_does_not_match_a_longer_word() -> None:
    """trigger_when 0 does not fire when the trigger word is only a prefix."""
    hook = make_hook(trigger_words=("triggerword",), trigger_when=0)
    assert HookIndex.build([hook]).match(CHANNEL, "triggerwordaaazzz lorem ipsum") == []


def test_prefix_match_reports_the_configured_word() -> None:
    """trigger_when 1 fires on a prefix and reports the hook's word, not the message's word."""
    hook = make_hook(trigger_words=("triggerword",), trigger_when=1)
    matches = HookIndex.build([hook]).match(CHANNEL, "triggerwordaaazzz lorem ipsum")
    assert words(matches) == ["triggerword"]


def test_prefix_match_needs_the_word_at_the_start() -> None:
    """``foo`` starts ``foobar`` but not ``barfoo`` (REF §8.1)."""
    index = HookIndex.build([make_hook(trigger_words=("foo",), trigger_when=1)])
    assert words(index.match(CHANNEL, "foobar")) == ["foo"]
    assert index.match(CHANNEL, "barfoo") == []


@pytest.mark.parametrize(
    ("trigger_words", "expected"),
    [(("foo", "foob"), "foo"), (("foob", "foo"), "foob"), (("zzz", "fo", "f"), "fo")],
)
def test_prefix_match_reports_the_first_listed_prefix(
    trigger_words: tuple[str, ...], expected: str
) -> None:
    """With several prefixes of the first word, the first in list order wins, not the longest."""
    hook = make_hook(trigger_words=trigger_words, trigger_when=1)
    assert words(HookIndex.build([hook]).match(CHANNEL, "foobar baz")) == [expected]


def test_exact_match_reports_the_equal_entry() -> None:
    """Among several words the one equal to the first word is reported."""
    hook = make_hook(trigger_words=("build", "deploy"), trigger_when=0)
    assert words(HookIndex.build([hook]).match(CHANNEL, "deploy now")) == ["deploy"]


@pytest.mark.parametrize("message", ["", "   ", "triggerword lorem ipsum", "anything at all"])
@pytest.mark.parametrize("trigger_when", [0, 1])
def test_channel_hook_without_words_fires_on_every_post(message: str, trigger_when: int) -> None:
    """A channel hook with no trigger words fires on any post, even an empty one, with ""."""
    hook = make_hook(trigger_when=trigger_when)
    assert HookIndex.build([hook]).match(CHANNEL, message) == [Match(hook, "")]


def test_channel_hook_without_words_ignores_other_channels() -> None:
    """A channel-only hook does not fire for posts elsewhere in the team."""
    index = HookIndex.build([make_hook(channel_id=OTHER_CHANNEL)])
    assert index.match(CHANNEL, "hello") == []


def test_trigger_hook_bound_to_another_channel_is_skipped() -> None:
    """A trigger word bound to one channel does not fire in another."""
    hook = make_hook(channel_id=OTHER_CHANNEL, trigger_words=("deploy",))
    assert HookIndex.build([hook]).match(CHANNEL, "deploy") == []


@pytest.mark.parametrize("trigger_when", [0, 1])
def test_team_wide_trigger_hook_fires_in_every_channel(trigger_when: int) -> None:
    """A hook with channel_id "" matches its words in any channel of the team."""
    hook = make_hook(channel_id="", trigger_words=("deploy",), trigger_when=trigger_when)
    index = HookIndex.build([hook])
    assert index.match(CHANNEL, "deploy it") == [Match(hook, "deploy")]
    assert index.match(OTHER_CHANNEL, "deploy it") == [Match(hook, "deploy")]


def test_team_wide_hook_without_words_never_fires() -> None:
    """A hook with neither channel nor words (invalid anyway) matches nothing."""
    index = HookIndex.build([make_hook(channel_id="")])
    assert index.match(CHANNEL, "") == []
    assert index.match(CHANNEL, "hello") == []


@pytest.mark.parametrize("trigger_when", [0, 1])
def test_matching_is_case_sensitive(trigger_when: int) -> None:
    """``Deploy`` does not match ``deploy``, exactly or as a prefix."""
    index = HookIndex.build([make_hook(trigger_words=("deploy",), trigger_when=trigger_when)])
    assert index.match(CHANNEL, "Deploy now") == []
    assert index.match(CHANNEL, "DEPLOY") == []


def test_punctuation_stays_attached_to_the_first_word() -> None:
    """``foo,`` does not equal ``foo`` but does start with it."""
    exact = make_hook(trigger_words=("foo",), trigger_when=0)
    prefix = make_hook(trigger_words=("foo",), trigger_when=1)
    assert HookIndex.build([exact, prefix]).match(CHANNEL, "foo, bar") == [Match(prefix, "foo")]


def test_only_the_first_word_is_examined() -> None:
    """A trigger word later in the message does not fire."""
    index = HookIndex.build([make_hook(trigger_words=("deploy",))])
    assert index.match(CHANNEL, "please deploy") == []


def test_trigger_word_with_a_space_never_matches_exactly() -> None:
    """The first word never contains whitespace, so ``foo bar`` cannot equal it."""
    index = HookIndex.build([make_hook(trigger_words=("foo bar",), trigger_when=0)])
    assert index.match(CHANNEL, "foo bar") == []


def test_empty_trigger_word_never_matches() -> None:
    """ "" in a word list matches neither an empty message nor any word."""
    index = HookIndex.build(
        [
            make_hook(trigger_words=("",), trigger_when=0),
            make_hook(trigger_words=("",), trigger_when=1),
        ]
    )
    assert index.match(CHANNEL, "") == []
    assert index.match(CHANNEL, "hello") == []


def test_empty_message_fires_only_channel_hooks() -> None:
    """A file-only post (empty message) fires channel hooks and no trigger hooks."""
    channel_hook = make_hook()
    index = HookIndex.build([make_hook(trigger_words=("x",), trigger_when=1), channel_hook])
    assert index.match(CHANNEL, "") == [Match(channel_hook, "")]


@pytest.mark.parametrize("separator", ["\u00a0", "\u3000", "\u2003", "\n", "\t"])
def test_unicode_whitespace_ends_the_trigger_word(separator: str) -> None:
    """A no-break or ideographic space after the word still gives an exact match."""
    index = HookIndex.build([make_hook(trigger_words=("deploy",), trigger_when=0)])
    assert words(index.match(CHANNEL, f"deploy{separator}now")) == ["deploy"]


def test_information_separator_does_not_end_the_trigger_word() -> None:
    """U+001C is not whitespace to Go, so ``deploy\\x1cnow`` is one word."""
    index = HookIndex.build([make_hook(trigger_words=("deploy",), trigger_when=0)])
    assert index.match(CHANNEL, "deploy\x1cnow") == []


def test_each_match_carries_its_own_trigger_word() -> None:
    """Tidings divergence: every payload gets its own hook's word, not the last match's."""
    prefix = make_hook(trigger_words=("de",), trigger_when=1)
    exact = make_hook(trigger_words=("deploy",), trigger_when=0)
    channel = make_hook()
    team_wide = make_hook(channel_id="", trigger_words=("dep",), trigger_when=1)
    matches = HookIndex.build([prefix, exact, channel, team_wide]).match(CHANNEL, "deploy now")
    assert matches == [
        Match(prefix, "de"),
        Match(exact, "deploy"),
        Match(channel, ""),
        Match(team_wide, "dep"),
    ]


def test_matches_follow_build_order_and_name_each_hook_once() -> None:
    """Results keep the input order, and a hook with several matching words appears once."""
    many = make_hook(trigger_words=("d", "de", "dep"), trigger_when=1)
    first = make_hook(channel_id="", trigger_words=("deploy",), trigger_when=0)
    matches = HookIndex.build([first, many]).match(CHANNEL, "deploy")
    assert matches == [Match(first, "deploy"), Match(many, "d")]


def test_disabled_and_deleted_hooks_are_skipped() -> None:
    """Hooks with enabled=False or a delete_at never fire."""
    disabled = make_hook(enabled=False, disabled_reason="410 Gone")
    deleted = make_hook(delete_at=1_700_000_000_000)
    live = make_hook()
    index = HookIndex.build([disabled, deleted, live])
    assert len(index) == 1
    assert index.match(CHANNEL, "hi") == [Match(live, "")]


@pytest.mark.parametrize("trigger_when", [-1, 2])
def test_unknown_trigger_when_matches_no_words(trigger_when: int) -> None:
    """A trigger_when other than 0 or 1 never matches by word."""
    hook = make_hook(trigger_words=("deploy",), trigger_when=trigger_when)
    assert HookIndex.build([hook]).match(CHANNEL, "deploy") == []


def test_index_refuses_hooks_of_several_teams() -> None:
    """One index serves one team: a team-wide hook must not leak into another team."""
    with pytest.raises(ValueError, match="one team"):
        HookIndex.build([make_hook(), make_hook(team_id=new_id())])


def test_very_long_first_word_still_matches_short_prefix() -> None:
    """A 16,000-character first word is matched by a short prefix word."""
    hook = make_hook(trigger_words=("ab",), trigger_when=1)
    assert words(HookIndex.build([hook]).match(CHANNEL, "ab" + "c" * 16_000)) == ["ab"]


def test_ten_thousand_hooks_still_match_correctly() -> None:
    """With 10,000 hooks in many channels, a post fires exactly the hooks that apply."""
    channels = [new_id() for _ in range(100)]
    hooks = [
        make_hook(
            channel_id=channels[number % 100],
            trigger_words=(f"word{number}", "shared"),
            trigger_when=number % 2,
        )
        for number in range(10_000)
    ]
    target = make_hook(channel_id=CHANNEL, trigger_words=("deploy",), trigger_when=1)
    team_wide = make_hook(channel_id="", trigger_words=("deployment",), trigger_when=0)
    hooks[5_000:5_000] = [target, team_wide]
    index = HookIndex.build(hooks)
    assert len(index) == 10_002
    assert index.match(CHANNEL, "deployment today") == [
        Match(target, "deploy"),
        Match(team_wide, "deployment"),
    ]
    # Hooks of channel 42 are all exact-match (even numbers): "word42" must not fire as a prefix.
    assert index.match(channels[42], "word4242 now") == [Match(hooks[4242], "word4242")]
    # Hooks of channel 7 are all prefix hooks (odd numbers): "shared" starts "shared!".
    shared = index.match(channels[7], "shared!")
    assert [match.hook for match in shared] == [
        hook for hook in hooks if hook.channel_id == channels[7]
    ]
    assert words(shared) == ["shared"] * 100
    assert index.match(channels[8], "shared!") == []


# --- an index changed in place of a rebuild ------------------------------------------------------

MESSAGES = ["deploy now", "dep", "de", "d", "build 7", "buildx", "", "hello", "alt deploy"]


def _same_matches(changed: HookIndex, hooks: list[OutgoingHook]) -> None:
    rebuilt = HookIndex.build(hooks)
    assert len(changed) == len(rebuilt)
    for channel in (CHANNEL, OTHER_CHANNEL):
        for message in MESSAGES:
            assert changed.match(channel, message) == rebuilt.match(channel, message), (
                channel,
                message,
            )


def test_replacing_a_hook_matches_as_a_rebuild_does() -> None:
    """Changing a hook's words, channel, mode or state gives the matches a rebuild would."""
    first = make_hook(trigger_words=("deploy", "de"), trigger_when=1)
    second = make_hook(channel_id="", trigger_words=("build",), trigger_when=0)
    third = make_hook()
    hooks = [first, second, third]
    index = HookIndex.build(hooks)
    changes = [
        replace(first, trigger_words=("d",)),
        replace(first, trigger_when=0, trigger_words=("deploy",)),
        replace(second, channel_id=OTHER_CHANNEL),
        replace(third, channel_id=OTHER_CHANNEL),
        replace(third, trigger_words=("hello",), channel_id=CHANNEL),
        replace(second, enabled=False),
        replace(second, enabled=True, channel_id=""),
        replace(first, delete_at=5),
    ]
    for changed in changes:
        hooks = [changed if hook.id == changed.id else hook for hook in hooks]
        index = index.replacing(changed.id, changed)
        _same_matches(index, hooks)


def test_replacing_adds_and_removes_hooks() -> None:
    """A new hook comes after the others; a removed one matches no more; the old index stays."""
    kept = make_hook(trigger_words=("deploy",), trigger_when=0)
    before = HookIndex.build([kept])
    added = make_hook(channel_id="", trigger_words=("deploy",), trigger_when=1)
    after = before.replacing(added.id, added)
    assert after.match(CHANNEL, "deploy") == [Match(kept, "deploy"), Match(added, "deploy")]
    assert before.match(CHANNEL, "deploy") == [Match(kept, "deploy")]
    removed = after.replacing(kept.id, None)
    assert removed.match(CHANNEL, "deploy") == [Match(added, "deploy")]
    assert len(removed) == 1
    assert after.replacing(new_id(), None).match(CHANNEL, "deploy") == after.match(
        CHANNEL, "deploy"
    )


def test_replacing_refuses_a_hook_of_another_team() -> None:
    """An index changed in place still holds one team's hooks only."""
    index = HookIndex.build([make_hook()])
    with pytest.raises(ValueError, match="one team"):
        index.replacing(new_id(), make_hook(team_id=new_id()))


def test_random_changes_match_as_rebuilds_do() -> None:
    """Hundreds of random additions, edits and removals never drift from a rebuilt index (in
    which a hook that becomes live again comes last, as :meth:`HookIndex.replacing` puts it)."""
    rng = random.Random(11)
    words = ["d", "de", "dep", "deploy", "build", "buildx", "hello", "alt"]

    def random_hook(hook_id: str) -> OutgoingHook:
        return make_hook(
            id=hook_id,
            channel_id=rng.choice([CHANNEL, OTHER_CHANNEL, ""]),
            trigger_words=tuple(rng.sample(words, rng.randint(0, 3))),
            trigger_when=rng.choice([0, 1]),
            enabled=rng.random() > 0.2,
        )

    stored: dict[str, OutgoingHook] = {}
    order: list[str] = []  # the live hooks, in the order the index should report them
    index = HookIndex.build([])
    for _ in range(400):
        if stored and rng.random() < 0.25:
            hook_id = rng.choice(list(stored))
            del stored[hook_id]
            index = index.replacing(hook_id, None)
        else:
            hook_id = rng.choice(list(stored)) if stored and rng.random() < 0.6 else new_id()
            stored[hook_id] = random_hook(hook_id)
            index = index.replacing(hook_id, stored[hook_id])
        live = hook_id in stored and stored[hook_id].enabled
        if not live and hook_id in order:
            order.remove(hook_id)
        elif live and hook_id not in order:
            order.append(hook_id)
        _same_matches(index, [stored[i] for i in order])


def test_a_bot_post_fires_only_hooks_that_opted_in() -> None:
    """A webhook's reply matches by the same rules, among hooks with trigger_on_bot_posts only."""
    opted = make_hook(trigger_words=("deploy",), trigger_on_bot_posts=True)
    channel_wide = make_hook(trigger_on_bot_posts=True)
    plain = make_hook(trigger_words=("deploy",))
    index = HookIndex.build([opted, channel_wide, plain])
    assert index.fires_on_bot_posts
    assert [m.hook.id for m in index.match(CHANNEL, "deploy now")] == [
        opted.id,
        channel_wide.id,
        plain.id,
    ]
    bot = index.match(CHANNEL, "deploy now", bot_post=True)
    assert [(m.hook.id, m.trigger_word) for m in bot] == [
        (opted.id, "deploy"),
        (channel_wide.id, ""),
    ]
    assert [m.hook.id for m in index.match(CHANNEL, "other", bot_post=True)] == [channel_wide.id]


def test_an_index_without_opted_in_hooks_answers_bot_posts_with_nothing() -> None:
    """No hook opted in: a bot post fires nothing, even where a user's post would."""
    index = HookIndex.build([make_hook(), make_hook(trigger_words=("x",))])
    assert not index.fires_on_bot_posts
    assert index.match(CHANNEL, "x", bot_post=True) == []


def test_replacing_keeps_count_of_the_opted_in_hooks() -> None:
    """Opting in, out, deleting and disabling through ``replacing`` move the bot-post answer."""
    hook = make_hook()
    index = HookIndex.build([hook])
    opted = index.replacing(hook.id, replace(hook, trigger_on_bot_posts=True))
    assert opted.fires_on_bot_posts
    assert not index.fires_on_bot_posts
    assert [m.hook.id for m in opted.match(CHANNEL, "hi", bot_post=True)] == [hook.id]
    assert not opted.replacing(hook.id, hook).fires_on_bot_posts
    assert not opted.replacing(hook.id, None).fires_on_bot_posts
    disabled = replace(hook, trigger_on_bot_posts=True, enabled=False)
    assert not opted.replacing(hook.id, disabled).fires_on_bot_posts
    other = make_hook(trigger_on_bot_posts=True)
    both = opted.replacing(other.id, other)
    assert both.replacing(hook.id, None).fires_on_bot_posts
    assert both.replacing(hook.id, None).replacing(other.id, None).match(CHANNEL, "hi") == []


def _fired(index: HookIndex, channel_type: ChannelType, message: str, *, private: bool) -> set[str]:
    return {
        m.hook.id
        for m in match_post(index, CHANNEL, channel_type, message, private_channels=private)
    }


def test_the_gate_decides_which_channels_fire_which_hooks() -> None:
    """Public: the channel's hooks and team-wide words. Private, with the switch: the channel's
    own hooks only. Private without it, DMs and group channels: nothing."""
    own = make_hook(trigger_words=("#go",))
    own_all = make_hook()
    team_wide = make_hook(channel_id="", trigger_words=("#go",))
    index = HookIndex.build([own, own_all, team_wide])
    everything = {own.id, own_all.id, team_wide.id}
    assert _fired(index, ChannelType.PUBLIC, "#go", private=False) == everything
    assert _fired(index, ChannelType.PUBLIC, "#go", private=True) == everything
    assert _fired(index, ChannelType.PRIVATE, "#go", private=True) == {own.id, own_all.id}
    for channel_type, private in [
        (ChannelType.PRIVATE, False),
        (ChannelType.DIRECT, True),
        (ChannelType.GROUP, True),
    ]:
        assert _fired(index, channel_type, "#go", private=private) == set()
        assert not channel_watchable(channel_type, private_channels=private)
    assert channel_watchable(ChannelType.PRIVATE, private_channels=True)
    assert channel_watchable(ChannelType.PUBLIC, private_channels=False)


def test_stopped_hooks_match_nothing() -> None:
    """A stopped hook (its creator left the private channel) is out of a built index, and
    ``replacing`` takes it out or puts it back as its stop is set or cleared."""
    hook = make_hook()
    stopped = replace(hook, stopped_reason="@a is no longer a member of ~b")
    assert HookIndex.build([stopped]).match(CHANNEL, "hi") == []
    index = HookIndex.build([hook])
    assert len(index.replacing(hook.id, stopped)) == 0
    assert [m.hook.id for m in index.replacing(hook.id, stopped).match(CHANNEL, "hi")] == []
    resumed = HookIndex.build([stopped]).replacing(hook.id, hook)
    assert [m.hook.id for m in resumed.match(CHANNEL, "hi")] == [hook.id]
