"""Every status nginx or gunicorn answers on its own is a JSON body {"error", "message",
"request_id"}, with the id the X-Request-ID header carries, over HTTP/1.1 and HTTP/2.

What nginx answers itself with this configuration, and where each is driven:
- 400 (bad request line or header, NUL or control bytes or raw bytes in the URI, a second Host),
  404 (dotfiles; the status and health listeners), 405 (TRACE, CONNECT), 414, 421 (unknown
  Host), 431 (nginx's 494: a header line or all headers too large): test_http_edges.py.
- 413 (body too large): test_body_limit.py. 429 (rate limits): here, with Retry-After.
- 497 (plain HTTP sent to the HTTPS port, answered as 400), 501 (a Transfer-Encoding other than
  chunked; over HTTP/2 only before nginx 1.30, which drops the field), 505 (an HTTP version other
  than 1.x): here.
- 502 (backend closed the connection), 504 (backend silent past proxy_read_timeout), and 405 and
  412 (a POST, a failed If-Match) on the ACME webroot's static files: tests/static/
  test_nginx_config.py, against a stub backend and a challenge file (the stack has neither a hung
  backend nor a challenge to serve).
Not produced, and why:
- 408: on client_header_timeout and client_body_timeout nginx closes the connection without an
  answer (it only logs 408), so no client ever reads one.
- 500 and 503: no request can cause them here. nginx's 500 needs an internal failure (memory, a
  broken variable), and this configuration sends its limits' refusals as 429, not nginx's 503.
  Both still have JSON pages (json-errors.conf) in case.
- 416: the ACME webroot serves tokens whole (max_ranges 0), and nginx applies no ranges to
  proxied answers; the app's static files answer their own 416, in JSON.
- 494, 495, 496: 494 is sent as 431; no client certificates are requested, so 495 and 496 never.

What gunicorn refuses itself although nginx passed it on (gunicorn/workers/base.py handle_error,
gunicorn/http/message.py): a control byte other than HTAB in a header value (nginx refuses only
NUL, CR and LF), a second Content-Type field, a method of fewer than 3 or more than 20 letters.
Its size limits never apply (test_header_limits.py); Expect, Transfer-Encoding, Content-Length,
Host, forwarding headers and names with underscores are dropped, set or checked by nginx; the
rest (PROXY protocol, TLS, HTTP versions, bare LF, folding) nginx never sends. gunicorn's own
500 answers only an application that sends an invalid response header: no request can.
"""

import pytest

from tests.e2e.helpers import (
    assert_security_headers,
    h2_request,
    log_entry,
    raw_https,
    trip_write_limit,
    wait_until_writes_recover,
)
from tests.e2e.test_http_edges import assert_json_error, request_bytes

pytestmark = pytest.mark.usefixtures("request_burst")


def http1(stack, method, target, *headers, version="HTTP/1.1"):
    request = request_bytes(stack, method, target, *headers)
    return raw_https(stack, request.replace(b" HTTP/1.1\r\n", f" {version}\r\n".encode(), 1))


def http2(stack, method, target, *headers):
    fields = [tuple(part.strip() for part in line.split(":", 1)) for line in headers]
    return h2_request(
        stack, target, *((name.lower(), value) for name, value in fields), method=method
    )


PROTOCOLS = {"http/1.1": http1, "h2": http2}


def test_unknown_transfer_coding_is_json_501(stack):
    assert_json_error(*http1(stack, "POST", "/api/posts", "Transfer-Encoding: gzip"), 501)


def test_transfer_coding_over_h2_is_refused_or_dropped_in_json(stack):
    """HTTP/2 frames bodies itself; Transfer-Encoding is a connection-specific field there (RFC
    9113 section 8.2.2). nginx 1.22 refuses it (JSON 501); 1.30 drops it and passes the request
    on, so the app answers (here 401: no token). Either way the answer is JSON."""
    status, headers, body = http2(stack, "POST", "/api/posts", "Transfer-Encoding: gzip")
    if status == 501:
        assert_json_error(status, headers, body, 501)
    else:
        entry = log_entry(stack, "proxy", "the request", request_id=headers["x-request-id"])
        assert entry["upstream_status"] == str(status) == "401", (status, body[:300])
        assert headers["content-type"] == "application/json", body[:300]


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/3.0"])
def test_unsupported_http_version_is_json_505(stack, version):
    assert_json_error(*http1(stack, "GET", "/api/posts", version=version), 505)


def test_plain_http_to_the_https_port_is_json_400(stack):
    answer = raw_https(stack, request_bytes(stack, "GET", "/api/posts"), tls=False)
    error = assert_json_error(*answer, 400)
    assert "https" in error["message"]


def test_rate_limit_429_is_json_with_retry_after_and_security_headers(stack, client):
    try:
        _, limited = trip_write_limit(client, stack)
        assert limited.status_code == 429
        assert limited.headers["Content-Type"] == "application/json"
        assert limited.json()["request_id"] == limited.headers["X-Request-ID"]
        # Whole seconds (RFC 9110 delay-seconds): a write passes again within one.
        assert limited.headers.get("Retry-After") == "1", limited.headers
        assert_security_headers(limited, stack)
    finally:
        wait_until_writes_recover(client, stack)


REFUSED_BY_GUNICORN = [
    pytest.param("GET", ("User-Agent: client \x1b[31m",), id="escape-in-user-agent"),
    pytest.param("GET", ("X-Note: a\x7fb",), id="del-in-a-value"),
    pytest.param("GET", ("X-Note: a\x01b",), id="soh-in-a-value"),
    pytest.param(
        "POST", ("Content-Type: application/json", "Content-Type: text/plain"), id="two-types"
    ),
    pytest.param("AB", (), id="two-letter-method"),
    pytest.param("ABCDEFGHIJKLMNOPQRSTU", (), id="21-letter-method"),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("method", "headers"), REFUSED_BY_GUNICORN)
def test_what_gunicorn_refuses_is_json_with_the_request_id_in_body_and_log(
    stack, protocol, method, headers
):
    status, answer_headers, body = PROTOCOLS[protocol](stack, method, "/api/posts", *headers)
    error = assert_json_error(status, answer_headers, body, 400)
    assert error["error"] == "bad_request"
    # gunicorn's log line of the refusal names the request.
    log_entry(stack, "backend", "gunicorn's refusal", request_id=error["request_id"])
