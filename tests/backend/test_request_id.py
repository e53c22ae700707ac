"""Request ids: taken from X-Request-ID or generated, echoed, and carried by log lines."""

import io
import json
import logging
import re

import requests

from app.logging import JsonFormatter


def test_request_id_from_header_is_echoed(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


def test_request_id_is_generated_when_absent(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


def test_request_id_that_could_forge_log_lines_is_replaced(client):
    response = client.get("/healthz", headers={"X-Request-ID": 'x", "level": "CRITICAL'})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_app_log_lines_are_json_with_the_request_id(app):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    with app.test_request_context(headers={"X-Request-ID": "log-42"}):
        logger = logging.getLogger("test.request")
        logger.addHandler(handler)
        try:
            logger.warning("something happened")
        finally:
            logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["request_id"] == "log-42"
    assert line["message"] == "something happened"
    assert line["level"] == "WARNING"


def test_gunicorn_access_log_is_json_with_request_id_and_proxied_client(gunicorn):
    response = requests.get(
        f"{gunicorn.url}/api/posts?limit=1",
        headers={"X-Request-ID": "access-7", "X-Forwarded-For": "203.0.113.9"},
        timeout=10,
    )
    assert response.headers["X-Request-ID"] == "access-7"
    lines = [line for line in gunicorn.json_lines() if line.get("request_id") == "access-7"]
    assert lines, gunicorn.log()[-2000:]
    access = lines[-1]
    assert access["remote_addr"] == "203.0.113.9"  # after ProxyFix
    assert (access["method"], access["path"], access["status"]) == ("GET", "/api/posts", 200)
    assert access["duration_ms"] >= 0


def test_every_gunicorn_log_line_is_json(gunicorn):
    requests.get(f"{gunicorn.url}/healthz", timeout=10)
    assert not [line for line in gunicorn.json_lines() if "unparsed" in line]
