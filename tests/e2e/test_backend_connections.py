"""nginx keeps its connections to gunicorn open and sends the next requests over them: a request
pays neither a TCP handshake to the backend nor the close after its answer."""

import re

from tests.e2e.helpers import json_lines
from tests.stack import wait_until

REQUESTS = 20


def test_nginx_reuses_its_connections_to_the_backend(stack, client):
    ids = []
    for _ in range(REQUESTS):
        response = client.get(stack.base_url + "/healthz")
        assert response.status_code == 200
        ids.append(response.headers["X-Request-ID"])

    def access_lines():
        lines = [
            e
            for e in json_lines(stack.logs("backend"))
            if e.get("logger") == "gunicorn.access" and e.get("request_id") in ids
        ]
        return lines if len(lines) == REQUESTS else None

    lines = wait_until(access_lines, 10, f"gunicorn's access lines of {REQUESTS} requests")
    connections = {line["peer"] for line in lines}
    # Control: each names a connection (nginx's address and port), so that equal peers are one.
    assert all(re.fullmatch(r"[\d.]+:\d+", peer) for peer in connections), connections
    # One after the other, the requests need one connection to each replica; one more each if
    # nginx saw one close. Without keep-alive every request has one of its own.
    assert len(connections) <= 2 * stack.backend_replicas, sorted(connections)
