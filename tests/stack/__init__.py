"""The running stack as the end-to-end tests see it, whatever runs it (processes or containers).

tests/stack/native.py (NativeStack) and tests/stack/compose.py (ComposeStack) implement it once
each; tests/e2e/ is written against this interface only.
"""

import socket
from pathlib import Path
from typing import Protocol, runtime_checkable

SERVICES = ("proxy", "backend", "migrate", "db")
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


def read_write_token(secrets_dir) -> str:
    """The first API write token of a secrets dir made by scripts/make-secrets.sh."""
    return (Path(secrets_dir) / "api_tokens").read_text().split()[0]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@runtime_checkable
class Stack(Protocol):
    """A stack that is up: where to reach it, what to trust, and what can be done to it."""

    base_url: str  # https://<host>:<port> of nginx, no trailing slash
    http_url: str  # http://<host>:<port> of nginx (the redirect server)
    ca_bundle: str  # path of the dev CA (dev-ca.crt) that signed the server certificate
    write_token: str  # a bearer token the backend accepts for writes (secrets/api_tokens)
    # Source address the tests connect from. Natively 127.0.0.2, so that nginx sees a client
    # address other than its own 127.0.0.1 towards gunicorn; under compose the host's address.
    client_address: str

    def stop_db(self) -> None:
        """Stop the database (cleanly); returns when it is down."""

    def start_db(self) -> None:
        """Start the database again; returns when it accepts connections."""

    def kill_backend_worker(self) -> int:
        """SIGKILL one gunicorn worker (never the master); returns its pid."""

    def reload_proxy(self) -> None:
        """Reload nginx's configuration gracefully (SIGHUP); returns when it answers again."""

    def logs(self, service: str) -> str:
        """Everything SERVICE (one of SERVICES) has written to stdout and stderr so far."""

    def proxy_worker_count(self) -> int:
        """How many nginx worker processes serve requests now (old ones shutting down after a
        reload not counted)."""

    def db_login(self, user: str, password: str) -> bool:
        """Try a TCP login to the database from where the backend runs (natively loopback,
        under compose a backend container on dbnet). True if the server accepts it, False if it
        refuses the account (access denied, host not allowed); any other failure raises."""
