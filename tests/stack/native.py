"""The native runtime (native/, `make native-up`) as the tests' stack: the operations of
tests.stack.Stack on its processes. Tests reach it from their own loopback addresses."""

from __future__ import annotations

import http.client
import os
import shlex
import signal
import ssl
import subprocess
import sys
import urllib.request

from native.stack import HOST, children, pid_program, tail
from native.stack import NativeStack as NativeRuntime
from tests.stack import (
    DB_LOGIN_SCRIPT,
    NGINX_WORKER,
    SERVICES,
    ScriptOperations,
    db_login_outcome,
    read_write_token,
    wait_until,
)

# nginx uses 127.0.0.1 towards gunicorn; the tests come from another loopback address so that
# "the backend logs the client's address, not the proxy's" can be told apart.
CLIENT_ADDRESS = "127.0.0.2"
# A second client (Stack.other_client_status), which nginx's per-client limits count apart.
OTHER_CLIENT = "127.0.0.3"


def _get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        return response.read().decode()


class NativeStack(ScriptOperations, NativeRuntime):
    """The native runtime, implementing tests.stack.Stack."""

    services = SERVICES
    client_address = CLIENT_ADDRESS
    configuration = "development"
    backend_replicas = 1
    secret_files = True

    @property
    def write_token(self) -> str:
        return read_write_token(self.secrets_dir)

    def stop_db(self) -> None:
        self._need(self.db, "db").stop()
        self._record("db", None)

    def start_db(self) -> None:
        db = self._need(self.db, "db")
        db.start(timeout=60)
        self._record("db", db._proc.pid)

    def kill_db(self) -> None:
        self._need(self.db, "db").kill()
        self._record("db", None)

    def freeze_db(self) -> None:
        os.kill(self._need(self.db, "db")._proc.pid, signal.SIGSTOP)

    def thaw_db(self) -> None:
        os.kill(self._need(self.db, "db")._proc.pid, signal.SIGCONT)

    def other_client_status(self, path: str) -> int:
        host, port = self.base_url.rsplit("://", 1)[1].rsplit(":", 1)
        context = ssl.create_default_context(cafile=self.ca_bundle)
        connection = http.client.HTTPSConnection(
            host, int(port), timeout=10, context=context, source_address=(OTHER_CLIENT, 0)
        )
        try:
            connection.request("GET", path)
            return connection.getresponse().status
        finally:
            connection.close()

    def kill_backend_worker(self) -> int:
        master = self._recorded_pid("backend")
        if master is None:
            raise RuntimeError("gunicorn is not running")
        workers = children(master)
        if not workers:
            raise RuntimeError(f"gunicorn master {master} has no workers")
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        # The master notices (SIGCHLD) and forks a replacement: wait for the full count again.
        wait_until(
            lambda: victim not in children(master) and len(children(master)) >= len(workers),
            15,
            f"gunicorn master {master} to replace the killed worker {victim}",
            detail=lambda: tail(self.log_dir / "backend.log"),
        )
        return victim

    def backend_metrics(self) -> list[str]:
        return [_get_text(f"http://{HOST}:{self.metrics_port}/metrics")]

    def proxy_stub_status(self) -> str:
        return _get_text(f"http://{HOST}:{self.status_port}/stub_status")

    def proxy_worker_count(self) -> int:
        master = self._recorded_pid("proxy")
        if master is None:
            raise RuntimeError("nginx is not running")
        return sum(pid_program(pid).strip() == NGINX_WORKER for pid in children(master))

    def logs(self, service: str) -> str:
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}; one of {SERVICES}")
        path = self.log_dir / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def db_login(self, user: str, password: str) -> bool:
        # The backend's interpreter on the backend's host (loopback), as the backend connects.
        result = subprocess.run(
            [sys.executable, "-c", DB_LOGIN_SCRIPT, user],
            input=password,
            env=self._process_env(self.db_client_env(user)),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return db_login_outcome(result)

    def script_env(self) -> dict[str, str]:
        # BACKUP_DIR and the copy command are this run's (`make backup` takes them from .env).
        target = shlex.quote(str(self.backup_copy_dir))
        copy = f'cp "$BACKUP_FILE" "$BACKUP_CHECKSUM_FILE" {target}/'
        return {
            "STACK_RUNTIME": "native",
            "NATIVE_STACK_ENV": str(self.run_dir / "stack.env"),
            "SECRETS_DIR": str(self.secrets_dir),
            "BACKUP_DIR": str(self.backup_dir),
            "BACKUP_COPY_COMMAND": copy,
        }

    def binlog_text(self) -> str:
        return self._need(self.db, "db").binlog_text()
