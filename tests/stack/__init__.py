"""The running stack as the end-to-end tests see it, whatever runs it (processes or containers).

tests/stack/native.py (NativeStack, over the native runtime in native/) and tests/stack/compose.py
(ComposeStack) implement it once each; tests/e2e/ is written against this interface only.
"""

import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

from alembic.config import Config
from alembic.script import ScriptDirectory

# The native runtime's helpers, which the tests share (re-exported).
from native.processes import db_client_env as db_client_env
from native.processes import free_port as free_port
from native.processes import wait_until as wait_until

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("proxy", "backend", "migrate", "db")
# The operation scripts (`make backup`, `make restore`, ...), run against either runtime.
SCRIPTS = REPO / "scripts"


def migration_heads() -> dict[str, str]:
    """{phase: head} of the migrations this code ships, as alembic reads backend/migrations."""
    script = ScriptDirectory.from_config(Config(str(REPO / "backend" / "alembic.ini")))
    return {
        phase: head
        for head in script.get_heads()
        for phase in ("expand", "contract")
        if phase in script.get_revision(head).branch_labels
    }


def next_release(checkout: Path, phases=("expand", "contract"), change=None) -> Path:
    """CHECKOUT: a copy of this repository as the next release, with its migrations of PHASES
    (tests/releases/next) and CHANGE(its backend directory) applied."""
    skip = (".git", ".venv", ".run", "__pycache__", "node_modules", "secrets", "certs", "backups*")
    shutil.copytree(REPO, checkout, ignore=shutil.ignore_patterns(*skip))
    for phase in phases:
        shutil.copytree(
            REPO / "tests" / "releases" / "next" / "versions" / phase,
            checkout / "backend" / "migrations" / "versions" / phase,
            dirs_exist_ok=True,
        )
    if change:
        change(checkout / "backend")
    return checkout


# The title nginx gives a serving worker (one left over from a reload adds "is shutting down").
NGINX_WORKER = "nginx: worker process"

# Stack.db_login's probe, run by the backend's Python where the backend runs:
# `python -c DB_LOGIN_SCRIPT USER` with DB_HOST/DB_PORT set and the password on stdin (never on a
# command line). Exit 0: logged in; DB_LOGIN_REFUSED: the server refused the account; else an error.
DB_LOGIN_REFUSED = 3
DB_LOGIN_SCRIPT = f"""
import os, sys
import pymysql
from pymysql.constants import ER

try:
    pymysql.connect(
        host=os.environ["DB_HOST"],
        port=int(os.environ["DB_PORT"]),
        user=sys.argv[1],
        password=sys.stdin.read(),
        connect_timeout=5,
    ).close()
except pymysql.err.OperationalError as error:
    if error.args[0] not in (ER.ACCESS_DENIED_ERROR, ER.HOST_NOT_PRIVILEGED):
        raise
    print(error.args[1])
    sys.exit({DB_LOGIN_REFUSED})
"""


def db_login_outcome(result) -> bool:
    """True/False from a finished DB_LOGIN_SCRIPT run (a CompletedProcess); raises on errors."""
    if result.returncode in (0, DB_LOGIN_REFUSED):
        return result.returncode == 0
    raise RuntimeError(f"database login probe failed (exit {result.returncode}):\n{result.stderr}")


def secret_lines(text: str) -> list[str]:
    """What a leak search looks for of a secret file's TEXT: each line (a password, a token), or
    for a PEM file the lines of its body (not the armour, which is everywhere, nor a short last
    line, which could be found by chance)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and lines[0].startswith("-----BEGIN"):
        return [line for line in lines if not line.startswith("-----") and len(line) >= 32]
    return lines


def read_write_token(secrets_dir) -> str:
    """The first API write token of a secrets dir made by scripts/make-secrets.sh."""
    return (Path(secrets_dir) / "api_tokens").read_text().split()[0]


class Background:
    """Runs self.loop() on a daemon thread while a `with` block runs. The loop ends once
    self.stopped is set (it checks or waits on it); the block's end waits up to JOIN s for it."""

    join = 30

    def __init__(self):
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self._thread.join(self.join)


@runtime_checkable
class Stack(Protocol):
    """A stack that is up: where to reach it, what to trust, and what can be done to it."""

    base_url: str  # https://<host>:<port> of nginx, no trailing slash
    http_url: str  # http://<host>:<port> of nginx (the redirect server)
    ca_bundle: str  # path of the dev CA (dev-ca.crt) that signed the server certificate
    write_token: str  # a bearer token the backend accepts for writes (secrets/api_tokens)
    secrets_dir: Path  # the secret files this stack was made with (scripts/make-secrets.sh)
    # "development" (compose.yaml's and proxy/proxy.env's values: the native runner) or
    # "production" (compose.yaml + compose.prod.yaml: the compose tier).
    configuration: str
    # Source address the tests connect from. Natively 127.0.0.2, so that nginx sees a client
    # address other than its own 127.0.0.1 towards gunicorn; under compose the host's address.
    client_address: str
    # gunicorn masters behind nginx: natively one, under compose deploy.replicas of the backend.
    backend_replicas: int
    # The secrets and the certificate are files on this host that rotate-secret.sh and
    # reload-proxy.sh act on: natively and under compose. Swarm keeps immutable copies of its own.
    secret_files: bool

    def stop_db(self) -> None:
        """Stop the database (cleanly); returns when it is down."""

    def start_db(self) -> None:
        """Start the database again; returns when it accepts connections."""

    def kill_db(self) -> None:
        """SIGKILL the database server, as a crash would; returns once that process is gone.
        Natively start_db() brings it back; under compose the restart policy does (the
        container exits with its server), and start_db() waits until it accepts connections."""

    def freeze_db(self) -> None:
        """SIGSTOP the database server, as a hung server behaves: its port still accepts
        connections (the kernel's backlog), nothing answers. thaw_db() resumes it."""

    def thaw_db(self) -> None:
        """SIGCONT the server freeze_db() stopped."""

    def other_client_status(self, path: str) -> int:
        """Status of GET PATH sent to nginx over HTTPS by another client than the tests' (another
        address for the per-client limits: natively 127.0.0.3, under compose a backend
        container on appnet)."""

    def kill_backend_worker(self) -> int:
        """SIGKILL one gunicorn worker (never the master); returns its pid."""

    def restart_backend(self) -> None:
        """Restart every backend process while the others serve, as `make restart-backend` does;
        returns once all are back."""

    def reload_proxy(self) -> None:
        """Reload nginx's configuration gracefully, as `make reload-proxy` does; returns once the
        old workers have exited."""

    def logs(self, service: str) -> str:
        """Everything SERVICE (one of SERVICES) has written to stdout and stderr so far."""

    def backend_metrics(self) -> list[str]:
        """The Prometheus text of each backend replica's metrics port (METRICS_BIND), fetched
        from where the stack reaches it: natively loopback, under compose inside the replica."""

    def proxy_stub_status(self) -> str:
        """nginx's stub_status page from its status listener (PROXY_STATUS_PORT), fetched from
        where the exporter reaches it: natively loopback, under compose a container on appnet."""

    def proxy_worker_count(self) -> int:
        """How many nginx worker processes serve requests now (old ones shutting down after a
        reload not counted)."""

    def db_login(self, user: str, password: str) -> bool:
        """Try a TCP login to the database from where the backend runs (natively loopback,
        under compose a backend container on dbnet). True if the server accepts it, False if it
        refuses the account (access denied, host not allowed); any other failure raises."""

    # --- day-2 operations: the scripts `make` runs, against this stack (docs/operations.md) ---
    backup_dir: Path  # BACKUP_DIR on this host: where backups land
    backup_copy_dir: Path  # where this stack's BACKUP_COPY_COMMAND copies each good backup

    def script_env(self) -> dict[str, str]:
        """The variables under which scripts/*.sh reach this stack, as `make` sets them."""

    def backup(self) -> Path:
        """Take a backup now (scripts/backup-now.sh, as `make backup`); returns its file."""

    def restore(self, file, until: str | None = None) -> subprocess.CompletedProcess:
        """scripts/restore.sh FILE [--until UNTIL] (`make restore`), whatever its exit code."""

    def rotate_secret(self, name: str) -> subprocess.CompletedProcess:
        """scripts/rotate-secret.sh NAME (`make rotate-secret`), whatever its exit code."""

    def root_sql(self, sql: str) -> str:
        """SQL as root over the database's socket (scripts/db-shell.sh); tab-separated rows."""

    def binlog_text(self) -> str:
        """Every binary log of the database, rows decoded (mariadb-binlog --verbose)."""


class ScriptOperations:
    """The Stack operations that run scripts/*.sh, for a runner that has script_env()."""

    def run_script(
        self, script, *args, timeout=300, input=None, env_override=None, check=False, checkout=REPO
    ) -> subprocess.CompletedProcess:
        """scripts/SCRIPT ARGS (of CHECKOUT: another release's) with this stack's settings, as
        `make` runs it; with CHECK, a failure raises with the script's output."""
        result = subprocess.run(
            [Path(checkout) / "scripts" / script, *map(str, args)],
            env={**os.environ, **self.script_env(), **(env_override or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{script} failed:\n{result.stdout}{result.stderr}")
        return result

    def backup(self) -> Path:
        result = self.run_script("backup-now.sh", check=True)
        # Its last line names the new file, as `make backup` shows it.
        return Path(result.stdout.strip().splitlines()[-1])

    def restore(self, file, until=None) -> subprocess.CompletedProcess:
        return self.run_script("restore.sh", file, *(["--until", until] if until else []))

    def rotate_secret(self, name) -> subprocess.CompletedProcess:
        return self.run_script("rotate-secret.sh", name, timeout=600)

    def restart_backend(self) -> None:
        self.run_script("restart-backend.sh", check=True)

    def reload_proxy(self) -> None:
        self.run_script("reload-proxy.sh", timeout=120, check=True)

    def root_sql(self, sql) -> str:
        result = self.run_script("db-shell.sh", "--batch", "--skip-column-names", input=sql)
        if result.returncode != 0:
            raise RuntimeError(f"db-shell.sh failed on {sql!r}:\n{result.stderr}")
        return result.stdout
