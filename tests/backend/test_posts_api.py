"""The posts API and page, through WSGI against the real database."""

import json
import re

from sqlalchemy import text

from app import create_app
from app.config import Config
from tests.stack import free_port


def create(writer, title="A title", body="A body"):
    response = writer.post("/api/posts", json={"title": title, "body": body})
    assert response.status_code == 201, response.get_json()
    return response


def test_created_post_answers_201_with_location_of_the_new_post(writer):
    response = create(writer, "First", "Hello")
    post = response.get_json()
    assert response.headers["Location"] == f"/api/posts/{post['id']}"
    assert post["title"] == "First"
    assert post["body"] == "Hello"
    assert post["created_at"].endswith("Z")
    assert writer.get(response.headers["Location"]).get_json() == post


def test_post_can_be_read_updated_and_deleted(writer):
    post = create(writer).get_json()
    url = f"/api/posts/{post['id']}"

    updated = writer.put(url, json={"title": "New title", "body": "New body"})
    assert updated.status_code == 200
    assert updated.get_json()["title"] == "New title"
    assert writer.get(url).get_json()["body"] == "New body"

    assert writer.delete(url).status_code == 204
    assert writer.get(url).status_code == 404
    assert writer.delete(url).status_code == 404


def test_update_with_unchanged_values_still_finds_the_post(writer):
    post = create(writer, "Same", "Same").get_json()
    response = writer.put(f"/api/posts/{post['id']}", json={"title": "Same", "body": "Same"})
    assert response.status_code == 200


def test_list_returns_newest_first_and_pages_with_limit_and_offset(writer):
    ids = [create(writer, f"page {i}").get_json()["id"] for i in range(3)]
    page = writer.get("/api/posts?limit=2").get_json()
    assert [p["id"] for p in page["posts"]] == [ids[2], ids[1]]
    assert (page["limit"], page["offset"]) == (2, 0)
    next_page = writer.get("/api/posts?limit=1&offset=2").get_json()
    assert [p["id"] for p in next_page["posts"]] == [ids[0]]


def test_list_pages_with_the_next_link_until_the_last_page(writer):
    ids = [create(writer, f"keyset {i}").get_json()["id"] for i in range(5)]
    page = writer.get("/api/posts?limit=2").get_json()
    assert [p["id"] for p in page["posts"]] == [ids[4], ids[3]]
    assert page["next"] == f"/api/posts?limit=2&before={ids[3]}"
    page = writer.get(page["next"]).get_json()
    assert [p["id"] for p in page["posts"]] == [ids[2], ids[1]]

    before_first = writer.get(f"/api/posts?limit=2&before={ids[0]}").get_json()["posts"]
    assert all(p["id"] < ids[0] for p in before_first)
    oldest = min(p["id"] for p in writer.get("/api/posts?limit=100").get_json()["posts"])
    last = writer.get(f"/api/posts?limit=2&before={oldest}").get_json()
    assert (last["posts"], last["next"]) == ([], None)


def test_exactly_full_last_page_has_no_next_link(app, writer):
    create(writer, "older")
    create(writer, "newer")
    with app.extensions["db_engine"].connect() as conn:
        oldest, second = conn.execute(text("SELECT id FROM posts ORDER BY id LIMIT 2")).scalars()
    last = writer.get(f"/api/posts?limit=1&before={second}").get_json()
    assert [p["id"] for p in last["posts"]] == [oldest]
    assert last["next"] is None
    # Control: a full page with a post behind it does link on.
    page = writer.get(f"/api/posts?limit=1&before={second + 1}").get_json()
    assert page["next"] == f"/api/posts?limit=1&before={second}"


def test_list_items_carry_an_excerpt_not_the_body(writer):
    short = create(writer, "short", "all of it").get_json()
    long = create(writer, "long", "é" * 280 + "the rest").get_json()
    listed = {p["id"]: p for p in writer.get("/api/posts?limit=2").get_json()["posts"]}
    assert "body" not in listed[long["id"]]
    assert listed[long["id"]]["excerpt"] == "é" * 280
    assert listed[long["id"]]["truncated"] is True
    assert listed[short["id"]]["excerpt"] == "all of it"
    assert listed[short["id"]]["truncated"] is False
    # The whole body is one request away.
    assert writer.get(f"/api/posts/{long['id']}").get_json()["body"] == "é" * 280 + "the rest"


# The promise: a list page is at most 320 KiB, whatever 100 posts hold (backend/app/posts.py).
LIST_CEILING = 320 * 1024


def test_worst_case_list_response_stays_under_its_ceiling(writer):
    # Widest as JSON: quotes escape to 2 bytes, an emoji is 4 bytes of UTF-8 (12 if \u-escaped).
    for _ in range(100):
        create(writer, '"' * 200, "🎉" * 10_000)
    response = writer.get("/api/posts?limit=100")
    raw = response.get_data()
    assert len(response.get_json()["posts"]) == 100
    assert "🎉".encode() in raw and b"\\ud83c" not in raw, "JSON must be UTF-8, not escapes"
    # Sanity: 100 full excerpts are there, so this is the worst case and not an empty page.
    assert len(raw) > 100 * 280 * 4
    assert len(raw) <= LIST_CEILING, f"{len(raw)} bytes"


def test_a_single_post_is_utf8_json(writer):
    post = create(writer, "utf-8", "🎉" * 10_000).get_json()
    raw = writer.get(f"/api/posts/{post['id']}").get_data()
    # 4 bytes per emoji: 40 KB, where \u escapes would make it 120 KB.
    assert 40_000 < len(raw) < 41_000


def test_list_defaults_to_20_posts_and_allows_100(writer):
    for i in range(21):
        create(writer, f"bulk {i}")
    assert len(writer.get("/api/posts").get_json()["posts"]) == 20
    assert writer.get("/api/posts?limit=100").status_code == 200


def test_emoji_and_right_to_left_text_round_trip_unchanged(writer):
    title = "Émoji 🎉🚀 و שלום عالم"
    body = "RTL: \u202eמימין לשמאל\u202c, astral: 𝄞 👩‍💻, CJK: 漢字"
    post = create(writer, title, body).get_json()
    stored = writer.get(f"/api/posts/{post['id']}").get_json()
    assert (stored["title"], stored["body"]) == (title, body)


def test_title_of_200_emoji_is_accepted(writer):
    assert create(writer, "🎉" * 200).get_json()["title"] == "🎉" * 200


def test_body_of_10000_characters_is_accepted_and_10001_refused(writer):
    accepted = create(writer, "long", "ü" * 10_000).get_json()
    assert len(writer.get(f"/api/posts/{accepted['id']}").get_json()["body"]) == 10_000

    refused = writer.post("/api/posts", json={"title": "long", "body": "ü" * 10_001})
    assert refused.status_code == 422
    assert refused.get_json()["field"] == "body"


def test_body_of_10000_emoji_is_accepted_even_when_json_escaped(writer):
    # json.dumps escapes each emoji as a surrogate pair (12 bytes): ~120 KB on the wire.
    response = writer.post(
        "/api/posts",
        data=json.dumps({"title": "🎉" * 200, "body": "🎉" * 10_000}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["body"] == "🎉" * 10_000


def test_page_is_a_shell_that_needs_no_database(app_env):
    # A backend whose database cannot be reached: the page and its files are served all the same.
    nowhere = create_app(
        Config.from_env({**app_env, "DB_HOST": "127.0.0.1", "DB_PORT": str(free_port())})
    )
    try:
        client = nowhere.test_client()
        page = client.get("/")
        assert page.status_code == 200
        assert page.mimetype == "text/html"
        assert 'data-source="/api/posts"' in page.get_data(as_text=True)
        for path in ("/static/posts.js", "/static/style.css"):
            assert client.get(path).status_code == 200, path
        # Control: the posts themselves do need it.
        assert client.get("/api/posts").status_code == 503
    finally:
        nowhere.extensions["db_engine"].dispose()


def test_page_has_no_inline_script_or_style_so_a_strict_csp_holds(writer):
    page = writer.get("/").get_data(as_text=True)
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts == ['<script src="/static/posts.js" defer>'], scripts
    assert "<style" not in page
    assert "style=" not in page
    assert 'href="/static/style.css"' in page
    assert writer.get("/static/style.css").status_code == 200
