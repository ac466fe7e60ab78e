"""Sessions this process found valid a moment ago, so most requests authenticate without the
database.

:func:`tidings.services.users.authenticate` asks the cache first and, on a miss, reads the
session and its user from the database and remembers the result. An entry is served until the
first of:

- the session's own expiry (checked against the wall clock on every hit, so an expired session is
  never served);
- ``ttl_seconds`` after it was read (on the monotonic clock): how long a change made by *another
  process* (the ``tidings user`` CLI, a second server) can go unseen here — plus, for at most
  ``STALE_SECONDS`` more, while the one read that renews it is in flight (:meth:`lookup`);
- a ``forget_*`` call: every change this process makes to a session or a user calls one after
  its commit (``services.users.sessions_ended`` and ``services.users.user_changed``), so this
  process never serves what it has itself revoked.

The ``forget_*`` methods take nothing but a user id or token hashes, so a listener for other
processes' changes (issue #12) can call them as they are.

A read can race a revocation: a request reads a session, the session is deleted and forgotten,
then the request remembers what it read. So a caller takes :attr:`SessionCache.generation`
*before* its read and hands it to :meth:`SessionCache.put`, which keeps nothing if anything was
forgotten in between. One counter for the whole cache makes a forget drop every insert then in
flight, whoever it concerned: those requests only miss the cache once more, and revocations are
rare next to requests.

Pure and synchronous (the caller passes its clock), used from the event loop only. Must not
import anything that does I/O.
"""

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from tidings.clock import Clock
from tidings.domain.users import User

# Sessions remembered at most; the least recently used goes first. An entry is about a kilobyte
# (the user's row), so the cache stays near ten megabytes however many sessions exist.
SESSION_CACHE_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Session:
    """An authenticated caller: the user, the session's CSRF token and when it expires."""

    user: User
    token_hash: str
    csrf_token: str
    expires_at: int = 0


# How long past its TTL an entry is still served while it is read again. Under load a popular
# session (one bot's token on many connections) goes past its TTL with a full event-loop turn of
# requests behind it; serving them the entry read seconds ago, rather than parking them all on
# the read, kept that turn out of the post path's p99 (bench/load.py). Past this, a request waits
# for the read as any miss does.
STALE_SECONDS = 1.0

# (the session, the monotonic time after which it must be read again)
_Entry = tuple[Session, float]


class SessionCache:
    """A bounded LRU map from token hash to the :class:`Session` last read for it."""

    def __init__(self, max_entries: int = SESSION_CACHE_ENTRIES) -> None:
        self.max_entries = max_entries
        # Bumped by every forget; see the module docstring.
        self.generation = 0
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_user: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token_hash: str, clock: Clock) -> Session | None:
        """The remembered session for ``token_hash``, or None if there is none still good."""
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        session, fresh_until = entry
        if clock.monotonic() >= fresh_until or session.expires_at < clock.now_ms():
            self._remove(token_hash)
            return None
        self._entries.move_to_end(token_hash)
        return session

    def lookup(self, token_hash: str, clock: Clock) -> tuple[Session | None, bool]:
        """``(session, True)`` while the entry is fresh; ``(session, False)`` past its TTL but
        within ``STALE_SECONDS`` of it (serve it, and read it again); ``(None, False)`` when
        nothing may be served (no entry, the session expired, or stale for longer)."""
        entry = self._entries.get(token_hash)
        if entry is None:
            return None, False
        session, fresh_until = entry
        now = clock.monotonic()
        if session.expires_at < clock.now_ms() or now >= fresh_until + STALE_SECONDS:
            self._remove(token_hash)
            return None, False
        self._entries.move_to_end(token_hash)
        return session, now < fresh_until

    def discard(self, token_hash: str) -> None:
        """Drop one entry, found dead by the read that renewed it (no generation bump: it
        revokes nothing that other reads in flight could bring back)."""
        self._remove(token_hash)

    def put(self, session: Session, *, generation: int, clock: Clock, ttl_seconds: float) -> None:
        """Remember ``session``, read from the database after ``generation`` was taken, for at
        most ``ttl_seconds`` (0 remembers nothing). Nothing is kept if anything was forgotten
        since ``generation``: the read may predate that change."""
        if generation != self.generation or ttl_seconds <= 0:
            return
        token_hash, user_id = session.token_hash, session.user.id
        self._remove(token_hash)
        self._entries[token_hash] = (session, clock.monotonic() + ttl_seconds)
        self._by_user.setdefault(user_id, set()).add(token_hash)
        while len(self._entries) > self.max_entries:
            self._remove(next(iter(self._entries)))

    def forget_user(self, user_id: str) -> None:
        """Drop every session of ``user_id``: the user's row changed (roles, activity, profile,
        password), so each remembered copy of it is stale."""
        self.generation += 1
        for token_hash in self._by_user.pop(user_id, ()):
            del self._entries[token_hash]

    def forget_sessions(self, token_hashes: Iterable[str]) -> None:
        """Drop these sessions: they ended (logout, password change, deactivation)."""
        self.generation += 1
        for token_hash in token_hashes:
            self._remove(token_hash)

    def forget_all(self) -> None:
        """Drop everything: this process may have missed other processes' changes."""
        self.generation += 1
        self._entries.clear()
        self._by_user.clear()

    def _remove(self, token_hash: str) -> None:
        entry = self._entries.pop(token_hash, None)
        if entry is None:
            return
        user_id = entry[0].user.id
        hashes = self._by_user[user_id]
        hashes.discard(token_hash)
        if not hashes:
            del self._by_user[user_id]
