"""The stack under Docker Compose: the command line, and (compose tier) the running stack."""

import os
import shlex
import signal
import subprocess
import time
from functools import cached_property
from pathlib import Path

from testcontainers.compose import DockerCompose
from testcontainers.core.docker_client import DockerClient

from native.compose import compose_command
from tests.stack import (
    DB_LOGIN_SCRIPT,
    NGINX_WORKER,
    SERVICES,
    ScriptOperations,
    db_login_outcome,
    free_port,
    read_write_token,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
# Stack.other_client_status from inside a backend container: GET argv[1] through the proxy on
# appnet, verified against the dev CA (on stdin); prints the status.
OTHER_CLIENT_SCRIPT = """
import socket, ssl, sys
context = ssl.create_default_context(cadata=sys.stdin.read())
with socket.create_connection(("proxy", 8443), timeout=10) as raw:
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        head = f"GET {sys.argv[1]} HTTP/1.1", "Host: localhost", "Connection: close", "", ""
        tls.sendall("\\r\\n".join(head).encode())
        print(tls.recv(4096).split(b" ", 2)[1].decode())
"""
# GET argv[1] and print the body (the backend image has neither curl nor wget).
FETCH_SCRIPT = (
    "import sys, urllib.request\n"
    "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode(), end='')\n"
)
DEV_FILES = ["-f", str(ROOT / "compose.yaml")]
PROD_FILES = DEV_FILES + ["-f", str(ROOT / "compose.prod.yaml")]


def run(command, env=None, check=True, timeout=600, input=None):
    """Run a compose COMMAND line in the repository root (INPUT on its stdin); raises with
    compose's own message."""
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        # Logs hold whatever clients sent: a byte that is not UTF-8 shows as U+FFFD, as natively.
        errors="replace",
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{result.stderr}")
    return result


def compose(*args, env=None, **kwargs):
    """`docker compose ARGS` with ENV added to this process's environment (which wins over
    compose's .env and the files' defaults)."""
    return run([*compose_command(), *args], env={**os.environ, **(env or {})}, **kwargs)


def image_available(image):
    """IMAGE is in this engine, or can be pulled into it now."""

    def docker(*args):
        return subprocess.run(["docker", *args], capture_output=True, timeout=600).returncode == 0

    return docker("image", "inspect", image) or docker("pull", image)


def testcontainers_docker(directory):
    """What testcontainers runs as `<it> compose ARGS`: the docker CLI where compose_command() is
    its plugin, else a shim in DIRECTORY for the standalone compose binary, which takes ARGS."""
    binary, *plugin = compose_command()
    if plugin:
        return binary
    shim = Path(directory) / "docker"
    shim.write_text(
        f'#!/bin/sh\n# Run as `docker compose ARGS`.\nshift\nexec {shlex.quote(binary)} "$@"\n'
    )
    shim.chmod(0o755)
    return str(shim)


class ComposeStack(ScriptOperations):
    """The production stack (compose.yaml + compose.prod.yaml) on 127.0.0.1, for the compose tier.

    Same interface as the native runner (tests/stack/__init__.py), on testcontainers'
    DockerCompose: its command line (the compose binary, both files, the stack's env file), its
    container list and its config. `up()` builds afresh and waits until every service is
    healthy, `down()` removes containers, networks, volumes and the images it built.
    """

    services = SERVICES
    configuration = "production"
    # Requests from the host reach nginx from the bridge gateway, whatever the source address.
    client_address = "127.0.0.1"
    secret_files = True

    def __init__(self, project, http_port, https_port, certs_dir, secrets_dir, acme_dir, run_dir):
        self.project = project
        # By name: nginx serves only its server_name (localhost resolves to 127.0.0.1).
        self.http_url = f"http://localhost:{http_port}"
        self.base_url = f"https://localhost:{https_port}"
        self.ca_bundle = str(Path(certs_dir) / "dev-ca.crt")
        self.secrets_dir = Path(secrets_dir)
        self.backup_dir = self.secrets_dir.parent / f"backups-{project}"
        self.backup_copy_dir = self.secrets_dir.parent / f"backup-copy-{project}"
        self.env = {
            "COMPOSE_PROJECT_NAME": project,
            "PUBLISH_ADDRESS": "127.0.0.1",
            "HTTP_PORT": str(http_port),
            "HTTPS_PORT": str(https_port),
            "SERVER_NAME": "localhost",
            "CERTS_DIR": str(certs_dir),
            "SECRETS_DIR": str(secrets_dir),
            "ACME_WEBROOT": str(acme_dir),
            # Beside the secrets, this session's own; the copy goes to a second local directory.
            "BACKUP_DIR": str(self.backup_dir),
            "BACKUP_COPY_DIR": str(self.backup_copy_dir),
            "BACKUP_COPY_COMMAND": 'cp "$BACKUP_FILE" "$BACKUP_CHECKSUM_FILE" /backup-copy/',
        }
        self.run_dir = Path(run_dir)
        self.build_seconds = self.up_seconds = None

    def beside(self, suffix, run_dir):
        """Another production stack with this one's certificates and secrets, and a project
        (this one's name + SUFFIX), ports and RUN_DIR of its own: for what the session's stack
        must not go through."""
        return ComposeStack(
            project=f"{self.project}{suffix}",
            http_port=free_port(),
            https_port=free_port(),
            certs_dir=self.env["CERTS_DIR"],
            secrets_dir=self.env["SECRETS_DIR"],
            acme_dir=Path(run_dir) / "acme",
            run_dir=run_dir,
        )

    @cached_property
    def docker_compose(self):
        """testcontainers' DockerCompose of this stack, made when first used (compose_command()
        raises where there is no compose, which the compose_stack fixture reports)."""
        # It takes no environment, but env files: this one is the stack's only source of these
        # settings (compose then reads no .env). Single quotes: compose takes each value as it
        # is ($BACKUP_FILE is for the copy command's shell).
        env_file = self.run_dir / "stack.env"
        env_file.write_text("".join(f"{name}='{value}'\n" for name, value in self.env.items()))
        return DockerCompose(
            ROOT,
            compose_file_name=["compose.yaml", "compose.prod.yaml"],
            env_file=str(env_file),
            docker_command_path=testcontainers_docker(self.run_dir),
        )

    @cached_property
    def engine(self):
        """The Docker engine's API (testcontainers' client), made when first used: inspect, top,
        pause, restart."""
        return DockerClient().client.api

    def compose(self, *args, check=True, timeout=600, input=None):
        """`docker compose ARGS` on this stack, for what DockerCompose has no method for."""
        command = [*self.docker_compose.docker_compose_command(), *args]
        return run(command, check=check, timeout=timeout, input=input)

    def config(self):
        """The stack's configuration as compose renders it (`config --format json`)."""
        return self.docker_compose.get_config()

    @cached_property
    def metrics_url(self):
        """A backend replica's metrics, from inside it: the port of its METRICS_BIND."""
        bind = self.config()["services"]["backend"]["environment"]["METRICS_BIND"]
        return f"http://127.0.0.1:{bind.rsplit(':', 1)[1]}/metrics"

    @cached_property
    def stub_status_url(self):
        """nginx's stub_status, on the proxy's PROXY_STATUS_PORT (proxy.env), across appnet."""
        port = self.config()["services"]["proxy"]["environment"]["PROXY_STATUS_PORT"]
        return f"http://proxy:{port}/stub_status"

    @cached_property
    def db_check(self):
        """argv of the db service's healthcheck (compose.yaml). Run with exec(), it is polled at
        once: Docker's health status would lag by up to the check's interval."""
        kind, *argv = self.config()["services"]["db"]["healthcheck"]["test"]
        assert kind == "CMD", kind
        return argv

    def up(self):
        # Compose lets the environment win over the env file (and make exports SECRETS_DIR,
        # CERTS_DIR, BACKUP_DIR): tests/conftest.py's compose_stack unsets these for the session.
        if clash := sorted(set(self.env) & set(os.environ)):
            raise RuntimeError(f"unset {', '.join(clash)}: it would override the stack's env file")
        started = time.monotonic()
        self.note_db_start()
        # The secrets the images are built with, and when they were made (a rotation, later,
        # makes new ones): tests/containers/test_secret_leaks.py searches the images for them.
        self.secrets_at_build = {p.name: p.read_text() for p in self.secrets_dir.iterdir()}
        self.secrets_made = max(p.stat().st_mtime for p in self.secrets_dir.iterdir())
        # Every project image is built now, with this session's secrets already made: a cached
        # layer from an earlier build could hide a leak of these secrets into an image
        # (tests/containers/test_secret_leaks.py searches the layers). Costs ~15 s here.
        # DockerCompose.start() can only `up --build`, with the cache and without a time bound.
        self.compose("build", "--no-cache", timeout=900)
        self.build_seconds = time.monotonic() - started
        try:
            self.compose("up", "--detach", "--wait", "--wait-timeout", "300", timeout=900)
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n--- logs ---\n{self.all_logs()[-6000:]}") from None
        self.up_seconds = time.monotonic() - started

    def down(self):
        # DockerCompose.stop() removes volumes, not images or orphans. --rmi local: the images
        # built by up() (never reused, see there) go too, not the bases. Every profile: `down`
        # forgets the networks and volumes of profiles it was not given, and a leftover network
        # per run soon exhausts Docker's address pools.
        self.compose(
            "--profile", "*", "down",
            "--volumes", "--rmi", "local", "--remove-orphans", "--timeout", "10",
            check=False,
        )  # fmt: skip
        # And what compose no longer names: earlier builds (a rebuild, make deploy's) and the
        # tags make deploy adds. Compose labels every image it builds with its project.
        label = f"com.docker.compose.project={self.project}"
        for image in self.engine.images(filters={"label": label}, quiet=True):
            self.engine.remove_image(image, force=True)

    # --- operations of the Stack interface ---------------------------------------------
    @property
    def write_token(self):
        return read_write_token(self.secrets_dir)

    def note_db_start(self):
        """Record the secret files as the db container mounts them now, at its (re)start: a
        running container keeps the files it mounted, so a rotation since (make rotate-secret)
        gives the host files contents it does not see (and reads only on its first start)."""
        self.db_secrets = {p.name: p.read_text() for p in self.secrets_dir.iterdir()}

    def stop_db(self):
        self.compose("stop", "db")

    def start_db(self):
        self.compose("start", "db")
        self.note_db_start()
        wait_until(
            lambda: self.exec("db", *self.db_check).returncode == 0,
            120, "db to accept connections after its start", 0.2, self.all_logs,
        )  # fmt: skip

    def kill_db(self):
        (container,) = self.container_ids("db")
        restarts = self.engine.inspect_container(container)["RestartCount"]
        os.kill(self.host_pid(container, "mariadbd"), signal.SIGKILL)

        # With init: true the container exits with its server, and `restart: unless-stopped`
        # starts it again (after Docker's 100 ms restart delay).
        def restarted():
            state = self.engine.inspect_container(container)
            return state["RestartCount"] > restarts and state["State"]["Running"]

        wait_until(restarted, 60, "db to be restarted by Docker after its SIGKILL")
        self.note_db_start()

    @property
    def backend_replicas(self):
        return len(self.container_ids("backend"))

    def other_client_status(self, path):
        # From a backend replica, whose address on appnet is not the host's; the dev CA on stdin.
        ca = Path(self.ca_bundle).read_text()
        result = self.exec(
            "backend", "python", "-c", OTHER_CLIENT_SCRIPT, path, input=ca, check=True, timeout=60
        )
        return int(result.stdout)

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
        return int(self.exec("backend", "python", "-c", script, check=True).stdout)

    # --- compose-only faults (tests/containers/test_replica_faults.py) ---------------------
    def freeze_db(self):
        (container,) = self.container_ids("db")
        os.kill(self.host_pid(container, "mariadbd"), signal.SIGSTOP)

    def thaw_db(self):
        (container,) = self.container_ids("db")
        os.kill(self.host_pid(container, "mariadbd"), signal.SIGCONT)

    def pause_backend(self):
        """Freeze one backend replica (`docker pause`): its sockets stay open and accept, nothing
        answers. Returns its container id, for unpause_backend()."""
        container = self.container_ids("backend")[0]
        self.engine.pause(container)
        return container

    def unpause_backend(self, container):
        self.engine.unpause(container)

    def backend_metrics(self):
        # Each replica's own metrics port, from inside it: the port is published nowhere.
        return [
            self.exec(
                "backend", "python", "-c", FETCH_SCRIPT, self.metrics_url, index=i, check=True
            ).stdout
            for i in range(1, self.backend_replicas + 1)
        ]

    def proxy_stub_status(self):
        # From a backend replica, which shares appnet with the proxy as the exporter does.
        return self.exec(
            "backend", "python", "-c", FETCH_SCRIPT, self.stub_status_url, check=True
        ).stdout

    def proxy_worker_count(self):
        # The host's view of the container's processes: needs no `ps` in the image.
        (container,) = self.container_ids("proxy")
        return sum(args.strip() == NGINX_WORKER for _, args in self.processes(container))

    def logs(self, service):
        return self.compose("logs", "--no-color", "--no-log-prefix", service).stdout

    def script_env(self):
        return {
            **self.env,
            "STACK_RUNTIME": "compose",
            "COMPOSE_COMMAND": " ".join(compose_command()),
        }

    def binlog_text(self):
        # The index lists them: from 11.4 each log has a GTID index (.idx) beside it too.
        script = "cd /var/lib/mysql && xargs mariadb-binlog --verbose < mariadb-bin.index"
        return self.exec("db", "sh", "-c", script, check=True, timeout=120).stdout

    def db_login(self, user, password):
        # From a backend replica, on dbnet, with the backend's own DB_HOST and DB_PORT.
        result = self.exec(
            "backend", "python", "-c", DB_LOGIN_SCRIPT, user, input=password, timeout=60
        )
        return db_login_outcome(result)

    # --- helpers for the container checks ------------------------------------------------
    def exec(self, service, *command, index=1, check=False, input=None, timeout=600):
        """COMMAND in replica INDEX of SERVICE, INPUT on its stdin. By hand: DockerCompose's
        exec_in_container has neither --index nor stdin, and fails on output that is not UTF-8."""
        return self.compose(
            "exec", "-T", "--index", str(index), service, *command,
            check=check, input=input, timeout=timeout,
        )  # fmt: skip

    def all_logs(self):
        result = self.compose("logs", "--no-color", "--tail", "60", check=False)
        return (result.stdout or "") + (result.stderr or "")

    def container_ids(self, service):
        """Every container of SERVICE, stopped ones included (replicas in order)."""
        containers = self.docker_compose.get_containers(include_all=True)
        return [c.ID for c in containers if c.Service == service]

    def health(self, container):
        """CONTAINER's health status as compose reports it ("healthy", "starting", ...)."""
        containers = self.docker_compose.get_containers(include_all=True)
        return {c.ID: c.Health for c in containers}[container]

    def processes(self, container):
        """(host pid, command line) of each process of CONTAINER (`docker top`)."""
        return self.engine.top(container, ps_args="-o pid,args")["Processes"]

    def host_pid(self, container, program):
        """Host pid of the process of CONTAINER whose command is PROGRAM."""
        processes = self.processes(container)
        for pid, args in processes:
            if Path(args.split()[0]).name == program:
                return int(pid)
        raise RuntimeError(f"no {program} process in container {container[:12]}: {processes}")

    def inspect(self, service):
        """`docker inspect` of every container of SERVICE (replicas included)."""
        return [self.engine.inspect_container(c) for c in self.container_ids(service)]
