"""A steady read load on the stack while an operation runs (rotation, certificate renewal)."""

import threading
import time

import requests

from tests.e2e.conftest import make_client

# 10 requests a second: well below the per-client limit (20 r/s), so every refusal is a failure.
PACE = 0.1


class SteadyReads:
    """GET PATH every PACE s from a thread while the `with` block runs; at most MAX_REQUESTS and
    MAX_SECONDS. Each request on a new connection, as a client arriving during the operation.

        with SteadyReads(stack) as load:
            operation()
        assert load.failures == []
    """

    def __init__(self, stack, path="/api/posts?limit=5", max_requests=3000, max_seconds=600):
        self.url = stack.base_url + path
        self.stack = stack
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.results = []  # (time.monotonic() when sent, status code or error text)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        started = time.monotonic()
        with make_client(self.stack) as client:
            client.headers["Connection"] = "close"
            while not self._stop.is_set() and len(self.results) < self.max_requests:
                if time.monotonic() - started > self.max_seconds:
                    break
                sent = time.monotonic()
                try:
                    outcome = client.get(self.url, timeout=15).status_code
                except requests.RequestException as error:
                    outcome = f"{type(error).__name__}: {error}"
                self.results.append((sent, outcome))
                self._stop.wait(PACE)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)

    def sent_between(self, start, end):
        """How many requests were sent between two time.monotonic() readings."""
        return sum(start <= sent <= end for sent, _ in self.results)

    @property
    def failures(self):
        return [(at, outcome) for at, outcome in self.results if outcome != 200]
