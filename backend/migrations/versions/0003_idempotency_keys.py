"""Idempotency keys of POST /api/posts: a retry returns its first answer, never a second post.

One row per (token, key), written in the same transaction as the post it answers for, so the key
and the post are stored together or not at all (backend/app/idempotency.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "idempotency_keys",
        # SHA-256 of the bearer token: each token has its own key space, and no token is stored.
        sa.Column("token_sha256", sa.BINARY(32), nullable=False),
        # The header's value, printable ASCII: compared byte for byte, case included.
        sa.Column("idempotency_key", sa.String(255, collation="ascii_bin"), nullable=False),
        # SHA-256 of the request's content: the same key with other content is refused (422).
        sa.Column("request_sha256", sa.BINARY(32), nullable=False),
        sa.Column(
            "created_at",
            mysql.DATETIME(fsp=6),
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP(6)"),
        ),
        # The first answer, replayed to every retry.
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("location", sa.String(255), nullable=False),
        sa.Column("body", mysql.MEDIUMTEXT, nullable=False),
        sa.PrimaryKeyConstraint("token_sha256", "idempotency_key"),
        # Expired keys are deleted oldest first.
        sa.Index("idempotency_keys_created_at", "created_at"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_uca1400_ai_ci",
    )


def downgrade():
    op.drop_table("idempotency_keys")
