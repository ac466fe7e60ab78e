"""The database schema: the single source of truth for tables, read by queries and by Alembic.

Timestamps are integer Unix milliseconds (Mattermost's unit), so no naive datetimes exist anywhere.
Lists and property maps are JSON text, portable between SQLite and PostgreSQL.
The delivery status transitions are written down in ``tidings.domain.deliveries``.
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = 26


def _ms(name: str) -> Column[int]:
    return Column(name, BigInteger, nullable=False, default=0)


users = Table(
    "users",
    metadata,
    Column("id", String(ID), primary_key=True),
    _ms("create_at"),
    _ms("update_at"),
    _ms("delete_at"),
    Column("username", String(64), nullable=False, unique=True),
    Column("email", String(128), nullable=False, unique=True),
    Column("password_hash", String(256), nullable=False, default=""),
    Column("nickname", String(64), nullable=False, default=""),
    Column("first_name", String(64), nullable=False, default=""),
    Column("last_name", String(64), nullable=False, default=""),
    Column("position", String(128), nullable=False, default=""),
    Column("roles", String(256), nullable=False, default="system_user"),
    Column("locale", String(5), nullable=False, default="en"),
    Column("is_bot", Boolean, nullable=False, default=False),
    _ms("last_password_update"),
    Column("props", JSON, nullable=False, default=dict),
)

sessions = Table(
    "sessions",
    metadata,
    # sha256 of the bearer token: a leaked database does not leak usable tokens.
    Column("id", String(64), primary_key=True),
    Column("user_id", String(ID), nullable=False, index=True),
    Column("csrf_token", String(ID), nullable=False),
    _ms("create_at"),
    _ms("expires_at"),
    _ms("last_activity_at"),
)

teams = Table(
    "teams",
    metadata,
    Column("id", String(ID), primary_key=True),
    _ms("create_at"),
    _ms("update_at"),
    _ms("delete_at"),
    Column("name", String(64), nullable=False, unique=True),
    Column("display_name", String(64), nullable=False),
    Column("type", String(1), nullable=False, default="O"),
    Column("description", String(255), nullable=False, default=""),
    Column("email", String(128), nullable=False, default=""),
    Column("invite_id", String(ID), nullable=False, default=""),
    Column("allow_open_invite", Boolean, nullable=False, default=False),
    # Bumped with every change to the team's hooks, so cached match indexes know they are stale.
    Column("hooks_version", Integer, nullable=False, default=0),
)

team_members = Table(
    "team_members",
    metadata,
    Column("team_id", String(ID), primary_key=True),
    Column("user_id", String(ID), primary_key=True, index=True),
    Column("roles", String(64), nullable=False, default="team_user"),
    _ms("delete_at"),
)

channels = Table(
    "channels",
    metadata,
    Column("id", String(ID), primary_key=True),
    _ms("create_at"),
    _ms("update_at"),
    _ms("delete_at"),
    Column("team_id", String(ID), nullable=False, default=""),
    Column("type", String(1), nullable=False),
    Column("name", String(64), nullable=False),
    Column("display_name", String(64), nullable=False, default=""),
    Column("header", String(1024), nullable=False, default=""),
    Column("purpose", String(250), nullable=False, default=""),
    Column("creator_id", String(ID), nullable=False, default=""),
    _ms("last_post_at"),
    Column("total_msg_count", BigInteger, nullable=False, default=0),
    UniqueConstraint("team_id", "name"),
)

channel_members = Table(
    "channel_members",
    metadata,
    Column("channel_id", String(ID), primary_key=True),
    Column("user_id", String(ID), primary_key=True, index=True),
    Column("roles", String(64), nullable=False, default="channel_user"),
    _ms("last_viewed_at"),
    Column("msg_count", BigInteger, nullable=False, default=0),
    Column("mention_count", BigInteger, nullable=False, default=0),
)

posts = Table(
    "posts",
    metadata,
    Column("id", String(ID), primary_key=True),
    _ms("create_at"),
    _ms("update_at"),
    _ms("edit_at"),
    _ms("delete_at"),
    Column("user_id", String(ID), nullable=False),
    Column("channel_id", String(ID), nullable=False),
    Column("root_id", String(ID), nullable=False, default=""),
    Column("message", Text, nullable=False, default=""),
    Column("type", String(64), nullable=False, default=""),
    Column("props", JSON, nullable=False, default=dict),
    Column("file_ids", JSON, nullable=False, default=list),
    Column("pending_post_id", String(64), nullable=False, default=""),
    Column("is_pinned", Boolean, nullable=False, default=False),
    # How many webhook replies led to this post: 0 for a person's (or a bot account's) post, n + 1
    # for a hook's reply to a post of depth n. Hooks with ``trigger_on_bot_posts`` fire for reply
    # posts only below ``OutgoingWebhookMaxChainDepth``, so bots answering bots stop.
    Column("webhook_depth", Integer, nullable=False, default=0),
    Index("ix_posts_channel_create", "channel_id", "create_at"),
    # Replies only: most posts are roots (root_id ""), and an entry for each cost every post a
    # page in its commit for nothing (bench/posts_per_second.py). A query uses it only when it
    # says ``root_id <> ''`` itself (store/posts.replies_of).
    Index(
        "ix_posts_root",
        "root_id",
        sqlite_where=text("root_id <> ''"),
        postgresql_where=text("root_id <> ''"),
    ),
)

outgoing_hooks = Table(
    "outgoing_hooks",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("token", String(ID), nullable=False),
    _ms("create_at"),
    _ms("update_at"),
    _ms("delete_at"),
    Column("creator_id", String(ID), nullable=False),
    Column("channel_id", String(ID), nullable=False, default=""),
    Column("team_id", String(ID), nullable=False),
    Column("trigger_words", JSON, nullable=False, default=list),
    Column("trigger_when", Integer, nullable=False, default=0),
    Column("callback_urls", JSON, nullable=False, default=list),
    Column("display_name", String(64), nullable=False, default=""),
    Column("description", String(500), nullable=False, default=""),
    Column("content_type", String(128), nullable=False, default=""),
    Column("username", String(64), nullable=False, default=""),
    Column("icon_url", String(1024), nullable=False, default=""),
    Column("signing_secret", String(64), nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("disabled_reason", String(255), nullable=False, default=""),
    # NULL or 0: the server's OutgoingIntegrationRequestsTimeout.
    Column("timeout_seconds", Integer, nullable=True),
    # Opt-ins beyond Mattermost: the four extra payload keys; firing for webhook reply posts.
    Column("extended_payload", Boolean, nullable=False, default=False),
    Column("trigger_on_bot_posts", Boolean, nullable=False, default=False),
    # Why a hook that is enabled does not fire for now ("" while it fires): a private-channel
    # hook whose creator left the channel; cleared when they rejoin.
    Column("stopped_reason", String(255), nullable=False, default=""),
    # When the owner was last told about failures (at most one notice per hook per hour).
    _ms("failure_notice_at"),
    Index("ix_outgoing_hooks_team", "team_id", "delete_at"),
)

# The conflict index of outgoing hooks: one row per (trigger word, callback URL) pair of every
# live hook. Two hooks of one team and channel (or two team-wide ones) conflict exactly when
# they share a pair (``domain.hooks.conflict_keys``), so the primary key refuses a conflicting
# hook without the team's other hooks being read. The pair is kept as a 128-bit digest: words
# and URLs run to a kilobyte each, a fixed-width key keeps the index small.
hook_conflict_keys = Table(
    "hook_conflict_keys",
    metadata,
    Column("team_id", String(ID), primary_key=True),
    Column("channel_id", String(ID), primary_key=True),
    Column("pair_digest", String(32), primary_key=True),
    Column("hook_id", String(ID), nullable=False, index=True),
)

# Live hooks with more pairs than ``store.hooks.WIDE_HOOK_KEYS`` (a valid hook may have
# 511 × 113): they have no rows in hook_conflict_keys, a hook's words and URLs being bounded
# but their product not; every hook written in their channel is compared with them instead.
wide_hooks = Table(
    "wide_hooks",
    metadata,
    Column("team_id", String(ID), primary_key=True),
    Column("channel_id", String(ID), primary_key=True),
    Column("hook_id", String(ID), primary_key=True),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("hook_id", String(ID), nullable=False),
    Column("post_id", String(ID), nullable=False),
    # The triggering post's thread root, so a "comment" reply needs no extra read.
    Column("root_id", String(ID), nullable=False, default=""),
    Column("channel_id", String(ID), nullable=False),
    Column("url", String(1024), nullable=False),
    # scheme://host:port of the URL: the per-destination cap's key, so claims can skip busy ones.
    Column("destination", String(300), nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("trigger_word", String(1024), nullable=False, default=""),
    _ms("create_at"),
    _ms("update_at"),
    _ms("next_attempt_at"),
    Column("attempt_count", Integer, nullable=False, default=0),
    _ms("lease_expires_at"),
    Column("reply_posted", Boolean, nullable=False, default=False),
    Column("last_status_code", Integer, nullable=False, default=0),
    Column("last_error_kind", String(32), nullable=False, default=""),
    Column("last_error", String(1024), nullable=False, default=""),
    # The triggering post's webhook_depth, so its reply's depth needs no extra read.
    Column("post_depth", Integer, nullable=False, default=0),
    # Deferred replies (hooks with extended_payload): sha256 of the response_url's secret ("" for
    # none) and how often it has been used (at most 5, within OutgoingWebhookResponseUrlMinutes).
    Column("response_secret_hash", String(64), nullable=False, default=""),
    Column("response_uses", Integer, nullable=False, default=0),
    # The claim's range scan, in due order. Destination and id are in the index so that passing
    # over a busy destination's backlog reads index entries only, never its rows: 4× cheaper per
    # skipped delivery on SQLite (0.13 µs against 0.53 µs), still linear in the backlog.
    Index("ix_deliveries_due", "status", "next_attempt_at", "destination", "id"),
    Index("ix_deliveries_hook", "hook_id", "create_at"),
    Index("ix_deliveries_response_secret", "response_secret_hash"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("delivery_id", String(ID), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    _ms("started_at"),
    Column("duration_ms", Integer, nullable=False, default=0),
    Column("status_code", Integer, nullable=False, default=0),
    Column("error_kind", String(32), nullable=False, default=""),
    Column("error_message", String(1024), nullable=False, default=""),
    Column("request_headers", JSON, nullable=False, default=dict),
    Column("response_headers", JSON, nullable=False, default=dict),
    Column("response_excerpt", Text, nullable=False, default=""),
)

system_config = Table(
    "system_config",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
    _ms("update_at"),
)

# Failed logins, one row each, so every process counts the same failures (tidings.store.logins;
# the limit is tidings.services.users.login's). The login id is kept only as a digest; rows older
# than the window are swept.
login_failures = Table(
    "login_failures",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("address", String(64), nullable=False),
    Column("login_digest", String(64), nullable=False),
    Column("known", Boolean, nullable=False),
    _ms("failed_at"),
    Index("ix_login_failures_pair", "address", "login_digest", "failed_at"),
    Index("ix_login_failures_address", "address", "known", "failed_at"),
)

# The cluster's event log (tidings.cluster): every websocket event and every "forget this
# session" notice a process publishes, numbered, so other processes replay them in order and a
# dropped listening connection catches up by sequence. Kept a few minutes, then swept.
cluster_events = Table(
    "cluster_events",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("origin", String(ID), nullable=False),
    Column("body", Text, nullable=False),
    _ms("created_at"),
    Index("ix_cluster_events_created_at", "created_at"),
)
