"""The login limiter: a minute's failures per (client address, login id), a per-address budget
over login ids that name no account, and tables that forget old keys."""

import pytest

from tidings.errors import TooManyRequests
from tidings.services.users import LoginLimiter

HOME, ATTACKER = "192.0.2.10", "198.51.100.7"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_beyond_the_limit_are_refused_for_a_minute() -> None:
    clock = Clock()
    limiter = LoginLimiter(3, clock)
    for _ in range(3):
        limiter.check(ATTACKER, "alice", known=True)
        limiter.failed(ATTACKER, "alice", known=True)
    with pytest.raises(TooManyRequests):
        limiter.check(ATTACKER, "alice", known=True)
    limiter.check(ATTACKER, "bob", known=True)  # other ids are not affected
    clock.now += 61
    limiter.check(ATTACKER, "alice", known=True)


def test_failures_from_one_address_do_not_lock_out_another() -> None:
    """An attacker failing for alice from elsewhere cannot stop alice logging in from home."""
    limiter = LoginLimiter(3, Clock())
    for _ in range(3):
        limiter.failed(ATTACKER, "alice", known=True)
    with pytest.raises(TooManyRequests):
        limiter.check(ATTACKER, "alice", known=True)
    limiter.check(HOME, "alice", known=True)


def test_an_address_has_a_budget_over_unknown_login_ids() -> None:
    """Random login ids from one address are refused once its budget is spent (bounding the
    password hashing they cost); other addresses are unaffected, and the budget refills."""
    clock = Clock()
    limiter = LoginLimiter(3, clock)
    budget = 3 * LoginLimiter.ADDRESS_BUDGET_FACTOR
    for i in range(budget):
        limiter.check(ATTACKER, f"random{i}", known=False)
        limiter.failed(ATTACKER, f"random{i}", known=False)
    with pytest.raises(TooManyRequests):
        limiter.check(ATTACKER, "never-tried", known=False)
    limiter.check(HOME, "never-tried", known=False)
    assert len(limiter) == budget  # refused attempts remember nothing
    clock.now += 61
    limiter.check(ATTACKER, "never-tried", known=False)


def test_a_spent_budget_never_refuses_a_real_account() -> None:
    """Behind a shared NAT one person guessing random ids must not lock everyone else out: the
    address budget bounds guesses at ids that name no account, never a real account's login."""
    limiter = LoginLimiter(3, Clock())
    for i in range(3 * LoginLimiter.ADDRESS_BUDGET_FACTOR):
        limiter.failed(ATTACKER, f"random{i}", known=False)
    with pytest.raises(TooManyRequests):
        limiter.check(ATTACKER, "another-random", known=False)
    limiter.check(ATTACKER, "alice", known=True)
    limiter.failed(ATTACKER, "alice", known=True)  # a real account's failure spends no budget
    limiter.check(ATTACKER, "bob", known=True)


def test_many_distinct_ids_are_forgotten_once_their_minute_is_over() -> None:
    """Guessing with new login ids and addresses must not grow the tables without bound."""
    clock = Clock()
    limiter = LoginLimiter(3, clock)
    for i in range(5_000):
        limiter.failed(f"10.0.{i // 250}.{i % 250}", f"user{i}", known=False)
    assert len(limiter) == 5_000
    clock.now += 121
    limiter.failed(ATTACKER, "latecomer", known=True)
    assert len(limiter) == 1
    limiter.failed(ATTACKER, "latecomer", known=True)
    limiter.failed(ATTACKER, "latecomer", known=True)
    with pytest.raises(TooManyRequests):  # the sweep kept the pair that is still failing
        limiter.check(ATTACKER, "latecomer", known=True)


def test_a_success_clears_the_pair() -> None:
    clock = Clock()
    limiter = LoginLimiter(2, clock)
    limiter.failed(HOME, "carol", known=True)
    limiter.failed(HOME, "carol", known=True)
    limiter.succeeded(HOME, "carol")
    limiter.check(HOME, "carol", known=True)
    assert len(limiter) == 0
