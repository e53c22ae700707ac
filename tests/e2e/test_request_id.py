"""X-Request-ID: returned to the client, and the same id is on the backend's log line."""

import re

from tests.e2e.helpers import log_entry


def test_request_id_is_returned_and_logged_by_the_backend(stack, client):
    response = client.get(stack.base_url + "/api/posts", params={"limit": 3})
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
    entry = log_entry(
        stack, "backend", "GET /api/posts", request_id=request_id, logger="gunicorn.access"
    )
    assert entry["path"] == "/api/posts"
    assert entry["status"] == 200
    log_entry(stack, "proxy", "GET /api/posts", request_id=request_id)


def test_client_cannot_choose_the_request_id(stack, client):
    forged = "forged-id-0123"
    response = client.get(stack.base_url + "/api/posts", headers={"X-Request-ID": forged})
    assert response.headers["X-Request-ID"] != forged
    log_entry(stack, "backend", "the request", request_id=response.headers["X-Request-ID"])


def test_request_ids_differ_per_request(stack, client):
    ids = {client.get(stack.base_url + "/healthz").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3
