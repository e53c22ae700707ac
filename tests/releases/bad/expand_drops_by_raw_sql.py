from alembic import op


def upgrade():
    op.execute("ALTER TABLE posts DROP COLUMN body")
