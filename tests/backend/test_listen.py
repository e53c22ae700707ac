"""GUNICORN_BIND is read in one place (backend/listen.py): gunicorn's addresses, and the port the
container healthcheck and the metrics readiness probe ask."""

import http.server
import subprocess
import sys
import threading

import listen
from tests.stack import free_port
from tests.stack.compose import ROOT


def test_addresses_and_port_follow_gunicorn_bind(monkeypatch):
    monkeypatch.delenv("GUNICORN_BIND", raising=False)
    assert (listen.addresses(), listen.port()) == (["0.0.0.0:8000"], 8000)
    monkeypatch.setenv("GUNICORN_BIND", "127.0.0.1:9123, [::1]:9124")
    assert (listen.addresses(), listen.port()) == (["127.0.0.1:9123", "[::1]:9124"], 9123)


class Healthz(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the handler's API
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_container_healthcheck_asks_the_port_of_gunicorn_bind():
    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), Healthz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:

        def healthcheck(bind):
            return subprocess.run(
                [sys.executable, "healthcheck.py"], cwd=ROOT / "backend",
                env={"GUNICORN_BIND": bind}, capture_output=True, text=True, timeout=30,
            ).returncode  # fmt: skip

        assert healthcheck(f"0.0.0.0:{port}") == 0
        # Control: another port in GUNICORN_BIND is asked, and nothing answers there.
        assert healthcheck(f"0.0.0.0:{free_port()}") == 1
    finally:
        server.shutdown()
