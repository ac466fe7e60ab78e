"""Claims keep coming while a destination's room comes back: a backlog to one receiver drains
at the worker's pace, not one claim's worth per poll interval."""

import time

import pytest

from hooks.hooks_support import make_hook, send
from support import Factory, Receiver, own_server

pytestmark = pytest.mark.db

POLL_SECONDS = 5.0
HOOKS = 12  # one post, twelve deliveries to one destination with a room of five (cap 1 × 5)


def test_a_backlog_to_one_receiver_does_not_wait_for_the_poll() -> None:
    """With the per-destination cap at 1, a claim may take 5 deliveries of the destination
    (1 slot and 4 places to wait); the other 7 are due at once but nothing new is queued to
    wake the claims. They are claimed as the room comes back, well before the poll interval
    would have woken the worker even once."""
    service = {
        "AllowedUntrustedInternalConnections": "127.0.0.1",
        "OutgoingWebhookMaxConcurrencyPerDestination": 1,
    }
    receiver = Receiver()
    try:
        with own_server(service, worker_poll_interval_seconds=POLL_SECONDS) as (_server, admin):
            factory = Factory(admin)
            team = factory.team()
            channel = factory.channel(team)
            for i in range(HOOKS):
                make_hook(admin, team, [f"{receiver.url}?hook={i}"], channel_id=channel["id"])
            started = time.monotonic()
            send(admin, channel, "twelve deliveries at once")
            receiver.wait_for(HOOKS, timeout=POLL_SECONDS * 3)
            took = time.monotonic() - started
    finally:
        receiver.close()
    assert len(receiver.requests) == HOOKS
    assert took < POLL_SECONDS * 0.8, f"the backlog took {took:.2f}s to drain"
