"""One user's (or one team's) many hanging receivers hold only their share of the senders, so
another owner's or team's healthy delivery starts at once."""

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hooks.hooks_support import make_hook, send
from support import (
    Api,
    Factory,
    Receiver,
    ServerThread,
    first_admin,
    fresh_database,
    seed_channel_hook,
    start_server,
)
from tidings.config import Settings
from tidings.services import hooks as hook_service
from tidings.services import posts as post_service
from tidings.services.hooks import HookInput
from tidings.services.runtime import Runtime
from tidings.store.database import Database
from tidings.webhooks import queue

pytestmark = pytest.mark.db

SENDERS = 16
HANGING = 12  # distinct ports: distinct destinations, each under the per-destination cap of 8


@pytest.fixture
def engine() -> Iterator[tuple[ServerThread, Api, Factory]]:
    """A server of its own with SENDERS senders (hanging requests must not reach other tests)."""
    with fresh_database() as url:
        server = start_server(url, worker_concurrency=SENDERS)
        try:
            admin = first_admin(server)
            admin.put(
                "/config/patch",
                {
                    "ServiceSettings": {
                        "AllowedUntrustedInternalConnections": "127.0.0.1",
                        "OutgoingIntegrationRequestsTimeout": 10,
                        "EnableMemberOutgoingWebhooks": True,
                    }
                },
            )
            yield server, admin, Factory(admin)
        finally:
            server.stop()


@pytest.fixture
def hanging() -> Iterator[list[Receiver]]:
    """Receivers that hang; requested before ``engine`` so the server stops (and drops their
    connections) before they close."""
    receivers = [Receiver(cancel_on_disconnect=True) for _ in range(HANGING)]
    for r in receivers:
        r.delay_seconds = 6  # longer than each test needs, short enough to end on its own
    yield receivers
    for r in receivers:
        r.close()


def _team_of(factory: Factory, *members: Api) -> dict[str, Any]:
    """A team the admin makes, with ``members`` in it (members may manage their own hooks)."""
    team = factory.team()
    for member in members:
        factory.join(team, member)
    return team


def _flood(owner: Api, factory: Factory, team: dict[str, Any], urls: list[str]) -> None:
    """Hooks of ``owner`` to every url in one channel, and enough posts to fill every slot."""
    channel = factory.channel(team, owner)
    for url in urls:
        make_hook(owner, team, [url], channel_id=channel["id"])
    for i in range(4):  # 4 x 12 hanging requests wanted: far more than the 16 senders
        send(owner, channel, f"flood {i}")


def _healthy_delivery_seconds(owner: Api, factory: Factory, team: dict[str, Any]) -> float:
    healthy = Receiver()
    try:
        channel = factory.channel(team, owner)
        make_hook(owner, team, [healthy.url], channel_id=channel["id"])
        started = time.monotonic()
        send(owner, channel, "are you there")
        healthy.wait_for(1, timeout=15)
        return healthy.requests[0].at - started
    finally:
        healthy.close()


def _wait_for_hanging(hanging: list[Receiver], count: int) -> None:
    deadline = time.monotonic() + 10
    while sum(len(r.requests) for r in hanging) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def test_one_owner_with_many_hanging_destinations_holds_only_its_share(
    hanging: list[Receiver], engine: tuple[ServerThread, Api, Factory]
) -> None:
    """A quarter of the senders at most for one owner; another team's delivery is prompt."""
    _server, _admin, factory = engine
    hog, other = factory.user(), factory.user()
    hog_team, other_team = _team_of(factory, hog), _team_of(factory, other)
    _flood(hog, factory, hog_team, [r.url for r in hanging])
    _wait_for_hanging(hanging, SENDERS // 4)
    time.sleep(0.5)  # give any further sender time to take a hanging request
    assert sum(len(r.requests) for r in hanging) == SENDERS // 4
    assert _healthy_delivery_seconds(other, factory, other_team) < 1.0


def test_one_team_with_many_hanging_owners_holds_only_its_share(
    hanging: list[Receiver], engine: tuple[ServerThread, Api, Factory]
) -> None:
    """With the team cap set to 4, two owners of one team hold 4 senders between them."""
    _server, admin, factory = engine
    admin.put(
        "/config/patch",
        {
            "ServiceSettings": {
                "OutgoingWebhookMaxConcurrencyPerOwner": SENDERS,
                "OutgoingWebhookMaxConcurrencyPerTeam": 4,
            }
        },
    )
    first, second, other = factory.user(), factory.user(), factory.user()
    team = _team_of(factory, first, second)
    other_team = _team_of(factory, other)
    half = HANGING // 2
    _flood(first, factory, team, [r.url for r in hanging[:half]])
    _flood(second, factory, team, [r.url for r in hanging[half:]])
    _wait_for_hanging(hanging, 4)
    time.sleep(0.5)
    assert sum(len(r.requests) for r in hanging) == 4
    assert _healthy_delivery_seconds(other, factory, other_team) < 1.0


def test_the_owner_and_team_caps_are_system_console_settings(
    engine: tuple[ServerThread, Api, Factory],
) -> None:
    """0 (automatic) by default; out-of-range values are refused with Mattermost's error shape."""
    _server, admin, _factory = engine
    service = admin.get("/config")["ServiceSettings"]
    assert service["OutgoingWebhookMaxConcurrencyPerOwner"] == 0
    assert service["OutgoingWebhookMaxConcurrencyPerTeam"] == 0
    response = admin.request(
        "PUT", "/config/patch", {"ServiceSettings": {"OutgoingWebhookMaxConcurrencyPerTeam": -1}}
    )
    assert response.status_code == 400
    assert response.json()["id"] == "model.config.is_valid.app_error"


def test_the_claim_passes_over_the_hooks_of_a_saturated_owner() -> None:
    """``skip_hooks`` leaves those hooks' deliveries pending and claims everyone else's."""

    async def work(url: str) -> None:
        rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
        try:
            seeded = await seed_channel_hook(rt, "boss", "http://127.0.0.1:9/a")
            other = await hook_service.create_hook(
                rt,
                seeded.admin,
                HookInput(
                    team_id=seeded.channel.team_id,
                    channel_id=seeded.channel.id,
                    callback_urls=("http://127.0.0.1:9/b",),
                ),
            )
            for i in range(3):
                await post_service.create_post(rt, seeded.admin, seeded.channel.id, f"go {i}")
            now = rt.clock.now_ms()
            claimed = await queue.claim(rt.db, 100, 60_000, now, skip_hooks=[seeded.hook.id])
            assert {d.hook_id for d in claimed} == {other.id}
            assert len(claimed) == 3
            rest = await queue.claim(rt.db, 100, 60_000, now)
            assert {d.hook_id for d in rest} == {seeded.hook.id}
        finally:
            await rt.db.dispose()

    with fresh_database() as url:
        asyncio.run(work(url))
