"""Liveness never touches the database; readiness follows it, and recovers by itself."""

import requests

from app import create_app
from app.config import Config
from native.stack import http_status
from tests.stack import free_port, wait_until


def test_healthz_answers_without_a_database_and_readyz_says_why_not(app_env):
    unreachable = {**app_env, "DB_PORT": str(free_port()), "DB_CONNECT_TIMEOUT": "2"}
    app = create_app(Config.from_env(unreachable))
    client = app.test_client()
    try:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
    finally:
        app.extensions["db_engine"].dispose()
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "database_unavailable"
    assert "OperationalError" in body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_readyz_is_200_when_the_database_answers(client):
    assert client.get("/readyz").get_json() == {"status": "ready"}


def test_readyz_is_503_while_db_is_stopped_and_200_after_restart_same_gunicorn(gunicorn, mariadb):
    readyz = f"{gunicorn.url}/readyz"
    wait_until(lambda: http_status(readyz) == 200, 10, f"{readyz} to answer 200", 0.2)
    master_pid = gunicorn.proc.pid
    try:
        mariadb.stop()
        # Several requests, so that both workers see the outage through their own pools.
        for _ in range(6):
            response = requests.get(readyz, timeout=15)
            assert response.status_code == 503
            assert response.json()["error"] == "database_unavailable"
        assert requests.get(f"{gunicorn.url}/healthz", timeout=5).status_code == 200
    finally:
        mariadb.start()
    wait_until(lambda: http_status(readyz) == 200, 30, f"{readyz} to answer 200", 0.2)
    assert gunicorn.proc.poll() is None and gunicorn.proc.pid == master_pid
    # The API works again too, through pools whose old connections died with the server.
    for _ in range(6):
        assert requests.get(f"{gunicorn.url}/api/posts?limit=1", timeout=10).status_code == 200
