"""The expand branch: from here on, a migration is expand or contract (docs/deploy.md).

Expand migrations only add: tables, nullable columns or columns with a default, indexes, and the
data that fills them. The release before keeps working on an expanded schema, so they run before
any replica changes (`python -m app.migrate`, the migrate service). This revision changes nothing:
it names the branch, so that the next expand migration is `alembic revision --head expand@head
--version-path migrations/versions/expand -m "..."`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

revision = "0004"
down_revision = "0003"
branch_labels = ("expand",)
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
