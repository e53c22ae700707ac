"""Small tools of the e2e tests: bounded waits, log lookups, the write limit, expected headers."""

import json
import re
import time
from pathlib import Path

from tests.stack.nginx import load_env_file

REPO = Path(__file__).resolve().parents[2]
SECURITY_HEADERS_CONF = REPO / "proxy" / "snippets" / "security-headers.conf"
PROXY_ENV = REPO / "proxy" / "proxy.env"
# A write that changes nothing: DELETE of an id that never exists (the backend answers 404).
NO_SUCH_POST = "/api/posts/999999999"


def wait_for(predicate, timeout, what, interval=0.1):
    """Poll PREDICATE until it returns something truthy and return that; fail naming WHAT."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_for_status(client, url, status, timeout, what):
    """GET URL until it answers STATUS; returns that response (a 5xx Response is falsy).

    One answer may itself take long: under compose, the backend's failed database connection
    spends ~10 s resolving the stopped container's name before /readyz can say 503.
    """
    found = []

    def check():
        response = client.get(url, timeout=timeout)
        if response.status_code == status:
            found.append(response)
        return bool(found)

    wait_for(check, timeout, f"{url} to answer {status}: {what}", interval=0.2)
    return found[0]


def json_lines(text):
    """The JSON objects among the lines of a log (nginx's error lines are plain text)."""
    entries = []
    for line in text.splitlines():
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

    return wait_for(find, timeout, f"a {service} log line for {what} with {fields}")


def expected_security_headers():
    """name -> value of every `add_header ... always;` in security-headers.conf (value None
    when it is an nginx variable such as $request_id)."""
    headers = {}
    for match in re.finditer(
        r'^\s*add_header\s+(\S+)\s+("([^"]*)"|\S+)\s+always\s*;',
        SECURITY_HEADERS_CONF.read_text(),
        re.MULTILINE,
    ):
        value = match.group(3) if match.group(3) is not None else match.group(2)
        headers[match.group(1)] = None if "$" in value else value
    return headers


def assert_security_headers(response):
    expected = expected_security_headers()
    # The file must still carry the headers this project promises; a parse that finds nothing
    # would otherwise pass every check below.
    for name in (
        "Strict-Transport-Security",
        "X-Content-Type-Options",
        "Content-Security-Policy",
        "X-Frame-Options",
        "Referrer-Policy",
    ):
        assert name in expected, f"{name} missing from {SECURITY_HEADERS_CONF}"
    assert "max-age=63072000" in expected["Strict-Transport-Security"]
    for name, value in expected.items():
        assert name in response.headers, f"{response.status_code} response lacks {name}"
        if value is not None:
            assert response.headers[name] == value, f"{name} on a {response.status_code}"
    # Exactly one copy of each: the backend's own copies are hidden by nginx.
    for name in expected:
        copies = response.raw.headers.getlist(name) if response.raw is not None else [1]
        assert len(copies) == 1, f"{name} sent {len(copies)} times on a {response.status_code}"


def trip_write_limit(client, stack, max_requests=60):
    """Send writes until nginx answers 429; returns (writes accepted before, the 429 response)."""
    for accepted in range(max_requests):
        response = client.delete(stack.base_url + NO_SUCH_POST)
        if response.status_code == 429:
            return accepted, response
        assert response.status_code == 404, response.text
    raise AssertionError(f"no 429 after {max_requests} writes in a burst")


def write_limit():
    """(writes per second, burst) of the proxy's write zone, from proxy/proxy.env, the file both
    runtimes give nginx (compose: env_file)."""
    env = load_env_file(PROXY_ENV)
    count, unit = re.fullmatch(r"(\d+)r/([sm])", env["PROXY_WRITE_RATE"]).groups()
    return int(count) / (1 if unit == "s" else 60), int(env["PROXY_WRITE_BURST"])


def wait_until_writes_recover(client, stack, timeout=15):
    """Wait until a write passes again, then until the write bucket has drained.

    Returns the seconds the first write had to wait. The bucket is full right after a 429 and
    empties at the zone's rate, so the tests after this one find the whole burst available.
    """
    rate, burst = write_limit()
    started = time.monotonic()
    wait_for(
        lambda: client.delete(stack.base_url + NO_SUCH_POST).status_code != 429,
        timeout,
        "a write to pass the rate limit again",
        interval=0.05,
    )
    waited = time.monotonic() - started
    time.sleep((burst + 1) / rate)
    return waited
