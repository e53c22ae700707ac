"""The application through the proxy: CRUD, JSON errors, escaping, and a page that keeps its CSP."""

import gzip
import uuid
from html.parser import HTMLParser

import pytest

XSS = "<script>alert(1)</script>"
ERROR_KEYS = {"error", "message", "request_id"}


def create(stack, writer, title, body="body"):
    response = writer.post(stack.base_url + "/api/posts", json={"title": title, "body": body})
    assert response.status_code == 201, response.text
    return response


def test_posts_crud_through_the_proxy(stack, client, writer):
    title = f"crud {uuid.uuid4().hex}"
    created = create(stack, writer, title, "first")
    post = created.json()
    url = stack.base_url + f"/api/posts/{post['id']}"
    assert created.headers["Location"].endswith(f"/api/posts/{post['id']}")
    assert (post["title"], post["body"]) == (title, "first")

    assert client.get(url).json() == post
    listed = client.get(stack.base_url + "/api/posts", params={"limit": 100}).json()["posts"]
    assert post["id"] in [p["id"] for p in listed]

    updated = writer.put(url, json={"title": title, "body": "second"})
    assert updated.status_code == 200
    assert updated.json()["body"] == "second"
    assert client.get(url).json()["body"] == "second"

    assert writer.delete(url).status_code == 204
    assert client.get(url).status_code == 404


@pytest.mark.parametrize(
    "method,path,kwargs,status,error",
    [
        (
            "POST",
            "/api/posts",
            {"data": "{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "malformed_json",
        ),
        (
            "POST",
            "/api/posts",
            # 60,000 nested arrays: deeper than Python's recursion limit, within the body limit.
            {"data": "[" * 60_000 + "]" * 60_000, "headers": {"Content-Type": "application/json"}},
            400,
            "malformed_json",
        ),
        ("GET", "/api/posts/999999999", {}, 404, "not_found"),
        ("DELETE", "/api/posts", {}, 405, None),
        (
            "POST",
            "/api/posts",
            {"data": "title=x", "headers": {"Content-Type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        ("POST", "/api/posts", {"json": {"title": "", "body": "x"}}, 422, "validation_failed"),
        (
            "POST",
            "/api/posts",
            {
                "data": '{"title": "a", "title": "b", "body": "x"}',
                "headers": {"Content-Type": "application/json"},
            },
            422,
            "validation_failed",
        ),
    ],
    ids=["400", "400-nested", "404", "405", "415", "422", "422-duplicate-key"],
)
def test_errors_are_json_with_error_message_and_request_id(
    stack, writer, method, path, kwargs, status, error
):
    response = writer.request(method, stack.base_url + path, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) >= ERROR_KEYS, body
    assert body["message"]
    if error:
        assert body["error"] == error
    # The id in the body is the one nginx returned (and logged).
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_compressed_request_body_is_415_asking_for_identity(stack, writer):
    response = writer.post(
        stack.base_url + "/api/posts",
        data=gzip.compress(b'{"title": "zipped", "body": "x"}'),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 415, response.text
    assert response.json()["error"] == "unsupported_media_type"
    assert response.headers["Accept-Encoding"] == "identity"


def test_xss_is_stored_verbatim_and_the_page_carries_no_post_text(stack, client, writer):
    title = f"xss {uuid.uuid4().hex}"
    post = create(stack, writer, title, XSS).json()
    assert client.get(stack.base_url + f"/api/posts/{post['id']}").json()["body"] == XSS

    # The page is a shell: the browser puts post text in as text nodes (static/posts.js), which
    # tests/e2e/test_browser.py proves in Chromium. No server-made markup holds a post.
    page = client.get(stack.base_url + "/")
    assert page.status_code == 200
    assert title not in page.text
    assert "alert(1)" not in page.text


class PageParser(HTMLParser):
    """Collects what a strict CSP (no 'unsafe-inline') would block."""

    def __init__(self):
        super().__init__()
        self.inline = []
        self.resources = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in attrs:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"<{tag} {name}=...>")
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script" and not attrs.get("src"):
            self.inline.append("<script> without src")
        for name in ("src", "href"):
            if attrs.get(name) and tag in ("script", "link", "img"):
                self.resources.append(attrs[name])
        if attrs.get("href", "").lower().startswith("javascript:"):
            self.inline.append(f"<{tag} href=javascript:...>")


def test_page_has_csp_and_no_inline_script_or_style(stack, client):
    page = client.get(stack.base_url + "/")
    csp = page.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp

    parser = PageParser()
    parser.feed(page.text)
    assert parser.inline == []
    # Everything the page loads is same-origin and served (with the headers) by the stack.
    assert parser.resources, "the page links no stylesheet: parser or template changed"
    for resource in parser.resources:
        assert resource.startswith("/") and not resource.startswith("//"), resource
        loaded = client.get(stack.base_url + resource)
        assert loaded.status_code == 200, resource
        assert loaded.headers["Content-Security-Policy"] == csp
