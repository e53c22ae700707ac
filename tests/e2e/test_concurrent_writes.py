"""Writers racing on the same posts get true answers, on every supported MariaDB: 10.11 (native)
and 11.8 (containers), whose snapshot isolation refuses a transaction that updates a row another
one changed since it read it (ERROR 1020)."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

from tests.e2e.conftest import POLITE, make_client

POSTS = 2
# Per post: this many PUTs and one DELETE, all sent at once (within the proxy's write burst of
# 10; the writers wait out a 429 and send again, which is safe: nginx refused it unread).
PUTS = 4


def test_concurrent_updates_and_deletes_of_the_same_posts_get_true_answers(stack, burst_writer):
    urls = []
    for _ in range(POSTS):
        created = burst_writer.post(
            stack.base_url + "/api/posts", json={"title": "race", "body": "0"}
        )
        assert created.status_code == 201, created.text
        urls.append(stack.base_url + created.headers["Location"])
    requests = [(url, "PUT", f"put {i}") for url in urls for i in range(PUTS)]
    requests += [(url, "DELETE", None) for url in urls]
    start = Barrier(len(requests))

    def send(request):
        url, method, body = request
        with make_client(stack, max_retries=POLITE) as session:
            session.headers["Authorization"] = f"Bearer {stack.write_token}"
            start.wait(timeout=30)
            payload = {"title": f"race {uuid.uuid4().hex}", "body": body} if body else None
            response = session.request(method, url, json=payload, timeout=30)
            return url, method, payload, response

    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(send, requests))

    for _url, method, payload, response in answers:
        # 200 with the update, 204, 404 once the post is gone; nothing else, a 500 least of all.
        expected = {"PUT": {200, 404}, "DELETE": {204}}[method]
        assert response.status_code in expected, (method, response.status_code, response.text)
        if response.status_code == 200:
            assert (response.json()["title"], response.json()["body"]) == (
                payload["title"],
                payload["body"],
            )
    for url in urls:
        # Deleted means deleted: no PUT that raced with the DELETE brought the post back.
        assert burst_writer.get(url).status_code == 404
