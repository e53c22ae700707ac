"""A steady read load on the stack while an operation runs (rotation, certificate renewal)."""

import time

import requests

from tests.e2e.conftest import make_client
from tests.stack import Background

# 10 requests a second: well below the per-client limit (20 r/s), so every refusal is a failure.
PACE = 0.1


class SteadyReads(Background):
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
        super().__init__()

    def loop(self):
        started = time.monotonic()
        with make_client(self.stack) as client:
            client.headers["Connection"] = "close"
            while not self.stopped.is_set() and len(self.results) < self.max_requests:
                if time.monotonic() - started > self.max_seconds:
                    break
                sent = time.monotonic()
                try:
                    outcome = client.get(self.url, timeout=15).status_code
                except requests.RequestException as error:
                    outcome = f"{type(error).__name__}: {error}"
                self.results.append((sent, outcome))
                self.stopped.wait(PACE)

    def sent_between(self, start, end):
        """How many requests were sent between two time.monotonic() readings."""
        return sum(start <= sent <= end for sent, _ in self.results)

    @property
    def failures(self):
        return [(at, outcome) for at, outcome in self.results if outcome != 200]
