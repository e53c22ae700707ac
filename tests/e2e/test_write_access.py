"""Through the proxy: reads are public, writes need a bearer token, and no token is ever logged."""

import uuid
from urllib.parse import urlsplit

import pytest

from tests.e2e.helpers import log_entry, raw_https

WRONG_TOKEN = "W" * 40


def test_reads_are_public(stack, client):
    assert client.get(stack.base_url + "/api/posts").status_code == 200
    assert client.get(stack.base_url + "/").status_code == 200


@pytest.mark.parametrize(
    "authorization,challenge",
    [
        (None, 'Bearer realm="api"'),
        (f"Bearer {WRONG_TOKEN}", 'Bearer realm="api", error="invalid_token"'),
        # RFC 6750 3.1: another scheme is no bearer token to judge, so no error code.
        ("Basic dXNlcjpwYXNz", 'Bearer realm="api"'),
        ("Bearer", 'Bearer realm="api", error="invalid_token"'),
    ],
    ids=["missing", "wrong", "other-scheme", "malformed"],
)
def test_write_without_a_valid_token_is_401_json(stack, client, authorization, challenge):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.post(
        stack.base_url + "/api/posts", json={"title": "t", "body": "b"}, headers=headers
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == challenge
    body = response.json()
    assert body["error"] == "unauthorized"
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_the_write_token_creates_updates_and_deletes(stack, client, writer):
    created = writer.post(
        stack.base_url + "/api/posts", json={"title": f"auth {uuid.uuid4().hex}", "body": "b"}
    )
    assert created.status_code == 201
    url = stack.base_url + created.headers["Location"]
    # The token is what makes the difference: the same requests without it are refused.
    assert client.put(url, json={"title": "x", "body": "y"}).status_code == 401
    assert client.delete(url).status_code == 401
    assert writer.put(url, json={"title": "x", "body": "y"}).status_code == 200
    assert writer.delete(url).status_code == 204


def test_no_token_appears_in_any_log(stack, client, writer):
    marker = uuid.uuid4().hex
    ids = []
    for session, headers in ((writer, {}), (client, {"Authorization": f"Bearer {WRONG_TOKEN}"})):
        response = session.delete(
            stack.base_url + "/api/posts/999999999", params={"marker": marker}, headers=headers
        )
        ids.append(response.headers["X-Request-ID"])
    for service in ("proxy", "backend"):
        # A line is written as its answer leaves, and Swarm's log delivery lags: wait for both.
        for request_id in ids:
            log_entry(stack, service, "the request", request_id=request_id)
        logs = stack.logs(service)
        assert stack.write_token not in logs, f"{service} logged the write token"
        assert WRONG_TOKEN not in logs, f"{service} logged a presented token"


def test_a_token_in_the_query_is_400_and_redacted_in_the_proxy_and_backend_logs(stack, client):
    marker = uuid.uuid4().hex
    token = stack.write_token
    response = client.get(
        stack.base_url + f"/api/posts?marker={marker}&access_token={token}",
        headers={"Referer": stack.base_url + f"/?access_token={token}"},
    )
    assert response.status_code == 400, response.text
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_request"'
    body = response.json()
    assert body["error"] == "invalid_request"
    assert "Authorization: Bearer" in body["message"]
    request_id = response.headers["X-Request-ID"]

    proxy = log_entry(stack, "proxy", "nginx's access line", request_id=request_id)
    assert proxy["uri"] == f"/api/posts?marker={marker}&access_token=[redacted]"
    assert proxy["referer"] == stack.base_url + "/?access_token=[redacted]"
    access = log_entry(
        stack, "backend", "gunicorn's access line", request_id=request_id, logger="gunicorn.access"
    )
    assert access["query"] == f"marker={marker}&access_token=[redacted]"

    # The name percent-encoded, which the backend decodes (no HTTP library sends it so).
    host = urlsplit(stack.base_url).netloc
    request = f"GET /api/posts?access%5Ftoken={token} HTTP/1.1\r\nHost: {host}\r\n"
    status, headers, _ = raw_https(stack, (request + "Connection: close\r\n\r\n").encode())
    assert status == 400
    proxy = log_entry(stack, "proxy", "nginx's access line", request_id=headers["x-request-id"])
    assert proxy["uri"] == "/api/posts?access%5Ftoken=[redacted]"
    access = log_entry(
        stack,
        "backend",
        "gunicorn's access line",
        request_id=headers["x-request-id"],
        logger="gunicorn.access",
    )
    assert access["query"] == "access%5Ftoken=[redacted]"
    for service in ("proxy", "backend"):
        assert token not in stack.logs(service), f"{service} logged the token sent in the query"


def test_a_token_in_a_form_body_is_400(stack, writer):
    # `writer` for its patience with the write limit; the token travels in the body alone.
    response = writer.post(
        stack.base_url + "/api/posts",
        data={"title": "t", "body": "b", "access_token": stack.write_token},
        headers={"Authorization": None},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


def test_token_after_several_spaces_is_accepted(stack, writer):
    created = writer.post(
        stack.base_url + "/api/posts",
        json={"title": "spaces", "body": "b"},
        headers={"Authorization": f"Bearer   {stack.write_token}"},
    )
    assert created.status_code == 201, created.text
    writer.delete(stack.base_url + created.headers["Location"])
