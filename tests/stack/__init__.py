"""The running stack as the end-to-end tests see it, whatever runs it (processes or containers).

tests/stack/native.py (NativeStack) and tests/stack/compose.py (ComposeStack) implement it once
each; tests/e2e/ is written against this interface only.
"""

import socket
from typing import Protocol, runtime_checkable

SERVICES = ("proxy", "backend", "migrate", "db")


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
