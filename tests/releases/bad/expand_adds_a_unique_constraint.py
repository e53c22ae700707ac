from alembic import op


def upgrade():
    op.create_unique_constraint("uq_posts_title", "posts", ["title"])
