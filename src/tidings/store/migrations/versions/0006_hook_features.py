"""outgoing-hook features beyond Mattermost: opt-ins, stop reason, chain depth, response URLs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _flag(name: str) -> sa.Column[bool]:
    return sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())


def _count(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False, server_default="0")


def upgrade() -> None:
    with op.batch_alter_table("outgoing_hooks") as table:
        table.add_column(_flag("extended_payload"))
        table.add_column(_flag("trigger_on_bot_posts"))
        table.add_column(
            sa.Column("stopped_reason", sa.String(length=255), nullable=False, server_default="")
        )
    with op.batch_alter_table("posts") as table:
        table.add_column(_count("webhook_depth"))
    with op.batch_alter_table("deliveries") as table:
        table.add_column(_count("post_depth"))
        table.add_column(
            sa.Column(
                "response_secret_hash", sa.String(length=64), nullable=False, server_default=""
            )
        )
        table.add_column(_count("response_uses"))
    op.create_index("ix_deliveries_response_secret", "deliveries", ["response_secret_hash"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_response_secret", table_name="deliveries")
    with op.batch_alter_table("deliveries") as table:
        table.drop_column("response_uses")
        table.drop_column("response_secret_hash")
        table.drop_column("post_depth")
    with op.batch_alter_table("posts") as table:
        table.drop_column("webhook_depth")
    with op.batch_alter_table("outgoing_hooks") as table:
        table.drop_column("stopped_reason")
        table.drop_column("trigger_on_bot_posts")
        table.drop_column("extended_payload")
