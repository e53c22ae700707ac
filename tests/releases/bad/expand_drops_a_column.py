from alembic import op


def upgrade():
    op.drop_column("posts", "body")
