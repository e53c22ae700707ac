"""Through the proxy: reads are public, writes need a bearer token, and no token is ever logged."""

import uuid

import pytest

from tests.e2e.helpers import log_entry

WRONG_TOKEN = "W" * 40


def test_reads_are_public(stack, client):
    assert client.get(stack.base_url + "/api/posts").status_code == 200
    assert client.get(stack.base_url + "/").status_code == 200


@pytest.mark.parametrize(
    "authorization,challenge",
    [
        (None, 'Bearer realm="api"'),
        (f"Bearer {WRONG_TOKEN}", 'Bearer realm="api", error="invalid_token"'),
        ("Basic dXNlcjpwYXNz", 'Bearer realm="api", error="invalid_token"'),
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
