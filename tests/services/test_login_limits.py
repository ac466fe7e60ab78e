"""The login limit, counted in the database: a minute's failures per (client address, login
key), a per-address budget over login ids that name no account, rows that stop growing at the
limits and are swept once old. Through ``services.users.login`` with a fake clock."""

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import Row, select

from support import PASSWORD, fresh_database
from tidings.clock import FakeClock
from tidings.config import Settings
from tidings.errors import TooManyRequests, Unauthorized
from tidings.services import users as user_service
from tidings.services.runtime import Runtime
from tidings.store.database import POSTGRES_POOL, Connection, Database
from tidings.store.schema import login_failures

pytestmark = pytest.mark.db

HOME, ATTACKER = "192.0.2.10", "198.51.100.7"
WRONG = "wrong-password"
PER_MINUTE = 3
BUDGET = PER_MINUTE * user_service.ADDRESS_BUDGET_FACTOR

Scenario = Callable[[Runtime, FakeClock], Awaitable[None]]


def _run(scenario: Scenario) -> None:
    async def main(url: str) -> None:
        clock = FakeClock()
        settings = Settings(database_url=url, login_failures_per_minute=PER_MINUTE)
        rt = Runtime(settings=settings, db=Database.from_url(url), clock=clock)
        try:
            await scenario(rt, clock)
        finally:
            await rt.db.dispose()

    with fresh_database() as url:
        asyncio.run(main(url))


async def _account(rt: Runtime, name: str) -> None:
    new = user_service.NewUser(name, f"{name}@example.test", PASSWORD)
    await user_service.create_user(rt, None, new, trusted=True)


async def _fail(rt: Runtime, login_id: str, address: str) -> None:
    with pytest.raises(Unauthorized):
        await user_service.login(rt, login_id, WRONG, address=address)


async def _refused(rt: Runtime, login_id: str, address: str, password: str = WRONG) -> None:
    with pytest.raises(TooManyRequests) as refused:
        await user_service.login(rt, login_id, password, address=address)
    assert refused.value.id == "api.user.login.rate_limited.app_error"


async def _rows(rt: Runtime) -> list[Row[tuple[object, ...]]]:
    def read(conn: Connection) -> list[Row[tuple[object, ...]]]:
        return list(conn.execute(select(login_failures).order_by(login_failures.c.id)).all())

    return await rt.db.read(read)


def test_failures_beyond_the_limit_are_refused_for_a_minute() -> None:
    async def scenario(rt: Runtime, clock: FakeClock) -> None:
        await _account(rt, "alice")
        await _account(rt, "bob")
        for _ in range(PER_MINUTE):
            await _fail(rt, "alice", ATTACKER)
        await _refused(rt, "alice", ATTACKER, PASSWORD)  # even the right password, for now
        await _refused(rt, "ALICE@example.test", ATTACKER)  # one budget per account
        await _fail(rt, "bob", ATTACKER)  # other accounts are not affected
        clock.advance(61)
        await user_service.login(rt, "alice", PASSWORD, address=ATTACKER)

    _run(scenario)


def test_failures_from_one_address_do_not_lock_out_another() -> None:
    """An attacker failing for alice from elsewhere cannot stop alice logging in from home."""

    async def scenario(rt: Runtime, clock: FakeClock) -> None:
        await _account(rt, "alice")
        for _ in range(PER_MINUTE):
            await _fail(rt, "alice", ATTACKER)
        await _refused(rt, "alice", ATTACKER, PASSWORD)
        await user_service.login(rt, "alice", PASSWORD, address=HOME)

    _run(scenario)


def test_an_address_has_a_budget_over_unknown_login_ids() -> None:
    """Random login ids from one address are refused once its budget is spent (bounding the
    password hashing they cost); other addresses are unaffected, and the budget refills."""

    async def scenario(rt: Runtime, clock: FakeClock) -> None:
        for i in range(BUDGET):
            await _fail(rt, f"random{i}", ATTACKER)
        await _refused(rt, "never-tried", ATTACKER)
        await _fail(rt, "never-tried", HOME)
        clock.advance(61)
        await _fail(rt, "never-tried", ATTACKER)

    _run(scenario)


def test_a_spent_budget_never_refuses_a_real_account() -> None:
    """Behind a shared NAT one person guessing random ids must not lock everyone else out: the
    address budget bounds guesses at ids that name no account, never a real account's login."""

    async def scenario(rt: Runtime, clock: FakeClock) -> None:
        await _account(rt, "alice")
        await _account(rt, "bob")
        for i in range(BUDGET):
            await _fail(rt, f"random{i}", ATTACKER)
        await _refused(rt, "another-random", ATTACKER)
        await _fail(rt, "alice", ATTACKER)  # a real account's failure spends no budget
        await user_service.login(rt, "bob", PASSWORD, address=ATTACKER)

    _run(scenario)


def test_an_address_over_its_budget_adds_no_rows() -> None:
    """Refused attempts remember nothing, so the rows one address can make stop at its budget;
    and the failure is recorded only if the limit still allows it when written, so a burst whose
    attempts all passed the check before any was recorded stops there too. (On PostgreSQL two
    units writing at the same moment may each see room for one more: a few rows over at most.)"""

    async def scenario(rt: Runtime, clock: FakeClock) -> None:
        for i in range(BUDGET):
            await _fail(rt, f"random{i}", ATTACKER)
        for i in range(BUDGET):
            await _refused(rt, f"more{i}", ATTACKER)
        assert len(await _rows(rt)) == BUDGET

        async def attempt(i: int) -> None:
            with pytest.raises((Unauthorized, TooManyRequests)):
                await user_service.login(rt, f"burst{i}", WRONG, address=HOME)

        await asyncio.gather(*(attempt(i) for i in range(2 * BUDGET)))
        burst = [row for row in await _rows(rt) if row.address == HOME]
        assert BUDGET <= len(burst) <= BUDGET + POSTGRES_POOL

    _run(scenario)


def test_a_success_clears_the_pair() -> None:
    async def scenario(rt: Runtime, clock: FakeClock) -> None:
        await _account(rt, "carol")
        for _ in range(PER_MINUTE - 1):
            await _fail(rt, "carol", HOME)
        await user_service.login(rt, "carol", PASSWORD, address=HOME)
        assert await _rows(rt) == []
        for _ in range(PER_MINUTE):
            await _fail(rt, "carol", HOME)
        await _refused(rt, "carol", HOME)

    _run(scenario)


def test_old_failures_are_swept_by_a_later_failure() -> None:
    """Addresses that go quiet leave rows behind; the next failure anywhere sweeps everything a
    window old once the oldest row is two windows old (not on every failure: it scans)."""

    async def scenario(rt: Runtime, clock: FakeClock) -> None:
        for i in range(20):
            await _fail(rt, f"user{i}", f"10.0.0.{i}")
        clock.advance(61)
        await _fail(rt, "latecomer", ATTACKER)
        assert len(await _rows(rt)) == 21  # the oldest is only one window old: no sweep yet
        clock.advance(60)
        await _fail(rt, "latecomer", ATTACKER)
        await _fail(rt, "latecomer", ATTACKER)
        assert [row.address for row in await _rows(rt)] == [ATTACKER] * 3
        await _refused(rt, "latecomer", ATTACKER)  # the sweep kept the pair still failing

    _run(scenario)


def test_the_login_id_is_stored_only_as_a_digest_and_long_addresses_fit() -> None:
    """A password typed into the login field must not end up in the database; an address longer
    than the column is stored as its digest, so two that share a prefix keep their own budgets."""

    async def scenario(rt: Runtime, clock: FakeClock) -> None:
        long_address = "fe80::1%" + "a" * 100
        for _ in range(PER_MINUTE):
            await _fail(rt, "My-Secret-Typo", long_address)
        await _refused(rt, "my-secret-typo", long_address)
        await _fail(rt, "my-secret-typo", long_address[:-1] + "b")
        rows = await _rows(rt)
        assert all("secret" not in str(tuple(row)).lower() for row in rows)
        assert {len(row.address) for row in rows} == {64}
        assert len({row.address for row in rows}) == 2

    _run(scenario)
