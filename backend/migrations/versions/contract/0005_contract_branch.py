"""The contract branch: from here on, a migration is expand or contract (docs/deploy.md).

Contract migrations drop, rename or narrow what the running code no longer uses. They run only
when asked (`python -m app.migrate --contract`, `make migrate-contract`), once every replica runs
the release that stopped using it. This revision changes nothing: it names the branch, so that
the next contract migration is `alembic revision --head contract@head --version-path
migrations/versions/contract -m "..."`.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-07
"""

revision = "0005"
down_revision = "0003"
branch_labels = ("contract",)
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
