"""posts.body goes, posts.content becomes NOT NULL (contract: no replica reads body any more).

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
# The column this one makes NOT NULL.
depends_on = "0006"


def upgrade():
    # The posts the release before wrote after the expand step have no content yet.
    op.execute("UPDATE posts SET content = body WHERE content IS NULL")
    op.drop_column("posts", "body")
    op.alter_column("posts", "content", existing_type=sa.Text, nullable=False)


def downgrade():
    op.add_column("posts", sa.Column("body", sa.Text, nullable=True))
    op.execute("UPDATE posts SET body = content")
