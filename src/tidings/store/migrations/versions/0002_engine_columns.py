"""delivery engine columns: failure notices on hooks, the thread root on deliveries

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outgoing_hooks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failure_notice_at", sa.BigInteger(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("root_id", sa.String(length=26), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("root_id")
    with op.batch_alter_table("outgoing_hooks", schema=None) as batch_op:
        batch_op.drop_column("failure_notice_at")
