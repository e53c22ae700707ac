"""The backend logs the client's address as nginx saw it, never the proxy's own address."""

from tests.e2e.helpers import log_entry

FORGED = "203.0.113.9"  # TEST-NET-3: what a client might claim in X-Forwarded-For


def test_backend_logs_the_client_address_not_the_proxy(stack, client):
    response = client.get(
        stack.base_url + "/api/posts",
        headers={"X-Forwarded-For": FORGED, "X-Real-IP": FORGED},
    )
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    seen_by_proxy = log_entry(stack, "proxy", "the request", request_id=request_id)
    seen_by_backend = log_entry(
        stack, "backend", "the access line", request_id=request_id, logger="gunicorn.access"
    )

    assert seen_by_backend["remote_addr"] == seen_by_proxy["remote_addr"]
    # A forged header is replaced at the edge, not trusted.
    assert seen_by_backend["remote_addr"] != FORGED
    # Where the source address survives the trip (natively: 127.0.0.2 while nginx itself talks
    # to gunicorn from 127.0.0.1), it is exactly the client's.
    if stack.client_address != "127.0.0.1":
        assert seen_by_proxy["remote_addr"] == stack.client_address
