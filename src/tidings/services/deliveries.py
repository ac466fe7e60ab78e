"""The delivery log: list a hook's deliveries, read one with its attempts, redeliver (one, or
every failed one since a time), ping.

Everything here needs the same rights as reading the hook itself (its owner, team admins,
system admins). Ping goes through the outbox like any delivery — same signing, SSRF guard and
log — and this call waits (bounded) for the worker's verdict so the caller sees it at once.
"""

import asyncio
from dataclasses import dataclass

from tidings.domain.deliveries import Attempt, Delivery, DeliveryStatus
from tidings.domain.hooks import OutgoingHook
from tidings.domain.outbox import NewDelivery
from tidings.domain.posts import Post
from tidings.domain.server_config import INT64_MAX
from tidings.domain.teams import Channel, ChannelType
from tidings.domain.users import User
from tidings.errors import BadRequest, NotFound, invalid_param
from tidings.ids import is_valid_id
from tidings.services.hooks import hook_settings, load_hook_for_change
from tidings.services.runtime import Runtime
from tidings.store import deliveries as store
from tidings.store import teams as team_store
from tidings.store.database import Connection
from tidings.store.outbox import depth, enqueue, requeue, requeue_failed
from tidings.webhooks.payloads import build_payload_fields, encode_body

PING_EXTRA_WAIT_SECONDS = 5.0
BULK_REDELIVER_LIMIT = 1000
"""Deliveries one bulk redeliver requeues at most: one call stays one short write, and a
receiver just back from an outage is not handed a hook's whole history at once."""
MAX_SINCE_MS = INT64_MAX
"""``since`` is Unix ms in a Go int64, as every Mattermost time is."""
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
    settings = await hook_settings(rt)

    def work(conn: Connection) -> list[Delivery]:
        load_hook_for_change(conn, actor, hook_id, settings)
        if status and status not in {s.value for s in DeliveryStatus}:
            raise invalid_param("status")
        return store.list_deliveries(conn, hook_id, status or None, page * per_page, per_page)

    return await rt.db.read(work)


def _delivery_of(conn: Connection, hook_id: str, delivery_id: str) -> Delivery:
    """A delivery of ``hook_id``; 404 if there is none (or it belongs to another hook)."""
    delivery = store.find_delivery(conn, delivery_id) if is_valid_id(delivery_id) else None
    if delivery is None or delivery.hook_id != hook_id:
        raise _missing()
    return delivery


async def get_delivery(rt: Runtime, actor: User, hook_id: str, delivery_id: str) -> DeliveryDetail:
    settings = await hook_settings(rt)

    def work(conn: Connection) -> DeliveryDetail:
        load_hook_for_change(conn, actor, hook_id, settings)
        delivery = _delivery_of(conn, hook_id, delivery_id)
        return DeliveryDetail(delivery, store.list_attempts(conn, delivery_id))

    return await rt.db.read(work)


async def redeliver(rt: Runtime, actor: User, hook_id: str, delivery_id: str) -> Delivery:
    """Same payload, same delivery id, a new attempt chain. A reply is still posted at most once."""
    settings = await hook_settings(rt)
    now = rt.clock.now_ms()

    def work(conn: Connection) -> Delivery:
        _refuse_out_of_service(load_hook_for_change(conn, actor, hook_id, settings))
        delivery = _delivery_of(conn, hook_id, delivery_id)
        if delivery.status not in FINISHED:
            raise BadRequest(
                "api.webhooks.redeliver.in_progress.app_error",
                "This delivery is still queued or being delivered.",
            )
        requeue(conn, delivery_id, now)
        refreshed = store.find_delivery(conn, delivery_id)
        assert refreshed is not None
        return refreshed

    refreshed = await rt.db.write(work)
    rt.outbox_signal.set()
    return refreshed


def _refuse_out_of_service(hook: OutgoingHook) -> None:
    """A disabled hook, or one stopped because its creator left its private channel, gets no
    redelivery: the worker would answer it ``not_sent`` at once, and the owner would have spent
    the redelivery (and the delivery's history) for nothing."""
    if not hook.enabled:
        raise BadRequest(
            "api.webhooks.redeliver.disabled.app_error",
            "Enable the outgoing webhook before redelivering its deliveries.",
        )
    if hook.stopped_reason:
        raise BadRequest(
            "api.webhooks.redeliver.stopped.app_error",
            f"This outgoing webhook is stopped ({hook.stopped_reason}); "
            "it can be redelivered once it runs again.",
        )


@dataclass(frozen=True, slots=True)
class BulkRedelivery:
    """What one bulk redeliver did: ``count`` requeued; ``more``: failed ones since the same
    time are left (over the bound), for the next call."""

    count: int
    more: bool


async def redeliver_failed(rt: Runtime, actor: User, hook_id: str, since_ms: int) -> BulkRedelivery:
    """Recovery after an outage: every failed delivery of the hook created at or after
    ``since_ms``, oldest first and at most :data:`BULK_REDELIVER_LIMIT`, gets a new attempt chain
    (same id, same body, as :func:`redeliver`) in one unit of work.

    A hook out of service is refused, as by :func:`redeliver`.
    """
    if not 0 <= since_ms <= MAX_SINCE_MS:
        raise invalid_param("since")
    settings = await hook_settings(rt)
    now = rt.clock.now_ms()

    def work(conn: Connection) -> BulkRedelivery:
        _refuse_out_of_service(load_hook_for_change(conn, actor, hook_id, settings))
        count, more = requeue_failed(conn, hook_id, since_ms, BULK_REDELIVER_LIMIT, now)
        return BulkRedelivery(count, more)

    result = await rt.db.write(work)
    if result.count:
        rt.outbox_signal.set()
    return result


def _ping_deliveries(
    conn: Connection, actor: User, hook: OutgoingHook, now: int
) -> list[NewDelivery]:
    """A test event (empty ``text`` and ``post_id``) for each of the hook's URLs."""
    team = team_store.find_team(conn, hook.team_id)
    channel = team_store.find_channel(conn, hook.channel_id) if hook.channel_id else None
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
    return [
        NewDelivery(hook.id, "", hook.channel_id, url, content_type, body, "")
        for url in hook.callback_urls
    ]


async def ping_and_wait(rt: Runtime, actor: User, hook_id: str) -> list[DeliveryDetail]:
    """Send a test event (empty ``text`` and ``post_id``) to every URL and wait for the results.

    One unit of work queues the pings; waiting then reads their state every 50 ms.
    """
    settings = await hook_settings(rt)
    default_timeout = (await rt.config())["ServiceSettings"]["OutgoingIntegrationRequestsTimeout"]
    now = rt.clock.now_ms()

    def queue_pings(conn: Connection) -> tuple[OutgoingHook, list[str]]:
        hook = load_hook_for_change(conn, actor, hook_id, settings)
        return hook, enqueue(conn, _ping_deliveries(conn, actor, hook, now), now)

    hook, ids = await rt.db.write(queue_pings)
    rt.outbox_signal.set()
    deadline = (hook.timeout_seconds or default_timeout) + PING_EXTRA_WAIT_SECONDS

    def results(conn: Connection) -> tuple[bool, list[DeliveryDetail]]:
        found = [store.find_delivery(conn, i) for i in ids]
        done = all(d is not None and d.status in FINISHED for d in found)
        return done, [DeliveryDetail(d, store.list_attempts(conn, d.id)) for d in found if d]

    waited = 0.0
    while True:
        done, details = await rt.db.read(results)
        if done or waited >= deadline:
            return details
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
    now = rt.clock.now_ms()
    return await rt.db.read(lambda conn: depth(conn, now))
