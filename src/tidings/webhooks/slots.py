"""Fair shares of the worker's senders: which delivery may take a sender now, and which wait.

A delivery holds one slot under each of its keys while it is sent: its destination
(scheme+host+port), its hook's owner (the hook creator) and its hook's team. Each kind of key
has a cap; a delivery whose key is at its cap waits in that key's backlog instead of holding a
sender. So a receiver that hangs holds only its destination's slots, and one user (or one team)
with many hanging destinations holds at most its own share: another owner's or team's healthy
delivery still finds a free sender. A hook's deliveries all share one owner, so the owner's cap
bounds a hook too.

Waiting is bounded too: one key may have at most ``BACKLOG_PER_SLOT`` waiting deliveries per
slot (counted under every key of a waiting delivery). A delivery past that bound is refused
(the worker gives it back to the queue) and the claims pass the key over while it is full, so
no one destination, owner or team can fill the worker's claimed deliveries and stall everyone
else's claims.

Pure bookkeeping, no I/O and no asyncio: the worker asks, this module counts and decides.
"""

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

OWNER_SHARE = 4
"""By default one owner may hold a quarter of the senders."""
BACKLOG_PER_SLOT = 4
"""Deliveries one key may have waiting per slot of its cap. With ``1 + BACKLOG_PER_SLOT``
below the worker's claim-ahead factor, no single key can hold all the claimed deliveries."""

_DESTINATION, _OWNER, _TEAM = "destination ", "owner ", "team "

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SlotCaps:
    """How many slots one destination, one owner and one team may hold at once."""

    per_destination: int
    per_owner: int
    per_team: int


def slot_caps(per_destination: int, per_owner: int, per_team: int, concurrency: int) -> SlotCaps:
    """The caps for ``concurrency`` senders; 0 means automatic: an owner a quarter of the
    senders (at least one), a team all of them.

    A team cap only protects other teams, and the commonest server has one team: capping it
    by default would leave senders idle there. It cannot be applied only "while other teams
    have work" either: requests already hanging are not taken back when another team's
    delivery arrives. So servers with several teams set it when they need it.
    """
    return SlotCaps(
        per_destination=per_destination,
        per_owner=per_owner or max(1, concurrency // OWNER_SHARE),
        per_team=per_team or concurrency,
    )


def destination_key(destination: str) -> str:
    return _DESTINATION + destination


def owner_key(owner_id: str) -> str:
    return _OWNER + owner_id


def team_key(team_id: str) -> str:
    return _TEAM + team_id


def slot_keys(destination: str, owner_id: str, team_id: str) -> tuple[str, ...]:
    """The keys a delivery holds a slot under."""
    return destination_key(destination), owner_key(owner_id), team_key(team_id)


def cap_of(key: str, caps: SlotCaps) -> int:
    if key.startswith(_OWNER):
        return caps.per_owner
    if key.startswith(_TEAM):
        return caps.per_team
    return caps.per_destination


def backlog_bound(key: str, caps: SlotCaps) -> int:
    """How many deliveries with ``key`` may wait at once."""
    return cap_of(key, caps) * BACKLOG_PER_SLOT


def blocking_key(keys: tuple[str, ...], caps: SlotCaps, active: Mapping[str, int]) -> str | None:
    """The first of ``keys`` already holding its cap of slots, or None if the delivery may go."""
    for key in keys:
        if active.get(key, 0) >= cap_of(key, caps):
            return key
    return None


class Admission(Enum):
    """What :meth:`SlotBoard.admit` did with a delivery."""

    GO = "go"  # it holds its slots now: send it
    WAIT = "wait"  # it waits in a backlog; a later release hands it back
    FULL = "full"  # one of its keys has as many waiting as it may: give it back to the queue


@dataclass(frozen=True, slots=True)
class Saturated:
    """The destinations, owners and teams whose backlogs are full: claims pass them over."""

    destinations: list[str]
    owners: list[str]
    teams: list[str]

    def keys(self) -> frozenset[str]:
        """The same, as slot keys."""
        return frozenset(
            [destination_key(d) for d in self.destinations]
            + [owner_key(o) for o in self.owners]
            + [team_key(t) for t in self.teams]
        )


@dataclass(frozen=True, slots=True)
class ClaimRoom:
    """What the next claim may take: the keys it passes over, the room of each busy
    destination, and the room of a destination not seen yet."""

    saturated: Saturated
    rooms: dict[str, int]
    fresh: int


class SlotBoard(Generic[T]):
    """The slots held and the deliveries waiting, per key.

    Invariant: a key with a non-empty backlog holds its cap of slots. So a newly claimed
    delivery never overtakes a waiter of its keys, and whenever slots free (a release, or a
    cap raised) :meth:`_wake` hands them on until the key is full or has no one waiting —
    passing over a waiter that is held up by another of its keys (which then waits there).
    """

    def __init__(self, caps: SlotCaps) -> None:
        self._caps = caps
        self._active: dict[str, int] = defaultdict(int)
        self._waiting: dict[str, int] = defaultdict(int)
        self._backlogs: dict[str, deque[tuple[T, tuple[str, ...]]]] = {}
        # Claimed deliveries not yet offered to :meth:`admit`, per destination: a claim made
        # before the senders get to them must count them against the destination's room.
        self._coming: dict[str, int] = defaultdict(int)
        # Keys the last claim passed over (see :meth:`claim_room` and :meth:`room_back`).
        self._passed_over: frozenset[str] = frozenset()

    def set_caps(self, caps: SlotCaps) -> list[T]:
        """Apply new caps; returns the waiters a raised cap lets go (they hold their slots)."""
        if caps == self._caps:
            return []
        self._caps = caps
        return self._wake(list(self._backlogs))

    def admit(self, item: T, keys: tuple[str, ...]) -> Admission:
        """Take ``item``'s slots, or queue it behind the first key at its cap, or refuse it."""
        blocked = blocking_key(keys, self._caps, self._active)
        if blocked is None:
            self._take(keys)
            return Admission.GO
        if any(self._waiting.get(key, 0) >= backlog_bound(key, self._caps) for key in keys):
            return Admission.FULL
        self._backlogs.setdefault(blocked, deque()).append((item, keys))
        for key in keys:
            self._waiting[key] += 1
        return Admission.WAIT

    def release(self, keys: tuple[str, ...]) -> list[T]:
        """Give back the slots of a finished (or unsent) delivery; returns the waiters that
        took the freed slots, each already holding all of its own."""
        for key in keys:
            self._active[key] -= 1
            if self._active[key] <= 0:
                del self._active[key]
        return self._wake(keys)

    def saturated(self) -> Saturated:
        full = [k for k, n in self._waiting.items() if n >= backlog_bound(k, self._caps)]
        return Saturated(
            destinations=_ids(full, _DESTINATION),
            owners=_ids(full, _OWNER),
            teams=_ids(full, _TEAM),
        )

    def claim_room(self) -> ClaimRoom:
        """What the next claim may take; the keys it passes over (full backlogs, destinations
        without room) are remembered for :meth:`room_back`."""
        saturated = self.saturated()
        rooms = self.destination_rooms()
        self._passed_over = saturated.keys() | {
            destination_key(name) for name, room in rooms.items() if room == 0
        }
        return ClaimRoom(saturated, rooms, self.fresh_destination_room())

    def room_back(self, keys: tuple[str, ...]) -> bool:
        """True, once, when one of ``keys`` (just released) was passed over by the last claim
        and has half its room back (:meth:`recovered`): that claim may have come back short
        with more due, and the next should not wait for the poll interval."""
        passed = self._passed_over
        if passed and any(k in passed and self.recovered(k) for k in keys):
            self._passed_over = frozenset()
            return True
        return False

    def recovered(self, key: str) -> bool:
        """Whether a key a claim passed over — a full backlog (:meth:`saturated`), or a
        destination without room (:meth:`destination_rooms`) — has half of it back, so that
        a claim can take a sizeable batch of it again."""
        if key.startswith(_DESTINATION):
            return self._room_of(key[len(_DESTINATION) :]) >= self.fresh_destination_room() // 2
        return self._waiting.get(key, 0) <= backlog_bound(key, self._caps) // 2

    def coming(self, destination: str) -> None:
        """A claimed delivery to ``destination`` is on its way to :meth:`admit` (or to being
        answered without a request); counted against the room until :meth:`arrived`."""
        self._coming[destination] += 1

    def arrived(self, destination: str) -> None:
        """A delivery announced by :meth:`coming` was taken up by a sender."""
        self._coming[destination] -= 1
        if self._coming[destination] <= 0:
            del self._coming[destination]

    def destination_rooms(self) -> dict[str, int]:
        """How many more deliveries each busy destination can take before the next would be
        refused: its free slots plus its free places to wait, less those still coming.

        Without the last part, claims that follow each other while the senders are busy would
        each take a hanging receiver's next few, and all but the first would be refused and
        given back."""
        names = {k[len(_DESTINATION) :] for k in self._active if k.startswith(_DESTINATION)}
        names |= {k[len(_DESTINATION) :] for k in self._waiting if k.startswith(_DESTINATION)}
        names |= set(self._coming)
        return {name: self._room_of(name) for name in names}

    def _room_of(self, name: str) -> int:
        key = _DESTINATION + name
        cap = self._caps.per_destination
        free = max(0, cap - self._active.get(key, 0)) + max(
            0, cap * BACKLOG_PER_SLOT - self._waiting.get(key, 0)
        )
        return max(0, free - self._coming.get(name, 0))

    def fresh_destination_room(self) -> int:
        """What :meth:`destination_rooms` would say of a destination not seen yet."""
        return self._caps.per_destination * (1 + BACKLOG_PER_SLOT)

    def drain(self) -> list[T]:
        """Every waiting delivery, removed (the worker is stopping)."""
        waiting = [item for backlog in self._backlogs.values() for item, _keys in backlog]
        self._backlogs.clear()
        self._waiting.clear()
        self._coming.clear()
        return waiting

    def holding(self, key: str) -> int:
        return self._active.get(key, 0)

    def waiting(self, key: str) -> int:
        return self._waiting.get(key, 0)

    def _take(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            self._active[key] += 1

    def _wake(self, keys: Iterable[str]) -> list[T]:
        woken: list[T] = []
        for key in keys:
            backlog = self._backlogs.get(key)
            while backlog and self._active.get(key, 0) < cap_of(key, self._caps):
                item, item_keys = backlog.popleft()
                # ``key`` has room, so anything still blocking the waiter is another of its
                # keys, which is at its cap: wait there (nothing here frees it).
                blocked = blocking_key(item_keys, self._caps, self._active)
                if blocked is not None:
                    self._backlogs.setdefault(blocked, deque()).append((item, item_keys))
                    continue
                for item_key in item_keys:
                    self._waiting[item_key] -= 1
                    if self._waiting[item_key] <= 0:
                        del self._waiting[item_key]
                self._take(item_keys)
                woken.append(item)
            if not backlog:
                self._backlogs.pop(key, None)
        return woken


def _ids(keys: list[str], prefix: str) -> list[str]:
    return sorted(k.removeprefix(prefix) for k in keys if k.startswith(prefix))
