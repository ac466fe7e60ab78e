"""The outbox's units of work on a real database (SQLite, or PostgreSQL in the PostgreSQL run),
each handed to ``Database.write`` as the worker hands them: claim, finish, isolate, release."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from support import fresh_database
from tidings.domain.deliveries import Attempt, Delivery, DeliveryStatus
from tidings.domain.outbox import DueFloor, Finish, NewDelivery, SkipLists
from tidings.domain.posts import Post
from tidings.ids import new_id
from tidings.store import outbox
from tidings.store.database import Database
from tidings.store.schema import channels, deliveries, delivery_attempts, outgoing_hooks, posts

pytestmark = pytest.mark.db

NOW = 1_900_000_000_000
LEASE_MS = 60_000


@dataclass(frozen=True)
class Scene:
    """A channel and hooks of two owners in two teams, straight in the tables."""

    channel_id: str
    hooks: dict[str, tuple[str, str]]  # hook id → (owner, team)


def _scene(conn: Connection) -> Scene:
    channel_id = new_id()
    conn.execute(
        channels.insert(),
        {
            "id": channel_id,
            "create_at": 0,
            "update_at": 0,
            "delete_at": 0,
            "team_id": "t1",
            "type": "O",
            "name": "builds",
            "last_post_at": 0,
            "total_msg_count": 0,
        },
    )
    hooks = {new_id(): ("o1", "t1"), new_id(): ("o2", "t2")}
    conn.execute(
        outgoing_hooks.insert(),
        [
            {
                "id": hook_id,
                "token": new_id(),
                "create_at": 0,
                "update_at": 0,
                "delete_at": 0,
                "creator_id": owner,
                "team_id": team,
                "failure_notice_at": 0,
            }
            for hook_id, (owner, team) in hooks.items()
        ],
    )
    return Scene(channel_id, hooks)


def _new(scene: Scene, hook_id: str, url: str = "http://a.test/hook") -> NewDelivery:
    return NewDelivery(
        hook_id=hook_id,
        post_id=new_id(),
        channel_id=scene.channel_id,
        url=url,
        content_type="application/json",
        body=b'{"text": "go"}',
        trigger_word="go",
    )


def _attempt(delivery: Delivery) -> Attempt:
    return Attempt(
        id=new_id(),
        delivery_id=delivery.id,
        number=delivery.attempt_count,
        started_at=NOW,
        duration_ms=4,
        status_code=200,
        error_kind="",
        error_message="",
        request_headers={"Content-Type": "application/json"},
        response_headers={"X-Seen": "yes"},
        response_excerpt='{"text": "ok"}',
    )


def _reply(delivery: Delivery, post_id: str = "", message: str = "ok") -> Post:
    return Post(
        id=post_id or new_id(),
        create_at=NOW + 5,
        update_at=NOW + 5,
        edit_at=0,
        delete_at=0,
        user_id="o1",
        channel_id=delivery.channel_id,
        root_id="",
        message=message,
    )


def _succeeded(delivery: Delivery, *replies: Post) -> Finish:
    return Finish(
        delivery=delivery,
        status=DeliveryStatus.SUCCEEDED,
        attempt=_attempt(delivery),
        reply_posts=replies,
    )


def _rows(table: Any) -> Callable[[Connection], dict[str, Any]]:
    def work(conn: Connection) -> dict[str, Any]:
        return {row.id: row for row in conn.execute(select(table))}

    return work


def _run(scenario: Callable[[Database], Awaitable[None]]) -> None:
    async def main(url: str) -> None:
        db = Database.from_url(url)
        try:
            await scenario(db)
        finally:
            await db.dispose()

    with fresh_database() as url:
        asyncio.run(main(url))


def test_a_claim_leases_the_oldest_due_deliveries_and_counts_an_attempt() -> None:
    """Due pending rows, oldest first, up to the limit; in flight until the lease ends."""

    async def scenario(db: Database) -> None:
        scene = await db.write(_scene)
        hook = next(iter(scene.hooks))
        for at in (NOW - 20, NOW - 10, NOW + 1_000):  # the last one is not due yet
            await db.write(partial(outbox.enqueue, new=[_new(scene, hook)], now_ms=at))
        first = await db.write(partial(outbox.claim, limit=1, lease_ms=LEASE_MS, now_ms=NOW))
        rest = await db.write(partial(outbox.claim, limit=10, lease_ms=LEASE_MS, now_ms=NOW))
        assert [d.next_attempt_at for d in first + rest] == [NOW - 20, NOW - 10]
        assert all(d.status is DeliveryStatus.IN_FLIGHT for d in first + rest)
        assert all(d.attempt_count == 1 for d in first + rest)
        assert all(d.lease_expires_at == NOW + LEASE_MS for d in first + rest)
        assert await db.read(partial(outbox.depth, now_ms=NOW)) == (3, 20)

    _run(scenario)


def test_a_claim_passes_over_saturated_destinations_owners_and_teams() -> None:
    """Each skip list leaves out the deliveries it names, and only those."""

    async def scenario(db: Database) -> None:
        scene = await db.write(_scene)
        (h1, (o1, _t1)), (h2, (_o2, t2)) = scene.hooks.items()
        new = [_new(scene, h1, "http://a.test/x"), _new(scene, h2, "http://b.test/y")]
        await db.write(partial(outbox.enqueue, new=new, now_ms=NOW))

        async def claimed(
            destinations: tuple[str, ...] = (),
            owners: tuple[str, ...] = (),
            teams: tuple[str, ...] = (),
        ) -> set[str]:
            found = await db.write(
                partial(
                    outbox.claim,
                    limit=10,
                    lease_ms=LEASE_MS,
                    now_ms=NOW,
                    skip_destinations=destinations,
                    skip_owners=owners,
                    skip_teams=teams,
                )
            )
            # Give them back, so the next claim sees them again.
            await db.write(
                partial(
                    outbox.finish,
                    results=[Finish(d, DeliveryStatus.PENDING, None, NOW) for d in found],
                    now_ms=NOW,
                )
            )
            return {d.hook_id for d in found}

        assert await claimed(destinations=("http://a.test:80",)) == {h2}
        assert await claimed(owners=(o1,)) == {h2}
        assert await claimed(teams=(t2,)) == {h1}
        assert await claimed(owners=(o1,), teams=(t2,)) == set()
        assert await claimed(owners=("nobody",)) == {h1, h2}
        assert await claimed() == {h1, h2}

    _run(scenario)


def test_a_claim_keeps_to_each_destinations_room() -> None:
    """A busy destination's backlog heads the due order; with room for two of it, the claim
    takes its two oldest and the other destination's deliveries behind the backlog, in due
    order, and leaves the rest of the backlog pending."""

    async def scenario(db: Database) -> None:
        scene = await db.write(_scene)
        hook = next(iter(scene.hooks))
        for k in range(6):
            new = [_new(scene, hook, "http://busy.test/x")]
            await db.write(partial(outbox.enqueue, new=new, now_ms=NOW - 100 + k))
        new = [_new(scene, hook, "http://calm.test/y")]
        await db.write(partial(outbox.enqueue, new=new, now_ms=NOW - 10))

        async def claim_busy(room: int) -> list[Delivery]:
            return await db.write(
                partial(
                    outbox.claim,
                    limit=10,
                    lease_ms=LEASE_MS,
                    now_ms=NOW,
                    destination_rooms={"http://busy.test:80": room},
                    default_room=40,
                )
            )

        found = await claim_busy(2)
        assert sorted((d.next_attempt_at, d.url) for d in found) == [
            (NOW - 100, "http://busy.test/x"),
            (NOW - 99, "http://busy.test/x"),
            (NOW - 10, "http://calm.test/y"),
        ]
        assert all(d.status is DeliveryStatus.IN_FLIGHT and d.attempt_count == 1 for d in found)

        assert await claim_busy(0) == []
        left = sorted(d.next_attempt_at for d in await claim_busy(9))
        assert left == [NOW - 98 + k for k in range(4)]

    _run(scenario)


def test_a_claim_past_its_floor_still_finds_every_delivery() -> None:
    """With a floor, a claim passing over a saturated destination starts past its backlog;
    what the others queue later is claimed, and the backlog is claimed as soon as the
    destination is no longer passed over. A delivery put back below the floor waits for the
    floor's age, and no longer."""

    async def scenario(db: Database) -> None:
        scene = await db.write(_scene)
        hook = next(iter(scene.hooks))
        for k in range(5):
            new = [_new(scene, hook, "http://hung.test/x")]
            await db.write(partial(outbox.enqueue, new=new, now_ms=NOW - 1_000 + k))
        floor = DueFloor(max_age_ms=500)

        async def claim(now: int, skip: tuple[str, ...] = ("http://hung.test:80",)) -> list[str]:
            found = await db.write(
                partial(
                    outbox.claim,
                    limit=10,
                    lease_ms=LEASE_MS,
                    now_ms=now,
                    skip_destinations=skip,
                    floor=floor,
                )
            )
            return sorted(d.url for d in found)

        async def queue(url: str, at: int) -> None:
            await db.write(partial(outbox.enqueue, new=[_new(scene, hook, url)], now_ms=at))

        await queue("http://calm.test/1", NOW - 10)
        assert await claim(NOW) == ["http://calm.test/1"]
        assert floor.start(SkipLists(["http://hung.test:80"], [], []), NOW) == NOW - 10
        await queue("http://calm.test/2", NOW + 5)
        assert await claim(NOW + 10) == ["http://calm.test/2"]

        # Below the floor (a lease put back with its old due time): found once the floor is
        # old, by a claim that reads the whole due range again.
        await queue("http://calm.test/3", NOW - 500)
        assert await claim(NOW + 20) == []
        assert await claim(NOW + 600) == ["http://calm.test/3"]

        # The destination has room again: its whole backlog is claimed.
        assert await claim(NOW + 610, skip=()) == ["http://hung.test/x"] * 5

    _run(scenario)


def test_finish_records_the_attempt_the_state_and_the_reply_once() -> None:
    """One write-back: attempt row, new state, reply post and channel counter; a second
    result for the same delivery (its lease now gone) adds only its attempt to the log."""

    async def scenario(db: Database) -> None:
        scene = await db.write(_scene)
        hook = next(iter(scene.hooks))
        await db.write(partial(outbox.enqueue, new=[_new(scene, hook)], now_ms=NOW))
        [delivery] = await db.write(partial(outbox.claim, limit=10, lease_ms=LEASE_MS, now_ms=NOW))
        result = _succeeded(delivery, _reply(delivery))
        inserted = await db.write(partial(outbox.finish, results=[result], now_ms=NOW + 9))
        assert inserted == [list(result.reply_posts)]
        again = await db.write(
            partial(outbox.finish, results=[_succeeded(delivery, _reply(delivery))], now_ms=NOW)
        )
        assert again == [[]]
        row = (await db.read(_rows(deliveries)))[delivery.id]
        assert (row.status, row.reply_posted, row.lease_expires_at, row.update_at) == (
            "succeeded",
            True,
            0,
            NOW + 9,
        )
        assert (row.attempt_count, row.last_status_code) == (1, 200)
        attempts = (await db.read(_rows(delivery_attempts))).values()
        # Both tries are in the log; only the first one's result counted.
        assert [(a.delivery_id, a.response_headers) for a in attempts] == [
            (delivery.id, {"X-Seen": "yes"})
        ] * 2
        assert [p.message for p in (await db.read(_rows(posts))).values()] == ["ok"]
        channel = (await db.read(_rows(channels)))[scene.channel_id]
        assert (channel.last_post_at, channel.total_msg_count) == (NOW + 5, 1)

    _run(scenario)


def test_a_late_result_loses_to_the_next_owner() -> None:
    """A worker whose lease ran out and was taken over cannot overwrite the new owner's
    result: the lease is the fencing token."""

    async def scenario(db: Database) -> None:
        scene = await db.write(_scene)
        hook = next(iter(scene.hooks))
        await db.write(partial(outbox.enqueue, new=[_new(scene, hook)], now_ms=NOW))
        [late] = await db.write(partial(outbox.claim, limit=1, lease_ms=LEASE_MS, now_ms=NOW))
        later = NOW + LEASE_MS + 1
        assert await db.write(partial(outbox.release_expired, now_ms=later)) == 1
        [owner] = await db.write(partial(outbox.claim, limit=1, lease_ms=LEASE_MS, now_ms=later))
        assert (owner.id, owner.attempt_count) == (late.id, 2)
        gone = Finish(late, DeliveryStatus.FAILED, _attempt(late))
        assert await db.write(partial(outbox.finish, results=[gone], now_ms=later)) == [[]]
        row = (await db.read(_rows(deliveries)))[late.id]
        assert (row.status, row.lease_expires_at) == ("in_flight", owner.lease_expires_at)
        await db.write(partial(outbox.finish, results=[_succeeded(owner)], now_ms=later))
        row = (await db.read(_rows(deliveries)))[late.id]
        assert row.status == "succeeded"
        kinds = sorted(a.error_kind for a in (await db.read(_rows(delivery_attempts))).values())
        assert kinds == ["", "", "interrupted"]  # every try is in the log, the late one too

    _run(scenario)


def test_isolating_fails_the_bad_row_alone_and_commits_the_rest() -> None:
    """A reply reusing an existing post id cannot be written: that delivery is recorded as
    failed ``unstorable`` (in its savepoint), the others commit with their replies."""

    async def scenario(db: Database) -> None:
        scene = await db.write(_scene)
        hook = next(iter(scene.hooks))
        await db.write(
            partial(outbox.enqueue, new=[_new(scene, hook) for _ in range(5)], now_ms=NOW)
        )
        claimed = await db.write(partial(outbox.claim, limit=10, lease_ms=LEASE_MS, now_ms=NOW))
        taken = new_id()
        await db.write(
            partial(
                outbox.finish,
                results=[_succeeded(claimed[0], _reply(claimed[0], taken))],
                now_ms=NOW,
            )
        )
        results = [
            _succeeded(d, _reply(d, taken if i == 3 else "", f"reply {i}"))
            for i, d in enumerate(claimed[1:], start=1)
        ]
        inserted, written = await db.write(
            partial(outbox.finish_isolating, results=results, now_ms=NOW)
        )
        assert [len(p) for p in inserted] == [1, 1, 0, 1]
        assert [w.status for w in written] == ["succeeded", "succeeded", "failed", "succeeded"]
        rows = await db.read(_rows(deliveries))
        bad = claimed[3].id
        assert (rows[bad].status, rows[bad].last_error_kind) == ("failed", "unstorable")
        assert all(rows[d.id].status == "succeeded" for d in claimed if d.id != bad)
        messages = sorted(p.message for p in (await db.read(_rows(posts))).values())
        assert messages == ["ok", "reply 1", "reply 2", "reply 4"]

    _run(scenario)


def test_a_batch_refused_for_its_data_is_rolled_back_whole() -> None:
    """``finish`` alone (the worker's first try) raises a data error for a poison row and, its
    unit rolled back, leaves nothing half written for ``finish_isolating`` to trip over."""

    async def scenario(db: Database) -> None:
        scene = await db.write(_scene)
        hook = next(iter(scene.hooks))
        await db.write(
            partial(outbox.enqueue, new=[_new(scene, hook) for _ in range(2)], now_ms=NOW)
        )
        good, bad = await db.write(partial(outbox.claim, limit=10, lease_ms=LEASE_MS, now_ms=NOW))
        same = new_id()
        results = [_succeeded(good, _reply(good, same)), _succeeded(bad, _reply(bad, same))]
        with pytest.raises(DBAPIError) as raised:
            await db.write(partial(outbox.finish, results=results, now_ms=NOW))
        assert outbox.is_data_error(raised.value)
        assert await db.read(_rows(delivery_attempts)) == {}
        assert await db.read(_rows(posts)) == {}
        inserted, written = await db.write(
            partial(outbox.finish_isolating, results=results, now_ms=NOW)
        )
        assert [len(p) for p in inserted] == [1, 0]
        assert [w.status for w in written] == ["succeeded", "failed"]

    _run(scenario)


def test_isolating_marks_nothing_when_the_database_itself_fails() -> None:
    """A missing table says nothing about the rows: the error is raised, nothing is written."""

    async def scenario(db: Database) -> None:
        scene = await db.write(_scene)
        hook = next(iter(scene.hooks))
        await db.write(partial(outbox.enqueue, new=[_new(scene, hook)], now_ms=NOW))
        [delivery] = await db.write(partial(outbox.claim, limit=1, lease_ms=LEASE_MS, now_ms=NOW))
        await db.write(lambda conn: conn.execute(text("ALTER TABLE posts RENAME TO posts_away")))
        result = _succeeded(delivery, _reply(delivery))
        with pytest.raises(DBAPIError) as raised:
            await db.write(partial(outbox.finish_isolating, results=[result], now_ms=NOW))
        assert not outbox.is_data_error(raised.value)
        await db.write(lambda conn: conn.execute(text("ALTER TABLE posts_away RENAME TO posts")))
        row = (await db.read(_rows(deliveries)))[delivery.id]
        assert (row.status, row.last_error_kind) == ("in_flight", "")
        assert await db.read(_rows(delivery_attempts)) == {}
        inserted, _ = await db.write(partial(outbox.finish_isolating, results=[result], now_ms=NOW))
        assert [len(p) for p in inserted] == [1]

    _run(scenario)


def test_a_finished_delivery_is_requeued_with_its_id_and_a_new_body_is_kept() -> None:
    """Redeliver starts a new attempt chain; a re-encoded body replaces the stored one."""

    async def scenario(db: Database) -> None:
        scene = await db.write(_scene)
        hook = next(iter(scene.hooks))
        [delivery_id] = await db.write(partial(outbox.enqueue, new=[_new(scene, hook)], now_ms=NOW))
        [delivery] = await db.write(partial(outbox.claim, limit=1, lease_ms=LEASE_MS, now_ms=NOW))
        await db.write(partial(outbox.finish, results=[_succeeded(delivery)], now_ms=NOW))
        await db.write(partial(outbox.requeue, delivery_id=delivery_id, now_ms=NOW + 1))
        await db.write(partial(outbox.replace_body, delivery_id=delivery_id, body=b"{}"))
        row = (await db.read(_rows(deliveries)))[delivery_id]
        assert (row.status, row.attempt_count, row.next_attempt_at, bytes(row.body)) == (
            "pending",
            0,
            NOW + 1,
            b"{}",
        )

    _run(scenario)
