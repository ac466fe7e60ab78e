"""The login limiter: a minute's failures per login id, and a table that forgets old ids."""

import pytest

from tidings.errors import TooManyRequests
from tidings.services.users import LoginLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_beyond_the_limit_are_refused_for_a_minute() -> None:
    clock = Clock()
    limiter = LoginLimiter(3, clock)
    for _ in range(3):
        limiter.check("alice")
        limiter.failed("alice")
    with pytest.raises(TooManyRequests):
        limiter.check("alice")
    limiter.check("bob")  # other ids are not affected
    clock.now += 61
    limiter.check("alice")


def test_many_distinct_ids_are_forgotten_once_their_minute_is_over() -> None:
    """Guessing with a new login id each time must not grow the table without bound."""
    clock = Clock()
    limiter = LoginLimiter(3, clock)
    for i in range(5_000):
        limiter.failed(f"user{i}")
    assert len(limiter) == 5_000
    clock.now += 121
    limiter.failed("latecomer")
    assert len(limiter) == 1
    limiter.failed("latecomer")
    limiter.failed("latecomer")
    with pytest.raises(TooManyRequests):  # the sweep kept the id that is still failing
        limiter.check("latecomer")


def test_a_success_clears_the_id() -> None:
    clock = Clock()
    limiter = LoginLimiter(2, clock)
    limiter.failed("carol")
    limiter.failed("carol")
    limiter.succeeded("carol")
    limiter.check("carol")
    assert len(limiter) == 0
