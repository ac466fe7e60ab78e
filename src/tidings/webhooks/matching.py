"""Which outgoing hooks a post fires (REF §2.2, with one divergence).

The rules are Mattermost's: split the message the way Go's ``strings.Fields`` does, look only at
the first word, compare case-sensitively, ``trigger_when`` 0 means "equals" and 1 means "starts
with", and a channel hook without trigger words fires on every post in its channel. The
divergence (spec §2): each match carries the trigger word of *its own* hook, where Mattermost
hands the last match's word to every payload.

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

from tidings.domain.hooks import OutgoingHook

TRIGGER_WHEN_EQUALS = 0
TRIGGER_WHEN_STARTS_WITH = 1

# Go's unicode.IsSpace: the Unicode White_Space property. Python's str.split() would also split
# on U+001C–U+001F, which Go keeps inside a word, so the set is spelled out.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_FIRST_FIELD = re.compile(f"[^{_GO_SPACE}]+")

# A hook's position in the build input, so matches come back in store order.
_Order = int


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
    return hook.enabled and hook.delete_at == 0


class HookIndex:
    """The live hooks of one team, indexed by channel and trigger word.

    Build it with :meth:`build`; it is immutable afterwards, so a cached index can be shared.
    Trigger-word entries are keyed by (channel scope, word), with scope ``""`` for team-wide
    hooks, so a popular word bound in many channels costs nothing in the others.
    """

    __slots__ = ("_channel_only", "_equals", "_hooks", "_prefix_lengths", "_prefixes")

    def __init__(
        self,
        hooks: tuple[OutgoingHook, ...],
        channel_only: dict[str, list[_Order]],
        equals: dict[tuple[str, str], list[_Order]],
        prefixes: dict[tuple[str, str], list[tuple[_Order, int]]],
    ) -> None:
        self._hooks = hooks
        self._channel_only = channel_only
        self._equals = equals
        self._prefixes = prefixes
        # Only the lengths some prefix word has are worth slicing the first word at; this also
        # keeps a 16,000-character first word from costing 16,000 slices.
        self._prefix_lengths = sorted({len(word) for _scope, word in prefixes})

    @classmethod
    def build(cls, hooks: Iterable[OutgoingHook]) -> HookIndex:
        """Index the live hooks of a single team; disabled and deleted hooks are left out.

        Raises ``ValueError`` if the hooks belong to more than one team: a team-wide hook of
        another team would otherwise fire in this team's channels.
        """
        live = tuple(hook for hook in hooks if _is_live(hook))
        if len({hook.team_id for hook in live}) > 1:
            raise ValueError("a HookIndex holds the hooks of one team")
        channel_only: dict[str, list[_Order]] = defaultdict(list)
        equals: dict[tuple[str, str], list[_Order]] = defaultdict(list)
        prefixes: dict[tuple[str, str], list[tuple[_Order, int]]] = defaultdict(list)
        for order, hook in enumerate(live):
            if not hook.trigger_words:
                # A team-wide hook without words can never fire (validation forbids it).
                if hook.channel_id:
                    channel_only[hook.channel_id].append(order)
                continue
            seen: set[str] = set()
            for position, word in enumerate(hook.trigger_words):
                # "" never matches, and a repeated word adds nothing the first did not.
                if not word or word in seen:
                    continue
                seen.add(word)
                key = (hook.channel_id, word)
                if hook.trigger_when == TRIGGER_WHEN_EQUALS:
                    equals[key].append(order)
                elif hook.trigger_when == TRIGGER_WHEN_STARTS_WITH:
                    prefixes[key].append((order, position))
        return cls(live, dict(channel_only), dict(equals), dict(prefixes))

    def __len__(self) -> int:
        """How many live hooks the index holds."""
        return len(self._hooks)

    def match(self, channel_id: str, message: str) -> list[Match]:
        """The hooks a post in ``channel_id`` with ``message`` fires, in build order, once each."""
        # order -> (position of the word in the hook's list, the word); the lowest position wins
        found: dict[_Order, tuple[int, str]] = {}
        for order in self._channel_only.get(channel_id, ()):
            found[order] = (-1, "")
        word = first_word(message)
        if word:
            for scope in (channel_id, ""):
                for order in self._equals.get((scope, word), ()):
                    found.setdefault(order, (0, word))
                self._collect_prefixes(scope, word, found)
        return [Match(self._hooks[order], found[order][1]) for order in sorted(found)]

    def _collect_prefixes(
        self, scope: str, word: str, found: dict[_Order, tuple[int, str]]
    ) -> None:
        """Add hooks whose prefix words start ``word``, keeping each hook's first listed word."""
        for length in self._prefix_lengths:
            if length > len(word):
                break
            prefix = word[:length]
            for order, position in self._prefixes.get((scope, prefix), ()):
                earlier = found.get(order)
                if earlier is None or position < earlier[0]:
                    found[order] = (position, prefix)
