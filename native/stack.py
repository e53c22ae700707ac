"""The whole stack as plain processes on 127.0.0.1, from the files the containers use.

    python -m native up     # make native-up: start, wait for /readyz, print the URL
    python -m native down   # make native-down: stop it, remove .run/native

Start order as in compose: MariaDB (native/mariadb.py: db/conf.d, db/initdb.d), then
`python -m app.migrate` as the migrator account, then gunicorn with backend/gunicorn.conf.py as
the app account, then nginx from proxy/ (native/nginx.py). Each process gets the variables
compose gives its container; only addresses, ports and paths differ. Logs: <run_dir>/logs/,
pids: <run_dir>/pids/ (`down` stops those pids and nothing else); <run_dir>/stack.env tells
scripts/lib/stack.sh (`make backup` and the other operations) how to reach them.
"""

from __future__ import annotations

import atexit
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from native.compose import service_environment
from native.mariadb import MariaDB
from native.nginx import Nginx
from native.processes import db_client_env, free_port, wait_until

REPO = Path(__file__).resolve().parents[1]
BACKEND = REPO / "backend"
HOST = "127.0.0.1"
# Which binary each recorded pid must belong to: a pid file left behind after a reboot may name
# an unrelated process by now, and that one must never be signalled.
EXPECTED_PROGRAM = {"db": "mariadbd", "backend": "gunicorn", "proxy": "nginx"}
# Graceful stop signals, as the images' STOPSIGNAL / compose would send them.
STOP_SIGNAL = {"db": signal.SIGTERM, "backend": signal.SIGTERM, "proxy": signal.SIGQUIT}
STOP_ORDER = ("proxy", "backend", "db")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx does
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return f"--- last {lines} lines of {path} ---\n" + "\n".join(text.splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    """True while PID exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def pid_program(pid: int) -> str:
    """PID's command line ("" once it is gone); a process may have renamed itself."""
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.NoSuchProcess:
        return ""


def children(pid: int) -> list[int]:
    """Live direct children of PID."""
    try:
        found = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    return sorted(child.pid for child in found if pid_alive(child.pid))


def http_status(url: str, cafile: str | None = None, timeout: float = 2.0) -> int | None:
    """Status of GET URL (certificate verified against CAFILE), or None if it did not answer."""
    context = ssl.create_default_context(cafile=cafile) if url.startswith("https") else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ssl.SSLError):
        return None


def write_env_file(path: Path, settings: dict[str, str]) -> None:
    """SETTINGS as lines a shell sources (NAME=value, quoted)."""
    path.write_text("".join(f"{name}={shlex.quote(value)}\n" for name, value in settings.items()))


def start_gunicorn(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """`gunicorn -c gunicorn.conf.py` in backend/ with ENV as its whole environment, logging to
    LOG_PATH; in a session of its own, so that a Ctrl-C meant for the tests is left to its owner."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            cwd=BACKEND,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_serving(proc: subprocess.Popen, url: str, log_path: Path, timeout: float = 30) -> None:
    """Wait until URL answers 200; raises with the tail of LOG_PATH if PROC exits first."""

    def healthy():
        if proc.poll() is not None:
            raise RuntimeError(f"pid {proc.pid} exited with {proc.returncode}\n{tail(log_path)}")
        return http_status(url) == 200

    wait_until(healthy, timeout, f"{url} to answer 200", 0.2, lambda: tail(log_path))


class NativeStack:
    """The stack as processes under RUN_DIR: up() starts them in compose's order and waits for
    /readyz through nginx; down() stops what the run dir records."""

    def __init__(
        self,
        run_dir: str | os.PathLike,
        http_port: int,
        https_port: int,
        certs_dir: str | os.PathLike | None = None,
        secrets_dir: str | os.PathLike | None = None,
        server_name: str = "localhost",
    ):
        self.run_dir = Path(run_dir).resolve()
        self.http_port, self.https_port = int(http_port), int(https_port)
        self.certs_dir = Path(certs_dir or os.environ.get("CERTS_DIR", REPO / "certs")).resolve()
        self.secrets_dir = Path(
            secrets_dir or os.environ.get("SECRETS_DIR", REPO / "secrets")
        ).resolve()
        self.server_name = server_name
        # The tests use the name; nginx also serves 127.0.0.1 (see PROXY_SERVER_NAME below), so
        # `curl --cacert certs/dev-ca.crt https://127.0.0.1:8443/` works too.
        self.base_url = f"https://{server_name}:{self.https_port}"
        self.http_url = f"http://{server_name}:{self.http_port}"
        self.ca_bundle = str(self.certs_dir / "dev-ca.crt")
        self.log_dir = self.run_dir / "logs"
        self.pid_dir = self.run_dir / "pids"
        self.backup_dir = self.run_dir / "backups"
        self.backup_copy_dir = self.run_dir / "backup-copy"
        self.db: MariaDB | None = None
        self.proxy: Nginx | None = None
        self._backend: subprocess.Popen | None = None
        self.backend_port: int | None = None
        self.health_port: int | None = None
        self.metrics_port: int | None = None
        self.status_port: int | None = None

    # --- life cycle ----------------------------------------------------------------------
    def up(self, timeout: float = 60.0) -> NativeStack:
        running = self.running_pids()
        if running:
            raise RuntimeError(
                f"a native stack already runs from {self.run_dir} (pids {running}); "
                "stop it first (make native-down)"
            )
        for name in ("dev-ca.crt", "server.crt", "server.key"):
            if not (self.certs_dir / name).is_file():
                raise FileNotFoundError(f"{self.certs_dir / name} is missing: run `make certs`")
        if not (self.secrets_dir / "db_app_password").is_file():
            raise FileNotFoundError(f"no secrets in {self.secrets_dir}: run `make secrets`")
        for name, port in (("HTTP_PORT", self.http_port), ("HTTPS_PORT", self.https_port)):
            if not port_free(port):
                raise OSError(f"{HOST}:{port} is in use: set {name} to a free port")
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)  # leftovers of a stack that is no longer running
        self.log_dir.mkdir(parents=True)
        self.pid_dir.mkdir()
        # What a second `up` (maybe with other HTTP_PORT/HTTPS_PORT) reports about this one.
        state = {"base_url": self.base_url, "http_url": self.http_url, "ca_bundle": self.ca_bundle}
        (self.run_dir / "stack.json").write_text(json.dumps(state) + "\n")
        atexit.register(self.down)  # also on a failed start, and when the tests end
        try:
            self._start_db()
            self._migrate()
            self._start_backend()
            self._start_proxy()
            self._write_stack_env()
            self._wait_ready(timeout)
        except BaseException:
            self.down(keep_logs=True)  # the error message carries the log tails
            raise
        return self

    def down(self, keep_logs: bool = False) -> None:
        """Stop what this run dir records, wait for every process to exit, remove the run dir."""
        atexit.unregister(self.down)
        problems = []
        for service in STOP_ORDER:
            try:
                self._stop(service)
            except Exception as error:  # keep stopping the others
                problems.append(f"{service}: {error}")
        if problems:
            raise RuntimeError("native stack: could not stop " + "; ".join(problems))
        if not keep_logs:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def running_pids(self) -> dict[str, int]:
        """service -> pid of each recorded process that still runs (and is what it should be)."""
        found = {}
        for service in EXPECTED_PROGRAM:
            pid = self._recorded_pid(service)
            if pid is not None:
                found[service] = pid
        return found

    # --- start-up steps ----------------------------------------------------------------------
    def _write_stack_env(self) -> None:
        """What scripts/lib/stack.sh needs to reach this stack (`make backup` and friends)."""
        self.backup_copy_dir.mkdir(mode=0o700)
        settings = {
            "DB_HOST": self.db.host,
            "DB_PORT": str(self.db.port),
            "DB_SOCKET": self.db.socket,
            "BACKEND_PID_FILE": str(self.pid_dir / "backend.pid"),
            "BACKEND_METRICS_BIND": f"{HOST}:{self.metrics_port}",
            "PROXY_PID_FILE": str(self.pid_dir / "proxy.pid"),
            # The backend's interpreter, and the migrate service's environment (no secret in it:
            # the password is a file's path), for `make migrate-contract`.
            "PYTHON": sys.executable,
            "MIGRATE_ENV_FILE": str(self.run_dir / "migrate.env"),
        }
        write_env_file(self.run_dir / "stack.env", settings)
        write_env_file(self.run_dir / "migrate.env", self.migrate_env())

    def _start_db(self) -> None:
        self.db = MariaDB(self.run_dir / "db", self.secrets_dir, port=free_port())
        (self.log_dir / "db.log").symlink_to(self.db.log_file)
        self.db.start(timeout=90)  # the first start installs the datadir and runs initdb.d
        self._record("db", self.db._proc.pid)

    def db_client_env(self, user: str) -> dict[str, str]:
        return db_client_env(user, self.db.host, self.db.port, self.secrets_dir)

    def service_env(self, service: str) -> dict[str, str]:
        """SERVICE's environment under compose, reaching this stack's database and secrets; the
        caller replaces the other container addresses and paths."""
        environment = service_environment(service)
        return db_client_env(
            environment["DB_USER"], self.db.host, self.db.port, self.secrets_dir, environment
        )

    def _process_env(self, extra: dict[str, str]) -> dict[str, str]:
        # What the image provides around the compose environment: a PATH, a UTF-8 locale,
        # unbuffered Python (so log lines reach the file in order).
        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        return {**base, **extra}

    def migrate_env(self) -> dict[str, str]:
        return self._process_env(self.service_env("migrate"))

    def _migrate(self) -> None:
        env = self.migrate_env()
        log_path = self.log_dir / "migrate.log"
        with open(log_path, "ab") as log:
            result = subprocess.run(
                [sys.executable, "-m", "app.migrate"],
                cwd=BACKEND,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"migrate exited with {result.returncode}\n{tail(log_path)}")

    def _start_backend(self) -> None:
        self.backend_port = free_port()
        self.metrics_port = free_port()
        env = self._process_env(
            {
                **self.service_env("backend"),
                "GUNICORN_BIND": f"{HOST}:{self.backend_port}",
                # This run's own: gunicorn empties it at start.
                "PROMETHEUS_MULTIPROC_DIR": str(self.run_dir / "backend-metrics"),
                "METRICS_BIND": f"{HOST}:{self.metrics_port}",
                "METRICS_TLS_PROBE": f"{HOST}:{self.https_port}",
                "METRICS_TLS_SERVER_NAME": self.server_name,
                "GUNICORN_WORKERS": "2",
            }
        )
        log_path = self.log_dir / "backend.log"
        self._backend = start_gunicorn(env, log_path)
        self._record("backend", self._backend.pid)
        wait_serving(self._backend, f"http://{HOST}:{self.backend_port}/healthz", log_path)

    def proxy_env(self) -> dict[str, str]:
        """The proxy's environment under compose (proxy/proxy.env and compose.yaml's), with native
        ports, upstream and paths."""
        env = service_environment("proxy")
        env.update(
            {
                # The certificate names 127.0.0.1 as well: a local stack answers to both.
                "PROXY_SERVER_NAME": f"{self.server_name} 127.0.0.1",
                "PROXY_PUBLIC_HTTPS_PORT": str(self.https_port),
                # "[addr:]port": loopback only, the native stack is not for the network.
                "PROXY_HTTP_PORT": f"{HOST}:{self.http_port}",
                "PROXY_HTTPS_PORT": f"{HOST}:{self.https_port}",
                "PROXY_HEALTH_PORT": f"{HOST}:{self.health_port}",
                "PROXY_STATUS_PORT": f"{HOST}:{self.status_port}",
                "PROXY_BACKEND": f"{HOST}:{self.backend_port}",
                "PROXY_RESOLVER": HOST,
                "PROXY_TLS_CERT": str(self.certs_dir / "server.crt"),
                "PROXY_TLS_KEY": str(self.certs_dir / "server.key"),
                "PROXY_ACME_ROOT": str(self.run_dir / "acme"),
            }
        )
        return env

    def _start_proxy(self) -> None:
        proxy_dir = self.run_dir / "proxy"
        proxy_dir.mkdir()
        (self.run_dir / "acme").mkdir()
        self.health_port = free_port()
        self.status_port = free_port()
        self.proxy = Nginx(
            proxy_dir, self.proxy_env(), f"http://{HOST}:{self.health_port}/nginx-health"
        )
        (self.log_dir / "proxy.log").symlink_to(self.proxy.log_path)
        try:
            self.proxy.start(timeout=15)
        finally:
            if self.proxy.proc is not None and self.proxy.proc.poll() is None:
                self._record("proxy", self.proxy.proc.pid)

    def _wait_ready(self, timeout: float) -> None:
        url = f"{self.base_url}/readyz"
        wait_until(
            lambda: http_status(url, self.ca_bundle) == 200,
            timeout,
            f"{url} to answer 200 through nginx (CA {self.ca_bundle})",
            interval=0.2,
            detail=lambda: "\n".join(tail(self.log_dir / f"{s}.log", 15) for s in STOP_ORDER),
        )

    # --- pids ----------------------------------------------------------------------------------
    def _record(self, service: str, pid: int | None) -> None:
        path = self.pid_dir / f"{service}.pid"
        if pid is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(f"{pid}\n")

    def _recorded_pid(self, service: str) -> int | None:
        try:
            pid = int((self.pid_dir / f"{service}.pid").read_text())
        except (OSError, ValueError):
            return None
        if pid_alive(pid) and EXPECTED_PROGRAM[service] in pid_program(pid):
            return pid
        return None

    def _stop(self, service: str, timeout: float = 30.0) -> None:
        pid = self._recorded_pid(service)
        if pid is not None:
            os.kill(pid, STOP_SIGNAL[service])
            own = {"db": self.db and self.db._proc, "backend": self._backend}.get(service)
            own = own or (self.proxy.proc if service == "proxy" and self.proxy else None)
            if own is not None and own.pid == pid:
                try:  # our child: reap it, so that it does not linger as a zombie
                    own.wait(timeout)
                except subprocess.TimeoutExpired:
                    own.kill()
                    own.wait(10)
            else:
                try:
                    wait_until(
                        lambda: not pid_alive(pid), timeout, f"{service} (pid {pid}) to exit"
                    )
                except TimeoutError:
                    os.kill(pid, signal.SIGKILL)
                    wait_until(lambda: not pid_alive(pid), 10, f"{service} (pid {pid}) to die")
        self._record(service, None)

    @staticmethod
    def _need(thing, service):
        if thing is None:
            raise RuntimeError(f"{service} was not started by this NativeStack object")
        return thing
