"""The fair-share rule and its bookkeeping: which delivery may take a sender now, which
waits, and who gets a freed slot (pure, no worker)."""

from tidings.webhooks.slots import (
    BACKLOG_PER_SLOT,
    Admission,
    Saturated,
    SlotBoard,
    SlotCaps,
    blocking_key,
    destination_key,
    owner_key,
    slot_caps,
    slot_keys,
    team_key,
)

CAPS = SlotCaps(per_destination=8, per_owner=4, per_team=6)
KEYS = slot_keys("http://127.0.0.1:9000", "owner-a", "team-x")


def test_automatic_caps_are_shares_of_the_senders() -> None:
    """0 means a quarter of the senders per owner (at least one) and all of them per team."""
    assert slot_caps(8, 0, 0, 64) == SlotCaps(8, 16, 64)
    assert slot_caps(8, 0, 0, 1) == SlotCaps(8, 1, 1)
    assert slot_caps(8, 5, 7, 64) == SlotCaps(8, 5, 7)


def test_a_delivery_holds_destination_owner_and_team_slots() -> None:
    assert (
        destination_key("http://127.0.0.1:9000"),
        owner_key("owner-a"),
        team_key("team-x"),
    ) == KEYS


def test_free_keys_let_a_delivery_go() -> None:
    assert blocking_key(KEYS, CAPS, {}) is None
    assert blocking_key(KEYS, CAPS, {KEYS[0]: 7, KEYS[1]: 3, KEYS[2]: 5}) is None


def test_each_key_blocks_at_its_own_cap() -> None:
    """The destination at 8, the owner at 4, the team at 6."""
    assert blocking_key(KEYS, CAPS, {KEYS[0]: 8}) == KEYS[0]
    assert blocking_key(KEYS, CAPS, {KEYS[1]: 4}) == KEYS[1]
    assert blocking_key(KEYS, CAPS, {KEYS[2]: 6}) == KEYS[2]


def test_another_owners_saturation_does_not_block() -> None:
    """Counts of other owners and teams are irrelevant to this delivery."""
    busy = {owner_key("owner-b"): 100, team_key("team-y"): 100}
    assert blocking_key(KEYS, CAPS, busy) is None


def _keys(destination: str, owner: str, team: str = "team") -> tuple[str, ...]:
    return slot_keys(f"http://{destination}:80", owner, team)


def test_a_freed_slot_passes_over_a_waiter_held_up_elsewhere() -> None:
    """When a destination frees, a waiter whose owner is full moves to the owner's backlog and
    the next waiter of the destination takes the slot at once."""
    board: SlotBoard[str] = SlotBoard(SlotCaps(per_destination=1, per_owner=1, per_team=9))
    assert board.admit("a hangs", _keys("hang", "a")) is Admission.GO
    assert board.admit("b first", _keys("shared", "b")) is Admission.GO
    assert board.admit("a waits", _keys("shared", "a")) is Admission.WAIT
    assert board.admit("b second", _keys("shared", "b")) is Admission.WAIT
    assert board.release(_keys("shared", "b")) == ["b second"]
    assert board.holding(destination_key("http://shared:80")) == 1
    assert board.release(_keys("shared", "b")) == []  # "a waits" now waits for its owner
    assert board.release(_keys("hang", "a")) == ["a waits"]
    assert board.waiting(owner_key("a")) == 0


def test_a_release_fills_every_freed_slot() -> None:
    """A raised cap lets as many waiters go as it has room for, each holding its slots."""
    board: SlotBoard[int] = SlotBoard(SlotCaps(per_destination=1, per_owner=9, per_team=9))
    keys = _keys("one", "a")
    assert board.admit(0, keys) is Admission.GO
    assert [board.admit(i, keys) for i in (1, 2, 3)] == [Admission.WAIT] * 3
    assert board.set_caps(SlotCaps(per_destination=3, per_owner=9, per_team=9)) == [1, 2]
    assert board.holding(destination_key("http://one:80")) == 3
    assert board.release(keys) == [3]
    assert board.drain() == []


def test_a_key_may_have_only_so_many_waiting() -> None:
    """Past ``BACKLOG_PER_SLOT`` waiters per slot of any of its keys a delivery is refused, and
    the key is listed for the claims to pass over."""
    board: SlotBoard[int] = SlotBoard(SlotCaps(per_destination=9, per_owner=2, per_team=99))
    bound = 2 * BACKLOG_PER_SLOT
    admitted = [board.admit(i, _keys(f"d{i}", "hog")) for i in range(2 + bound + 1)]
    assert admitted == [Admission.GO] * 2 + [Admission.WAIT] * bound + [Admission.FULL]
    assert board.saturated() == Saturated(destinations=[], owners=["hog"], teams=[])
    # Waiting held up by another key still counts for the owner: it is what the owner holds.
    assert board.admit(99, _keys("d0", "hog")) is Admission.FULL
    assert board.admit(100, _keys("d0", "someone else")) is Admission.GO
    assert sorted(board.drain()) == list(range(2, 2 + bound))
    assert board.saturated() == Saturated(destinations=[], owners=[], teams=[])


def test_a_team_fills_up_from_many_owners() -> None:
    """Many owners' waiters together saturate their team."""
    board: SlotBoard[int] = SlotBoard(SlotCaps(per_destination=99, per_owner=99, per_team=1))
    admitted = [
        board.admit(i, _keys("d", f"owner {i}", "crowd")) for i in range(1 + BACKLOG_PER_SLOT + 1)
    ]
    assert admitted == [Admission.GO] + [Admission.WAIT] * BACKLOG_PER_SLOT + [Admission.FULL]
    assert board.saturated().teams == ["crowd"]


def test_destination_rooms_count_slots_places_to_wait_and_deliveries_coming() -> None:
    """Room = free slots + free places to wait − claimed deliveries not yet offered."""
    caps = SlotCaps(per_destination=2, per_owner=100, per_team=100)
    board: SlotBoard[str] = SlotBoard(caps)
    dest = "http://127.0.0.1:9000"
    keys = slot_keys(dest, "owner-a", "team-x")
    fresh = board.fresh_destination_room()
    assert fresh == 2 * (1 + BACKLOG_PER_SLOT)
    assert board.destination_rooms() == {}
    board.coming(dest)
    board.coming("http://other.test:80")
    assert board.destination_rooms() == {dest: fresh - 1, "http://other.test:80": fresh - 1}
    board.arrived(dest)
    assert board.admit("one", keys) is Admission.GO
    assert board.admit("two", keys) is Admission.GO
    assert board.admit("three", keys) is Admission.WAIT
    rooms = board.destination_rooms()
    assert rooms[dest] == 2 * BACKLOG_PER_SLOT - 1
    board.drain()
    assert "http://other.test:80" not in board.destination_rooms()


def test_a_passed_over_key_recovers_at_half_its_room() -> None:
    """A destination without room recovers once half of its slots and places to wait are
    free again; an owner's full backlog once half of it has gone."""
    caps = SlotCaps(per_destination=2, per_owner=2, per_team=100)
    board: SlotBoard[str] = SlotBoard(caps)
    dest = "http://127.0.0.1:9000"
    keys = slot_keys(dest, "owner-a", "team-x")
    full = 2 * (1 + BACKLOG_PER_SLOT)  # 10
    admitted = [board.admit(f"d{i}", keys) for i in range(full)]
    assert admitted.count(Admission.GO) == 2
    assert board.destination_rooms()[dest] == 0
    assert not board.recovered(destination_key(dest))
    assert not board.recovered(owner_key("owner-a"))
    for _ in range(full // 2 - 1):  # each release hands the slot to a waiter
        board.release(keys)
    assert not board.recovered(destination_key(dest))
    board.release(keys)
    assert board.recovered(destination_key(dest))
    assert board.recovered(owner_key("owner-a"))


def test_a_release_that_gives_back_half_the_room_a_claim_passed_over_says_so_once() -> None:
    """The claim passes over a destination without room; the release that gives half of it
    back (not an earlier one) asks for the next claim, and only once."""
    caps = SlotCaps(per_destination=2, per_owner=100, per_team=100)
    board: SlotBoard[str] = SlotBoard(caps)
    dest = "http://127.0.0.1:9000"
    keys = slot_keys(dest, "owner-a", "team-x")
    full = 2 * (1 + BACKLOG_PER_SLOT)
    for i in range(full):
        board.admit(f"d{i}", keys)
    room = board.claim_room()
    assert (room.rooms[dest], room.fresh) == (0, full)
    releases = []
    for _ in range(full // 2):
        board.release(keys)  # each hands its slot to a waiter: one place to wait comes back
        releases.append(board.room_back(keys))
    assert releases == [False] * (full // 2 - 1) + [True]
    board.release(keys)
    assert not board.room_back(keys)
