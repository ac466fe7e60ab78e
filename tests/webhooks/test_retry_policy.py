"""Retry classification and backoff as pure values: no sleeping, injected randomness and time."""

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from tidings.domain.deliveries import ErrorKind
from tidings.webhooks.policy import (
    MAX_RETRY_AFTER_SECONDS,
    Outcome,
    RetryPolicy,
    classify,
    next_delay_seconds,
    parse_retry_after,
)

NOW = 1_700_000_000.0


def middle() -> float:
    """A rand() at the centre of [0, 1): no jitter."""
    return 0.5


def http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + seconds_from_now, tz=UTC), usegmt=True)


@pytest.mark.parametrize(
    ("status", "kind", "outcome"),
    [
        (200, ErrorKind.NONE, Outcome.SUCCESS),
        (201, ErrorKind.NONE, Outcome.SUCCESS),
        (204, ErrorKind.NONE, Outcome.SUCCESS),
        (299, ErrorKind.NONE, Outcome.SUCCESS),
        (200, ErrorKind.BAD_REPLY, Outcome.SUCCESS),
        (200, ErrorKind.REPLY_REJECTED, Outcome.SUCCESS),
        (200, ErrorKind.TOO_LARGE, Outcome.SUCCESS),
        (None, ErrorKind.CONNECT, Outcome.RETRY),
        (None, ErrorKind.TIMEOUT, Outcome.RETRY),
        (200, ErrorKind.TIMEOUT, Outcome.RETRY),
        (None, ErrorKind.PROTOCOL, Outcome.RETRY),
        (None, ErrorKind.INTERRUPTED, Outcome.RETRY),
        (None, ErrorKind.NONE, Outcome.RETRY),
        (408, ErrorKind.HTTP_STATUS, Outcome.RETRY),
        (429, ErrorKind.HTTP_STATUS, Outcome.RETRY),
        (500, ErrorKind.HTTP_STATUS, Outcome.RETRY),
        (502, ErrorKind.HTTP_STATUS, Outcome.RETRY),
        (503, ErrorKind.HTTP_STATUS, Outcome.RETRY),
        (599, ErrorKind.HTTP_STATUS, Outcome.RETRY),
        (410, ErrorKind.HTTP_STATUS, Outcome.GONE),
        (400, ErrorKind.HTTP_STATUS, Outcome.PERMANENT),
        (401, ErrorKind.HTTP_STATUS, Outcome.PERMANENT),
        (403, ErrorKind.HTTP_STATUS, Outcome.PERMANENT),
        (404, ErrorKind.HTTP_STATUS, Outcome.PERMANENT),
        (422, ErrorKind.HTTP_STATUS, Outcome.PERMANENT),
        (301, ErrorKind.REDIRECT, Outcome.PERMANENT),
        (302, ErrorKind.NONE, Outcome.PERMANENT),
        (307, ErrorKind.HTTP_STATUS, Outcome.PERMANENT),
        (100, ErrorKind.HTTP_STATUS, Outcome.PERMANENT),
        (600, ErrorKind.HTTP_STATUS, Outcome.PERMANENT),
        (None, ErrorKind.FORBIDDEN_ADDRESS, Outcome.PERMANENT),
        (None, ErrorKind.INVALID_URL, Outcome.PERMANENT),
    ],
)
def test_classify(status: int | None, kind: ErrorKind, outcome: Outcome) -> None:
    """2xx succeeds; lost connections, timeouts, 408, 429, 5xx retry; 410 is gone; rest final."""
    assert classify(status, kind) is outcome


def test_default_policy_allows_six_attempts() -> None:
    """The default schedule is about 5 s, 30 s, 2 min, 10 min, 30 min: six attempts."""
    policy = RetryPolicy()
    assert policy.schedule_seconds == (5, 30, 120, 600, 1800)
    assert policy.max_attempts == 6
    delays = [next_delay_seconds(policy, done, None, middle, NOW) for done in range(1, 7)]
    assert delays == [5, 30, 120, 600, 1800, None]


def test_empty_schedule_means_no_retries() -> None:
    """With no delays the first failure is final."""
    policy = RetryPolicy(schedule_seconds=())
    assert policy.max_attempts == 1
    assert next_delay_seconds(policy, 1, None, middle, NOW) is None


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 24.0), (0.25, 27.0), (0.75, 33.0)])
def test_jitter_spreads_the_delay_by_the_configured_fraction(rand: float, expected: float) -> None:
    """With jitter 0.2 a 30 s delay lands between 24 s and 36 s, as rand() says."""
    delay = next_delay_seconds(RetryPolicy(), 2, None, lambda: rand, NOW)
    assert delay == pytest.approx(expected)


def test_zero_jitter_gives_the_schedule_exactly() -> None:
    """jitter=0 ignores rand()."""
    policy = RetryPolicy(schedule_seconds=(7,), jitter=0)
    assert next_delay_seconds(policy, 1, None, lambda: 0.0, NOW) == 7


def test_attempts_done_must_count_the_attempt_just_made() -> None:
    """Asking before any attempt is a programming error."""
    with pytest.raises(ValueError, match="at least 1"):
        next_delay_seconds(RetryPolicy(), 0, None, middle, NOW)


def test_retry_after_seconds_lengthens_the_wait() -> None:
    """A 429 with ``Retry-After: 120`` after the first attempt waits 120 s, not 5 s."""
    assert next_delay_seconds(RetryPolicy(), 1, "120", middle, NOW) == 120


def test_retry_after_never_shortens_the_schedule() -> None:
    """``Retry-After: 2`` does not pull a 30 s retry forward."""
    assert next_delay_seconds(RetryPolicy(), 2, "2", middle, NOW) == 30


def test_retry_after_is_capped_at_an_hour() -> None:
    """A receiver asking for a day gets an hour."""
    assert next_delay_seconds(RetryPolicy(), 1, "86400", middle, NOW) == MAX_RETRY_AFTER_SECONDS


def test_retry_after_does_not_shorten_a_long_schedule() -> None:
    """The cap limits Retry-After only; a scheduled two-hour delay stays two hours."""
    policy = RetryPolicy(schedule_seconds=(7200,), jitter=0)
    assert next_delay_seconds(policy, 1, "86400", middle, NOW) == 7200


def test_retry_after_http_date_counts_from_now() -> None:
    """An HTTP date 90 s ahead of ``now_s`` means a 90 s wait."""
    delay = next_delay_seconds(RetryPolicy(), 1, http_date(90), middle, NOW)
    assert delay == pytest.approx(90)


def test_retry_after_in_the_past_or_garbled_is_ignored() -> None:
    """A past date or a header that does not parse leaves the scheduled delay."""
    assert next_delay_seconds(RetryPolicy(), 1, http_date(-600), middle, NOW) == 5
    assert next_delay_seconds(RetryPolicy(), 1, "soon", middle, NOW) == 5


def test_retry_after_does_not_extend_the_budget() -> None:
    """When the attempts are spent, Retry-After does not buy another one."""
    assert next_delay_seconds(RetryPolicy(), 6, "10", middle, NOW) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("30", 30.0),
        (" 30 ", 30.0),
        ("0", 0.0),
        ("-5", None),
        ("1.5", None),
        ("", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Delta-seconds or an HTTP date; anything else is no advice."""
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_reads_zone_less_dates_as_gmt() -> None:
    """A ``-0000`` date is read as GMT, the zone HTTP dates use."""
    value = http_date(60).replace("GMT", "-0000")
    assert parse_retry_after(value, NOW) == pytest.approx(60)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"schedule_seconds": (5, -1)},
        {"schedule_seconds": (float("inf"),)},
        {"jitter": 1.0},
        {"jitter": -0.1},
    ],
)
def test_policy_refuses_impossible_values(kwargs: dict[str, object]) -> None:
    """Negative or infinite delays and jitter outside [0, 1) are configuration errors."""
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
