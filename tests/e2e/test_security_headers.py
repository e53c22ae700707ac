"""HSTS and every security header on success, errors from the backend and errors from nginx."""

import json
import re

from tests.e2e.helpers import (
    assert_security_headers,
    trip_write_limit,
    wait_for_status,
    wait_until_writes_recover,
)


def test_security_headers_on_200(stack, client):
    response = client.get(stack.base_url + "/api/posts")
    assert response.status_code == 200
    assert_security_headers(response, stack)


def test_security_headers_on_200_html_page(stack, client):
    response = client.get(stack.base_url + "/")
    assert response.status_code == 200
    assert_security_headers(response, stack)


def test_security_headers_on_404_from_backend(stack, client):
    response = client.get(stack.base_url + "/api/posts/999999999")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert_security_headers(response, stack)


def test_security_headers_on_404_from_nginx(stack, client):
    response = client.get(stack.base_url + "/.env")  # dotfiles never reach the backend
    assert response.status_code == 404
    assert_security_headers(response, stack)


def test_security_headers_on_413(stack, client):
    response = client.post(
        stack.base_url + "/api/posts",
        data=json.dumps({"title": "big", "body": "x" * 512 * 1024}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert_security_headers(response, stack)


def test_security_headers_on_429(stack, client):
    accepted, response = trip_write_limit(client, stack)
    try:
        assert response.status_code == 429
        assert_security_headers(response, stack)
    finally:
        wait_until_writes_recover(client, stack)


def test_security_headers_on_503(stack, client):
    stack.stop_db()
    try:
        response = wait_for_status(
            client, stack.base_url + "/readyz", 503, 30, "the database is stopped"
        )
        assert_security_headers(response, stack)
    finally:
        stack.start_db()
    wait_for_status(client, stack.base_url + "/readyz", 200, 30, "the database is back")


def test_server_header_shows_no_version(stack, client):
    for path in ("/", "/.env", "/nginx-health"):
        response = client.get(stack.base_url + path)
        server = response.headers.get("Server", "")
        assert not re.search(r"\d", server), f"Server: {server!r} on {path}"
        assert not re.search(r"nginx/\d", response.text), f"version in the body of {path}"
