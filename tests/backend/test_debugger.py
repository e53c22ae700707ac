"""The debugger probe (tests/debugger_probe.py) finds the debugger where there is one, and gunicorn
(the production command) serves none. Through the proxy: tests/e2e/test_debugger.py."""

import os
import signal
import subprocess
import sys

import pytest
import requests

from native.stack import wait_serving
from tests.backend.conftest import BACKEND
from tests.debugger_probe import LOG_SIGNS, PROBES, debugger_evidence, signs_in
from tests.stack import free_port


def probe(url):
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: loopback only
    return debugger_evidence(lambda path: session.get(url + path, timeout=10).text)


@pytest.fixture
def flask_run_debug(app_env, tmp_path):
    """The dev target's command (backend/Dockerfile), reloader included, on a loopback port."""
    port = free_port()
    log_path = tmp_path / "flask-run.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "run", "--debug"]
            + ["--host", "127.0.0.1", "--port", str(port)],
            cwd=BACKEND,
            env={**os.environ, **app_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the reloader's child is in the group that is stopped
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_serving(proc, url + "/healthz", log_path)
        yield url, log_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_probe_finds_the_debugger_of_flask_run_debug(flask_run_debug):
    url, log_path = flask_run_debug
    found = probe(url)
    assert all(found.values()), f"a probe missed the debugger: {found}"
    assert signs_in(log_path.read_text(), LOG_SIGNS) == list(LOG_SIGNS)


def test_gunicorn_serves_no_debugger(gunicorn):
    assert probe(gunicorn.url) == {path: [] for path in PROBES}
    assert signs_in(gunicorn.log(), LOG_SIGNS) == []
