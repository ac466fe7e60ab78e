"""Accounts and sessions: sign-up, login (rate limited), logout, token checks, profile changes."""

import asyncio
import functools
import hashlib
from dataclasses import dataclass, replace
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tidings.domain.permissions import MANAGE_SYSTEM, can_manage_system
from tidings.domain.server_config import ConfigDocument, password_rules
from tidings.domain.teams import Team
from tidings.domain.users import (
    RESERVED_USERNAMES,
    SYSTEM_BOT_USERNAME,
    User,
    check_password,
    is_valid_email,
    is_valid_username,
    normalise_username,
)
from tidings.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    permission_error,
)
from tidings.ids import is_valid_id, new_id
from tidings.services.runtime import Runtime
from tidings.services.session_cache import Session as Session  # noqa: PLC0414 (a re-export)
from tidings.store import hooks as hook_store
from tidings.store import logins as login_store
from tidings.store import teams as team_store
from tidings.store import users as store
from tidings.store.database import Connection, IntegrityError

_hashers: dict[tuple[int, int], PasswordHasher] = {}
# Verifying reads the cost from the stored hash itself, so any hasher verifies any hash.
_hasher_verify = PasswordHasher().verify


def _hasher(rt: Runtime) -> PasswordHasher:
    """Argon2id with the configured cost (tests lower it; production keeps the library's)."""
    key = (rt.settings.password_hash_time_cost, rt.settings.password_hash_memory_kib)
    if key not in _hashers:
        _hashers[key] = PasswordHasher(time_cost=key[0], memory_cost=key[1])
    return _hashers[key]


@dataclass(frozen=True, slots=True)
class NewUser:
    username: str
    email: str
    password: str
    nickname: str = ""
    first_name: str = ""
    last_name: str = ""


def hash_token(token: str) -> str:
    """Sessions are stored by the token's hash, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def hash_password(rt: Runtime, password: str) -> str:
    """argon2 costs tens of milliseconds of CPU: keep it off the event loop."""
    return await asyncio.to_thread(_hasher(rt).hash, password)


async def _verify_password(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher_verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def _check_new_user(new: NewUser, config: ConfigDocument) -> None:
    if new.username in RESERVED_USERNAMES:
        raise BadRequest(
            "model.user.is_valid.username.app_error",
            f"The username {new.username!r} is reserved. Please choose another.",
        )
    if not is_valid_username(new.username):
        raise BadRequest(
            "model.user.is_valid.username.app_error",
            "Username must begin with a letter and contain between 3 and 22 lowercase characters "
            "made up of numbers, letters, and the symbols '.', '-', and '_'.",
        )
    if not is_valid_email(new.email):
        raise BadRequest("model.user.is_valid.email.app_error", "Invalid email.")
    check_password(new.password, password_rules(config))
    for value, name in (
        (new.nickname, "nickname"),
        (new.first_name, "first_name"),
        (new.last_name, "last_name"),
    ):
        if len(value) > 64:
            raise BadRequest(f"model.user.is_valid.{name}.app_error", f"Invalid {name}.")


def _creation_rights(
    conn: Connection,
    actor: User | None,
    config: ConfigDocument,
    *,
    make_admin: bool,
    invite_id: str,
    trusted: bool,
) -> tuple[bool, Team | None]:
    """(is this the server's first account, the invite's team), or the reason not to create."""
    bot = store.find_user_by_username(conn, SYSTEM_BOT_USERNAME)
    first = store.count_users(conn) == (1 if bot is not None and bot.is_bot else 0)
    invite_team = None
    if invite_id:
        invite_team = team_store.find_team_by_invite(conn, invite_id)
        if invite_team is None or invite_team.delete_at:
            raise BadRequest(
                "api.user.create_user.invite_id.app_error", "The invite link is not valid."
            )
    admin_actor = actor is not None and can_manage_system(actor)
    allowed = (
        first
        or trusted
        or admin_actor
        or invite_team is not None
        or config["TeamSettings"]["EnableOpenServer"]
    )
    if not allowed:
        raise Forbidden(
            "api.user.create_user.no_open_server",
            "This server does not allow open signups. Ask your system administrator for an invitation.",
        )
    if make_admin and not (first or trusted or admin_actor):
        raise permission_error(actor.id if actor else "", MANAGE_SYSTEM)
    return first, invite_team


def _check_available(conn: Connection, username: str, email: str) -> None:
    if store.find_user_by_username(conn, username) is not None:
        raise Conflict(
            "app.user.save.username_exists.app_error",
            "An account with that username already exists.",
        )
    if store.find_user_by_email(conn, email) is not None:
        raise Conflict(
            "app.user.save.email_exists.app_error", "An account with that email already exists."
        )


async def create_user(
    rt: Runtime,
    actor: User | None,
    new: NewUser,
    *,
    make_admin: bool = False,
    invite_id: str = "",
    trusted: bool = False,
) -> User:
    """Create an account.

    The first account on a fresh server becomes system admin. After that an admin creates
    accounts, or a person signs up through a team's invite link (and joins that team), or
    anyone may when open sign-up is on. ``trusted`` is the local CLI.
    """
    # Mattermost stores usernames and emails in lower case, whatever the client sent.
    new = replace(new, username=normalise_username(new.username), email=new.email.lower())
    config = await rt.config()
    _check_new_user(new, config)
    rights = functools.partial(
        _creation_rights,
        actor=actor,
        config=config,
        make_admin=make_admin,
        invite_id=invite_id,
        trusted=trusted,
    )
    # Refuse before hashing: argon2 is too costly to spend on requests that cannot succeed.
    # The rights are checked again where the account is inserted, as they may have changed.
    await rt.db.read(rights)
    password_hash = await hash_password(rt, new.password)
    now = rt.clock.now_ms()

    def insert(conn: Connection) -> tuple[User, Team | None]:
        store.lock_account_creation(conn)
        first, invite_team = rights(conn)
        _check_available(conn, new.username, new.email)
        user = User(
            id=new_id(),
            create_at=now,
            update_at=now,
            delete_at=0,
            username=new.username,
            email=new.email,
            nickname=new.nickname,
            first_name=new.first_name,
            last_name=new.last_name,
            roles="system_admin system_user" if first or make_admin else "system_user",
            last_password_update=now,
        )
        store.insert_user(conn, user, password_hash)
        return user, invite_team

    try:
        user, invite_team = await rt.db.write(insert)
    except IntegrityError:
        # A concurrent sign-up took the name or the email between our check and our insert:
        # say which, as a 409, rather than a 500.
        await rt.db.read(lambda conn: _check_available(conn, new.username, new.email))
        raise
    if invite_team is not None:
        from tidings.services.teams import add_team_member_unchecked

        await add_team_member_unchecked(rt, invite_team.id, user.id)
    return user


async def ensure_system_bot(rt: Runtime) -> User:
    """The bot that sends notices by DM; created on first use."""
    try:
        return await _find_or_create_bot(rt)
    except IntegrityError:
        # Another process created it at the same moment: use theirs.
        return await _find_or_create_bot(rt)


async def _find_or_create_bot(rt: Runtime) -> User:
    now = rt.clock.now_ms()

    def work(conn: Connection) -> User:
        bot = store.find_user_by_username(conn, SYSTEM_BOT_USERNAME)
        if bot is not None:
            return bot
        bot = User(
            id=new_id(),
            create_at=now,
            update_at=now,
            delete_at=0,
            username=SYSTEM_BOT_USERNAME,
            email="tidings-bot@localhost.invalid",
            nickname="Tidings",
            roles="system_user",
            is_bot=True,
        )
        store.insert_user(conn, bot, "")
        return bot

    return await rt.db.write(work)


LOGIN_WINDOW_MS = 60_000
ADDRESS_BUDGET_FACTOR = 10


def _login_refused(recent: login_store.RecentFailures, *, known: bool, per_minute: int) -> bool:
    """Has this (address, login key) pair failed too often in the window, or, for a login id
    that names no account (``known`` false), has the address spent its budget of such guesses?

    Keying by the pair means an attacker failing from one address cannot lock the owner out
    from another. The per-address budget over ids that name no account
    (``ADDRESS_BUDGET_FACTOR`` times the per-account limit) stops guessing with random ids from
    buying unbounded password hashing (or rows); a success does not clear it, as the hashing
    was spent. It never refuses a real account's login: behind a shared NAT, or a proxy not
    yet trusted, many people share one address, and one of them must not lock the others out.
    """
    return recent.pair >= per_minute or (
        not known and recent.unknown >= per_minute * ADDRESS_BUDGET_FACTOR
    )


def _rate_limited() -> TooManyRequests:
    return TooManyRequests(
        "api.user.login.rate_limited.app_error",
        "Too many failed login attempts. Please wait a minute and try again.",
    )


def _record_login_failure(
    conn: Connection, address: str, key: str, *, known: bool, now_ms: int, per_minute: int
) -> None:
    """One more failure, unless the limit is already reached (other requests, here or in
    another process, may have failed since our check): a refused attempt adds no row, so the
    rows per address stay bounded by its budget and its accounts' limits (on PostgreSQL, units
    writing at the same moment may each find room for one more: a few rows over at most).

    Rows older than the window are swept here, by the processes that add them, rather than by
    the webhook worker's housekeeping, which a server may run without (``TIDINGS_RUN_WORKER``
    false, no ``tidings worker`` yet). A sweep scans the table, so it runs only once the oldest
    row is a window past due: at most about once a window across every process, and the table
    holds no more than the two windows of failures before the latest.
    """
    since = now_ms - LOGIN_WINDOW_MS
    recent = login_store.count_recent_failures(conn, address, key, since)
    if not _login_refused(recent, known=known, per_minute=per_minute):
        login_store.insert_failure(conn, address, key, known=known, at_ms=now_ms)
    oldest = login_store.oldest_failure_at(conn)
    if oldest is not None and oldest < since - LOGIN_WINDOW_MS:
        login_store.delete_failures_before(conn, since)


async def login(
    rt: Runtime, login_id: str, password: str, *, address: str
) -> tuple[User, str, str]:
    """Check credentials and open a session: (user, bearer token, CSRF token).

    ``address`` is the client's network address: failures are limited per address and account
    (:func:`_login_refused`), counted in the database so that every server process spends the
    same budget. Two units of work, the lookup (with the failure counts) and the outcome (the
    failure recorded, or the new session), with argon2 between them: it runs in a thread,
    outside any transaction.
    """
    per_minute = rt.settings.login_failures_per_minute
    since = rt.clock.now_ms() - LOGIN_WINDOW_MS

    def lookup(conn: Connection) -> tuple[tuple[User, str] | None, str]:
        found = store.find_login(conn, login_id)
        # One budget per account, so its username and its email do not each get their own.
        key = found[0].id if found is not None else login_id.strip().lower()
        recent = login_store.count_recent_failures(conn, address, key, since)
        if _login_refused(recent, known=found is not None, per_minute=per_minute):
            raise _rate_limited()
        return found, key

    found, key = await rt.db.read(lookup)
    ok = found is not None and found[0].is_active and not found[0].is_bot
    if found is not None and ok:
        ok = await _verify_password(found[1], password)
    else:
        await hash_password(rt, "timing-equaliser")  # do not reveal which accounts exist by timing
    now = rt.clock.now_ms()
    if not ok or found is None:
        await rt.db.write(
            functools.partial(
                _record_login_failure,
                address=address,
                key=key,
                known=found is not None,
                now_ms=now,
                per_minute=per_minute,
            )
        )
        raise Unauthorized(
            "api.user.login.invalid_credentials_email_username",
            "Enter a valid email or username and/or password.",
        )
    user = found[0]
    token, csrf = new_id(), new_id()
    token_hash = hash_token(token)
    expires_at = now + rt.settings.session_lifetime_seconds * 1000

    def open_session(conn: Connection) -> None:
        login_store.clear_failures(conn, address, key)
        store.insert_session(conn, token_hash, user.id, csrf, now, expires_at)

    await rt.db.write(open_session)
    return user, token, csrf


def _session_expired() -> Unauthorized:
    return Unauthorized(
        "api.context.session_expired.app_error",
        "Invalid or expired session, please login again.",
    )


async def authenticate(rt: Runtime, token: str) -> Session:
    """The session a bearer token or cookie names, or 401.

    Every request asks, so the answer comes from the session cache when it can: a session read
    from the database is trusted for ``session_cache_seconds`` at most (and never past its
    expiry). This process's own changes reach the cache at once (``sessions_ended``,
    ``user_changed``); another process's within that time (and ``STALE_SECONDS`` more while the
    entry is being read again: requests in that moment are served it rather than wait).
    """
    token_hash = hash_token(token)
    session, fresh = rt.session_cache.lookup(token_hash, rt.clock)
    if fresh:
        assert session is not None
        return session
    reading = _session_read(rt, token_hash)
    if session is not None:
        return session
    # Shielded: one caller going away must not cancel the read the others wait for.
    found = await asyncio.shield(reading)
    if found is None:
        raise _session_expired()
    return found


def _session_read(rt: Runtime, token_hash: str) -> "asyncio.Task[Session | None]":
    """The read of ``token_hash``'s session in flight, or a new one: requests that miss the
    same session at once (one bot's token on many connections) share one read. A read started
    before the latest forget is not joined: it may have seen what was since revoked."""
    cache = rt.session_cache
    generation = cache.generation
    in_flight = rt.session_reads.get(token_hash)
    if in_flight is not None and in_flight[0] == generation and not in_flight[1].done():
        return in_flight[1]
    task = asyncio.get_running_loop().create_task(_read_session(rt, token_hash, generation))
    rt.session_reads[token_hash] = (generation, task)

    def finished(done: "asyncio.Task[Session | None]") -> None:
        if rt.session_reads.get(token_hash, (0, None))[1] is done:
            del rt.session_reads[token_hash]
        if not done.cancelled():
            done.exception()  # retrieved: a renewal nobody waited for may fail quietly

    task.add_done_callback(finished)
    return task


async def _read_session(rt: Runtime, token_hash: str, generation: int) -> Session | None:
    """Read the session and its user; remember it (unless something was forgotten since
    ``generation``), or drop the entry when it is no longer live."""
    cache = rt.session_cache
    found = await rt.db.read(lambda conn: store.find_session_user(conn, token_hash))
    if not _live(found, rt.clock.now_ms()):
        cache.discard(token_hash)
        return None
    assert found is not None
    user, csrf_token, expires_at = found
    session = Session(
        user=user, token_hash=token_hash, csrf_token=csrf_token, expires_at=expires_at
    )
    cache.put(
        session,
        generation=generation,
        clock=rt.clock,
        ttl_seconds=rt.settings.session_cache_seconds,
    )
    return session


async def check_session(rt: Runtime, session: Session) -> bool:
    """Is ``session`` still valid: stored, unexpired, its user active? (Long-lived connections
    ask this now and then, so a session ended by another process or by time stops too.)

    Always the database, never the session cache: this is the check that catches what other
    processes changed.
    """
    if session.expires_at and session.expires_at < rt.clock.now_ms():
        return False
    found = await rt.db.read(lambda conn: store.find_session_user(conn, session.token_hash))
    return _live(found, rt.clock.now_ms())


def _live(found: tuple[User, str, int] | None, now_ms: int) -> bool:
    """A stored session (user, csrf token, expiry) that is unexpired and whose user is active."""
    return found is not None and found[0].is_active and found[2] >= now_ms


def sessions_ended(rt: Runtime, user_id: str, token_hashes: list[str]) -> None:
    """The one place that says "these sessions ended", called after the deleting commit.

    Everything that holds on to a session reacts here: this process's session cache forgets
    them and the websockets opened with them are closed at once, and the cluster tells every
    other process to do the same (``services.cluster``; within milliseconds, not
    ``session_cache_seconds``).
    """
    if token_hashes:
        rt.session_cache.forget_sessions(token_hashes)
        rt.events.end_sessions(user_id, token_hashes)
        rt.cluster.share_sessions_ended(user_id, token_hashes)


def user_changed(rt: Runtime, user_id: str) -> None:
    """The one place that says "this user's row changed", called after the changing commit.

    Sessions carry their user, so the session cache forgets the user's sessions: the next
    request reads the row again and sees the new roles, activity or profile at once. Every
    function here that updates a user calls this; the cluster tells every other process.
    """
    rt.session_cache.forget_user(user_id)
    rt.cluster.share_user_changed(user_id)


async def logout(rt: Runtime, session: Session) -> None:
    """End this session (only this one, as Mattermost's logout does)."""
    ended = await rt.db.write(lambda conn: store.delete_session(conn, session.token_hash))
    sessions_ended(rt, session.user.id, ended)


def _get_user(conn: Connection, user_id: str) -> User:
    """The user ``user_id`` names, or 404 (a malformed id names nobody)."""
    user = store.find_user(conn, user_id) if is_valid_id(user_id) else None
    if user is None:
        raise NotFound("app.user.missing_account.const", "Unable to find the user.")
    return user


async def get_user(rt: Runtime, user_id: str) -> User:
    return await rt.db.read(lambda conn: _get_user(conn, user_id))


async def get_user_by_username(rt: Runtime, username: str) -> User:
    user = await rt.db.read(lambda conn: store.find_user_by_username(conn, username))
    if user is None:
        raise NotFound(
            "app.user.get_by_username.app_error",
            "Unable to find an existing account matching your username for this team.",
        )
    return user


async def list_users(
    rt: Runtime, page: int, per_page: int, ids: list[str] | None = None
) -> list[User]:
    return await rt.db.read(lambda conn: store.list_users(conn, page * per_page, per_page, ids))


def _profile_changes(user: User, changes: dict[str, str]) -> dict[str, Any]:
    """The fields of ``changes`` a profile patch sets, checked (400 for a bad one)."""
    allowed: dict[str, Any] = {
        k: v for k, v in changes.items() if k in ("nickname", "first_name", "last_name", "position")
    }
    for key, value in allowed.items():
        if len(value) > 64:
            raise BadRequest(f"model.user.is_valid.{key}.app_error", f"Invalid {key}.")
    if "email" in changes and changes["email"].lower() != user.email:
        if not is_valid_email(changes["email"]):
            raise BadRequest("model.user.is_valid.email.app_error", "Invalid email.")
        allowed["email"] = changes["email"].lower()
    return allowed


async def patch_user(rt: Runtime, actor: User, user_id: str, changes: dict[str, str]) -> User:
    """Profile fields only; roles and passwords have their own calls."""
    if actor.id != user_id and not can_manage_system(actor):
        raise permission_error(actor.id, "edit_other_users")
    now = rt.clock.now_ms()

    def work(conn: Connection) -> User:
        user = _get_user(conn, user_id)
        allowed = _profile_changes(user, changes)
        if "email" in allowed and store.find_user_by_email(conn, allowed["email"]) is not None:
            raise Conflict(
                "app.user.save.email_exists.app_error", "An account with that email already exists."
            )
        store.update_user(conn, user_id, update_at=now, **allowed)
        return replace(user, update_at=now, **allowed)

    patched = await rt.db.write(work)
    user_changed(rt, user_id)
    return patched


async def change_password(
    rt: Runtime, actor: User, user_id: str, current: str, new: str, *, keep_session: str = ""
) -> None:
    """Users change their own with the current password; admins reset anyone's.

    Either way the account's sessions end, as Mattermost's do: all but the caller's own
    (``keep_session``, a token hash) when users change their own, all of them on a reset.
    Two units of work, the check and the change, with argon2 (verifying the current password,
    hashing the new one) between them: it runs in a thread, outside any transaction.
    """
    if actor.id != user_id and not can_manage_system(actor):
        raise permission_error(actor.id, "edit_other_users")
    check_password(new, password_rules(await rt.config()))
    own = actor.id == user_id

    def stored_hash(conn: Connection) -> str | None:
        """404 for no such user; for one's own password, the hash to check ``current`` against."""
        _get_user(conn, user_id)
        found = store.find_login(conn, actor.username) if own else None
        return found[1] if found is not None else None

    stored = await rt.db.read(stored_hash)
    if own and (stored is None or not await _verify_password(stored, current)):
        raise BadRequest(
            "api.user.update_password.incorrect.app_error",
            'The "Current Password" you entered is incorrect. Please check that Caps Lock is off and try again.',
        )
    password_hash = await hash_password(rt, new)
    now = rt.clock.now_ms()
    keep = keep_session if own else ""

    def work(conn: Connection) -> list[str]:
        store.update_user(
            conn, user_id, password_hash=password_hash, last_password_update=now, update_at=now
        )
        return store.delete_user_sessions(conn, user_id, keep=keep)

    ended = await rt.db.write(work)
    sessions_ended(rt, user_id, ended)
    user_changed(rt, user_id)


async def set_roles(rt: Runtime, actor: User | None, user_id: str, roles: str) -> User:
    """Make or unmake a system admin. ``actor`` None is the local CLI."""
    if actor is not None and not can_manage_system(actor):
        raise permission_error(actor.id, MANAGE_SYSTEM)
    wanted = set(roles.split())
    if not wanted <= {"system_admin", "system_user"} or "system_user" not in wanted:
        raise BadRequest(
            "api.roles.patch_roles.invalid",
            'Roles must be "system_user" or "system_admin system_user".',
        )
    normalised = "system_admin system_user" if "system_admin" in wanted else "system_user"
    now = rt.clock.now_ms()

    def work(conn: Connection) -> User:
        user = _get_user(conn, user_id)
        store.update_user(conn, user_id, roles=normalised, update_at=now)
        return replace(user, roles=normalised, update_at=now)

    changed = await rt.db.write(work)
    user_changed(rt, user_id)
    return changed


async def set_active(rt: Runtime, actor: User | None, user_id: str, active: bool) -> User:
    """Deactivate (and sign out everywhere) or reactivate an account.

    The account's outgoing hooks stop matching posts while it is deactivated and match again
    once it is back: the match indexes of the teams holding its hooks are marked stale in the
    same transaction. Deliveries already queued for those hooks are not sent (the worker
    records them failed, "the hook's owner is deactivated").
    """
    if actor is not None and not can_manage_system(actor):
        raise permission_error(actor.id, MANAGE_SYSTEM)
    now = rt.clock.now_ms()
    delete_at = 0 if active else now

    def work(conn: Connection) -> tuple[User, list[str]]:
        user = _get_user(conn, user_id)
        store.update_user(conn, user_id, delete_at=delete_at, update_at=now)
        for team_id in hook_store.list_creator_team_ids(conn, user_id):
            team_store.bump_hooks_version(conn, team_id)
        ended = [] if active else store.delete_user_sessions(conn, user_id)
        return replace(user, delete_at=delete_at, update_at=now), ended

    changed, ended = await rt.db.write(work)
    sessions_ended(rt, user_id, ended)
    user_changed(rt, user_id)
    return changed
