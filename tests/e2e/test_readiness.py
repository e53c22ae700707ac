"""/readyz follows the database: 503 while it is stopped, 200 again once it is back."""

from tests.e2e.helpers import wait_for_status


def booted_workers(stack):
    return stack.logs("backend").count("Booting worker")


def test_readyz_is_503_without_database_and_recovers_by_itself(stack, client):
    url = stack.base_url + "/readyz"
    assert client.get(url).status_code == 200
    workers_before = booted_workers(stack)

    stack.stop_db()
    try:
        down = wait_for_status(client, url, 503, 30, "the database is stopped")
        assert down.json()["error"] == "database_unavailable"
        # Liveness does not depend on the database: nothing should restart the backend.
        assert client.get(stack.base_url + "/healthz").status_code == 200
    finally:
        stack.start_db()

    wait_for_status(client, url, 200, 30, "the database is back")
    assert client.get(stack.base_url + "/api/posts").status_code == 200
    # Recovered by itself: no gunicorn worker was started meanwhile (the pool reconnected).
    assert booted_workers(stack) == workers_before
