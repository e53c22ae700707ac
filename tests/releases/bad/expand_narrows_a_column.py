import sqlalchemy as sa
from alembic import op


def upgrade():
    op.alter_column("posts", "title", existing_type=sa.String(200), type_=sa.String(100))
