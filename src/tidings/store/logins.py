"""Failed logins, one row each, so every server process counts the same failures.

The limit itself (how many, over what window) is ``tidings.services.users.login``'s; this
module only stores and counts. A login key (an account's id, or the normalised login id that
named no account) is stored as its SHA-256 digest, never as written: a typo'd password pasted
into the user name field must not sit in the database. An address longer than the column
(``String(64)``; IPv6 with a zone, or whatever a trusted proxy forwards) is stored as its
digest too, rather than cut, so two long addresses sharing a prefix never share a budget.
"""

import hashlib
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, delete, false, func, select
from sqlalchemy.engine import Connection

from tidings.store.schema import login_failures

ADDRESS_LENGTH = 64


@dataclass(frozen=True, slots=True)
class RecentFailures:
    """An address's failures since some moment."""

    pair: int
    """at this login key"""
    unknown: int
    """at any login key that named no account"""


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _address(address: str) -> str:
    return address if len(address) <= ADDRESS_LENGTH else _digest(address)


_HERE = login_failures.c.address == bindparam("b_address")
_PAIR = and_(_HERE, login_failures.c.login_digest == bindparam("b_digest"))
_RECENT = login_failures.c.failed_at >= bindparam("b_since")
# Statements built once: building them cost more than running them (the counts: 190 µs a
# call built each time, 23 µs prebuilt, on SQLite).
_COUNTS = select(
    select(func.count()).where(_PAIR, _RECENT).scalar_subquery(),
    select(func.count()).where(_HERE, login_failures.c.known == false(), _RECENT).scalar_subquery(),
)
_INSERT = login_failures.insert()
_CLEAR = delete(login_failures).where(_PAIR)
_OLDEST = select(login_failures.c.failed_at).order_by(login_failures.c.id).limit(1)
_SWEEP = delete(login_failures).where(login_failures.c.failed_at < bindparam("b_before"))


def count_recent_failures(
    conn: Connection, address: str, login_key: str, since_ms: int
) -> RecentFailures:
    """Both counts in one statement, each a range over its own index."""
    values = {"b_address": _address(address), "b_digest": _digest(login_key), "b_since": since_ms}
    pair, unknown = conn.execute(_COUNTS, values).one()
    return RecentFailures(pair=pair, unknown=unknown)


def insert_failure(
    conn: Connection, address: str, login_key: str, *, known: bool, at_ms: int
) -> None:
    values = {
        "address": _address(address),
        "login_digest": _digest(login_key),
        "known": known,
        "failed_at": at_ms,
    }
    conn.execute(_INSERT, values)


def clear_failures(conn: Connection, address: str, login_key: str) -> None:
    """Forget this address's failures at this login key (a success clears them)."""
    conn.execute(_CLEAR, {"b_address": _address(address), "b_digest": _digest(login_key)})


def oldest_failure_at(conn: Connection) -> int | None:
    """When the oldest row failed, found by the primary key (ids grow with time) so that asking
    costs one index probe, not a scan: there is no index on ``failed_at`` alone."""
    oldest: int | None = conn.execute(_OLDEST).scalar()
    return oldest


def delete_failures_before(conn: Connection, before_ms: int) -> int:
    """Sweep rows older than ``before_ms``: a scan, but of a table that holds only minutes of
    failures (each of which cost a password hash to make)."""
    return conn.execute(_SWEEP, {"b_before": before_ms}).rowcount
