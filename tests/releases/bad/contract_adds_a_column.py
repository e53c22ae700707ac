import sqlalchemy as sa
from alembic import op


def upgrade():
    op.add_column("posts", sa.Column("summary", sa.Text, nullable=True))
