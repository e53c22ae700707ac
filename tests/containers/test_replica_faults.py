"""Compose tier: faults of one backend replica of two. A hung replica costs a GET at most nginx's
read timeout and never runs a POST twice; a rolling restart fails no idempotent request."""

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

# proxy_read_timeout (proxy/snippets/proxy.conf), the promise: after it, nginx sends an idempotent
# request to the other replica, whose answer takes milliseconds; 3 s of slack for this machine.
READ_TIMEOUT = 5
GET_BOUND = READ_TIMEOUT + 3
# Parallel requests during the pause: each meets the hung replica first with a chance of one half
# (Docker's DNS rotates the replicas' addresses), so some surely do; 16 stay within the burst of
# the per-client limit (40), 8 writes within the write burst (10).
READERS, READS = 4, 16
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


def test_hung_replica_costs_a_get_at_most_the_read_timeout_and_never_runs_a_post_twice(stack):
    run = uuid.uuid4().hex[:8]
    write_titles = [f"hung replica {run} #{n}" for n in range(WRITES)]
    hung = stack.pause_backend()
    try:
        with ThreadPoolExecutor(READERS) as pool:
            reads = list(pool.map(lambda _: get_posts(stack), range(READS)))
        with ThreadPoolExecutor(WRITES) as pool:
            writes = list(pool.map(lambda title: post(stack, title), write_titles))
    finally:
        stack.unpause_backend(hung)

    assert [outcome for outcome, _, _ in reads] == [200] * READS, reads
    slowest = max(seconds for _, seconds, _ in reads)
    assert slowest <= GET_BOUND, f"a GET took {slowest} s"
    # Control: some GETs did meet the hung replica, and waited for the timeout.
    assert slowest >= READ_TIMEOUT - 0.5, f"no GET met the hung replica ({slowest} s at most)"

    outcomes = [outcome for outcome, _, _ in writes]
    assert set(outcomes) <= {201, 504}, outcomes
    assert 504 in outcomes, "no write met the hung replica"
    # The hung replica runs the writes it holds once it thaws; none may run a second time.
    wait_until(
        lambda: set(write_titles) <= set(titles(stack)), 30, "the thawed replica's held writes"
    )
    stored = titles(stack)
    assert {title: stored.count(title) for title in write_titles} == dict.fromkeys(write_titles, 1)

    # Thawed, it takes its share of the traffic again.
    answered = [get_posts(stack)[2] for _ in range(20)]
    ids = [response.headers["X-Request-ID"] for response in answered if response is not None]
    assert any(request_id in container_log(hung) for request_id in ids), "no request reached it"


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
