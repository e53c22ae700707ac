"""Faults under load, in both runtimes: a killed worker, a proxy reload, a slow client and a
flooding one (the database's: test_database_faults.py). Each test is bounded in requests and
time, and its load stays below the per-client limits (proxy/proxy.env), so that a refusal counts
as a failure."""

import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from tests.e2e.conftest import make_client
from tests.e2e.helpers import request_limit
from tests.e2e.load import SteadyReads
from tests.stack import wait_until

# nginx's client_header_timeout (proxy/templates/limits.conf.template): the promise.
HEADER_TIMEOUT = 10


def test_killed_worker_under_read_load_fails_only_the_requests_it_was_serving(stack):
    masters_before = stack.logs("backend").count("Listening at:")
    with SteadyReads(stack, "/api/posts?limit=100") as one, SteadyReads(stack) as two:
        wait_until(lambda: len(one.results) >= 5, 15, "the read load to start")
        pid = stack.kill_backend_worker()
        killed = time.monotonic()
        wait_until(lambda: one.sent_between(killed, time.monotonic()) >= 20, 30, "20 more requests")

    logs = stack.logs("backend")
    # What was killed was a worker (the master booted it), and no master started anew: the
    # running master replaced its worker, nothing restarted the service.
    assert f"Booting worker with pid: {pid}" in logs, f"pid {pid} was not a worker"
    assert logs.count("Listening at:") == masters_before

    failures = one.failures + two.failures
    # Only what the worker was serving can be lost: each reader has one request in flight at a
    # time (a worker's threads may be serving both readers' at once), sent before the killed
    # worker was replaced. Once an answer has begun (status line sent, body under way), nobody
    # can send it again: it ends cut short.
    cut_short = "ChunkedEncodingError: Response ended prematurely"
    assert len(one.failures) <= 1 and len(two.failures) <= 1, failures
    assert all(sent < killed for sent, _ in failures), failures
    if stack.backend_replicas > 1:
        # Not yet answered, nginx sends it to the other replica: only a cut-short one may fail.
        assert {outcome for _, outcome in failures} <= {cut_short}, failures
    else:
        # Not yet answered, nginx answers 502 (the rest wait in the listen queue for the other
        # worker and the replacement).
        assert {outcome for _, outcome in failures} <= {502, cut_short}, failures
    assert len(one.results) + len(two.results) >= 40


def test_proxy_reload_under_read_load_fails_no_request(stack):
    with SteadyReads(stack, "/api/posts?limit=100") as one, SteadyReads(stack) as two:
        wait_until(lambda: len(one.results) >= 5, 15, "the read load to start")
        stack.reload_proxy()
        reloaded = time.monotonic()
        wait_until(
            lambda: one.sent_between(reloaded, time.monotonic()) >= 20, 30, "20 more requests"
        )

    assert one.failures + two.failures == []
    assert len(one.results) + len(two.results) >= 40


def test_slowloris_is_closed_by_the_header_timeout_while_others_are_served(stack, client):
    url = urlsplit(stack.base_url)
    context = ssl.create_default_context(cafile=stack.ca_bundle)
    served, closed_after = [], None
    with (
        socket.create_connection(
            (url.hostname, url.port), timeout=5, source_address=(stack.client_address, 0)
        ) as raw,
        context.wrap_socket(raw, server_hostname=url.hostname) as slow,
    ):
        opened = time.monotonic()
        slow.sendall(f"GET /healthz HTTP/1.1\r\nHost: {url.netloc}\r\n".encode())
        slow.settimeout(1)
        # One more header line a second, never the blank line that ends the request.
        for line in range(HEADER_TIMEOUT + 5):
            try:
                slow.sendall(f"X-Slow-{line}: 1\r\n".encode())
                answer = slow.recv(4096)
            except TimeoutError:
                answer = None  # still open, nothing said
            except OSError:
                answer = b""  # reset: closed too
            if answer is not None:
                closed_after = time.monotonic() - opened
                break
            served.append(client.get(stack.base_url + "/healthz").status_code)

    assert closed_after is not None, f"still open after {HEADER_TIMEOUT + 5} s"
    assert closed_after <= HEADER_TIMEOUT + 2, f"closed after {closed_after:.1f} s"
    assert answer == b"", f"the request was answered: {answer[:100]!r}"
    assert len(served) >= 5 and set(served) == {200}, served


def test_flood_from_one_client_is_limited_while_another_is_served(stack):
    rate, burst = request_limit()
    flood, stop = [], threading.Event()

    def flooder():
        with make_client(stack) as session:
            while not stop.is_set() and len(flood) < 1000:
                flood.append(session.get(stack.base_url + "/healthz").status_code)

    threads = [threading.Thread(target=flooder, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: flood.count(429) >= 10, 30, "the flood to be refused with 429")
        refused_before, other = flood.count(429), []
        for _ in range(3):
            time.sleep(0.1)
            other.append(stack.other_client_status("/healthz"))
        refused_meanwhile = flood.count(429) - refused_before
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        # The flooder's bucket drains at the zone's rate: the tests after this one find it empty.
        time.sleep((burst + 1) / rate)

    assert other == [200, 200, 200]
    assert set(flood) == {200, 429}, set(flood)
    assert refused_meanwhile >= 1, "the flood was not refused while the other client was served"
