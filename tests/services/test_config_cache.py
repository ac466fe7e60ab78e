"""``Runtime.config``: the stored configuration read at most once a second, one read at a time;
callers with no document wait for it together, callers with a stale one do not wait at all."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from support import GatedReads, fresh_database
from tidings.clock import FakeClock
from tidings.config import Settings
from tidings.domain import server_config
from tidings.services import settings as settings_service
from tidings.services.runtime import CONFIG_TTL_SECONDS, Runtime
from tidings.store.database import Connection, Database

pytestmark = pytest.mark.db

WAITERS = 200


async def _turns_until_done(tasks: list["asyncio.Task[Any]"], limit: int) -> int:
    """Event-loop turns (``sleep(0)``) until every task is done, at most ``limit``."""
    for turn in range(limit):
        if all(task.done() for task in tasks):
            return turn
        await asyncio.sleep(0)
    return limit


@contextlib.asynccontextmanager
async def _gated_runtime() -> AsyncIterator[tuple[Runtime, FakeClock, GatedReads]]:
    """A runtime on a fresh database whose reads pass through a closed ``GatedReads``."""
    with fresh_database() as url:
        db = Database.from_url(url)
        clock = FakeClock()
        rt = Runtime(settings=Settings(database_url=url), db=db, clock=clock)
        gated = GatedReads(db)
        db.read = gated.read  # type: ignore[method-assign]
        try:
            yield rt, clock, gated
        finally:
            await db.dispose()


async def test_stale_callers_share_one_read_and_wake_together() -> None:
    """Two hundred requests find the document missing while its read is held: one read is made,
    and once it ends all two hundred have their answer within a few loop turns — not one per
    turn, as behind a lock, where a request waited for every one queued before it."""
    async with _gated_runtime() as (rt, clock, gated):
        tasks = [asyncio.create_task(rt.config()) for _ in range(WAITERS)]
        await asyncio.sleep(0.05)
        assert gated.reads == 1
        assert not any(task.done() for task in tasks)
        gated.gate.set()
        # The read itself runs on a database thread; wait for the first answer, then count.
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        assert await _turns_until_done(tasks, WAITERS) <= 3
        documents = [task.result() for task in tasks]
        assert all(document is documents[0] for document in documents)

        # Fresh for the TTL: no read.
        await rt.config()
        clock.advance(CONFIG_TTL_SECONDS / 2)
        await rt.config()
        assert gated.reads == 1


async def test_a_stale_document_is_served_while_one_read_renews_it() -> None:
    """Past the TTL, callers get the document they had at once, without waiting, while a
    single read renews it; once that read ends, the renewed document is served."""
    async with _gated_runtime() as (rt, clock, gated):
        gated.gate.set()
        first = await rt.config()
        gated.gate.clear()
        clock.advance(CONFIG_TTL_SECONDS)
        served = await asyncio.wait_for(
            asyncio.gather(*(rt.config() for _ in range(WAITERS))), timeout=1
        )
        assert all(document is first for document in served)
        await asyncio.sleep(0.01)
        assert gated.reads == 2
        loading = rt.config_cache.loading
        assert loading is not None
        assert not loading.done()
        gated.gate.set()
        await loading
        renewed = await rt.config()
        assert renewed is not first
        assert renewed == first
        assert gated.reads == 2


async def test_a_cancelled_caller_does_not_cancel_the_others_read() -> None:
    """The first caller (the one that started the read) goes away; the rest still get the
    document, from that same read."""
    async with _gated_runtime() as (rt, _clock, gated):
        first = asyncio.create_task(rt.config())
        await asyncio.sleep(0)
        others = [asyncio.create_task(rt.config()) for _ in range(5)]
        await asyncio.sleep(0.01)
        first.cancel()
        gated.gate.set()
        documents = await asyncio.gather(*others)
        assert gated.reads == 1
        assert first.cancelled()
        assert all(document is documents[0] for document in documents)


async def test_a_failed_read_fails_its_waiters_and_the_next_call_reads_again() -> None:
    """A read that raises raises in every caller waiting on it; nothing stale is kept, and the
    next call makes a new read."""
    with fresh_database() as url:
        db = Database.from_url(url)
        rt = Runtime(settings=Settings(database_url=url), db=db, clock=FakeClock())
        real_read = db.read
        failures = [RuntimeError("database gone")]

        async def flaky_read(work: Callable[[Connection], Any]) -> Any:
            if failures:
                await asyncio.sleep(0.01)
                raise failures.pop()
            return await real_read(work)

        db.read = flaky_read  # type: ignore[method-assign]
        try:
            results = await asyncio.gather(*(rt.config() for _ in range(3)), return_exceptions=True)
            assert all(isinstance(result, RuntimeError) for result in results)
            assert rt.config_cache.document is None
            assert (await rt.config()) is not None
        finally:
            await db.dispose()


async def test_webhook_settings_are_made_once_per_document_and_follow_a_change() -> None:
    """The typed view is built when the document is loaded (the same object for every post
    until the next load) and reflects a change made through this process at once."""
    async with _gated_runtime() as (rt, _clock, gated):
        gated.gate.set()
        first = await rt.webhook_settings()
        assert first is await rt.webhook_settings()
        assert first == server_config.webhook_settings(await rt.config())
        await settings_service.patch_config(
            rt, None, {"ServiceSettings": {"OutgoingIntegrationRequestsTimeout": 7}}
        )
        changed = await rt.webhook_settings()
        assert changed.timeout_seconds == 7
        assert first.timeout_seconds != 7
