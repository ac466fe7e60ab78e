"""The session cache: bounded (least recently used goes first), trusted for a TTL and never past a
session's expiry, forgets by user or by token hash, and keeps nothing read before a forget."""

from collections.abc import Callable

from tidings.clock import FakeClock
from tidings.domain.users import User
from tidings.services.session_cache import STALE_SECONDS, Session, SessionCache

TTL = 5.0
DAY_MS = 24 * 3600 * 1000


def _session(clock: FakeClock, user_id: str, token_hash: str, lifetime_ms: int = DAY_MS) -> Session:
    now = clock.now_ms()
    user = User(id=user_id, create_at=now, update_at=now, delete_at=0, username=user_id, email="")
    return Session(
        user=user, token_hash=token_hash, csrf_token="csrf", expires_at=now + lifetime_ms
    )


def _put(cache: SessionCache, clock: FakeClock, session: Session, ttl: float = TTL) -> None:
    cache.put(session, generation=cache.generation, clock=clock, ttl_seconds=ttl)


def test_a_session_is_served_until_its_ttl_runs_out() -> None:
    """What was put is served as it was for the TTL, then missed (and dropped)."""
    clock, cache = FakeClock(), SessionCache()
    session = _session(clock, "alice", "h1")
    _put(cache, clock, session)
    clock.advance(TTL - 0.1)
    assert cache.get("h1", clock) is session
    clock.advance(0.1)
    assert cache.get("h1", clock) is None
    assert len(cache) == 0


def test_an_expired_session_is_never_served() -> None:
    """A session whose expiry has passed misses, however recently it was read."""
    clock, cache = FakeClock(), SessionCache()
    _put(cache, clock, _session(clock, "alice", "h1", lifetime_ms=1000))
    clock.advance(0.5)
    assert cache.get("h1", clock) is not None
    clock.advance(0.501)
    assert cache.get("h1", clock) is None
    assert len(cache) == 0


def test_a_zero_ttl_remembers_nothing() -> None:
    """``session_cache_seconds = 0`` turns the cache off."""
    clock, cache = FakeClock(), SessionCache()
    _put(cache, clock, _session(clock, "alice", "h1"), ttl=0)
    assert cache.get("h1", clock) is None
    assert len(cache) == 0


def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    """Past ``max_entries`` the session used longest ago goes; a hit counts as a use."""
    clock, cache = FakeClock(), SessionCache(max_entries=3)
    for n in range(3):
        _put(cache, clock, _session(clock, f"user{n}", f"h{n}"))
    assert cache.get("h0", clock) is not None  # now h1 is the least recently used
    _put(cache, clock, _session(clock, "user3", "h3"))
    assert len(cache) == 3
    assert cache.get("h1", clock) is None
    assert all(cache.get(h, clock) is not None for h in ("h0", "h2", "h3"))


def test_putting_a_session_again_replaces_it() -> None:
    """The same token hash is one entry, holding the latest read, with a fresh TTL."""
    clock, cache = FakeClock(), SessionCache()
    _put(cache, clock, _session(clock, "alice", "h1"))
    clock.advance(TTL - 1)
    newer = _session(clock, "alice", "h1")
    _put(cache, clock, newer)
    clock.advance(TTL - 1)
    assert cache.get("h1", clock) is newer
    assert len(cache) == 1


def test_forget_user_drops_every_session_of_that_user_only() -> None:
    """A change to a user's row drops all their sessions; other users' stay."""
    clock, cache = FakeClock(), SessionCache()
    for token_hash in ("a1", "a2"):
        _put(cache, clock, _session(clock, "alice", token_hash))
    _put(cache, clock, _session(clock, "bob", "b1"))
    cache.forget_user("alice")
    assert cache.get("a1", clock) is None
    assert cache.get("a2", clock) is None
    assert cache.get("b1", clock) is not None
    cache.forget_user("nobody")  # forgetting what is not there is fine
    assert len(cache) == 1


def test_forget_sessions_drops_those_token_hashes_only() -> None:
    """Ended sessions are dropped by hash; the user's other sessions stay."""
    clock, cache = FakeClock(), SessionCache()
    for token_hash in ("a1", "a2", "a3"):
        _put(cache, clock, _session(clock, "alice", token_hash))
    cache.forget_sessions(["a1", "a3", "never-cached"])
    assert cache.get("a1", clock) is None
    assert cache.get("a3", clock) is None
    assert cache.get("a2", clock) is not None
    cache.forget_user("alice")  # the per-user index followed the removals
    assert len(cache) == 0


def test_a_read_that_overlapped_a_forget_is_not_kept() -> None:
    """A session read before a forget (logout, deactivation) is not remembered after it."""
    clock, cache = FakeClock(), SessionCache()
    forgets: list[Callable[[], None]] = [
        lambda: cache.forget_user("alice"),
        lambda: cache.forget_sessions(["h1"]),
    ]
    for forget in forgets:
        generation = cache.generation  # the request takes it, then reads the database…
        forget()  # …meanwhile the session ends and is forgotten…
        stale = _session(clock, "alice", "h1")
        cache.put(stale, generation=generation, clock=clock, ttl_seconds=TTL)  # …then it lands
        assert cache.get("h1", clock) is None
    # A read begun after the forget is kept.
    _put(cache, clock, _session(clock, "alice", "h1"))
    assert cache.get("h1", clock) is not None


def test_evicted_entries_leave_no_trace() -> None:
    """Eviction keeps the per-user index in step, so forgetting the user afterwards is clean."""
    clock, cache = FakeClock(), SessionCache(max_entries=1)
    _put(cache, clock, _session(clock, "alice", "a1"))
    _put(cache, clock, _session(clock, "bob", "b1"))
    cache.forget_user("alice")
    assert cache.get("b1", clock) is not None
    assert len(cache) == 1


def test_lookup_serves_an_entry_just_past_its_ttl_as_stale_then_drops_it() -> None:
    """``lookup``: fresh within the TTL; past it, stale (still served, to be read again) for
    ``STALE_SECONDS``; after that, gone."""
    clock, cache = FakeClock(), SessionCache()
    session = _session(clock, "alice", "h1")
    _put(cache, clock, session)
    assert cache.lookup("h1", clock) == (session, True)
    clock.advance(TTL)
    assert cache.lookup("h1", clock) == (session, False)
    clock.advance(STALE_SECONDS * 0.9)
    assert cache.lookup("h1", clock) == (session, False)
    clock.advance(STALE_SECONDS * 0.1)
    assert cache.lookup("h1", clock) == (None, False)
    assert len(cache) == 0


def test_lookup_never_serves_an_expired_session_even_when_fresh() -> None:
    """The session's own expiry wins over the TTL, stale or fresh; ``discard`` drops one entry
    without touching the generation."""
    clock, cache = FakeClock(), SessionCache()
    short = _session(clock, "alice", "h1", lifetime_ms=1000)
    other = _session(clock, "bob", "h2")
    _put(cache, clock, short)
    _put(cache, clock, other)
    clock.advance(1.5)
    assert cache.lookup("h1", clock) == (None, False)
    generation = cache.generation
    cache.discard("h2")
    assert cache.lookup("h2", clock) == (None, False)
    assert cache.generation == generation
