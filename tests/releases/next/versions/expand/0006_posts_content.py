"""posts.content beside posts.body, filled from it (expand: the release before ignores it).

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    # Nullable: the release before inserts posts without it.
    op.add_column("posts", sa.Column("content", sa.Text, nullable=True))
    op.execute("UPDATE posts SET content = body WHERE content IS NULL")


def downgrade():
    op.drop_column("posts", "content")
