"""Backend tier fixtures: one real MariaDB per session, migrated by `python -m app.migrate` as the
migrator account; the app under test connects as the app account (DML only)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pymysql
import pytest

from app import create_app
from app.config import Config
from native.mariadb import MariaDB
from native.stack import start_gunicorn, wait_serving
from tests.stack import db_client_env, free_port

REPO = Path(__file__).resolve().parents[2]
BACKEND = REPO / "backend"


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory, secrets_dir):
    db = MariaDB(tmp_path_factory.mktemp("mariadb"), secrets_dir)
    db.start(timeout=60)
    yield db
    db.stop()


def db_env(mariadb, secrets_dir, user):
    """The backend's environment for one account, as compose gives it."""
    return db_client_env(user, mariadb.host, mariadb.port, secrets_dir)


@pytest.fixture(scope="session")
def migrator_env(mariadb, secrets_dir):
    return db_env(mariadb, secrets_dir, "migrator")


@pytest.fixture(scope="session")
def app_env(mariadb, secrets_dir):
    """The backend's environment, as compose gives it: the app account and the write tokens."""
    return {
        **db_env(mariadb, secrets_dir, "app"),
        "API_TOKENS_FILE": str(secrets_dir / "api_tokens"),
    }


@pytest.fixture(scope="session")
def write_token(secrets_dir):
    return (secrets_dir / "api_tokens").read_text().split()[0]


def run_migrate(env, *args, backend=BACKEND, timeout=90):
    """`python -m app.migrate ARGS` of the code in BACKEND (this release's by default)."""
    return subprocess.run(
        [sys.executable, "-m", "app.migrate", *args],
        cwd=backend,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def migrated(migrator_env):
    result = run_migrate({**migrator_env, "SEED_SAMPLE_POSTS": "0"})
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="session")
def app(migrated, app_env):
    app = create_app(Config.from_env(app_env))
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def client(app):
    """Anyone: reads are public, writes are refused."""
    return app.test_client()


@pytest.fixture
def writer(app, write_token):
    """A client holding a write token."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {write_token}"
    return client


def connect(env, **kwargs):
    """A direct PyMySQL connection with the account described by a db_env()."""
    return pymysql.connect(
        host=env["DB_HOST"],
        port=int(env["DB_PORT"]),
        user=env["DB_USER"],
        password=Path(env["DB_PASSWORD_FILE"]).read_text(),
        database=env["DB_NAME"],
        charset="utf8mb4",
        connect_timeout=5,
        **kwargs,
    )


class Gunicorn:
    """A real `gunicorn -c gunicorn.conf.py` on a free loopback port, logging to a file."""

    def __init__(self, env, log_file, workers=2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_url = f"http://127.0.0.1:{free_port()}/metrics"
        self.log_file = log_file
        env = {
            **os.environ,
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            # Its own metrics port and files: other test runs may have a gunicorn up too.
            "METRICS_BIND": self.metrics_url.split("/")[2],
            "PROMETHEUS_MULTIPROC_DIR": str(Path(log_file).parent / "metrics"),
        }
        self.proc = start_gunicorn(env, log_file)

    def wait_healthy(self, timeout=30):
        wait_serving(self.proc, f"{self.url}/healthz", self.log_file, timeout)

    def log(self):
        return Path(self.log_file).read_text(errors="replace")

    def json_lines(self):
        lines = []
        for line in self.log().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"unparsed": line})
        return lines

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="session")
def gunicorn(migrated, app_env, tmp_path_factory):
    server = Gunicorn(app_env, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log")
    server.wait_healthy()
    yield server
    server.stop()
