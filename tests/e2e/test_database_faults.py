"""The database failing, in both runtimes: stopped, crashed under writes, frozen. Each costs a
request a bounded wait and a clean 503, loses no acknowledged write, keeps nothing of a write it
answered 5xx to, spares what needs no database, and heals by itself once the server is back.

README: "the database is down or too slow: 503, retry". Under compose, connecting to a stopped
`db` first means resolving a name nobody answers for; the backend's resolver options (compose.yaml,
x-db-client-dns) bound that wait. A frozen server still accepts connections (the kernel's
backlog), so nothing fails fast: every wait on the request path must be bounded, and bounded
inside the proxy's (docs/performance.md, "Bounded waits").
"""

import threading
import time
import uuid

import requests

from app.db import HUNG_PAUSE
from tests.e2e.conftest import make_client
from tests.e2e.helpers import wait_for_status, wait_until_writes_recover
from tests.e2e.load import SteadyWrites
from tests.stack import wait_until

# The promise: /readyz answers 200 within 5 s of the database accepting connections again.
READY_AFTER_DB = 5.0
# The promise: with the database stopped, /readyz says 503 within 2 s.
READYZ_BOUND = 2.0
# API requests in flight while /healthz is asked: none of them may hold liveness up.
API_THREADS = 6
API_REQUESTS_PER_THREAD = 3
# Natively a refused connection answers at once: paced, all threads together stay within the
# proxy's per-client rate (20 r/s), so no answer is a 429.
API_PACE = 0.3
# The promise: with the database frozen, an API request answers 503 within 3 s.
API_BOUND = 3.0
# What needs no database (liveness, the page shell, its files) is served as usual meanwhile: far
# below the database's wait, with room for a noisy machine.
NO_DATABASE_BOUND = 1.0
DATABASE_ERRORS = {"database_unavailable", "database_timeout"}


def backend_starts(stack):
    """(gunicorn masters started, workers booted) so far, from the backend's log."""
    logs = stack.logs("backend")
    return logs.count("Listening at:"), logs.count("Booting worker")


# --- crashed -----------------------------------------------------------------------------------
def test_database_writes_every_commit_to_disk(stack):
    # What lets an acknowledged write survive a crash of the OS, not only of the server.
    settings = stack.root_sql("SELECT @@innodb_flush_log_at_trx_commit, @@sync_binlog;")
    assert settings.split() == ["1", "1"]


def test_database_crash_under_write_load_loses_no_acknowledged_write(stack, client):
    readyz = stack.base_url + "/readyz"
    starts_before = backend_starts(stack)
    with SteadyWrites(stack) as load:
        wait_until(lambda: len(load.acknowledged()) >= 3, 15, "3 writes acknowledged before")
        killed = time.monotonic()
        stack.kill_db()
        # Natively nothing restarts it: let writes meet the dead database for a second.
        wait_until(lambda: load.writes[-1].sent > killed + 1, 15, "writes while it is down")
        stack.start_db()
        accepting = time.monotonic()
        wait_for_status(client, readyz, 200, 30, "the database accepts connections again")
        ready_after = time.monotonic() - accepting
        wait_until(
            lambda: len(load.acknowledged(accepting)) >= 3, 15, "3 writes acknowledged after"
        )

    # Every write got an answer (no hang, no dropped connection), and only a 201 or a clean 503.
    outcomes = [w.outcome for w in load.writes]
    assert set(outcomes) <= {201, 503}, outcomes
    # Control: the server that answers now started after the kill (under compose, writes may
    # just wait out the short restart instead of failing).
    uptime = int(stack.root_sql("SHOW GLOBAL STATUS LIKE 'Uptime';").split()[1])
    assert uptime <= time.monotonic() - killed, f"the database was not restarted ({uptime} s up)"
    failed = [w for w in load.writes if w.outcome == 503]
    assert {w.payload["error"] for w in failed} <= {"database_unavailable"}, failed
    late = [(w.sent - killed, w.answered - killed) for w in failed if w.sent > accepting]
    assert late == [], f"writes failed after the database was back (s after the kill): {late}"
    assert ready_after <= READY_AFTER_DB, f"/readyz 200 only {ready_after:.1f} s after"

    # Every acknowledged write is there, exactly as it was sent.
    page = client.get(stack.base_url + "/api/posts", params={"limit": 100}).json()["posts"]
    stored = {post["id"]: (post["title"], post["excerpt"]) for post in page}
    for write in load.acknowledged():
        assert stored.get(write.payload["id"]) == (write.title, write.body), write
    # The stack recovered by itself: no worker or master was started meanwhile.
    assert backend_starts(stack) == starts_before


# --- stopped ----------------------------------------------------------------------------------
def status_or_error(client, url):
    try:
        return client.get(url).status_code
    except requests.RequestException as error:
        return type(error).__name__


def timed_status(client, url):
    started = time.monotonic()
    return status_or_error(client, url), round(time.monotonic() - started, 2)


def test_without_database_readyz_fails_fast_healthz_stays_up_and_all_recovers_by_itself(
    stack, client
):
    readyz, healthz = stack.base_url + "/readyz", stack.base_url + "/healthz"
    assert client.get(readyz).status_code == 200
    starts_before = backend_starts(stack)
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
    # Recovered by itself: no gunicorn worker or master was started meanwhile (the pool
    # reconnected).
    assert backend_starts(stack) == starts_before


# --- frozen -----------------------------------------------------------------------------------
def timed(send):
    started = time.monotonic()
    response = send()
    return response, time.monotonic() - started


def test_frozen_database_answers_503_fast_keeps_no_write_and_serves_the_rest(stack, writer):
    title = f"written while frozen {uuid.uuid4()}"
    api = {}

    def call(name, send):
        api[name] = timed(send)

    requests_to_api = {
        "list": lambda own: own.get(stack.base_url + "/api/posts"),
        "read": lambda own: own.get(stack.base_url + "/api/posts/1"),
        "create": lambda own: own.post(
            stack.base_url + "/api/posts",
            json={"title": title, "body": "must not be stored"},
            headers={"Authorization": f"Bearer {stack.write_token}"},
        ),
    }
    # The write must reach the backend, not meet a write limit spent by earlier tests.
    wait_until_writes_recover(writer, stack)
    clients = [make_client(stack) for _ in requests_to_api]
    # Every pool holds live connections, so the first wait is the request's own query's, as in
    # production.
    for own in clients:
        assert own.get(stack.base_url + "/api/posts").status_code == 200

    others = []
    stack.freeze_db()
    try:
        threads = [
            threading.Thread(target=call, args=(name, lambda s=send, c=own: s(c)))
            for (name, send), own in zip(requests_to_api.items(), clients, strict=True)
        ]
        for thread in threads:
            thread.start()
        with make_client(stack) as other:
            while any(thread.is_alive() for thread in threads):
                for path in ("/healthz", "/", "/static/posts.js", "/static/style.css"):
                    response, seconds = timed(lambda p=path: other.get(stack.base_url + p))
                    others.append((path, response.status_code, round(seconds, 2)))
                time.sleep(0.2)
        for thread in threads:
            thread.join()
    finally:
        stack.thaw_db()
        for own in clients:
            own.close()

    answers = {name: (r.status_code, round(s, 2)) for name, (r, s) in api.items()}
    for name, (response, seconds) in api.items():
        assert response.status_code == 503, answers
        assert response.json()["error"] in DATABASE_ERRORS, (name, response.text)
        assert seconds < API_BOUND, answers
    assert others, "nothing else was asked while the database was frozen"
    assert all(status == 200 for _, status, _ in others), others
    assert max(seconds for _, _, seconds in others) < NO_DATABASE_BOUND, others

    # Thawed, the server runs what it had buffered, then finds the client gone: the write that
    # was answered 503 is rolled back, never committed. Every backend process that saw the hang
    # waits out its HUNG_PAUSE first: wait them all out, so that the tests after this
    # one find a database that answers in every process, not only in the one that answered here.
    time.sleep(HUNG_PAUSE + 1)
    page = wait_for_status(writer, stack.base_url + "/api/posts?limit=100", 200, 30, "thawed")
    assert title not in [post["title"] for post in page.json()["posts"]]
