"""Compose tier: faults of one backend replica of two. A hung replica costs one slow GET per
nginx's fail_timeout and never runs a POST twice; a rolling restart fails no idempotent request."""

import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.conftest import make_client
from tests.e2e.load import SteadyReads
from tests.stack import wait_until

pytestmark = pytest.mark.compose

# proxy_read_timeout (proxy/snippets/proxy.conf): after it, nginx sends an idempotent request to
# the other replica, whose answer takes milliseconds; 3 s of slack for this machine.
READ_TIMEOUT = 5
GET_BOUND = READ_TIMEOUT + 3
# The promise: at 10 reads/s for 25 s, at most 2 reads meet the hung replica, since
# nginx sends it nothing for fail_timeout (10 s) after each one it failed. Sent one after the
# other, as SteadyReads does, the reads that met it are the slow ones.
HUNG_SECONDS, SLOW, MAX_SLOW_READS = 25, 1.0, 2
# Parallel writes while the replica hangs: each meets it first with a chance of one half, so some
# surely do; 8 stay within the write burst (10).
WRITES = 8


@pytest.fixture(scope="module")
def stack(compose_stack):
    return compose_stack


def timed(send):
    started = time.monotonic()
    try:
        response = send()
        outcome = response.status_code
    except requests.RequestException as error:
        response, outcome = None, f"{type(error).__name__}: {error}"
    return outcome, round(time.monotonic() - started, 2), response


def get_posts(stack):
    with make_client(stack) as session:
        session.headers["Connection"] = "close"
        return timed(lambda: session.get(stack.base_url + "/api/posts?limit=5", timeout=30))


def post(stack, title):
    with make_client(stack) as session:
        session.headers["Authorization"] = f"Bearer {stack.write_token}"
        body = {"title": title, "body": "sent once"}
        return timed(lambda: session.post(stack.base_url + "/api/posts", json=body, timeout=30))


def titles(stack):
    with make_client(stack) as session:
        page = session.get(stack.base_url + "/api/posts", params={"limit": 100}).json()["posts"]
    return [item["title"] for item in page]


def container_log(container):
    return subprocess.run(
        ["docker", "logs", container], capture_output=True, text=True, timeout=30, check=True
    ).stdout


def test_hung_replica_costs_one_slow_get_per_fail_timeout_and_never_runs_a_post_twice(stack):
    run = uuid.uuid4().hex[:8]
    write_titles = [f"hung replica {run} #{n}" for n in range(WRITES)]
    hung = stack.pause_backend()
    try:
        with ThreadPoolExecutor(WRITES) as pool:
            writes = list(pool.map(lambda title: post(stack, title), write_titles))
        with SteadyReads(stack, max_seconds=HUNG_SECONDS) as reads:
            time.sleep(HUNG_SECONDS)
    finally:
        stack.unpause_backend(hung)

    assert reads.failures == [], reads.failures
    slow = reads.slower_than(SLOW)
    print(f"\nhung replica: {len(slow)} of {len(reads.results)} reads took over {SLOW} s: {slow}")
    assert len(slow) <= MAX_SLOW_READS, f"{len(slow)} of {len(reads.results)} reads: {slow}"
    assert max(took for _, took in slow) <= GET_BOUND, slow
    # Control: reads did meet the hung replica once nginx tried it again, and waited for the
    # timeout; the writes' 504s had marked it first.
    assert slow, f"no read met the hung replica in {HUNG_SECONDS} s"
    assert len(reads.results) >= HUNG_SECONDS * 5, len(reads.results)

    outcomes = [outcome for outcome, _, _ in writes]
    assert set(outcomes) <= {201, 504}, outcomes
    assert 504 in outcomes, "no write met the hung replica"
    # The hung replica runs the writes it holds once it thaws; none may run a second time.
    wait_until(
        lambda: set(write_titles) <= set(titles(stack)), 30, "the thawed replica's held writes"
    )
    stored = titles(stack)
    assert {title: stored.count(title) for title in write_titles} == dict.fromkeys(write_titles, 1)

    # Thawed, it takes its share of the traffic again once nginx tries it (fail_timeout).
    def reached_it():
        answered = [get_posts(stack)[2] for _ in range(5)]
        ids = [response.headers["X-Request-ID"] for response in answered if response is not None]
        return any(request_id in container_log(hung) for request_id in ids)

    wait_until(reached_it, 30, "a request to reach the thawed replica")


def test_rolling_restart_of_the_backend_fails_no_idempotent_request(stack):
    started_at = {c["Id"]: c["State"]["StartedAt"] for c in stack.inspect("backend")}
    with SteadyReads(stack) as load:
        wait_until(lambda: len(load.results) >= 5, 15, "the read load to start")
        started = time.monotonic()
        stack.restart_backend()
        ended = time.monotonic()
        wait_until(lambda: load.sent_between(ended, time.monotonic()) >= 20, 30, "20 more requests")

    assert load.failures == [], f"{len(load.failures)} of {len(load.results)}: {load.failures}"
    # Control: every replica did restart, while requests were being sent.
    restarted = {c["Id"]: c["State"]["StartedAt"] for c in stack.inspect("backend")}
    assert restarted.keys() == started_at.keys()
    assert all(restarted[c] != started_at[c] for c in started_at), (started_at, restarted)
    assert load.sent_between(started, ended) >= 50
