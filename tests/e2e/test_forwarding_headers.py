"""A client's forwarding headers change nothing it can observe: nginx sets the ones the backend
trusts and drops the rest, so no redirect, Location or logged address can be forged."""

import uuid

from tests.e2e.helpers import log_entry

EVIL = "evil.example"
FORGED_ADDRESS = "203.0.113.9"  # TEST-NET-3
FORGED = {
    "X-Forwarded-Host": EVIL,
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Port": "1",
    "X-Forwarded-Prefix": "/evil",
    "X-Forwarded-Server": EVIL,
    "X-Forwarded-For": FORGED_ADDRESS,
    "X-Real-IP": FORGED_ADDRESS,
    "Forwarded": f"for={FORGED_ADDRESS};host={EVIL};proto=http",
}


def test_backend_redirect_goes_to_this_site_whatever_the_client_forwards(stack, client):
    # Werkzeug answers a doubled slash with a 308 to the canonical URL, built from the request's
    # scheme, host and port.
    path = "/api//posts?limit=1"
    plain = client.get(stack.base_url + path, allow_redirects=False)
    forged = client.get(stack.base_url + path, headers=FORGED, allow_redirects=False)
    assert plain.status_code == forged.status_code == 308
    expected = stack.base_url + "/api/posts?limit=1"
    assert plain.headers["Location"] == expected
    assert forged.headers["Location"] == expected


def test_location_of_a_created_post_ignores_forwarding_headers(stack, writer):
    response = writer.post(
        stack.base_url + "/api/posts",
        json={"title": f"forwarded {uuid.uuid4().hex}", "body": "b"},
        headers=FORGED,
    )
    assert response.status_code == 201
    assert response.headers["Location"] == f"/api/posts/{response.json()['id']}"


def test_backend_logs_the_address_nginx_saw_whatever_the_client_forwards(stack, client):
    response = client.get(stack.base_url + "/api/posts", headers=FORGED)
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    seen_by_proxy = log_entry(stack, "proxy", "the request", request_id=request_id)
    seen_by_backend = log_entry(
        stack, "backend", "the access line", request_id=request_id, logger="gunicorn.access"
    )
    assert seen_by_backend["remote_addr"] == seen_by_proxy["remote_addr"] != FORGED_ADDRESS
