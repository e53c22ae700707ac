"""What the native runtime's processes share: waiting, ports, and the database client settings
compose gives a service."""

import socket
import time

from native.compose import SECRETS_MOUNT, compose_config, on_this_host


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1, detail=None):
    """Poll PREDICATE until it returns something truthy, and return that. After TIMEOUT seconds
    a TimeoutError names WHAT, followed by DETAIL() (a log tail, a last status) when given."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            more = f"\n{detail()}" if detail else ""
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}{more}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def db_client_env(user: str, host: str, port: int, secrets_dir, environment=None) -> dict[str, str]:
    """The database client settings compose gives a service (its ENVIRONMENT; without one,
    compose.yaml's x-db-client-env as account USER, whose password is SECRETS_DIR/db_USER_password),
    for a process on this host: the server at HOST:PORT, the secrets in SECRETS_DIR, and no TLS."""
    env = on_this_host(
        environment
        or {
            **compose_config()["x-db-client-env"],
            "DB_USER": user,
            "DB_PASSWORD_FILE": f"{SECRETS_MOUNT}db_{user}_password",
        },
        secrets_dir,
    )
    # The server's certificate is for dbnet's name `db`: on this host, no network to cross.
    env.pop("DB_TLS_CA_FILE")
    return {**env, "DB_HOST": host, "DB_PORT": str(port)}
