"""Prometheus metrics of the delivery engine, in one registry per process.

The worker counts attempts and observes their latency; queue depth and the oldest pending
delivery's age are read from the database at scrape time, so they are right whichever process
delivers. Imports nothing from the rest of the package.
"""

import functools
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

registry = CollectorRegistry(auto_describe=True)

attempts_total = Counter(
    "tidings_webhook_attempts_total",
    "Delivery attempts by outcome (success, retry, permanent, gone).",
    ["outcome"],
    registry=registry,
)
deliveries_finished_total = Counter(
    "tidings_webhook_deliveries_finished_total",
    "Deliveries that reached a final state, by state (succeeded, failed).",
    ["status"],
    registry=registry,
)
attempt_seconds = Histogram(
    "tidings_webhook_attempt_duration_seconds",
    "Time from sending a webhook request to its outcome.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=registry,
)
queue_depth = Gauge(
    "tidings_webhook_queue_depth", "Deliveries pending or in flight.", registry=registry
)
oldest_pending_seconds = Gauge(
    "tidings_webhook_oldest_pending_age_seconds",
    "How long the most overdue pending delivery has waited.",
    registry=registry,
)


@functools.cache
def attempt_outcome(outcome: str) -> Counter:
    """The attempts counter for one outcome; looked up once, since ``labels`` locks and hashes."""
    return attempts_total.labels(outcome)


@functools.cache
def finished_status(status: str) -> Counter:
    """The finished-deliveries counter for one final state (looked up once, as above)."""
    return deliveries_finished_total.labels(status)


async def render(read_queue: Callable[[], Awaitable[tuple[int, int]]]) -> bytes:
    """The text exposition, after refreshing the gauges from the database."""
    depth, oldest_ms = await read_queue()
    queue_depth.set(depth)
    oldest_pending_seconds.set(oldest_ms / 1000)
    return generate_latest(registry)
