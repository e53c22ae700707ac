"""A client that retries a POST with its Idempotency-Key never makes a second post: after its own
timeout on a frozen database, through a database crash, or racing its own retries (README, "The
API"). Each test is bounded in requests and time and stays below the write limit."""

import threading
import time
import uuid

import requests

from tests.e2e.conftest import make_client
from tests.e2e.helpers import wait_for_status, wait_until_writes_recover
from tests.stack import Background, wait_until

# Answers after which a client sends the same request again (with the same key).
RETRY_STATUSES = {409, 429, 502, 503, 504}
# Below the write limit (5 r/s), so that no retry is refused with a 429.
WRITE_PACE = 0.25
RETRY_FOR = 30.0
KEYED_WRITES = 40


def keyed_post(session, stack, key, title, timeout=10.0):
    return session.post(
        stack.base_url + "/api/posts",
        json={"title": title, "body": f"sent with key {key}"},
        headers={"Idempotency-Key": key},
        timeout=timeout,
    )


def post_until_answered(session, stack, key, title):
    """What a careful client does: the same request, the same key, until a final answer."""
    deadline = time.monotonic() + RETRY_FOR
    while True:
        try:
            response = keyed_post(session, stack, key, title)
            if response.status_code not in RETRY_STATUSES:
                return response
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f"no final answer for key {key} in {RETRY_FOR} s"
        time.sleep(WRITE_PACE)


def stored_titles(stack, client):
    # A backend process may still be in its short pause after the database hung: wait it out.
    page = wait_for_status(client, stack.base_url + "/api/posts?limit=100", 200, 30, "a list")
    return [post["title"] for post in page.json()["posts"]]


def writer_session(stack):
    session = make_client(stack)
    session.headers["Authorization"] = f"Bearer {stack.write_token}"
    return session


def test_retry_after_a_client_timeout_on_a_frozen_database_makes_one_post(stack, client):
    key, title = str(uuid.uuid4()), f"frozen retry {uuid.uuid4()}"
    # The first attempt must reach the backend, not meet a write limit spent by earlier tests.
    wait_until_writes_recover(client, stack)
    with writer_session(stack) as session:
        stack.freeze_db()
        try:
            try:
                keyed_post(session, stack, key, title, timeout=1.0)
                gave_up = False
            except requests.Timeout:
                gave_up = True
        finally:
            stack.thaw_db()
        assert gave_up, "the client should have timed out on the frozen database"
        answer = post_until_answered(session, stack, key, title)
    assert answer.status_code == 201, answer.text
    assert stored_titles(stack, client).count(title) == 1


def test_concurrent_retries_of_one_key_make_one_post(stack, client, burst_writer):
    key, title = str(uuid.uuid4()), f"raced {uuid.uuid4()}"
    sessions = [writer_session(stack) for _ in range(4)]
    start = threading.Barrier(len(sessions))
    answers = []

    def send(session):
        start.wait()
        answers.append(keyed_post(session, stack, key, title))

    threads = [threading.Thread(target=send, args=(session,)) for session in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) <= {201, 409}, statuses
    final = post_until_answered(sessions[0], stack, key, title)
    for session in sessions:
        session.close()
    assert final.status_code == 201
    created = [answer for answer in answers if answer.status_code == 201]
    assert {answer.headers["Location"] for answer in created} <= {final.headers["Location"]}
    assert stored_titles(stack, client).count(title) == 1


class KeyedWrites(Background):
    """New posts, each with a key of its own, each retried until it has a final answer."""

    def __init__(self, stack):
        self.stack = stack
        self.run = uuid.uuid4().hex[:8]
        self.answers: list[tuple[float, str, requests.Response]] = []
        super().__init__()

    def loop(self):
        with writer_session(self.stack) as session:
            for number in range(KEYED_WRITES):
                if self.stopped.is_set():
                    return
                title = f"keyed crash test {self.run} #{number}"
                answer = post_until_answered(session, self.stack, str(uuid.uuid4()), title)
                self.answers.append((time.monotonic(), title, answer))
                time.sleep(WRITE_PACE)

    def created(self, since=0.0):
        return [(t, a) for when, t, a in self.answers if a.status_code == 201 and when >= since]


def test_keyed_writes_through_a_database_crash_make_exactly_one_post_each(stack, client):
    with KeyedWrites(stack) as load:
        wait_until(lambda: len(load.created()) >= 3, 15, "3 keyed writes created before")
        stack.kill_db()
        stack.start_db()
        back = time.monotonic()
        wait_until(lambda: len(load.created(back)) >= 3, 45, "3 keyed writes created after")

    unanswered = [
        (title, a.status_code, a.text) for _, title, a in load.answers if a.status_code != 201
    ]
    assert load.answers and not unanswered, unanswered
    titles = stored_titles(stack, client)
    for title, answer in load.created():
        assert titles.count(title) == 1, (title, titles.count(title))
        assert client.get(stack.base_url + answer.headers["Location"]).json() == answer.json()
