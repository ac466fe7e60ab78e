"""Queries on users and sessions, returning domain objects."""

from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection

from tidings.domain.posts import BROADCAST_MENTIONS, mentioned_names
from tidings.domain.users import User
from tidings.store.schema import sessions, users

_USER_COLUMNS = [c for c in users.c if c.name != "password_hash"]


def _user(row: Any) -> User:
    return User(
        id=row.id,
        create_at=row.create_at,
        update_at=row.update_at,
        delete_at=row.delete_at,
        username=row.username,
        email=row.email,
        nickname=row.nickname,
        first_name=row.first_name,
        last_name=row.last_name,
        position=row.position,
        roles=row.roles,
        locale=row.locale,
        is_bot=row.is_bot,
        last_password_update=row.last_password_update,
        props=dict(row.props or {}),
    )


def insert_user(conn: Connection, user: User, password_hash: str) -> None:
    conn.execute(
        users.insert().values(
            id=user.id,
            create_at=user.create_at,
            update_at=user.update_at,
            delete_at=user.delete_at,
            username=user.username,
            email=user.email,
            password_hash=password_hash,
            nickname=user.nickname,
            first_name=user.first_name,
            last_name=user.last_name,
            position=user.position,
            roles=user.roles,
            locale=user.locale,
            is_bot=user.is_bot,
            last_password_update=user.last_password_update,
            props=user.props,
        )
    )


# Any fixed number works; it only has to be the same in every process.
_ACCOUNT_CREATION_LOCK = 7_311_200_001


def lock_account_creation(conn: Connection) -> None:
    """Make account creations take turns until the caller's transaction ends.

    The first account becomes system admin, decided by counting accounts: two sign-ups that
    count at once on PostgreSQL would both see none. SQLite's ``BEGIN IMMEDIATE`` already
    serialises writers, so there this is a no-op.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_ACCOUNT_CREATION_LOCK)))


def count_users(conn: Connection) -> int:
    return int((conn.execute(select(func.count()).select_from(users))).scalar_one())


def find_user(conn: Connection, user_id: str) -> User | None:
    row = (conn.execute(select(*_USER_COLUMNS).where(users.c.id == user_id))).first()
    return _user(row) if row else None


def find_user_by_username(conn: Connection, username: str) -> User | None:
    row = (conn.execute(select(*_USER_COLUMNS).where(users.c.username == username.lower()))).first()
    return _user(row) if row else None


def find_user_by_email(conn: Connection, email: str) -> User | None:
    row = (conn.execute(select(*_USER_COLUMNS).where(users.c.email == email.lower()))).first()
    return _user(row) if row else None


def find_login(conn: Connection, login_id: str) -> tuple[User, str] | None:
    """The user whose username or email is ``login_id``, with the password hash."""
    login = login_id.strip().lower()
    row = (
        conn.execute(select(users).where(or_(users.c.username == login, users.c.email == login)))
    ).first()
    return (_user(row), row.password_hash) if row else None


def list_users(
    conn: Connection, offset: int, limit: int, ids: list[str] | None = None
) -> list[User]:
    query = select(*_USER_COLUMNS).order_by(users.c.username).offset(offset).limit(limit)
    if ids is not None:
        query = query.where(users.c.id.in_(ids))
    return [_user(r) for r in (conn.execute(query)).all()]


def usernames_by_id(conn: Connection, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = conn.execute(select(users.c.id, users.c.username).where(users.c.id.in_(ids)))
    return {r.id: r.username for r in rows}


def update_user(conn: Connection, user_id: str, **values: Any) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(**values))


def insert_session(
    conn: Connection, token_hash: str, user_id: str, csrf: str, now: int, expires: int
) -> None:
    conn.execute(
        sessions.insert().values(
            id=token_hash,
            user_id=user_id,
            csrf_token=csrf,
            create_at=now,
            expires_at=expires,
            last_activity_at=now,
        )
    )


def find_session(conn: Connection, token_hash: str) -> tuple[str, str, int] | None:
    """(user_id, csrf_token, expires_at) of a session."""
    row = (
        conn.execute(
            select(sessions.c.user_id, sessions.c.csrf_token, sessions.c.expires_at).where(
                sessions.c.id == token_hash
            )
        )
    ).first()
    return (row.user_id, row.csrf_token, row.expires_at) if row else None


def find_session_user(conn: Connection, token_hash: str) -> tuple[User, str, int] | None:
    """(user, csrf_token, expires_at) of a session, in one query: every request asks."""
    row = (
        conn.execute(
            select(*_USER_COLUMNS, sessions.c.csrf_token, sessions.c.expires_at)
            .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
            .where(sessions.c.id == token_hash)
        )
    ).first()
    return (_user(row), row.csrf_token, row.expires_at) if row else None


def delete_session(conn: Connection, token_hash: str) -> list[str]:
    """Delete one session; the token hashes deleted (none if it was already gone)."""
    result = conn.execute(
        sessions.delete().where(sessions.c.id == token_hash).returning(sessions.c.id)
    )
    return [row.id for row in result]


def delete_user_sessions(conn: Connection, user_id: str, keep: str = "") -> list[str]:
    """Delete every session of ``user_id`` but the one hashed ``keep``; the hashes deleted."""
    query = sessions.delete().where(sessions.c.user_id == user_id)
    if keep:
        query = query.where(sessions.c.id != keep)
    result = conn.execute(query.returning(sessions.c.id))
    return [row.id for row in result]


def find_users(conn: Connection, user_ids: set[str]) -> dict[str, User]:
    if not user_ids:
        return {}
    rows = conn.execute(select(*_USER_COLUMNS).where(users.c.id.in_(user_ids)))
    return {r.id: _user(r) for r in rows}


def mentioned_user_ids(
    conn: Connection, message: str, member_ids: list[str], author_id: str
) -> list[str]:
    """Channel members the message mentions by @username, or all of them for @channel/@all/@here."""
    names = mentioned_names(message)
    others = [m for m in member_ids if m != author_id]
    if not names or not others:
        return []
    if names & BROADCAST_MENTIONS:
        return others
    found = find_users(conn, set(others))
    return [user_id for user_id, user in found.items() if user.username in names]


def hold_active_user(conn: Connection, user_id: str) -> bool:
    """Whether the account exists and is active, holding its row until the transaction ends
    (PostgreSQL: ``FOR SHARE``): a deactivation then waits, and sees what the caller wrote."""
    row = conn.execute(
        select(users.c.delete_at).where(users.c.id == user_id).with_for_update(read=True)
    ).first()
    return row is not None and row.delete_at == 0
