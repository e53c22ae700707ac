"""A stopped database costs each request little: readiness says so fast, liveness stays up, and
everything recovers by itself once it is back.

Under compose, connecting to a stopped `db` first means resolving a name nobody answers for; the
backend's resolver options (compose.yaml, x-db-client-dns) bound that wait.
"""

import threading
import time

import requests

from tests.e2e.conftest import make_client
from tests.e2e.helpers import wait_for_status

# The promise: with the database stopped, /readyz says 503 within 2 s.
READYZ_BOUND = 2.0
# API requests in flight while /healthz is asked: none of them may hold liveness up.
API_THREADS = 6
API_REQUESTS_PER_THREAD = 3
# Natively a refused connection answers at once: paced, all threads together stay within the
# proxy's per-client rate (20 r/s), so no answer is a 429.
API_PACE = 0.3


def status_or_error(client, url):
    try:
        return client.get(url).status_code
    except requests.RequestException as error:
        return type(error).__name__


def timed_status(client, url):
    started = time.monotonic()
    return status_or_error(client, url), round(time.monotonic() - started, 2)


def booted_workers(stack):
    return stack.logs("backend").count("Booting worker")


def test_without_database_readyz_fails_fast_healthz_stays_up_and_all_recovers_by_itself(
    stack, client
):
    readyz, healthz = stack.base_url + "/readyz", stack.base_url + "/healthz"
    assert client.get(readyz).status_code == 200
    workers_before = booted_workers(stack)
    api_statuses, healthz_statuses = [], []

    def api_load():
        with make_client(stack) as own:
            for _ in range(API_REQUESTS_PER_THREAD):
                api_statuses.append(status_or_error(own, stack.base_url + "/api/posts"))
                time.sleep(API_PACE)

    stack.stop_db()
    try:
        # Several answers, so that both replicas and their workers are asked.
        answers = [timed_status(client, readyz) for _ in range(4)]
        assert [status for status, _ in answers] == [503] * 4, answers
        assert max(seconds for _, seconds in answers) < READYZ_BOUND, answers
        assert client.get(readyz).json()["error"] == "database_unavailable"

        threads = [threading.Thread(target=api_load) for _ in range(API_THREADS)]
        for thread in threads:
            thread.start()
        for _ in range(5):
            healthz_statuses.append(status_or_error(client, healthz))
            time.sleep(0.3)
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "API requests still hang"
    finally:
        stack.start_db()
        wait_for_status(client, readyz, 200, 60, "the database is back")

    assert healthz_statuses == [200] * 5
    # The load really ran: every API request got an answer (whichever error status it was).
    assert len(api_statuses) == API_THREADS * API_REQUESTS_PER_THREAD
    assert all(isinstance(status, int) and status >= 500 for status in api_statuses), api_statuses
    assert client.get(stack.base_url + "/api/posts").status_code == 200
    # Recovered by itself: no gunicorn worker was started meanwhile (the pool reconnected).
    assert booted_workers(stack) == workers_before
