"""The fair-share rule: which delivery may take a sender now (pure, no worker)."""

from tidings.webhooks.slots import (
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
    """0 means a quarter of the senders per owner and half per team, at least one."""
    assert slot_caps(8, 0, 0, 64) == SlotCaps(8, 16, 32)
    assert slot_caps(8, 0, 0, 1) == SlotCaps(8, 1, 1)
    assert slot_caps(8, 5, 7, 64) == SlotCaps(8, 5, 7)


def test_a_delivery_holds_destination_owner_and_team_slots() -> None:
    assert (
        destination_key("http://127.0.0.1:9000"),
        owner_key("owner-a"),
        team_key("team-x"),
    ) == KEYS
    assert slot_keys("http://h:80") == (destination_key("http://h:80"),)


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
