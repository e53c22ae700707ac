"""The API's list page is encoded by MariaDB (posts.list_posts_json): it must say exactly what the
Python encoding of the same rows (python_page below, as jsonify would send it) says, whatever the
posts hold."""

import json

import pytest
import sqlalchemy as sa
from sqlalchemy import text

from app import posts


def python_page(conn, limit=posts.LIMIT_DEFAULT, before=None, offset=0):
    """The summaries of a list page, selected and encoded in Python: the reference."""
    table = posts.posts
    # One character more than the excerpt tells whether the body goes on.
    excerpt = sa.func.left(table.c.body, posts.EXCERPT_MAX + 1).label("excerpt")
    query = sa.select(table.c.id, table.c.title, excerpt, table.c.created_at, table.c.updated_at)
    if before is not None:
        query = query.where(table.c.id < before)
    rows = conn.execute(query.order_by(table.c.id.desc()).limit(limit).offset(offset))
    return [
        {
            "id": row.id,
            "title": row.title,
            "excerpt": row.excerpt[: posts.EXCERPT_MAX],
            "truncated": len(row.excerpt) > posts.EXCERPT_MAX,
            "created_at": row.created_at.isoformat() + "Z",
            "updated_at": row.updated_at.isoformat() + "Z",
        }
        for row in rows
    ]


# Text that JSON encoders disagree on when they can: quotes, backslashes, slashes, control
# characters (escaped), non-ASCII (UTF-8 as it is, never \u escapes), a character outside the BMP,
# right-to-left text and the line separators some encoders escape.
TRICKY = [
    ('quote " backslash \\ slash /', "tab\tnewline\nend"),
    ("\u00e9t\u00e9 \U0001f389 \u05e9\u05dc\u05d5\u05dd", "\u2028\u2029 \x7f?"),
    ("control", "\x01\x1f"),
    ("exactly the excerpt", "x" * posts.EXCERPT_MAX),
    ("one more than the excerpt", "y" * (posts.EXCERPT_MAX + 1)),
    ("wide", "\U0001f389" * (posts.EXCERPT_MAX + 5)),
    ("empty body", ""),
]


@pytest.fixture
def tricky_ids(app):
    engine = app.extensions["db_engine"]
    with engine.begin() as conn:
        ids = [posts.create_post(conn, title, body)["id"] for title, body in TRICKY]
        # A timestamp whose fraction is zero: Python's isoformat() leaves it out.
        conn.execute(
            text("UPDATE posts SET updated_at = '2024-01-02 03:04:05' WHERE id = :id"),
            {"id": ids[0]},
        )
    yield ids
    with engine.begin() as conn:
        for post_id in ids:
            posts.delete_post(conn, post_id)


@pytest.mark.parametrize("page", [{}, {"limit": 3}, {"limit": 4, "offset": 2}, {"before": "mid"}])
def test_list_page_from_mariadb_equals_the_python_encoding(app, tricky_ids, page):
    if page.get("before") == "mid":
        page = {"before": tricky_ids[4], "limit": 100}
    with app.extensions["db_engine"].connect() as conn:
        expected = python_page(conn, **page)
        limit = page.get("limit", posts.LIMIT_DEFAULT)
        followed = len(python_page(conn, **{**page, "limit": limit + 1})) > limit
        items, next_before = posts.list_posts_json(conn, **page)
    assert json.loads(items) == expected
    assert next_before == (expected[-1]["id"] if followed else None)
    # UTF-8 as it is (4 bytes an emoji, never a 12-byte \u escape pair), keys in sorted order.
    assert "\U0001f389" in items and "\\ud83c" not in items
    assert all(list(item) == sorted(item) for item in json.loads(items))


def test_empty_list_page_is_an_empty_array(app):
    with app.extensions["db_engine"].connect() as conn:
        assert posts.list_posts_json(conn, before=1) == ("[]", None)


def test_list_response_has_the_same_shape_as_before(client, tricky_ids):
    response = client.get("/api/posts?limit=2")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert list(body) == ["limit", "next", "offset", "posts"]
    assert (body["limit"], body["offset"]) == (2, 0)
    assert body["next"] == f"/api/posts?limit=2&before={body['posts'][-1]['id']}"
    assert list(body["posts"][0]) == [
        "created_at", "excerpt", "id", "title", "truncated", "updated_at"
    ]  # fmt: skip
