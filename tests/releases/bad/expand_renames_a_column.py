import sqlalchemy as sa
from alembic import op


def upgrade():
    op.alter_column("posts", "body", new_column_name="content", existing_type=sa.Text)
