"""The worker's housekeeping: requeue deliveries whose worker died, prune the delivery log.

Imports ``tidings.store`` and ``tidings.domain``; used only by ``tidings.webhooks.worker``.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial

from tidings.clock import Clock
from tidings.domain import server_config
from tidings.domain.server_config import ConfigDocument
from tidings.store import deliveries as delivery_store
from tidings.store import outbox
from tidings.store.database import Database

logger = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 600.0


async def keep_house(
    db: Database,
    clock: Clock,
    config: Callable[[], Awaitable[ConfigDocument]],
    outbox_signal: asyncio.Event,
    lease_seconds: float,
) -> None:
    """Forever: requeue expired leases a few times per lease, prune every ten minutes."""
    every = max(1.0, lease_seconds / 4)
    last_prune = float("-inf")
    while True:
        try:
            released = await db.write(
                partial(outbox.release_expired, now_ms=clock.now_ms()), background=True
            )
            if released:
                logger.warning("requeued %d deliveries whose worker stopped mid-attempt", released)
                outbox_signal.set()
        except Exception:
            logger.exception("requeueing expired leases failed")
        if clock.monotonic() - last_prune >= PRUNE_EVERY_SECONDS:
            last_prune = clock.monotonic()
            await _prune(db, clock, config)
        await asyncio.sleep(every)


async def _prune(
    db: Database, clock: Clock, config: Callable[[], Awaitable[ConfigDocument]]
) -> None:
    """Delete finished deliveries past the retention period, a chunk at a time."""
    try:
        settings = server_config.webhook_settings(await config())
        cutoff = clock.now_ms() - settings.retention_days * 86_400_000
        while True:
            pruned = await db.write(
                partial(delivery_store.prune_finished, older_than_ms=cutoff), background=True
            )
            if pruned == 0:
                break
            await asyncio.sleep(0)
    except Exception:
        logger.exception("pruning the delivery log failed")
