"""shared state for many processes: failed logins counted in the database, and the cluster event log

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", _key(), primary_key=True, autoincrement=True),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("login_digest", sa.String(length=64), nullable=False),
        sa.Column("known", sa.Boolean(), nullable=False),
        sa.Column("failed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(
        "ix_login_failures_pair", "login_failures", ["address", "login_digest", "failed_at"]
    )
    op.create_index(
        "ix_login_failures_address", "login_failures", ["address", "known", "failed_at"]
    )
    op.create_table(
        "cluster_events",
        sa.Column("seq", _key(), primary_key=True, autoincrement=True),
        sa.Column("origin", sa.String(length=26), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_cluster_events")),
    )
    op.create_index("ix_cluster_events_created_at", "cluster_events", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_cluster_events_created_at", table_name="cluster_events")
    op.drop_table("cluster_events")
    op.drop_index("ix_login_failures_address", table_name="login_failures")
    op.drop_index("ix_login_failures_pair", table_name="login_failures")
    op.drop_table("login_failures")
