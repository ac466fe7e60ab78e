"""Deliveries a hook can no longer make (its owner deactivated) are recorded "not sent": they
say nothing about the receiver, so they bring no failure notice and never disable the hook."""

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import update

from hooks.hooks_support import (
    failed_delivery_row,
    finished_deliveries,
    make_hook,
    send,
    service_settings,
)
from support import Api, Factory, Receiver, ServerThread, fresh_database, seed_channel_hook
from tidings.config import Settings
from tidings.services.runtime import Runtime
from tidings.store import deliveries as delivery_store
from tidings.store.database import Connection, Database
from tidings.store.schema import deliveries, outgoing_hooks

pytestmark = pytest.mark.db

HOUR_MS = 3600 * 1000


def _age_hook(server: ServerThread, hook: dict[str, Any], failures: int) -> None:
    """Pretend the hook was last changed two hours ago and has failed ``failures`` times since."""
    then = int(time.time() * 1000) - 2 * HOUR_MS

    def age(conn: Connection) -> None:
        conn.execute(
            update(outgoing_hooks)
            .where(outgoing_hooks.c.id == hook["id"])
            .values(update_at=then - 1000)
        )
        rows = [
            failed_delivery_row(hook["id"], hook["channel_id"], then + i, "http_status")
            for i in range(failures)
        ]
        conn.execute(deliveries.insert(), rows)

    server.run(server.runtime.db.write(age))


def _notices(api: Api, team: dict[str, Any]) -> list[dict[str, Any]]:
    """Posts the system bot sent ``api``'s user in their direct channel."""
    bot = api.request("GET", "/users/username/tidings")
    if bot.status_code != 200:
        return []
    dm_name = "__".join(sorted((api.user["id"], bot.json()["id"])))
    channels = api.get(f"/users/{api.user['id']}/teams/{team['id']}/channels")
    dm = next((c for c in channels if c["name"] == dm_name), None)
    if dm is None:
        return []
    return list(api.get(f"/channels/{dm['id']}/posts")["posts"].values())


def test_a_deactivated_owners_queued_delivery_is_not_a_hook_failure(
    server: ServerThread,
    admin: Api,
    factory: Factory,
    webhooks_on: Api,
    receiver: Receiver,
) -> None:
    """The delivery waiting when its owner is deactivated is recorded ``not_sent``; the owner
    gets no failure notice, the hook (one failure short of auto-disable) stays enabled, and
    after reactivation it fires again."""
    owner = factory.user()
    team = factory.team(owner)
    channel = factory.channel(team, owner)
    with service_settings(
        admin,
        OutgoingWebhookRetryScheduleSeconds=[2],
        OutgoingWebhookAutoDisableHours=1,
        OutgoingWebhookAutoDisableMinFailures=3,
    ):
        hook = make_hook(owner, team, [receiver.url], channel_id=channel["id"])
        _age_hook(server, hook, failures=2)
        time.sleep(1.1)  # the engine's hook cache lives a second
        receiver.status = 503  # the first try fails, so the delivery waits for its retry
        post = send(owner, channel, "queued")
        receiver.wait_for(1)
        admin.put(f"/users/{owner.user['id']}/active", {"active": False})
        (row,) = finished_deliveries(server, post_id=post["id"])
        assert row["status"] == "failed"
        assert row["last_error_kind"] == "not_sent"
        assert "owner is deactivated" in row["last_error"]
        time.sleep(0.5)  # a notice or a disable would follow the write-back within this
        admin.put(f"/users/{owner.user['id']}/active", {"active": True})
        owner = Api(server.url).login(owner.user["username"])
        assert _notices(owner, team) == []
        assert owner.get(f"/hooks/outgoing/{hook['id']}")["enabled"] is True
        receiver.status = 200
        send(owner, channel, "back again")
        receiver.wait_for(2)
    assert len(receiver.requests) == 2


def test_not_sent_deliveries_do_not_count_in_a_hooks_failure_streak() -> None:
    """Auto-disable counts the receiver's failures only, not deliveries that were never sent."""

    async def work(url: str) -> None:
        rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
        try:
            seeded = await seed_channel_hook(rt, "streaky", "http://127.0.0.1:9/a")
            hook, channel_id = seeded.hook.id, seeded.channel.id
            now = rt.clock.now_ms()

            def streak_after_failures(conn: Connection) -> tuple[int, int]:
                conn.execute(
                    deliveries.insert(),
                    [
                        failed_delivery_row(hook, channel_id, now - 3 * HOUR_MS, "not_sent"),
                        failed_delivery_row(hook, channel_id, now - 2 * HOUR_MS, "http_status"),
                        failed_delivery_row(hook, channel_id, now - HOUR_MS, "not_sent"),
                    ],
                )
                return delivery_store.failure_streak(conn, hook, 0)

            streak = await rt.db.write(streak_after_failures)
            assert streak == (1, now - 2 * HOUR_MS)
        finally:
            await rt.db.dispose()

    with fresh_database() as url:
        asyncio.run(work(url))
