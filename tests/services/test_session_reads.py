"""``services.users.authenticate`` off the cache: requests that miss one session at once share
one read, a session just past its TTL is served while one read renews it, and nothing read
before a revocation is served after it."""

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from support import PASSWORD, GatedReads, fresh_database
from tidings.clock import FakeClock
from tidings.config import Settings
from tidings.errors import Unauthorized
from tidings.services import users as user_service
from tidings.services.runtime import Runtime
from tidings.services.session_cache import STALE_SECONDS, Session
from tidings.store.database import Database

pytestmark = pytest.mark.db

TTL = 5.0
REQUESTS = 100

Scenario = Callable[[Runtime, FakeClock, GatedReads, str], Awaitable[None]]


def _run(scenario: Scenario) -> None:
    """``scenario(rt, clock, gated, token)``: a user logged in, its session not yet cached, and
    every later read through ``gated`` (open: close ``gated.gate`` to hold reads)."""

    async def main(url: str) -> None:
        clock = FakeClock()
        settings = Settings(database_url=url, session_cache_seconds=TTL)
        rt = Runtime(settings=settings, db=Database.from_url(url), clock=clock)
        try:
            new = user_service.NewUser("alice", "alice@example.test", PASSWORD)
            await user_service.create_user(rt, None, new, trusted=True)
            _user, token, _csrf = await user_service.login(
                rt, "alice", PASSWORD, address="192.0.2.1"
            )
            rt.session_cache.forget_all()
            gated = GatedReads(rt.db)
            rt.db.read = gated.read  # type: ignore[method-assign]
            gated.gate.set()
            await scenario(rt, clock, gated, token)
        finally:
            await rt.db.dispose()

    with fresh_database() as url:
        asyncio.run(main(url))


def test_misses_of_one_session_share_one_read() -> None:
    """A hundred requests with one uncached token: one read, one session for all of them."""

    async def scenario(rt: Runtime, _clock: FakeClock, gated: GatedReads, token: str) -> None:
        gated.gate.clear()
        tasks = [asyncio.create_task(user_service.authenticate(rt, token)) for _ in range(REQUESTS)]
        await asyncio.sleep(0.02)
        assert gated.reads == 1
        assert not any(task.done() for task in tasks)
        gated.gate.set()
        sessions = await asyncio.gather(*tasks)
        assert all(session is sessions[0] for session in sessions)
        assert sessions[0].user.username == "alice"
        assert gated.reads == 1

    _run(scenario)


def test_a_session_past_its_ttl_is_served_while_one_read_renews_it() -> None:
    """Past the TTL (within ``STALE_SECONDS``) requests are answered at once from the entry
    and one read renews it; further past, a request waits for the read like any miss."""

    async def scenario(rt: Runtime, clock: FakeClock, gated: GatedReads, token: str) -> None:
        first = await user_service.authenticate(rt, token)
        clock.advance(TTL)
        gated.gate.clear()
        served = await asyncio.wait_for(
            asyncio.gather(*(user_service.authenticate(rt, token) for _ in range(REQUESTS))),
            timeout=1,
        )
        assert all(session is first for session in served)
        assert gated.reads == 2
        gated.gate.set()
        await asyncio.sleep(0.05)
        renewed = await user_service.authenticate(rt, token)
        assert renewed is not first
        assert renewed == first
        assert gated.reads == 2

        clock.advance(TTL + STALE_SECONDS)
        gated.gate.clear()
        waiting = asyncio.create_task(user_service.authenticate(rt, token))
        await asyncio.sleep(0.02)
        assert not waiting.done()
        gated.gate.set()
        assert (await waiting) == first

    _run(scenario)


def test_a_read_started_before_a_revocation_is_not_joined_after_it() -> None:
    """A request that arrives after a forget makes its own read, so it sees the revocation the
    earlier read may have missed: the token is refused."""

    async def scenario(rt: Runtime, _clock: FakeClock, gated: GatedReads, token: str) -> None:
        gated.gate.clear()
        before = asyncio.create_task(user_service.authenticate(rt, token))
        await asyncio.sleep(0.02)
        session = await asyncio.wait_for(_session_from_other_read(rt, gated, token), timeout=5)
        await user_service.logout(rt, session)
        after = asyncio.create_task(user_service.authenticate(rt, token))
        await asyncio.sleep(0.02)
        assert gated.reads == 2  # its own read, not the one in flight
        gated.gate.set()
        # Its read was asked for before the logout (held here, it runs after it and sees it).
        await asyncio.gather(before, return_exceptions=True)
        with pytest.raises(Unauthorized):
            await after

    _run(scenario)


async def _session_from_other_read(rt: Runtime, gated: GatedReads, token: str) -> Session:
    """The session, read past the gate (as another server process would read it)."""
    found = await gated.real_read(
        lambda conn: user_service.store.find_session_user(conn, user_service.hash_token(token))
    )
    assert found is not None
    user, csrf, expires_at = found
    return Session(
        user=user,
        token_hash=user_service.hash_token(token),
        csrf_token=csrf,
        expires_at=expires_at,
    )


def test_a_renewal_that_finds_the_session_gone_drops_it() -> None:
    """The session is deleted by another process while cached; past the TTL one request is
    served the entry, the renewal finds no session, and the next request is refused."""

    async def scenario(rt: Runtime, clock: FakeClock, gated: GatedReads, token: str) -> None:
        session = await user_service.authenticate(rt, token)
        other = Runtime(settings=rt.settings, db=Database.from_url(rt.settings.database_url))
        try:
            await user_service.logout(other, session)
        finally:
            await other.db.dispose()
        assert (await user_service.authenticate(rt, token)) is session  # fresh: still cached
        clock.advance(TTL)
        assert (await user_service.authenticate(rt, token)) is session  # stale, renewing
        await asyncio.sleep(0.05)
        with pytest.raises(Unauthorized):
            await user_service.authenticate(rt, token)

    _run(scenario)
