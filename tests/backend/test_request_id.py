"""Request ids: taken from X-Request-ID or generated, echoed, and carried by log lines."""

import io
import json
import logging
import re
import socket
from pathlib import Path

import requests

from app.logging import JsonFormatter
from tests.stack import wait_until


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

    # gunicorn writes the access line once the answer is sent: the client may read it first.
    def access_line():
        lines = [line for line in gunicorn.json_lines() if line.get("request_id") == "access-7"]
        return lines[-1] if lines else None

    access = wait_until(access_line, 10, "gunicorn's access line", 0.05, gunicorn.log)
    assert access["remote_addr"] == "203.0.113.9"  # after ProxyFix
    assert (access["method"], access["path"], access["status"]) == ("GET", "/api/posts", 200)
    assert access["duration_ms"] >= 0


def test_every_gunicorn_log_line_is_json(gunicorn):
    requests.get(f"{gunicorn.url}/healthz", timeout=10)
    assert not [line for line in gunicorn.json_lines() if "unparsed" in line]


def send_raw(url, request_bytes):
    """Send a hand-made HTTP request (bytes no client library would send) and read the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request_bytes)
        return sock.recv(65536)


def test_non_ascii_path_and_headers_keep_each_log_line_one_utf8_json_object(gunicorn):
    send_raw(
        gunicorn.url,
        b"GET /search/%C3%85ngstr%C3%B6m HTTP/1.1\r\nHost: x\r\nX-Request-ID: utf8-path\r\n"
        b"Connection: close\r\n\r\n",
    )
    # 0x85 is NEL once decoded as latin-1: a line break to Python's splitlines and others.
    send_raw(
        gunicorn.url,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: x\x85y\xe2\x80\xa8z\r\n"
        b"X-Request-ID: nel-agent\r\nConnection: close\r\n\r\n",
    )

    def both_logged():
        raw = Path(gunicorn.log_file).read_bytes()
        entries = {}
        for line in raw.split(b"\n"):
            if line:
                entry = json.loads(line.decode("utf-8"))  # strict: UTF-8, one object per line
                entries[entry.get("request_id")] = entry
        return (raw, entries) if {"utf8-path", "nel-agent"} <= entries.keys() else None

    raw, entries = wait_until(both_logged, 10, "gunicorn's access lines of both requests")
    # The path as the client meant it (percent-decoded bytes read as UTF-8, PEP 3333) ...
    assert entries["utf8-path"]["path"] == "/search/Ångström"
    # ... and bytes that are not UTF-8 replaced, not passed on as line breaks.
    assert entries["nel-agent"]["user_agent"] == "x\ufffdy\u2028z"
    assert b"\xc2\x85" not in raw and b"\xe2\x80\xa8" not in raw


def test_log_lines_carry_no_terminal_colour_codes():
    # Werkzeug's development server colours its request lines for a terminal.
    record = logging.LogRecord(
        "werkzeug", logging.INFO, __file__, 1, "\x1b[31mGET / 500\x1b[0m", None, None
    )
    assert json.loads(JsonFormatter().format(record))["message"] == "GET / 500"
