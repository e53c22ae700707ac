"""The posts API and page, through WSGI against the real database."""

import html
import json


def create(client, title="A title", body="A body"):
    response = client.post("/api/posts", json={"title": title, "body": body})
    assert response.status_code == 201, response.get_json()
    return response


def test_created_post_answers_201_with_location_of_the_new_post(client):
    response = create(client, "First", "Hello")
    post = response.get_json()
    assert response.headers["Location"] == f"/api/posts/{post['id']}"
    assert post["title"] == "First"
    assert post["body"] == "Hello"
    assert post["created_at"].endswith("Z")
    assert client.get(response.headers["Location"]).get_json() == post


def test_post_can_be_read_updated_and_deleted(client):
    post = create(client).get_json()
    url = f"/api/posts/{post['id']}"

    updated = client.put(url, json={"title": "New title", "body": "New body"})
    assert updated.status_code == 200
    assert updated.get_json()["title"] == "New title"
    assert client.get(url).get_json()["body"] == "New body"

    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    assert client.delete(url).status_code == 404


def test_update_with_unchanged_values_still_finds_the_post(client):
    post = create(client, "Same", "Same").get_json()
    response = client.put(f"/api/posts/{post['id']}", json={"title": "Same", "body": "Same"})
    assert response.status_code == 200


def test_list_returns_newest_first_and_pages_with_limit_and_offset(client):
    ids = [create(client, f"page {i}").get_json()["id"] for i in range(3)]
    page = client.get("/api/posts?limit=2").get_json()
    assert [p["id"] for p in page["posts"]] == [ids[2], ids[1]]
    assert (page["limit"], page["offset"]) == (2, 0)
    next_page = client.get("/api/posts?limit=1&offset=2").get_json()
    assert [p["id"] for p in next_page["posts"]] == [ids[0]]


def test_list_defaults_to_20_posts_and_allows_100(client):
    for i in range(21):
        create(client, f"bulk {i}")
    assert len(client.get("/api/posts").get_json()["posts"]) == 20
    assert client.get("/api/posts?limit=100").status_code == 200


def test_emoji_and_right_to_left_text_round_trip_unchanged(client):
    title = "Émoji 🎉🚀 و שלום عالم"
    body = "RTL: \u202eמימין לשמאל\u202c, astral: 𝄞 👩‍💻, CJK: 漢字"
    post = create(client, title, body).get_json()
    stored = client.get(f"/api/posts/{post['id']}").get_json()
    assert (stored["title"], stored["body"]) == (title, body)


def test_title_of_200_emoji_is_accepted(client):
    assert create(client, "🎉" * 200).get_json()["title"] == "🎉" * 200


def test_body_of_10000_characters_is_accepted_and_10001_refused(client):
    accepted = create(client, "long", "ü" * 10_000).get_json()
    assert len(client.get(f"/api/posts/{accepted['id']}").get_json()["body"]) == 10_000

    refused = client.post("/api/posts", json={"title": "long", "body": "ü" * 10_001})
    assert refused.status_code == 422
    assert refused.get_json()["field"] == "body"


def test_body_of_10000_emoji_is_accepted_even_when_json_escaped(client):
    # json.dumps escapes each emoji as a surrogate pair (12 bytes): ~120 KB on the wire.
    response = client.post(
        "/api/posts",
        data=json.dumps({"title": "🎉" * 200, "body": "🎉" * 10_000}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["body"] == "🎉" * 10_000


def test_page_lists_posts_with_titles_and_bodies_html_escaped(client):
    create(client, "<script>alert(1)</script>", '<b>bold</b> & "quoted"')
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "<script>alert(1)</script>" not in page
    assert html.escape("<script>alert(1)</script>") in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp;" in page


def test_page_has_no_inline_script_or_style_so_a_strict_csp_holds(client):
    page = client.get("/").get_data(as_text=True)
    assert "<script" not in page.replace("&lt;script", "")
    assert "<style" not in page
    assert "style=" not in page
    assert 'href="/static/style.css"' in page
    assert client.get("/static/style.css").status_code == 200
