import sqlalchemy as sa
from alembic import op


def upgrade():
    # NOT NULL without a default: the release before inserts posts without it, and fails.
    op.add_column("posts", sa.Column("summary", sa.Text, nullable=False))
