"""When to retry a delivery, and how long to wait: the retry policy as pure values (spec §4).

Mattermost never retries. Tidings retries failures that may heal (no connection, a timeout,
408, 429, 5xx, a worker that died mid-attempt) on an exponential schedule with jitter, and
gives up at once on answers that will not change (other 4xx, 3xx, a refused address, a bad
URL). 410 Gone is its own outcome because it also disables the hook.

Nothing here sleeps or reads the clock: the caller passes ``now_s`` and a random source, so the
worker decides and the tests check without waiting.

Pure: imports only the standard library and ``tidings.domain``. No I/O.
"""

import email.utils
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from enum import StrEnum

from tidings.domain.deliveries import ErrorKind

MAX_RETRY_AFTER_SECONDS = 3600.0
"""A receiver's ``Retry-After`` is honoured up to an hour; longer asks would stall the log."""

_RETRY_KINDS = frozenset(
    {ErrorKind.CONNECT, ErrorKind.TIMEOUT, ErrorKind.PROTOCOL, ErrorKind.INTERRUPTED}
)
_PERMANENT_KINDS = frozenset(
    {ErrorKind.FORBIDDEN_ADDRESS, ErrorKind.INVALID_URL, ErrorKind.REDIRECT, ErrorKind.NOT_SENT}
)


class Outcome(StrEnum):
    """What one attempt means for its delivery."""

    SUCCESS = "success"
    RETRY = "retry"
    PERMANENT = "permanent"
    GONE = "gone"  # the receiver says the hook is gone for good: fail and disable the hook


@dataclass(frozen=True)
class RetryPolicy:
    """The waits between attempts, in seconds; ``len(schedule_seconds) + 1`` attempts in all.

    ``jitter`` spreads each wait by up to ± that fraction, so deliveries that failed together
    (a receiver restart) do not all come back in the same second. An empty schedule means one
    attempt and no retries.
    """

    schedule_seconds: tuple[float, ...] = (5, 30, 120, 600, 1800)
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if any(not math.isfinite(delay) or delay < 0 for delay in self.schedule_seconds):
            raise ValueError("retry delays must be finite and not negative")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be at least 0 and below 1")

    @property
    def max_attempts(self) -> int:
        """The first attempt plus one per scheduled delay."""
        return len(self.schedule_seconds) + 1


def classify(status_code: int | None, error_kind: ErrorKind) -> Outcome:
    """Sort an attempt's result into success, retry, permanent failure or gone.

    A transport failure decides first: a timeout while reading a 200's body is still a timeout.
    Reply problems (``bad_reply``, ``reply_rejected``, ``response_too_large``) do not undo a
    2xx: the receiver got the event, and resending it would repeat its side effects.
    """
    if error_kind in _RETRY_KINDS:
        return Outcome.RETRY
    if error_kind in _PERMANENT_KINDS:
        return Outcome.PERMANENT
    if status_code is None:
        # No response and no named reason: treat it like a lost connection.
        return Outcome.RETRY
    if 200 <= status_code <= 299:
        return Outcome.SUCCESS
    if status_code == 410:
        return Outcome.GONE
    if status_code in (408, 429) or 500 <= status_code <= 599:
        return Outcome.RETRY
    return Outcome.PERMANENT


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None.

    A date in the past means "now" (0). Anything unparseable is ignored, not an error: the
    header is advice.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" parses zone-less; HTTP dates are GMT anyway
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_s)


def next_delay_seconds(
    policy: RetryPolicy,
    attempts_done: int,
    retry_after: str | None,
    rand: Callable[[], float],
    now_s: float,
) -> float | None:
    """How long to wait before the next attempt, or None when the retry budget is spent.

    ``attempts_done`` counts attempts made so far, this one included. ``rand`` returns a float
    in [0, 1), e.g. ``random.random``. The wait is the scheduled delay with jitter, lengthened
    (never shortened) to the receiver's ``Retry-After``, which counts up to an hour.
    """
    if attempts_done < 1:
        raise ValueError("attempts_done counts the attempt just made, so it is at least 1")
    if attempts_done > len(policy.schedule_seconds):
        return None
    scheduled = policy.schedule_seconds[attempts_done - 1]
    delay = scheduled * (1 + policy.jitter * (2 * rand() - 1))
    asked = parse_retry_after(retry_after, now_s)
    if asked is not None:
        delay = max(delay, min(asked, MAX_RETRY_AFTER_SECONDS))
    return delay
