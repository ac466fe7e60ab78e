"""the conflict index of outgoing hooks: a row per (trigger word, callback URL) pair, wide hooks listed

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:00:00

Filled from the live hooks already stored, oldest first. Two of them may already conflict (made
by a bulk load, or by two creates racing before this index existed); the older keeps the shared
pair, the younger is stored without it.
"""

import json
from collections.abc import Iterator, Sequence
from hashlib import blake2b
from itertools import product
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in tidings.store.hooks when this migration was written (a migration keeps its own copy:
# the rows it writes must not change with later code).
WIDE_HOOK_KEYS = 256
BATCH = 1000


def _pair_digest(word: str, url: str) -> str:
    return blake2b(json.dumps([word, url]).encode(), digest_size=16).hexdigest()


def upgrade() -> None:
    op.create_table(
        "hook_conflict_keys",
        sa.Column("team_id", sa.String(length=26), nullable=False),
        sa.Column("channel_id", sa.String(length=26), nullable=False),
        sa.Column("pair_digest", sa.String(length=32), nullable=False),
        sa.Column("hook_id", sa.String(length=26), nullable=False),
        sa.PrimaryKeyConstraint(
            "team_id", "channel_id", "pair_digest", name=op.f("pk_hook_conflict_keys")
        ),
    )
    with op.batch_alter_table("hook_conflict_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_hook_conflict_keys_hook_id"), ["hook_id"], unique=False
        )
    op.create_table(
        "wide_hooks",
        sa.Column("team_id", sa.String(length=26), nullable=False),
        sa.Column("channel_id", sa.String(length=26), nullable=False),
        sa.Column("hook_id", sa.String(length=26), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "channel_id", "hook_id", name=op.f("pk_wide_hooks")),
    )
    _fill(op.get_bind())


def _live_hooks(conn: sa.Connection) -> Iterator[Any]:
    hooks = sa.table(
        "outgoing_hooks",
        sa.column("id", sa.String),
        sa.column("team_id", sa.String),
        sa.column("channel_id", sa.String),
        sa.column("trigger_words", sa.JSON),
        sa.column("callback_urls", sa.JSON),
        sa.column("create_at", sa.BigInteger),
        sa.column("delete_at", sa.BigInteger),
    )
    # Read whole before any insert on the same connection.
    yield from conn.execute(
        sa.select(hooks).where(hooks.c.delete_at == 0).order_by(hooks.c.create_at, hooks.c.id)
    ).all()


def _fill(conn: sa.Connection) -> None:
    keys_table = sa.table(
        "hook_conflict_keys",
        sa.column("team_id"),
        sa.column("channel_id"),
        sa.column("pair_digest"),
        sa.column("hook_id"),
    )
    wide_table = sa.table(
        "wide_hooks", sa.column("team_id"), sa.column("channel_id"), sa.column("hook_id")
    )
    taken: set[tuple[str, str, str]] = set()
    keys: list[dict[str, str]] = []
    wide: list[dict[str, str]] = []
    for hook in _live_hooks(conn):
        words, urls = set(hook.trigger_words or ()), set(hook.callback_urls or ())
        place = {"team_id": hook.team_id, "channel_id": hook.channel_id}
        if len(words) * len(urls) > WIDE_HOOK_KEYS:
            wide.append({**place, "hook_id": hook.id})
            continue
        for word, url in product(words, urls):
            key = (hook.team_id, hook.channel_id, _pair_digest(word, url))
            if key not in taken:
                taken.add(key)
                keys.append({**place, "pair_digest": key[2], "hook_id": hook.id})
        if len(keys) >= BATCH:
            conn.execute(keys_table.insert(), keys)
            keys = []
    if keys:
        conn.execute(keys_table.insert(), keys)
    if wide:
        conn.execute(wide_table.insert(), wide)


def downgrade() -> None:
    op.drop_table("wide_hooks")
    with op.batch_alter_table("hook_conflict_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hook_conflict_keys_hook_id"))
    op.drop_table("hook_conflict_keys")
