"""Connection slots: idle connections are bounded in time, the connections one client holds leave
room for others, and nginx's health endpoint is not on the public ports (no limits, no log)."""

import socket
import ssl
import time
from urllib.parse import urlsplit

from tests.e2e.conftest import make_client
from tests.e2e.helpers import log_entry

# nginx's default is 1024 connections per worker, and the proxy runs one worker.
MORE_THAN_ONE_WORKERS_DEFAULT = 1100
KEEPALIVE_TIMEOUT = 10  # seconds, the promise (proxy/nginx.conf)


def address(stack):
    url = urlsplit(stack.base_url)
    return url.hostname, url.port


def test_health_endpoint_is_not_served_on_the_public_ports(stack, client):
    https = client.get(stack.base_url + "/nginx-health")
    # The site's own answer for an unknown path (the backend's JSON 404), limited and logged.
    assert (https.status_code, https.json()["error"]) == (404, "not_found")
    # nginx writes its access line after the answer has gone out: wait for it.
    log_entry(stack, "proxy", "GET /nginx-health", request_id=https.headers["X-Request-ID"])
    http = client.get(stack.http_url + "/nginx-health", allow_redirects=False)
    assert http.status_code == 308


def test_idle_keepalive_connection_is_closed_after_the_keepalive_timeout(stack):
    host, port = address(stack)
    context = ssl.create_default_context(cafile=stack.ca_bundle)
    with socket.create_connection(
        (host, port), timeout=KEEPALIVE_TIMEOUT + 5, source_address=(stack.client_address, 0)
    ) as sock, context.wrap_socket(sock, server_hostname=host) as tls:  # fmt: skip
        tls.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        answer = tls.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        idle_since = time.monotonic()
        try:
            while tls.recv(65536):  # the rest of the response, then the close
                pass
        except TimeoutError:
            raise AssertionError(
                f"connection still open after {KEEPALIVE_TIMEOUT + 5} s idle"
            ) from None
        except ConnectionResetError:
            pass  # reset_timedout_connection: a reset is a close too
    # Closed by the timeout, not at once (a keepalive_timeout of 0 would pass the upper bound).
    assert KEEPALIVE_TIMEOUT - 1 <= time.monotonic() - idle_since <= KEEPALIVE_TIMEOUT + 5


def test_connections_one_client_holds_leave_room_for_another(stack):
    # Half-sent requests: nginx keeps each until client_header_timeout (10 s) and, unlike an idle
    # connection, cannot close it early to make room (nginx reuses only idle connections).
    url = urlsplit(stack.http_url)
    held = []
    try:
        for _ in range(MORE_THAN_ONE_WORKERS_DEFAULT):
            sock = socket.create_connection(
                (url.hostname, url.port), timeout=5, source_address=(stack.client_address, 0)
            )
            held.append(sock)
            sock.sendall(b"GET / HTTP/1.1\r\n")
        with make_client(stack) as other:
            response = other.get(stack.base_url + "/healthz", timeout=5)
        assert response.status_code == 200
    finally:
        for sock in held:
            sock.close()
