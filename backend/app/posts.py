"""Posts: the table and its queries (SQLAlchemy Core), plus input validation."""

import re

import regex
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from .errors import ApiError, ValidationError

TITLE_MAX = 200
BODY_MAX = 10_000
LIMIT_DEFAULT = 20
LIMIT_MAX = 100
# Lists carry an excerpt, not the whole body: a page of LIMIT_MAX posts then stays small whatever
# the posts hold (the full body is at /api/posts/<id>). Worst case per item, JSON as UTF-8: every
# character escaped to 6 bytes (a control character, \u0001), 6 x (200 + 280) + ~120 = 3 KB, so a
# page of 100 stays below LIST_RESPONSE_CEILING (tests/backend/test_posts_api.py checks it).
EXCERPT_MAX = 280
LIST_RESPONSE_CEILING = 320 * 1024
# Deep pages are reached with `before` (keyset: cost independent of the depth); offset is kept for
# old clients but bounded, since MariaDB walks the index up to it.
OFFSET_MAX = 1000

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


# A list page with each item encoded by MariaDB: an index range scan that reads offset + limit rows
# however deep the page, and the fields and formats jsonify would give the same rows
# (tests/backend/test_posts_json.py holds the two equal). Decoding 20 rows in PyMySQL and encoding
# them again was the largest part of the read path's Python time; one JSON text per row costs
# MariaDB less than JSON_ARRAYAGG over a derived table (docs/performance.md, "Performance"). Keys
# in jsonify's sorted order; a timestamp without a fraction leaves it out, like isoformat().
_LIST_JSON = sa.text("""
    SELECT id, JSON_OBJECT(
        'created_at', IF(MICROSECOND(created_at) = 0,
                         DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%sZ'),
                         DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ')),
        'excerpt', LEFT(body, :excerpt_max),
        'id', id,
        'title', title,
        'truncated', CHAR_LENGTH(LEFT(body, :excerpt_max + 1)) > :excerpt_max,
        'updated_at', IF(MICROSECOND(updated_at) = 0,
                         DATE_FORMAT(updated_at, '%Y-%m-%dT%H:%i:%sZ'),
                         DATE_FORMAT(updated_at, '%Y-%m-%dT%H:%i:%s.%fZ'))
    ) AS item
    FROM posts WHERE id < :before ORDER BY id DESC LIMIT :limit OFFSET :offset
""")
# Above every id an INT column holds: no `before` reads from the newest post down.
_ABOVE_ALL_IDS = 2**31


def list_posts_json(conn, limit=LIMIT_DEFAULT, before=None, offset=0):
    """The newest posts' summaries (with id < before, if given) as (JSON array text, the id the
    next page starts below, or None when no post follows)."""
    # One row more than the page says whether a post follows; a full last page then links nowhere.
    params = {"before": before or _ABOVE_ALL_IDS, "limit": limit + 1, "offset": offset}
    rows = conn.execute(_LIST_JSON, {**params, "excerpt_max": EXCERPT_MAX}).all()
    page = rows[:limit]
    items = "[" + ",".join(row.item for row in page) + "]"
    return items, page[-1].id if len(rows) > limit else None


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


# What text is valid (README, "The API"): Unicode characters only, so no lone UTF-16 surrogate
# (JSON's "\ud800", or CESU-8 bytes); no control characters (C0, DEL, C1, NUL among them), except
# newline and tab in a body; and a title a reader can see. Bidi controls are allowed (Arabic and
# Hebrew need them) and isolated on the page (<bdi>), so they cannot reorder what follows.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_TITLE_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# A character a reader sees: not a separator (Z: spaces), not C (controls, format characters,
# surrogates, private use, unassigned), not one Unicode says renders as nothing on its own
# (Default_Ignorable_Code_Point: variation selectors, zero-width and Hangul fillers, among them
# marks outside C), and not the blank Braille pattern, a symbol with no dots. The regex module
# carries its own Unicode data, so both Python runtimes judge a title alike.
_VISIBLE = regex.compile(r"[^\p{Z}\p{C}\p{Default_Ignorable_Code_Point}\u2800]")


def _check_text(field, value, control):
    if _SURROGATE.search(value):
        raise ValidationError(field, "is not valid Unicode text (a lone UTF-16 surrogate)")
    if control.search(value):
        allowed = " other than newline and tab" if control is _BODY_CONTROL else ""
        raise ValidationError(field, f"must not contain control characters{allowed}")


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
    if len(title) > TITLE_MAX:
        raise ValidationError("title", f"at most {TITLE_MAX} characters")
    _check_text("title", title, _TITLE_CONTROL)
    if not _VISIBLE.search(title):
        raise ValidationError("title", "must not be empty: it needs a visible character")
    if not isinstance(body, str):
        raise ValidationError("body", "required, a string")
    if len(body) > BODY_MAX:
        raise ValidationError("body", f"at most {BODY_MAX} characters")
    _check_text("body", body, _BODY_CONTROL)
    return title, body


def parse_page(args):
    """(limit, before, offset) from query arguments, or ValidationError naming the bad one."""

    def as_int(name, default, low, high, hint=""):
        raw = args.get(name)
        if raw is None:
            return default
        if not re.fullmatch(r"[0-9]{1,10}", raw) or not low <= int(raw) <= high:
            raise ValidationError(name, f"must be an integer from {low} to {high}{hint}")
        return int(raw)

    return (
        as_int("limit", LIMIT_DEFAULT, 1, LIMIT_MAX),
        as_int("before", None, 1, 2**31),
        as_int("offset", 0, 0, OFFSET_MAX, "; page deeper with `before` (the `next` link)"),
    )
