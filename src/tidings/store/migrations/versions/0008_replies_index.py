"""the replies index leaves root posts out: a root post writes no entry there

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPLIES_ONLY = sa.text("root_id <> ''")


def upgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index("ix_posts_root")
        batch_op.create_index(
            "ix_posts_root",
            ["root_id"],
            unique=False,
            sqlite_where=REPLIES_ONLY,
            postgresql_where=REPLIES_ONLY,
        )


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index("ix_posts_root")
        batch_op.create_index("ix_posts_root", ["root_id"], unique=False)
