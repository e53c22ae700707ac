"""Every 4xx/5xx is JSON {"error", "message", "request_id"}; no internals leak."""

import gzip
import io
import json
import logging

import pytest

from app import create_app
from app.config import Config
from app.logging import JsonFormatter
from tests.stack import free_port


def assert_error(response, status, error=None):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    data = response.get_json()
    assert {"error", "message", "request_id"} <= data.keys()
    assert data["request_id"] == response.headers["X-Request-ID"]
    if error:
        assert data["error"] == error
    return data


def test_malformed_json_is_400(writer):
    response = writer.post("/api/posts", data="{not json", content_type="application/json")
    assert_error(response, 400, "malformed_json")


@pytest.mark.parametrize("depth", [1_000, 60_000])
def test_deeply_nested_json_is_400_not_a_crash(writer, depth):
    body = "[" * depth + "]" * depth
    response = writer.post("/api/posts", data=body, content_type="application/json")
    data = assert_error(response, 400, "malformed_json")
    assert "nested" in data["message"]


@pytest.mark.parametrize(
    "document,field",
    [
        ('{"title": "a", "title": "b", "body": "x"}', "title"),
        ('{"title": "a", "body": "x", "body": "y"}', "body"),
        ('{"title": "a", "body": "x", "title": "a"}', "title"),
    ],
    ids=["title-twice", "body-twice", "same-value-twice"],
)
def test_duplicate_keys_are_422_naming_the_field(writer, document, field):
    response = writer.post("/api/posts", data=document, content_type="application/json")
    assert assert_error(response, 422, "validation_failed")["field"] == field


@pytest.mark.parametrize("coding", ["gzip", "GZIP", "deflate", "br", "identity, gzip"])
def test_compressed_request_body_is_415_asking_for_identity(writer, coding):
    body = gzip.compress(json.dumps({"title": "zipped", "body": "x"}).encode())
    response = writer.post(
        "/api/posts",
        data=body,
        content_type="application/json",
        headers={"Content-Encoding": coding},
    )
    assert_error(response, 415, "unsupported_media_type")
    assert response.headers["Accept-Encoding"] == "identity"


def test_identity_content_coding_is_accepted(writer):
    response = writer.post(
        "/api/posts", json={"title": "plain", "body": "x"}, headers={"Content-Encoding": "identity"}
    )
    assert response.status_code == 201, response.get_json()


def test_content_coding_is_refused_before_any_database_work(app_env, write_token):
    # No database behind this app: a request that got past the check would answer 503.
    unreachable = {**app_env, "DB_PORT": str(free_port()), "DB_CONNECT_TIMEOUT": "1"}
    app = create_app(Config.from_env(unreachable))
    try:
        response = app.test_client().post(
            "/api/posts",
            data=gzip.compress(b'{"title": "t", "body": "b"}'),
            content_type="application/json",
            headers={"Content-Encoding": "gzip", "Authorization": f"Bearer {write_token}"},
        )
        assert_error(response, 415, "unsupported_media_type")
    finally:
        app.extensions["db_engine"].dispose()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(writer, content_type):
    response = writer.post("/api/posts", data="title=x&body=y", content_type=content_type)
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"body": "no title"}, "title"),
        ({"title": "", "body": "x"}, "title"),
        ({"title": "   ", "body": "x"}, "title"),
        ({"title": "x" * 201, "body": "x"}, "title"),
        ({"title": 5, "body": "x"}, "title"),
        ({"title": "x"}, "body"),
        ({"title": "x", "body": None}, "body"),
        ({"title": "x", "body": "x" * 10_001}, "body"),
        ({"title": "x", "body": "x", "author": "me"}, "author"),
    ],
)
def test_invalid_post_is_422_naming_the_field(writer, payload, field):
    data = assert_error(writer.post("/api/posts", json=payload), 422, "validation_failed")
    assert data["field"] == field
    assert field in data["message"]


def test_update_is_validated_like_create(writer):
    post = writer.post("/api/posts", json={"title": "t", "body": "b"}).get_json()
    response = writer.put(f"/api/posts/{post['id']}", json={"title": "", "body": "b"})
    assert assert_error(response, 422)["field"] == "title"


def test_json_that_is_not_an_object_is_422(writer):
    assert_error(writer.post("/api/posts", json=["title", "body"]), 422, "validation_failed")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("limit=", "limit"),
        ("offset=-5", "offset"),
        ("offset=1.5", "offset"),
        # Deep pages go through `before`: an offset makes MariaDB walk the index up to it.
        ("offset=1001", "offset"),
        ("offset=1000000000", "offset"),
        ("before=0", "before"),
        ("before=abc", "before"),
    ],
)
def test_bad_paging_values_are_422_naming_the_parameter(client, query, field):
    assert assert_error(client.get(f"/api/posts?{query}"), 422)["field"] == field


def test_unknown_post_id_is_404(writer):
    assert_error(writer.get("/api/posts/999999999"), 404, "not_found")
    assert_error(writer.put("/api/posts/999999999", json={"title": "t", "body": "b"}), 404)


def test_unknown_url_is_404_json(client):
    assert_error(client.get("/no/such/page"), 404, "not_found")


def test_wrong_method_is_405_with_allow_header(writer):
    response = writer.patch("/api/posts")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_oversized_body_is_413_json(writer):
    response = writer.post("/api/posts", json={"title": "x", "body": "x" * 200_000})
    assert_error(response, 413)


def test_unexpected_exception_is_500_without_traceback_but_logged(app_env):
    app = create_app(Config.from_env(app_env))

    @app.get("/boom")
    def boom():
        raise RuntimeError("internal detail xyzzy")

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger("app.errors").addHandler(handler)
    try:
        response = app.test_client().get("/boom", headers={"X-Request-ID": "boom-1"})
    finally:
        logging.getLogger("app.errors").removeHandler(handler)
        app.extensions["db_engine"].dispose()

    data = assert_error(response, 500, "internal_error")
    assert "xyzzy" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    line = json.loads(stream.getvalue().splitlines()[0])
    assert line["request_id"] == data["request_id"] == "boom-1"
    assert "Traceback" in line["exc_info"]
    assert "xyzzy" in line["exc_info"]


def test_slash_redirect_of_the_framework_is_json(client):
    response = client.get("/api//posts?limit=1")
    assert response.status_code == 308
    assert response.mimetype == "application/json"
    assert response.get_json()["location"] == response.headers["Location"]
    assert response.headers["Location"].endswith("/api/posts?limit=1")


def test_bodiless_answers_claim_no_media_type(client, writer):
    post = writer.post("/api/posts", json={"title": "t", "body": "b"}).get_json()
    deleted = writer.delete(f"/api/posts/{post['id']}")
    options = client.options("/api/posts")
    for response in (deleted, options):
        assert response.status_code == 204
        assert "Content-Type" not in response.headers
        assert response.get_data() == b""
    assert "GET" in options.headers["Allow"]


def test_not_modified_static_file_stays_a_bodiless_304(client):
    first = client.get("/static/style.css")
    again = client.get("/static/style.css", headers={"If-None-Match": first.headers["ETag"]})
    assert (first.status_code, again.status_code) == (200, 304)
