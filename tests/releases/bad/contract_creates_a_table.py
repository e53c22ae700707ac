import sqlalchemy as sa
from alembic import op


def upgrade():
    op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True))
