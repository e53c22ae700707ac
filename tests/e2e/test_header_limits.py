"""One limit, one answer, on every protocol: what nginx accepts over HTTP/1.1 or HTTP/2, gunicorn
serves. Each test finds nginx's largest accepted request of one kind by bisection, asserts the app
answered it (200), and that one step further nginx itself refuses (a JSON 4xx with no upstream in
its log, or an HTTP/2 stream or connection error): the limit that applies is nginx's, never
gunicorn's (whose defaults are an 8,190-byte header line and request line).

Over HTTP/2 nginx checks a field's Huffman-coded size (8 KB, decoding to up to 13,107 bytes),
joins every `cookie` field into one line, and limits the decoded header list to 4 x 8 KB.
"""

import time

import pytest

from tests.e2e.helpers import h2_request, log_entry, raw_https
from tests.e2e.test_http_edges import request_bytes

pytestmark = pytest.mark.usefixtures("request_burst")

PROTOCOLS = ["http/1.1", "h2"]


def send(stack, protocol, path="/", headers=()):
    """GET PATH with HEADERS ((name, value) pairs); returns (status, headers, body). The page
    shell is the app's and needs no database: what is measured is the header path alone. A
    bisection is a burst: a 429 of the per-client limit is waited out and the request sent again."""
    for _ in range(20):
        if protocol == "h2":
            answer = h2_request(stack, path, *((name.lower(), value) for name, value in headers))
        else:
            lines = [f"{name}: {value}" if value else f"{name}:" for name, value in headers]
            answer = raw_https(stack, request_bytes(stack, "GET", path, *lines))
        if answer[0] != 429:
            return answer
        time.sleep(0.5)
    raise AssertionError("still 429 after 10 s")


def largest_served(stack, request, low, high):
    """The largest n in [low, high) whose request(n) the app answers 200; request(low) must be
    served and request(high) not. Asserts that nginx, not gunicorn, refused n + 1."""
    served = {}

    def ok(n):
        served[n] = request(n)
        return served[n][0] == 200

    assert ok(low), served[low][2][:300]
    assert not ok(high), f"{high} was still served: widen the search"
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if ok(middle) else (low, middle)
    status, headers, body = served[high]
    if status is not None:  # else an HTTP/2 stream or connection error: nginx's
        assert 400 <= status < 500 and headers["content-type"] == "application/json", body[:300]
        entry = log_entry(stack, "proxy", "the refusal", request_id=headers["x-request-id"])
        # Empty (or "-"): nginx answered without asking the backend.
        assert entry["upstream_status"] in {"", "-"}, (
            f"gunicorn refused what nginx accepted: {body!r}"
        )
    return low


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_three_big_cookies_are_served_on_every_protocol(stack, protocol):
    # HTTP/2 sends each cookie as a field of its own; nginx joins them into one 9 KB line.
    cookies = [("Cookie", f"c{i}=" + "x" * 3000) for i in range(3)]
    status, _, body = send(stack, protocol, headers=cookies)
    assert status == 200, body[:300]


def test_cookies_joined_up_to_nginx_header_list_limit_are_served_over_h2(stack):
    def cookies(size):  # SIZE bytes of cookie values, in fields of 4,000 bytes
        return [("cookie", f"c{i}=" + "x" * min(4000, size - i)) for i in range(0, size, 4000)]

    largest = largest_served(stack, lambda n: send(stack, "h2", headers=cookies(n)), 100, 40_000)
    assert largest > 8190, "no single Cookie line above gunicorn's default was tried"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_largest_header_line_nginx_accepts_is_served(stack, protocol):
    # "a" has a 5-bit Huffman code: over HTTP/2 an 8 KB field decodes to 13,107 of them.
    def header(n):
        return send(stack, protocol, headers=[("X-Long", "a" * n)])

    largest_served(stack, header, 100, 20_000)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_longest_request_line_nginx_accepts_is_served(stack, protocol):
    def path(n):
        return send(stack, protocol, path="/?q=" + "a" * n)

    largest_served(stack, path, 100, 20_000)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_most_header_fields_nginx_accepts_are_served(stack, protocol):
    def fields(n):
        return send(stack, protocol, headers=[("a", "")] * n)

    largest_served(stack, fields, 10, 40_000)
