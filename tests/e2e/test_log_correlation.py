"""One request followed by its id through the logs of nginx, gunicorn and the app, each a JSON
line on stdout, with the client address as nginx saw it."""

from tests.e2e.helpers import log_entry, wait_for_status


def test_one_request_id_runs_through_nginx_gunicorn_and_app_logs(stack, client):
    # A request the app itself logs about: readiness while the database is stopped.
    stack.stop_db()
    try:
        response = wait_for_status(client, stack.base_url + "/readyz", 503, 30, "db stopped")
    finally:
        stack.start_db()
    request_id = response.headers["X-Request-ID"]
    assert response.json()["request_id"] == request_id

    proxy = log_entry(stack, "proxy", "nginx's access line", request_id=request_id)
    access = log_entry(
        stack, "backend", "gunicorn's access line", request_id=request_id, logger="gunicorn.access"
    )
    app = log_entry(
        stack, "backend", "the app's warning", request_id=request_id, logger="app.health"
    )
    assert (proxy["uri"], proxy["status"]) == ("/readyz", 503)
    assert (access["path"], access["status"]) == ("/readyz", 503)
    assert app["level"] == "WARNING"
    assert app["message"].startswith("readiness check failed")
    # The client address as nginx saw it, passed on to gunicorn's line.
    assert access["remote_addr"] == proxy["remote_addr"]
    if stack.configuration == "development":  # natively the tests' own source address
        assert proxy["remote_addr"] == stack.client_address
