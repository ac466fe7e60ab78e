"""Fair shares of the worker's senders: which delivery may take a sender now (pure).

A delivery holds one slot under each of its keys while it is sent: its destination
(scheme+host+port), its hook's owner (the hook creator) and its hook's team. Each kind of key
has a cap; a delivery whose key is at its cap waits in that key's backlog instead of holding a
sender. So a receiver that hangs holds only its destination's slots, and one user (or one team)
with many hanging destinations holds at most its own share: another owner's or team's healthy
delivery still finds a free sender. A hook's deliveries all share one owner, so the owner's cap
bounds a hook too.

No I/O; the worker keeps the counts and backlogs, this module only decides.
"""

from collections.abc import Mapping
from dataclasses import dataclass

OWNER_SHARE = 4
"""By default one owner may hold a quarter of the senders."""
TEAM_SHARE = 2
"""By default one team may hold half of the senders."""


@dataclass(frozen=True, slots=True)
class SlotCaps:
    """How many slots one destination, one owner and one team may hold at once."""

    per_destination: int
    per_owner: int
    per_team: int


def slot_caps(per_destination: int, per_owner: int, per_team: int, concurrency: int) -> SlotCaps:
    """The caps for ``concurrency`` senders; an owner or team setting of 0 means automatic
    (a quarter, or a half, of the senders, at least one)."""
    return SlotCaps(
        per_destination=per_destination,
        per_owner=per_owner or max(1, concurrency // OWNER_SHARE),
        per_team=per_team or max(1, concurrency // TEAM_SHARE),
    )


def destination_key(destination: str) -> str:
    return f"destination {destination}"


def owner_key(owner_id: str) -> str:
    return f"owner {owner_id}"


def team_key(team_id: str) -> str:
    return f"team {team_id}"


def slot_keys(destination: str, owner_id: str = "", team_id: str = "") -> tuple[str, ...]:
    """The keys a delivery holds a slot under (no owner or team for a deleted hook)."""
    keys = [destination_key(destination)]
    if owner_id:
        keys.append(owner_key(owner_id))
    if team_id:
        keys.append(team_key(team_id))
    return tuple(keys)


def cap_of(key: str, caps: SlotCaps) -> int:
    if key.startswith("owner "):
        return caps.per_owner
    if key.startswith("team "):
        return caps.per_team
    return caps.per_destination


def blocking_key(keys: tuple[str, ...], caps: SlotCaps, active: Mapping[str, int]) -> str | None:
    """The first of ``keys`` already holding its cap of slots, or None if the delivery may go."""
    for key in keys:
        if active.get(key, 0) >= cap_of(key, caps):
            return key
    return None
