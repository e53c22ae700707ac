"""Small tools of the e2e tests: bounded waits, log lookups, the write limit, expected headers."""

import json
import re
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events

from native.compose import service_environment
from tests.stack import wait_until

REPO = Path(__file__).resolve().parents[2]
# The security headers every response carries, as the README promises them. Written here, not read
# from proxy/snippets/security-headers.conf: a weakened header there must fail these tests.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; "
        "object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": (
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
        "microphone=(), payment=(), usb=()"
    ),
}
# Strict-Transport-Security on HTTPS answers: production pins HTTPS for two years, subdomains
# included (Mozilla's intermediate configuration); development for five minutes, without
# subdomains, so a developer's other sites on localhost are not pinned. Never over plain HTTP.
HSTS = {"production": "max-age=63072000; includeSubDomains", "development": "max-age=300"}
# A write that changes nothing: DELETE of an id that never exists, sent without a token. The
# backend refuses it (401) before any database work; nginx's write limit counts it all the same.
NO_SUCH_POST = "/api/posts/999999999"


def wait_for_status(client, url, status, timeout, what):
    """GET URL until it answers STATUS; returns that response (a 5xx Response is falsy)."""
    found = []

    def check():
        response = client.get(url, timeout=timeout)
        if response.status_code == status:
            found.append(response)
        return bool(found)

    wait_until(check, timeout, f"{url} to answer {status}: {what}", interval=0.2)
    return found[0]


def json_lines(text):
    """The JSON objects among the lines of a log (nginx's error lines are plain text)."""
    entries = []
    # Lines end at "\n" only: str.splitlines() also breaks at U+0085 and U+2028, which may stand
    # inside a JSON string.
    for line in text.split("\n"):
        start = line.find("{")  # tolerate a prefix (compose may add one)
        if start < 0:
            continue
        try:
            entry = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def log_entry(stack, service, what, timeout=10, **fields):
    """The first JSON log line of SERVICE whose keys have the given values (waits for it)."""

    def find():
        for entry in json_lines(stack.logs(service)):
            if all(entry.get(key) == value for key, value in fields.items()):
                return entry
        return None

    return wait_until(find, timeout, f"a {service} log line for {what} with {fields}")


def assert_security_headers(response, stack):
    """Every promised security header, with its promised value, exactly once, and a request id."""
    https = response.url.startswith("https://")
    expected = {
        **SECURITY_HEADERS,
        "Strict-Transport-Security": HSTS[stack.configuration] if https else None,
    }
    for name, value in expected.items():
        assert response.headers.get(name) == value, f"{name} on a {response.status_code}"
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers.get("X-Request-ID", "")), (
        f"X-Request-ID on a {response.status_code}: {response.headers.get('X-Request-ID')!r}"
    )
    # Exactly one copy of each: the backend's own copies are hidden by nginx.
    for name in (*(name for name, value in expected.items() if value), "X-Request-ID"):
        copies = response.raw.headers.getlist(name) if response.raw is not None else [1]
        assert len(copies) == 1, f"{name} sent {len(copies)} times on a {response.status_code}"


def trip_write_limit(client, stack, max_requests=60):
    """Send writes until nginx answers 429; returns (writes accepted before, the 429 response)."""
    for accepted in range(max_requests):
        response = client.delete(stack.base_url + NO_SUCH_POST)
        if response.status_code == 429:
            return accepted, response
        assert response.status_code == 401, response.text
    raise AssertionError(f"no 429 after {max_requests} writes in a burst")


def _zone(rate, burst):
    """(requests per second, burst) of a proxy zone, from the proxy's environment under compose,
    which the native runtime gives nginx too."""
    env = service_environment("proxy")
    count, unit = re.fullmatch(r"(\d+)r/([sm])", env[rate]).groups()
    return int(count) / (1 if unit == "s" else 60), int(env[burst])


def write_limit():
    """(writes per second, burst) of the proxy's write zone."""
    return _zone("PROXY_WRITE_RATE", "PROXY_WRITE_BURST")


def request_limit():
    """(requests per second, burst) of the proxy's per-client zone, reads included."""
    return _zone("PROXY_RATE", "PROXY_RATE_BURST")


def wait_until_writes_recover(client, stack, timeout=15):
    """Wait until a write passes again, then until the write bucket has drained.

    Returns the seconds the first write had to wait. The bucket is full right after a 429 and
    empties at the zone's rate, so the tests after this one find the whole burst available.
    """
    rate, burst = write_limit()
    started = time.monotonic()
    wait_until(
        lambda: client.delete(stack.base_url + NO_SUCH_POST).status_code != 429,
        timeout,
        "a write to pass the rate limit again",
        interval=0.05,
    )
    waited = time.monotonic() - started
    time.sleep((burst + 1) / rate)
    return waited


def wait_until_requests_recover(client, stack, timeout=15):
    """Like wait_until_writes_recover, for the per-client request bucket (after a burst of
    reads, such as a bisection)."""
    rate, burst = request_limit()
    wait_until(
        lambda: client.get(stack.base_url + "/api/posts").status_code != 429,
        timeout,
        "a request to pass the rate limit again",
        interval=0.05,
    )
    time.sleep((burst + 1) / rate)


def raw_https(stack, request: bytes, timeout=10, tls=True):
    """Send REQUEST (bytes no HTTP library would send) over TLS to nginx, trusting the dev CA
    (or, with tls=False, in plain text to the same port).

    Returns (status, headers with lower-case names, body). The request should ask for
    `Connection: close`: the answer is read until nginx closes the connection.
    """
    host, port = urlsplit(stack.base_url).hostname, urlsplit(stack.base_url).port
    context = ssl.create_default_context(cafile=stack.ca_bundle)
    with socket.create_connection(
        (host, port), timeout=timeout, source_address=(stack.client_address, 0)
    ) as sock:
        channel = context.wrap_socket(sock, server_hostname=host) if tls else sock
        channel.sendall(request)
        answer = b""
        while chunk := channel.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(":", 1) for line in header_lines)
    headers = {name.strip().lower(): value.strip() for name, value in headers.items()}
    return int(status_line.split()[1]), headers, body


def h2_request(stack, path="/api/posts", *headers, method="GET", timeout=10):
    """Send one HTTP/2 request to nginx, trusting the dev CA, with HEADERS ((name, value) pairs)
    exactly as given: no validation or normalisation, each `cookie` pair its own field.

    Returns (status, headers, body). A stream nginx resets or a connection it ends has status
    None and the reason as its body.
    """
    host, port = urlsplit(stack.base_url).hostname, urlsplit(stack.base_url).port
    context = ssl.create_default_context(cafile=stack.ca_bundle)
    context.set_alpn_protocols(["h2"])
    config = h2.config.H2Configuration(
        client_side=True,
        header_encoding="latin-1",
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
        split_outbound_cookies=False,
    )
    connection = h2.connection.H2Connection(config=config)
    pseudo = [
        (":method", method),
        (":scheme", "https"),
        (":authority", urlsplit(stack.base_url).netloc),
        (":path", path),
    ]
    with socket.create_connection(
        (host, port), timeout=timeout, source_address=(stack.client_address, 0)
    ) as sock, context.wrap_socket(sock, server_hostname=host) as tls:  # fmt: skip
        assert tls.selected_alpn_protocol() == "h2", "nginx did not offer HTTP/2"
        connection.initiate_connection()
        stream = connection.get_next_available_stream_id()
        connection.send_headers(stream, [*pseudo, *headers], end_stream=True)
        tls.sendall(connection.data_to_send())
        status, answer, body = None, {}, b""
        while data := tls.recv(65536):
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    answer = dict(event.headers)
                    status = int(answer.pop(":status"))
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    connection.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamEnded):
                    return status, answer, body
                elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                    return None, {}, f"{type(event).__name__}: {event.error_code!r}".encode()
            tls.sendall(connection.data_to_send())
    return None, {}, b"connection closed before the answer ended"
