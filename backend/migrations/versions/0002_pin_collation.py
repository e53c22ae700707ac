"""Pin the text collation to utf8mb4_uca1400_ai_ci (Unicode 14), on every supported MariaDB.

0001 asked for utf8mb4_unicode_ci (Unicode 4.0), under which every character outside the Basic
Multilingual Plane, every emoji among them, compares equal to every other. MariaDB 11.8 makes
utf8mb4_uca1400_ai_ci the default wherever no collation is named; 10.11 has it but defaults to
another. Naming it here gives titles the same equality and order at both ends of the supported
range: case, accents and ß/ss ignored, emoji told apart (tests/e2e/test_text_collation.py).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLLATION = "utf8mb4_uca1400_ai_ci"


def upgrade():
    # The schema's default, for tables made later; then the existing table. title and body carry
    # no index, so the change is metadata only, however many posts there are: INSTANT says so,
    # and would fail rather than copy the table (checked on 10.11 and 11.8).
    op.execute(f"ALTER DATABASE CHARACTER SET utf8mb4 COLLATE {COLLATION}")
    op.execute(
        f"ALTER TABLE posts CONVERT TO CHARACTER SET utf8mb4 COLLATE {COLLATION}, ALGORITHM=INSTANT"
    )


def downgrade():
    op.execute("ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    op.execute("ALTER TABLE posts CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
