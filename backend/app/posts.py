"""Posts: the table and its queries (SQLAlchemy Core), plus input validation."""

import re

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from .errors import ApiError, ValidationError

TITLE_MAX = 200
BODY_MAX = 10_000
LIMIT_DEFAULT = 20
LIMIT_MAX = 100

metadata = sa.MetaData()

# Mirrors migrations/versions/0001_create_posts.py; the migration owns the real DDL.
posts = sa.Table(
    "posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(TITLE_MAX), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", mysql.DATETIME(fsp=6), nullable=False),
    sa.Column("updated_at", mysql.DATETIME(fsp=6), nullable=False),
)


def _as_dict(row):
    return {
        "id": row.id,
        "title": row.title,
        "body": row.body,
        "created_at": row.created_at.isoformat() + "Z",
        "updated_at": row.updated_at.isoformat() + "Z",
    }


def list_posts(conn, limit=LIMIT_DEFAULT, offset=0):
    query = sa.select(posts).order_by(posts.c.id.desc()).limit(limit).offset(offset)
    return [_as_dict(row) for row in conn.execute(query)]


def get_post(conn, post_id):
    row = conn.execute(sa.select(posts).where(posts.c.id == post_id)).first()
    return _as_dict(row) if row else None


def create_post(conn, title, body):
    result = conn.execute(posts.insert().values(title=title, body=body))
    return get_post(conn, result.inserted_primary_key[0])


def update_post(conn, post_id, title, body):
    # rowcount counts matched rows (PyMySQL sets CLIENT.FOUND_ROWS), so an unchanged post is found.
    result = conn.execute(
        posts.update().where(posts.c.id == post_id).values(title=title, body=body)
    )
    return get_post(conn, post_id) if result.rowcount else None


def delete_post(conn, post_id):
    return conn.execute(posts.delete().where(posts.c.id == post_id)).rowcount > 0


def validate_post(data):
    """(title, body) from a decoded JSON object, or ValidationError naming the field."""
    if not isinstance(data, dict):
        raise ApiError("request body must be a JSON object", 422, "validation_failed")
    unknown = sorted(set(data) - {"title", "body"})
    if unknown:
        raise ValidationError(unknown[0], "unknown field")
    title, body = data.get("title"), data.get("body")
    if not isinstance(title, str):
        raise ValidationError("title", "required, a string")
    if not title.strip():
        raise ValidationError("title", "must not be empty")
    if len(title) > TITLE_MAX:
        raise ValidationError("title", f"at most {TITLE_MAX} characters")
    if not isinstance(body, str):
        raise ValidationError("body", "required, a string")
    if len(body) > BODY_MAX:
        raise ValidationError("body", f"at most {BODY_MAX} characters")
    return title, body


def parse_page(args):
    """(limit, offset) from query arguments, or ValidationError naming the bad one."""

    def as_int(name, default, low, high):
        raw = args.get(name)
        if raw is None:
            return default
        if not re.fullmatch(r"[0-9]{1,10}", raw) or not low <= int(raw) <= high:
            raise ValidationError(name, f"must be an integer from {low} to {high}")
        return int(raw)

    return as_int("limit", LIMIT_DEFAULT, 1, LIMIT_MAX), as_int("offset", 0, 0, 10**9)
