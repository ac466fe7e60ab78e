"""What every service call needs, built once per process and passed explicitly."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tidings.clock import Clock, SystemClock
from tidings.config import Settings
from tidings.domain import server_config
from tidings.domain.server_config import ConfigDocument
from tidings.events import EventHub
from tidings.services.cluster import Cluster
from tidings.services.session_cache import SessionCache
from tidings.store.database import Database
from tidings.store.settings import load_config

CONFIG_TTL_SECONDS = 1.0


@dataclass
class ConfigCache:
    """The stored configuration, re-read at most once a second.

    Another process (``tidings worker``, a second server) may change it; one second of staleness
    is the price of not reading it on every post.

    One read at a time, shared: every request that finds the document stale awaits the same
    ``loading`` task, and all of them wake together when it ends. (Behind an ``asyncio.Lock``
    they woke one per event-loop turn, each turn tens of milliseconds under load, so once a
    second a few hundred posts queued for up to 1.2 s: ``bench/load.py``'s p99.)
    """

    document: ConfigDocument | None = None
    loaded_at: float = float("-inf")
    # Bumped by every ``forget_config``: a load that overlapped a change is not kept, or a
    # request reading during a patch would cache the old document for a second after it.
    generation: int = 0
    loading: "asyncio.Task[None] | None" = None


@dataclass
class Runtime:
    """Process-wide dependencies: database, clock, settings, event hub and caches."""

    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    events: EventHub = field(default_factory=EventHub)
    config_cache: ConfigCache = field(default_factory=ConfigCache)
    # Sessions recently read, so most requests authenticate without the database; every
    # change to a session or a user forgets its entries (services.users).
    session_cache: SessionCache = field(default_factory=SessionCache)
    hook_indexes: dict[str, tuple[int, Any]] = field(default_factory=dict)
    # Set after a commit that queued deliveries, so an in-process worker need not wait to poll.
    outbox_signal: asyncio.Event = field(default_factory=asyncio.Event)
    # This process's link to the others (PostgreSQL): started by `serve`, `worker` and the CLI.
    cluster: Cluster = field(init=False)

    def __post_init__(self) -> None:
        self.cluster = Cluster(self.db, self.events, self.session_cache, self.clock)

    async def config(self) -> ConfigDocument:
        """The current configuration document (defaults filled in): one loaded less than
        ``CONFIG_TTL_SECONDS`` before the call, or after it."""
        cache = self.config_cache
        called_at = self.clock.monotonic()
        while cache.document is None or called_at - cache.loaded_at >= CONFIG_TTL_SECONDS:
            if cache.loading is None or cache.loading.done():
                cache.loading = asyncio.get_running_loop().create_task(self._load_config())
                # Retrieved here too, so a failed load whose waiters were all cancelled is
                # not reported as an exception never retrieved.
                cache.loading.add_done_callback(_retrieve)
            # Shielded: a waiter cancelled (its client gone) must not cancel the others' load.
            await asyncio.shield(cache.loading)
        return cache.document

    async def _load_config(self) -> None:
        cache = self.config_cache
        generation = cache.generation
        stored = await self.db.read(load_config)
        if generation == cache.generation:
            cache.document = server_config.with_defaults(stored)
            cache.loaded_at = self.clock.monotonic()

    def forget_config(self) -> None:
        """Drop the cached configuration after this process changed it."""
        self.config_cache.document = None
        self.config_cache.generation += 1


def _retrieve(task: "asyncio.Task[None]") -> None:
    if not task.cancelled():
        task.exception()
