"""A steady load on the stack while an operation or a fault runs (rotation, certificate renewal,
a crash): reads, or writes with the write token."""

import time
import uuid
from dataclasses import dataclass

import requests

from tests.e2e.conftest import make_client
from tests.stack import Background, wait_until

# 10 requests a second: well below the per-client limit (20 r/s), so every refusal is a failure.
READS_PER_SECOND = 10
# 4 writes a second, below the write limit (5 r/s): no write is refused with a 429.
WRITES_PER_SECOND = 4
# A deploy's load: 3 writes a second, and as many reads as one client may add within the
# per-client limit of 20 requests a second (one client stands for many).
DEPLOY_READS_PER_SECOND, DEPLOY_WRITES_PER_SECOND = 16, 3
# At most 15 s of writes; a list page (limit=100) holds every one of them.
MAX_WRITES = 60


class SteadyReads(Background):
    """GET PATH PER_SECOND times a second from a thread while the `with` block runs; at most
    MAX_REQUESTS and MAX_SECONDS. Each request on a new connection, as a client arriving during
    the operation.

        with SteadyReads(stack) as load:
            operation()
        assert load.failures == []
    """

    def __init__(
        self,
        stack,
        path="/api/posts?limit=5",
        max_requests=3000,
        max_seconds=600,
        per_second=READS_PER_SECOND,
    ):
        self.url = stack.base_url + path
        self.stack = stack
        self.pace = 1 / per_second
        self.max_requests, self.max_seconds = max_requests, max_seconds
        # (time.monotonic() when sent, status code or error text, seconds until the answer)
        self.results = []
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
                self.results.append((sent, outcome, time.monotonic() - sent))
                self.stopped.wait(max(0.0, sent + self.pace - time.monotonic()))

    def sent_between(self, start, end):
        """How many requests were sent between two time.monotonic() readings."""
        return sum(start <= sent <= end for sent, _, _ in self.results)

    @property
    def failures(self):
        return [(at, outcome) for at, outcome, _ in self.results if outcome != 200]

    def slower_than(self, seconds):
        return [(at, took) for at, _, took in self.results if took > seconds]


@dataclass
class Write:
    sent: float
    answered: float
    title: str
    body: str
    outcome: int | str  # status code, or the error a client saw instead of an answer
    payload: dict | None


class SteadyWrites(Background):
    """POST a new post PER_SECOND times a second (with the write token and an Idempotency-Key)
    while the `with` block runs; at most MAX_WRITES."""

    def __init__(self, stack, max_writes=MAX_WRITES, per_second=WRITES_PER_SECOND):
        self.stack = stack
        self.pace = 1 / per_second
        self.max_writes = max_writes
        self.run = uuid.uuid4().hex[:8]
        self.writes: list[Write] = []
        super().__init__()

    def loop(self):
        with make_client(self.stack) as session:
            session.headers["Authorization"] = f"Bearer {self.stack.write_token}"
            for number in range(self.max_writes):
                if self.stopped.is_set():
                    return
                title = f"crash test {self.run} #{number}"
                body = f"write #{number} of {self.run}: acknowledged means durable ✓"
                sent = time.monotonic()
                try:
                    response = session.post(
                        self.stack.base_url + "/api/posts",
                        json={"title": title, "body": body},
                        # As a client that may retry would send it (none is retried here).
                        headers={"Idempotency-Key": f"{self.run}-{number}"},
                    )
                    outcome, payload = response.status_code, response.json()
                except (requests.RequestException, ValueError) as error:
                    outcome, payload = f"{type(error).__name__}: {error}", None
                self.writes.append(Write(sent, time.monotonic(), title, body, outcome, payload))
                self.stopped.wait(max(0.0, sent + self.pace - time.monotonic()))

    def acknowledged(self, since=0.0):
        return [w for w in self.writes if w.outcome == 201 and w.sent >= since]

    def stored_once(self, titles):
        """Whether TITLES (of the posts in the database) hold each acknowledged write exactly
        once, and no refused one at all."""
        return {w.title: titles.count(w.title) for w in self.writes} == {
            w.title: int(w.outcome == 201) for w in self.writes
        }


def under_deploy_load(stack, operation):
    """OPERATION() under a deploy's reads and writes, from the first acknowledged write until one
    more is acknowledged after it; (its result, the reads, the writes)."""
    with (
        SteadyReads(stack, per_second=DEPLOY_READS_PER_SECOND) as reads,
        SteadyWrites(stack, 900, per_second=DEPLOY_WRITES_PER_SECOND) as writes,
    ):
        wait_until(writes.acknowledged, 15, "the first acknowledged write")
        result = operation()
        ended = time.monotonic()
        wait_until(lambda: writes.acknowledged(since=ended), 30, "a write after the operation")
    return result, reads, writes


def stored_titles(stack):
    """The titles of every post in STACK's database."""
    return stack.root_sql("SELECT title FROM app.posts").splitlines()


def assert_nothing_failed_or_lost(reads, writes, titles):
    """No read failed, every write was acknowledged, and TITLES (the posts' in the database) hold
    each exactly once."""
    assert reads.failures == [], reads.failures[:10]
    assert [w for w in writes.writes if w.outcome != 201] == []
    assert writes.stored_once(titles)
