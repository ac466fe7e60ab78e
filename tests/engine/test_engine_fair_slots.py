"""One user's (or one team's) many hanging receivers hold only their share of the senders, so
another owner's or team's healthy delivery starts at once."""

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from hooks.hooks_support import form, make_hook, send
from support import (
    Api,
    Factory,
    Receiver,
    ServerThread,
    fresh_database,
    own_server,
    seed_channel_hook,
)
from tidings.config import Settings
from tidings.services import hooks as hook_service
from tidings.services import posts as post_service
from tidings.services.hooks import HookInput
from tidings.services.runtime import Runtime
from tidings.store import outbox
from tidings.store.database import Connection, Database
from tidings.webhooks import worker

pytestmark = pytest.mark.db

SENDERS = 16
HANGING = 12  # distinct ports: distinct destinations, each under the per-destination cap of 8
ROOM = worker.CLAIM_AHEAD * SENDERS  # claimed deliveries one worker holds at most


@pytest.fixture
def engine() -> Iterator[tuple[ServerThread, Api, Factory]]:
    """A server of its own with SENDERS senders (hanging requests must not reach other tests)."""
    service = {
        "AllowedUntrustedInternalConnections": "127.0.0.1",
        "OutgoingIntegrationRequestsTimeout": 10,
        "EnableMemberOutgoingWebhooks": True,
    }
    with own_server(service, worker_concurrency=SENDERS) as (server, admin):
        yield server, admin, Factory(admin)


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


def _wait_for_hanging(hanging: list[Receiver], count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
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


def test_the_claim_passes_over_saturated_owners_and_teams() -> None:
    """``skip_owners`` and ``skip_teams`` leave every hook of theirs pending, also hooks the
    worker has not seen yet, and claim everyone else's."""

    async def work(url: str) -> None:
        rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
        try:
            boss = await seed_channel_hook(rt, "boss", "http://127.0.0.1:9/a")
            other = await seed_channel_hook(rt, "other", "http://127.0.0.1:9/b")
            unseen = await hook_service.create_hook(
                rt,
                boss.admin,
                HookInput(
                    team_id=boss.channel.team_id,
                    channel_id=boss.channel.id,
                    callback_urls=("http://127.0.0.1:9/c",),
                ),
            )
            for seeded in (boss, other):
                await post_service.create_post(rt, seeded.admin, seeded.channel.id, "go")
            now = rt.clock.now_ms()
            claim = partial(outbox.claim, limit=100, lease_ms=60_000, now_ms=now)
            claimed = await rt.db.write(partial(claim, skip_owners=[boss.admin.id]))
            assert {d.hook_id for d in claimed} == {other.hook.id}
            claimed = await rt.db.write(partial(claim, skip_teams=[boss.channel.team_id]))
            assert claimed == []
            rest = await rt.db.write(claim)
            assert {d.hook_id for d in rest} == {boss.hook.id, unseen.id}
        finally:
            await rt.db.dispose()

    with fresh_database() as url:
        asyncio.run(work(url))


def _sqlite_parameter_limit(conn: Connection) -> None:
    """Hold the writer's connection to SQLite's classic limit of 999 bound parameters."""
    driver_connection = conn.connection.dbapi_connection
    assert isinstance(driver_connection, sqlite3.Connection)
    driver_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)


def test_the_claim_binds_fewer_parameters_than_sqlite_allows() -> None:
    """However many keys are saturated, one claim binds at most SQLite's classic 999
    parameters (builds before 3.32 allow no more), so it never fails for that."""

    async def work(url: str) -> None:
        rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
        try:
            seeded = await seed_channel_hook(rt, "many", "http://127.0.0.1:9/a")
            await post_service.create_post(rt, seeded.admin, seeded.channel.id, "go")
            if rt.db.is_sqlite:
                await rt.db.write(_sqlite_parameter_limit)
            many = [f"key-{i}" for i in range(600)]
            claimed = await rt.db.write(
                partial(
                    outbox.claim,
                    limit=100,
                    lease_ms=60_000,
                    now_ms=rt.clock.now_ms(),
                    skip_destinations=many,
                    skip_owners=many,
                    skip_teams=many,
                )
            )
            assert [d.hook_id for d in claimed] == [seeded.hook.id]
        finally:
            await rt.db.dispose()

    with fresh_database() as url:
        asyncio.run(work(url))


def test_one_owner_with_more_hooks_than_the_claim_room_does_not_stall_the_claims(
    hanging: list[Receiver], engine: tuple[ServerThread, Api, Factory]
) -> None:
    """An owner's many hooks on a hanging receiver wait only up to their own bound, so the
    claims still reach another team's healthy delivery at once."""
    _server, _admin, factory = engine
    hog, other = factory.user(), factory.user()
    hog_team, other_team = _team_of(factory, hog), _team_of(factory, other)
    channel = factory.channel(hog_team, hog)
    for i in range(ROOM + 12):  # more hooks than the worker holds claimed deliveries
        make_hook(hog, hog_team, [f"{hanging[0].url}/{i}"], channel_id=channel["id"])
    send(hog, channel, "flood")
    _wait_for_hanging(hanging, SENDERS // 4)
    assert _healthy_delivery_seconds(other, factory, other_team) < 1.5
    assert sum(len(r.requests) for r in hanging) == SENDERS // 4


def test_a_freed_slot_goes_to_a_waiter_that_can_use_it(
    hanging: list[Receiver], engine: tuple[ServerThread, Api, Factory]
) -> None:
    """When a destination's slot frees and its first waiter is held up by its own owner, the
    next waiter takes the slot instead of waiting for the owner's hanging request."""
    _server, admin, factory = engine
    admin.put(
        "/config/patch",
        {
            "ServiceSettings": {
                "OutgoingWebhookMaxConcurrencyPerDestination": 1,
                "OutgoingWebhookMaxConcurrencyPerOwner": 1,
            }
        },
    )
    shared = Receiver()
    shared.delay_seconds = 1.0
    try:
        held, patient = factory.user(), factory.user()
        team = _team_of(factory, held, patient)
        to_hang, held_shared = factory.channel(team, held), factory.channel(team, held)
        patient_shared = factory.channel(team, patient)
        make_hook(held, team, [hanging[0].url], channel_id=to_hang["id"])
        make_hook(held, team, [shared.url], channel_id=held_shared["id"])
        make_hook(patient, team, [shared.url], channel_id=patient_shared["id"])
        send(held, to_hang, "hang")  # ``held`` is now at its cap of one
        _wait_for_hanging(hanging, 1)
        send(patient, patient_shared, "first")  # takes the shared destination's one slot
        shared.wait_for(1, timeout=5)
        send(held, held_shared, "blocked twice")  # waits for the destination, then the owner
        started = time.monotonic()
        send(patient, patient_shared, "second")  # waits for the destination behind it
        requests = shared.wait_for(2, timeout=15)
        assert requests[1].at - started < 2.5
        assert form(requests[1].body)["text"] == "second"
    finally:
        shared.close()


def test_a_lone_team_may_use_every_sender_by_default(
    hanging: list[Receiver], engine: tuple[ServerThread, Api, Factory]
) -> None:
    """Without a team cap set, one team's owners together may hold every sender."""
    _server, _admin, factory = engine
    owners = [factory.user() for _ in range(4)]
    team = _team_of(factory, *owners)
    share = HANGING // len(owners)
    for i, owner in enumerate(owners):
        _flood(owner, factory, team, [r.url for r in hanging[i * share : (i + 1) * share]])
    _wait_for_hanging(hanging, SENDERS, timeout=4)  # well before the first hanging one ends
    assert sum(len(r.requests) for r in hanging) == SENDERS
