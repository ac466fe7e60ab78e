"""The delivery log: list a hook's deliveries, read one with its attempts, redeliver, ping.

Everything here needs the same rights as reading the hook itself (its owner, team admins,
system admins). Ping goes through the outbox like any delivery — same signing, SSRF guard and
log — and this call waits (bounded) for the worker's verdict so the caller sees it at once.
"""

import asyncio
from dataclasses import dataclass

from tidings.domain.deliveries import Attempt, Delivery, DeliveryStatus
from tidings.domain.posts import Post
from tidings.domain.teams import Channel, ChannelType
from tidings.domain.users import User
from tidings.errors import BadRequest, NotFound, invalid_param
from tidings.ids import is_valid_id
from tidings.services.hooks import get_hook
from tidings.services.runtime import Runtime
from tidings.store import deliveries as store
from tidings.store import teams as team_store
from tidings.webhooks.payloads import build_payload_fields, encode_body
from tidings.webhooks.queue import NewDelivery, depth, enqueue, requeue

PING_EXTRA_WAIT_SECONDS = 5.0
FINISHED = (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED)


@dataclass(frozen=True, slots=True)
class DeliveryDetail:
    delivery: Delivery
    attempts: list[Attempt]


def _missing() -> NotFound:
    return NotFound("app.webhooks.get_delivery.app_error", "Unable to find the delivery.")


async def list_deliveries(
    rt: Runtime, actor: User, hook_id: str, status: str, page: int, per_page: int
) -> list[Delivery]:
    await get_hook(rt, actor, hook_id)
    if status and status not in {s.value for s in DeliveryStatus}:
        raise invalid_param("status")
    async with rt.db.transaction() as conn:
        return await store.list_deliveries(conn, hook_id, status or None, page * per_page, per_page)


async def get_delivery(rt: Runtime, actor: User, hook_id: str, delivery_id: str) -> DeliveryDetail:
    await get_hook(rt, actor, hook_id)
    async with rt.db.transaction() as conn:
        delivery = (
            await store.find_delivery(conn, delivery_id) if is_valid_id(delivery_id) else None
        )
        if delivery is None or delivery.hook_id != hook_id:
            raise _missing()
        attempts = await store.list_attempts(conn, delivery_id)
    return DeliveryDetail(delivery, attempts)


async def redeliver(rt: Runtime, actor: User, hook_id: str, delivery_id: str) -> Delivery:
    """Same payload, same delivery id, a new attempt chain. A reply is still posted at most once."""
    detail = await get_delivery(rt, actor, hook_id, delivery_id)
    if detail.delivery.status not in FINISHED:
        raise BadRequest(
            "api.webhooks.redeliver.in_progress.app_error",
            "This delivery is still queued or being delivered.",
        )
    now = rt.clock.now_ms()
    async with rt.db.transaction() as conn:
        await requeue(conn, delivery_id, now)
        refreshed = await store.find_delivery(conn, delivery_id)
    rt.outbox_signal.set()
    assert refreshed is not None
    return refreshed


async def ping_and_wait(rt: Runtime, actor: User, hook_id: str) -> list[DeliveryDetail]:
    """Send a test event (empty ``text`` and ``post_id``) to every URL and wait for the results."""
    hook = await get_hook(rt, actor, hook_id)
    now = rt.clock.now_ms()
    async with rt.db.transaction() as conn:
        team = await team_store.find_team(conn, hook.team_id)
        channel = await team_store.find_channel(conn, hook.channel_id) if hook.channel_id else None
        if team is None:
            raise NotFound("app.team.get.find.app_error", "Unable to find the existing team.")
        ping_post = Post(
            id="",
            create_at=now,
            update_at=now,
            edit_at=0,
            delete_at=0,
            user_id=actor.id,
            channel_id=hook.channel_id,
            root_id="",
            message="",
        )
        placeholder = channel or _no_channel(hook.team_id)
        fields = build_payload_fields(
            hook, ping_post, team, placeholder, author_username=actor.username, trigger_word=""
        )
        body, content_type = encode_body(hook, fields)
        ids = await enqueue(
            conn,
            [
                NewDelivery(hook.id, "", hook.channel_id, url, content_type, body, "")
                for url in hook.callback_urls
            ],
            now,
        )
    rt.outbox_signal.set()
    settings = (await rt.config())["ServiceSettings"]
    deadline = (
        hook.timeout_seconds or settings["OutgoingIntegrationRequestsTimeout"]
    ) + PING_EXTRA_WAIT_SECONDS
    waited = 0.0
    while True:
        async with rt.db.transaction() as conn:
            found = [await store.find_delivery(conn, i) for i in ids]
            done = all(d is not None and d.status in FINISHED for d in found)
            if done or waited >= deadline:
                return [
                    DeliveryDetail(d, await store.list_attempts(conn, d.id)) for d in found if d
                ]
        await asyncio.sleep(0.05)
        waited += 0.05


def _no_channel(team_id: str) -> Channel:
    """A trigger-word hook has no channel; its ping says so with empty channel fields."""
    return Channel(
        id="",
        create_at=0,
        update_at=0,
        delete_at=0,
        team_id=team_id,
        type=ChannelType.PUBLIC,
        name="",
        display_name="",
    )


async def queue_stats(rt: Runtime) -> tuple[int, int]:
    """(deliveries pending or in flight, age in ms of the most overdue one)."""
    return await depth(rt.db, rt.clock.now_ms())
