"""Which outgoing hooks a post fires (REF §2.2, with one divergence).

The rules are Mattermost's: split the message the way Go's ``strings.Fields`` does, look only at
the first word, compare case-sensitively, ``trigger_when`` 0 means "equals" and 1 means "starts
with", and a channel hook without trigger words fires on every post in its channel. The
divergence (spec §2): each match carries the trigger word of *its own* hook, where Mattermost
hands the last match's word to every payload.

Which channels hooks may fire in at all is decided here too, in one place (:func:`match_post`,
whose cheap half is :func:`channel_watchable`), for users' posts and webhook replies alike: a
public channel fires its own hooks and the team-wide ones; a private channel, only while the
System Console allows it (``EnableOutgoingWebhooksInPrivateChannels``), fires only the hooks
that name it (a team-wide trigger word never reaches into a private channel); DMs and group
channels fire nothing. That a private channel's hook fires only while its creator is a member
is the store's part: such a hook is *stopped* (``stopped_reason``) and left out of the index.

A team may hold thousands of hooks, so :class:`HookIndex` answers a post with dictionary
look-ups instead of a scan: cost grows with the length of the first word and the number of
matches, not with the number of hooks.

Pure: imports only the standard library and ``tidings.domain``. No I/O, no database.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from tidings.domain.hooks import OutgoingHook
from tidings.domain.teams import ChannelType

TRIGGER_WHEN_EQUALS = 0
TRIGGER_WHEN_STARTS_WITH = 1

# Go's unicode.IsSpace: the Unicode White_Space property. Python's str.split() would also split
# on U+001C–U+001F, which Go keeps inside a word, so the set is spelled out.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_FIRST_FIELD = re.compile(f"[^{_GO_SPACE}]+")

# A hook's rank: its position in the build input (a hook added later comes after all of them),
# so matches come back in store order.
_Rank = int
_T = TypeVar("_T")


def first_word(message: str) -> str:
    """The first field of ``message`` as Go's ``strings.Fields`` splits it, or ``""``."""
    found = _FIRST_FIELD.search(message)
    return found.group() if found else ""


@dataclass(frozen=True)
class Match:
    """A hook that fires for a post, and the trigger word its payload reports."""

    hook: OutgoingHook
    trigger_word: str


def _is_live(hook: OutgoingHook) -> bool:
    """Enabled, not deleted, and not stopped (a private channel's hook whose creator left)."""
    return hook.enabled and hook.delete_at == 0 and not hook.stopped_reason


# A hook's entries in the index: the channel of a channel hook without words, its (scope, word)
# keys for "equals", and its (scope, word) keys for "starts with" with each word's position in
# its list. An entry names the hook's rank and the hook itself.
_Key = tuple[str, str]
_Entry = tuple[_Rank, OutgoingHook]
_PrefixEntry = tuple[_Rank, int, OutgoingHook]


def _entries(hook: OutgoingHook) -> tuple[str, list[_Key], list[tuple[_Key, int]]]:
    if not hook.trigger_words:
        # A team-wide hook without words can never fire (validation forbids it).
        return hook.channel_id, [], []
    equals: list[_Key] = []
    prefixes: list[tuple[_Key, int]] = []
    seen: set[str] = set()
    for position, word in enumerate(hook.trigger_words):
        # "" never matches, and a repeated word adds nothing the first did not.
        if not word or word in seen:
            continue
        seen.add(word)
        key = (hook.channel_id, word)
        if hook.trigger_when == TRIGGER_WHEN_EQUALS:
            equals.append(key)
        elif hook.trigger_when == TRIGGER_WHEN_STARTS_WITH:
            prefixes.append((key, position))
    return "", equals, prefixes


class HookIndex:
    """The live hooks of one team, indexed by channel and trigger word.

    Build it with :meth:`build`; it is immutable afterwards, so a cached index can be shared
    (by units of work on several database threads, too). :meth:`replacing` makes a new index
    with one hook changed, added or removed, without looking at the others' words: after a hook
    change the cached index follows without a rebuild. Trigger-word entries are keyed by
    (channel scope, word), with scope ``""`` for team-wide hooks, so a popular word bound in
    many channels costs nothing in the others.
    """

    __slots__ = (
        "_bot_hooks",
        "_channel_only",
        "_equals",
        "_hooks",
        "_next_rank",
        "_prefix_counts",
        "_prefix_lengths",
        "_prefixes",
        "_team_id",
    )

    def __init__(
        self,
        team_id: str,
        hooks: dict[str, _Entry],
        channel_only: dict[str, list[_Entry]],
        equals: dict[_Key, list[_Entry]],
        prefixes: dict[_Key, list[_PrefixEntry]],
        prefix_counts: dict[int, int],
        next_rank: _Rank,
        bot_hooks: int,
    ) -> None:
        self._team_id = team_id
        self._hooks = hooks
        self._channel_only = channel_only
        self._equals = equals
        self._prefixes = prefixes
        self._prefix_counts = prefix_counts
        # Only the lengths some prefix word has are worth slicing the first word at; this also
        # keeps a 16,000-character first word from costing 16,000 slices.
        self._prefix_lengths = sorted(prefix_counts)
        self._next_rank = next_rank
        self._bot_hooks = bot_hooks

    @classmethod
    def build(cls, hooks: Iterable[OutgoingHook]) -> HookIndex:
        """Index the live hooks of a single team; disabled and deleted hooks are left out.

        Raises ``ValueError`` if the hooks belong to more than one team: a team-wide hook of
        another team would otherwise fire in this team's channels.
        """
        live = tuple(hook for hook in hooks if _is_live(hook))
        teams = {hook.team_id for hook in live}
        if len(teams) > 1:
            raise ValueError("a HookIndex holds the hooks of one team")
        by_id: dict[str, _Entry] = {}
        channel_only: dict[str, list[_Entry]] = defaultdict(list)
        equals: dict[_Key, list[_Entry]] = defaultdict(list)
        prefixes: dict[_Key, list[_PrefixEntry]] = defaultdict(list)
        for rank, hook in enumerate(live):
            entry = (rank, hook)
            by_id[hook.id] = entry
            channel, equal_keys, prefix_keys = _entries(hook)
            if channel:
                channel_only[channel].append(entry)
            for key in equal_keys:
                equals[key].append(entry)
            for key, position in prefix_keys:
                prefixes[key].append((rank, position, hook))
        prefix_counts: dict[int, int] = defaultdict(int)
        for _scope, word in prefixes:
            prefix_counts[len(word)] += 1
        return cls(
            teams.pop() if teams else "",
            by_id,
            dict(channel_only),
            dict(equals),
            dict(prefixes),
            dict(prefix_counts),
            len(live),
            sum(hook.trigger_on_bot_posts for hook in live),
        )

    def __len__(self) -> int:
        """How many live hooks the index holds."""
        return len(self._hooks)

    @property
    def fires_on_bot_posts(self) -> bool:
        """Whether any hook here opted in to webhook reply posts (``trigger_on_bot_posts``): a
        counter, so the worker's write-back asks it for every batch of replies at no cost."""
        return self._bot_hooks > 0

    def replacing(self, hook_id: str, hook: OutgoingHook | None) -> HookIndex:
        """This index with the hook ``hook_id`` as ``hook`` now is: changed, added, or (when
        ``hook`` is None, deleted or disabled) removed. This index itself does not change.

        Costs a copy of the id table (in C) and work on the changed hook's own entries, not a
        pass over the other hooks. A changed hook keeps its place in the order; a new one comes
        after all the others, as a new hook comes last in store order.
        """
        if hook is not None and not _is_live(hook):
            hook = None
        team_id = self._team_id
        if hook is not None:
            if self._hooks and hook.team_id != team_id:
                raise ValueError("a HookIndex holds the hooks of one team")
            team_id = hook.team_id
        change = _Change(self)
        old = change.hooks.pop(hook_id, None)
        bot_hooks = self._bot_hooks
        if old is not None:
            change.remove(*old)
            bot_hooks -= old[1].trigger_on_bot_posts
        next_rank = self._next_rank
        if hook is not None:
            bot_hooks += hook.trigger_on_bot_posts
            rank = old[0] if old is not None else next_rank
            next_rank = max(next_rank, rank + 1)
            change.hooks[hook_id] = (rank, hook)
            change.add(rank, hook)
        return HookIndex(
            team_id,
            change.hooks,
            change.channel_only,
            change.equals,
            change.prefixes,
            change.prefix_counts,
            next_rank,
            bot_hooks,
        )

    def match(
        self, channel_id: str, message: str, *, team_wide: bool = True, bot_post: bool = False
    ) -> list[Match]:
        """The hooks a post in ``channel_id`` with ``message`` fires, in build order, once each;
        without ``team_wide``, only the hooks that name the channel (a private channel's post).
        A ``bot_post`` (a webhook's reply) fires only the hooks that opted in to such posts; the
        rules are otherwise the same.

        Says nothing about whether the channel may fire hooks at all: :func:`match_post` does.
        """
        if not self._hooks:
            return []  # most teams have no hooks: their posts need no first word
        if bot_post:
            if not self._bot_hooks:
                return []
            return [
                m
                for m in self.match(channel_id, message, team_wide=team_wide)
                if m.hook.trigger_on_bot_posts
            ]
        # rank -> (position of the word in the hook's list, the word, the hook); the lowest
        # position wins
        found: dict[_Rank, tuple[int, str, OutgoingHook]] = {}
        for rank, hook in self._channel_only.get(channel_id, ()):
            found[rank] = (-1, "", hook)
        word = first_word(message)
        if word:
            for scope in (channel_id, "") if team_wide else (channel_id,):
                for rank, hook in self._equals.get((scope, word), ()):
                    found.setdefault(rank, (0, word, hook))
                self._collect_prefixes(scope, word, found)
        return [Match(found[rank][2], found[rank][1]) for rank in sorted(found)]

    def _collect_prefixes(
        self, scope: str, word: str, found: dict[_Rank, tuple[int, str, OutgoingHook]]
    ) -> None:
        """Add hooks whose prefix words start ``word``, keeping each hook's first listed word."""
        for length in self._prefix_lengths:
            if length > len(word):
                break
            prefix = word[:length]
            for rank, position, hook in self._prefixes.get((scope, prefix), ()):
                earlier = found.get(rank)
                if earlier is None or position < earlier[0]:
                    found[rank] = (position, prefix, hook)


def channel_watchable(channel_type: ChannelType, *, private_channels: bool) -> bool:
    """Whether a post in a channel of this type may fire any hook: the check made before the
    team's index is even looked at. ``private_channels`` is the System Console's
    ``EnableOutgoingWebhooksInPrivateChannels``."""
    return channel_type == ChannelType.PUBLIC or (
        channel_type == ChannelType.PRIVATE and private_channels
    )


def match_post(
    index: HookIndex,
    channel_id: str,
    channel_type: ChannelType,
    message: str,
    *,
    private_channels: bool,
    bot_post: bool = False,
) -> list[Match]:
    """The hooks a post fires, with the channel rules applied: the one gate every path that
    fires hooks goes through (users' posts; webhook replies that may trigger other hooks).

    A public channel: its hooks and the team's trigger-word hooks. A private channel, when
    ``private_channels`` allows: only its own hooks (the index holds them only while their
    creators are members). Anything else: none.
    """
    if not channel_watchable(channel_type, private_channels=private_channels):
        return []
    return index.match(
        channel_id, message, team_wide=channel_type == ChannelType.PUBLIC, bot_post=bot_post
    )


class _Change:
    """The tables of a new index made from ``base`` by :meth:`HookIndex.replacing`.

    Copy on write: a table is copied the first time the change touches it, and every entry list
    it changes is a new list, so ``base`` (which units of work on other threads may be reading)
    never changes. Entry lists are in no particular order: matches are sorted by rank.
    """

    def __init__(self, base: HookIndex) -> None:
        self.hooks = dict(base._hooks)
        self.channel_only = base._channel_only
        self.equals = base._equals
        self.prefixes = base._prefixes
        self.prefix_counts = base._prefix_counts
        self._base = base

    def remove(self, rank: _Rank, hook: OutgoingHook) -> None:
        channel, equal_keys, prefix_keys = _entries(hook)
        if channel:
            _drop(self._channel_table(), channel, rank)
        for key in equal_keys:
            _drop(self._equals_table(), key, rank)
        for key, _position in prefix_keys:
            prefixes = self._prefix_table()
            kept = [entry for entry in prefixes.get(key, ()) if entry[0] != rank]
            if kept:
                prefixes[key] = kept
            elif prefixes.pop(key, None) is not None:
                self._count_prefix(len(key[1]), -1)

    def add(self, rank: _Rank, hook: OutgoingHook) -> None:
        channel, equal_keys, prefix_keys = _entries(hook)
        entry = (rank, hook)
        if channel:
            table = self._channel_table()
            table[channel] = [*table.get(channel, ()), entry]
        for key in equal_keys:
            equals = self._equals_table()
            equals[key] = [*equals.get(key, ()), entry]
        for key, position in prefix_keys:
            prefixes = self._prefix_table()
            existing = prefixes.get(key)
            if existing is None:
                self._count_prefix(len(key[1]), 1)
            prefixes[key] = [*(existing or ()), (rank, position, hook)]

    def _channel_table(self) -> dict[str, list[_Entry]]:
        if self.channel_only is self._base._channel_only:
            self.channel_only = dict(self.channel_only)
        return self.channel_only

    def _equals_table(self) -> dict[_Key, list[_Entry]]:
        if self.equals is self._base._equals:
            self.equals = dict(self.equals)
        return self.equals

    def _prefix_table(self) -> dict[_Key, list[_PrefixEntry]]:
        if self.prefixes is self._base._prefixes:
            self.prefixes = dict(self.prefixes)
        return self.prefixes

    def _count_prefix(self, length: int, delta: int) -> None:
        if self.prefix_counts is self._base._prefix_counts:
            self.prefix_counts = dict(self.prefix_counts)
        count = self.prefix_counts.get(length, 0) + delta
        if count:
            self.prefix_counts[length] = count
        else:
            del self.prefix_counts[length]


def _drop(table: dict[_T, list[_Entry]], key: _T, rank: _Rank) -> None:
    kept = [entry for entry in table.get(key, ()) if entry[0] != rank]
    if kept:
        table[key] = kept
    else:
        table.pop(key, None)
