"""Users and the rules on their names. Pure; no I/O."""

import re
from dataclasses import dataclass, field
from typing import Any

from tidings.domain.server_config import PasswordRules
from tidings.errors import BadRequest

# ``fullmatch`` with explicit ASCII ranges: ``$`` alone would accept a trailing newline.
USERNAME_PATTERN = re.compile(r"[a-z][a-z0-9._-]{2,21}")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SYSTEM_BOT_USERNAME = "tidings"
# Names no person may take: Mattermost's restricted usernames (all, channel, matterbot, system),
# the other mention keyword (here) and the system bot's name. Compared after lower-casing.
RESERVED_USERNAMES = frozenset(
    {SYSTEM_BOT_USERNAME, "all", "channel", "here", "matterbot", "system"}
)


@dataclass(frozen=True, slots=True)
class User:
    """A person or bot account, as Mattermost's User JSON describes it (no password hash here)."""

    id: str
    create_at: int
    update_at: int
    delete_at: int
    username: str
    email: str
    nickname: str = ""
    first_name: str = ""
    last_name: str = ""
    position: str = ""
    roles: str = "system_user"
    locale: str = "en"
    is_bot: bool = False
    last_password_update: int = 0
    props: dict[str, Any] = field(default_factory=dict)

    @property
    def role_set(self) -> frozenset[str]:
        """Roles as a set (Mattermost stores them space separated)."""
        return frozenset(self.roles.split())

    @property
    def is_system_admin(self) -> bool:
        return "system_admin" in self.role_set

    @property
    def is_active(self) -> bool:
        return self.delete_at == 0


def normalise_username(name: str) -> str:
    """Mattermost stores usernames lower-cased, whatever the client sent."""
    return name.lower()


def is_valid_username(name: str) -> bool:
    """3–22 characters of ``[a-z0-9._-]``, starting with a letter, and not a reserved name.

    No whitespace or control character can pass: the pattern is matched in full.
    """
    return bool(USERNAME_PATTERN.fullmatch(name)) and name not in RESERVED_USERNAMES


def is_valid_email(email: str) -> bool:
    """A light check: one @, a dot in the domain, no spaces."""
    return len(email) <= 128 and bool(EMAIL_PATTERN.match(email))


# Mattermost's character classes for PasswordSettings (ASCII, as its Go constants).
LOWERCASE_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")
UPPERCASE_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
NUMBERS = frozenset("0123456789")
SYMBOLS = frozenset(" !\"\\#$%&'()*+,-./:;<=>?@[]^_`|~")
MAX_PASSWORD_LENGTH = 72


def check_password(password: str, rules: PasswordRules) -> None:
    """Raise Mattermost's error for a password the rules refuse.

    As in Mattermost, the error id names every class the rules require (not only the missing
    ones), e.g. ``model.user.is_valid.pwd_lowercase_number.app_error``, so a client can show
    the whole rule.
    """
    chars = set(password)
    ok = rules.minimum_length <= len(password) <= MAX_PASSWORD_LENGTH
    suffix, needs = "", []
    for required, name, wanted, what in (
        (rules.lowercase, "lowercase", LOWERCASE_LETTERS, "one lowercase letter"),
        (rules.uppercase, "uppercase", UPPERCASE_LETTERS, "one uppercase letter"),
        (rules.number, "number", NUMBERS, "one number"),
        (rules.symbol, "symbol", SYMBOLS, 'one symbol (e.g. "~!@#$%^&*()")'),
    ):
        if required:
            suffix += f"_{name}"
            needs.append(what)
            ok = ok and not chars.isdisjoint(wanted)
    if ok:
        return
    message = (
        f"Your password must contain between {rules.minimum_length} and {MAX_PASSWORD_LENGTH} "
        "characters"
    )
    if needs:
        message += " made up of at least " + ", at least ".join(needs)
    raise BadRequest(f"model.user.is_valid.pwd{suffix}.app_error", message + ".")
