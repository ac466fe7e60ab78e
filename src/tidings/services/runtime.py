"""What every service call needs, built once per process and passed explicitly."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tidings.clock import Clock, SystemClock
from tidings.config import Settings
from tidings.domain import server_config
from tidings.domain.server_config import ConfigDocument, WebhookSettings
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
    (and the length of the read that renews it) is the price of not reading it on every post.

    One read at a time, in a task of its own. A document past its second is still served while
    that read runs: under load each event-loop turn is tens of milliseconds of requests, and
    had they all waited for the read, once a second a whole turn of posts would wait a turn
    more (``bench/load.py``'s p90). With no document at all (the first request, or after this
    process changed it: ``forget_config``) callers wait, together, for the one read. (Behind an
    ``asyncio.Lock`` they woke one per turn: once a second, hundreds of posts queued for up to
    1.2 s.)
    """

    document: ConfigDocument | None = None
    loaded_at: float = float("-inf")
    # Bumped by every ``forget_config``: a load that overlapped a change is not kept, or a
    # request reading during a patch would cache the old document for a second after it.
    generation: int = 0
    loading: "asyncio.Task[None] | None" = None
    # The engine's typed view of ``document``, made once per load rather than once per post.
    webhooks: WebhookSettings | None = None


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
    # The session reads in flight, by token hash, with the cache generation each started at
    # (services.users.authenticate): requests that miss one session at once share its read.
    session_reads: "dict[str, tuple[int, asyncio.Task[Any]]]" = field(default_factory=dict)
    hook_indexes: dict[str, tuple[int, Any]] = field(default_factory=dict)
    # Set after a commit that queued deliveries, so an in-process worker need not wait to poll.
    outbox_signal: asyncio.Event = field(default_factory=asyncio.Event)
    # This process's link to the others (PostgreSQL): started by `serve`, `worker` and the CLI.
    cluster: Cluster = field(init=False)

    def __post_init__(self) -> None:
        self.cluster = Cluster(self.db, self.events, self.session_cache, self.clock)

    async def config(self) -> ConfigDocument:
        """The current configuration document (defaults filled in): one loaded less than
        ``CONFIG_TTL_SECONDS`` ago, or — while its renewal is read — the one before."""
        cache = self.config_cache
        document = cache.document
        if document is not None:
            if self.clock.monotonic() - cache.loaded_at >= CONFIG_TTL_SECONDS:
                self._config_loading()
            return document
        while cache.document is None:
            # Shielded: a waiter cancelled (its client gone) must not cancel the others' read.
            await asyncio.shield(self._config_loading())
        return cache.document

    def _config_loading(self) -> "asyncio.Task[None]":
        """The configuration read in flight, or a new one."""
        cache = self.config_cache
        if cache.loading is None or cache.loading.done():
            cache.loading = asyncio.get_running_loop().create_task(self._load_config())
            # Retrieved here too: a renewal nobody waited for may fail quietly (the next call
            # reads again), and a failed first read reaches every waiter.
            cache.loading.add_done_callback(_retrieve)
        return cache.loading

    async def _load_config(self) -> None:
        cache = self.config_cache
        generation = cache.generation
        stored = await self.db.read(load_config)
        if generation == cache.generation:
            document = server_config.with_defaults(stored)
            cache.document, cache.webhooks = document, server_config.webhook_settings(document)
            cache.loaded_at = self.clock.monotonic()

    async def webhook_settings(self) -> WebhookSettings:
        """``server_config.webhook_settings`` of the current document (see :meth:`config`)."""
        await self.config()
        assert self.config_cache.webhooks is not None
        return self.config_cache.webhooks

    def forget_config(self) -> None:
        """Drop the cached configuration after this process changed it."""
        self.config_cache.document = self.config_cache.webhooks = None
        self.config_cache.generation += 1


def _retrieve(task: "asyncio.Task[None]") -> None:
    if not task.cancelled():
        task.exception()
