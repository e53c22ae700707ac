"""The stack on Docker Swarm (compose.swarm.yaml), deployed by the scripts `make swarm-*` runs.

On a single-node swarm every task is a container of this engine, so the operations are the
compose runner's, reaching the containers by their Swarm service label instead of compose's.
"""

import os
import signal
import time

from tests.stack import wait_until
from tests.stack.compose import ComposeStack, compose_command, run

DB_CHECK = ("healthcheck.sh", "--connect", "--innodb_initialized")
CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 3)"


def docker(*args, check=True, timeout=120, input=None):
    return run(["docker", *args], check=check, timeout=timeout, input=input)


def swarm_state():
    """This engine's swarm state: "active" (a node of a swarm), "inactive", ..."""
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


class SwarmStack(ComposeStack):
    """The production stack as a Swarm stack on this engine, published on 127.0.0.1.

    `up()` makes a single-node swarm unless the engine is in one, then runs swarm-init,
    swarm-secrets, swarm-images and swarm-deploy; `down()` removes the stack, its secrets,
    configs, volume and images, and leaves the swarm if it made it.
    """

    # Made once from the files by swarm-secrets.sh: rotation and renewal are docs/operations.md's
    # procedure there, not rotate-secret.sh and reload-proxy.sh.
    secret_files = False

    def __init__(self, stack, http_port, https_port, certs_dir, secrets_dir, run_dir):
        super().__init__(
            stack, http_port, https_port, certs_dir, secrets_dir, acme_dir=run_dir, run_dir=run_dir
        )
        self.stack = stack
        self.env.update(
            SWARM_STACK=stack,
            # This session's own tag: a rolling update test deploys other tags of its own.
            IMAGE_TAG=stack,
            COMPOSE_COMMAND=" ".join(compose_command()),
        )
        self.made_swarm = False
        self.image_names = {}

    # --- lifecycle ------------------------------------------------------------------------
    def script(self, name, **env):
        """scripts/NAME with this stack's settings (as `make` runs it); raises with its output."""
        result = self.run_script(name, timeout=900, env_override=env)
        if result.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{result.stdout}{result.stderr}")
        return result

    def up(self):
        for directory in (self.backup_dir, self.backup_copy_dir):
            directory.mkdir(mode=0o700, exist_ok=True)
            os.chown(directory, 999, 999)
        self.made_swarm = swarm_state() != "active"
        self.script("swarm-init.sh")
        self.script("swarm-secrets.sh")
        # BACKEND_IMAGE=... and PROXY_IMAGE=..., the names it tagged.
        printed = self.script("swarm-images.sh").stdout.split()
        self.image_names = dict(line.split("=", 1) for line in printed)
        # up_seconds: from the deploy to every replica healthy (the closing note's deploy time).
        started = time.monotonic()
        try:
            self.script("swarm-deploy.sh")
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n--- logs ---\n{self.all_logs()[-6000:]}") from None
        self.up_seconds = time.monotonic() - started

    def deploy(self, **images):
        """scripts/swarm-deploy.sh (`make swarm-deploy`) with this session's images, or the
        BACKEND_IMAGE/PROXY_IMAGE given; the CompletedProcess, whatever its exit code."""
        images = {**self.image_names, **images}
        return self.run_script("swarm-deploy.sh", timeout=900, env_override=images)

    def down(self):
        docker("stack", "rm", "--detach=false", self.stack, check=False, timeout=300)
        # Swarm removes the containers of services, not those of a finished job's tasks; the
        # volume and the networks go once every container has.
        wait_until(lambda: not self.containers(), 120, f"the tasks of stack {self.stack} to end")
        leftovers = self.containers(all_states=True)
        if leftovers:
            docker("rm", "--force", *leftovers, check=False)
        wait_until(lambda: not self.networks(), 120, f"the networks of stack {self.stack} to go")
        for kind in ("secret", "config"):
            names = docker(kind, "ls", "--quiet", "--filter", f"name={self.stack}_").stdout.split()
            if names:
                docker(kind, "rm", *names, check=False)
        docker("volume", "rm", f"{self.stack}_dbdata", check=False)
        images = docker("images", "--quiet", "--filter", f"reference=*:{self.stack}*").stdout
        if images.split():
            docker("image", "rm", "--force", *set(images.split()), check=False)
        if self.made_swarm:
            docker("swarm", "leave", "--force", check=False)

    # --- what the compose runner reaches through compose ----------------------------------
    def service(self, name):
        return f"{self.stack}_{name}"

    def containers(self, service=None, all_states=False):
        """Ids of this stack's containers (of SERVICE), running ones unless ALL_STATES, in
        the order of their task slots (a replica's newest container first)."""
        label = f"com.docker.stack.namespace={self.stack}"
        if service:
            label = f"com.docker.swarm.service.name={self.service(service)}"
        listing = docker(
            "ps", *(["--all"] if all_states else []), "--filter", f"label={label}",
            "--format", '{{.ID}} {{.Label "com.docker.swarm.task.name"}}',
        ).stdout  # fmt: skip
        rows = [line.split() for line in listing.splitlines()]
        return [container for container, _ in sorted(rows, key=lambda row: row[1])]

    def networks(self):
        label = f"label=com.docker.stack.namespace={self.stack}"
        return docker("network", "ls", "--quiet", "--filter", label).stdout.split()

    def container_ids(self, service):
        return self.containers(service)

    def health(self, container):
        return docker("inspect", "--format", "{{.State.Health.Status}}", container).stdout.strip()

    def exec(self, service, *command, index=1, check=False, input=None, timeout=600):
        container = self.container_ids(service)[index - 1]
        return docker("exec", "-i", container, *command, check=check, input=input, timeout=timeout)

    def logs(self, service):
        # Every container the service has had, oldest first: a replaced task's lines stay.
        containers = self.containers(service, all_states=True)
        created = {c: docker("inspect", "--format", "{{.Created}}", c).stdout for c in containers}
        output = []
        for container in sorted(containers, key=created.get):
            result = docker("logs", container, check=False)
            output.append(result.stdout + result.stderr)
        return "".join(output)

    def all_logs(self):
        return "".join(
            f"--- {service} ---\n{self.logs(service)[-1500:]}"
            for service in ("db", "migrate", "backend", "proxy")
        )

    def stop_db(self):
        docker("service", "scale", "--detach", f"{self.service('db')}=0")
        wait_until(lambda: not self.container_ids("db"), 120, "the db task to stop")

    def start_db(self):
        docker("service", "scale", "--detach", f"{self.service('db')}=1")

        # Accepting connections as its clients reach it: by name, from the backend. Swarm gives
        # the name a new task's address once the task is healthy (compose.swarm.yaml: every 2 s).
        def accepts():
            running = self.container_ids("db")
            return (
                running
                and self.exec("db", *DB_CHECK).returncode == 0
                and self.exec("backend", "python", "-c", CONNECT, "db", "3306").returncode == 0
            )

        wait_until(accepts, 120, "db to accept connections after its start", 0.2, self.all_logs)
        self.note_db_start()

    def kill_db(self):
        (container,) = self.container_ids("db")
        os.kill(self.host_pid(container, "mariadbd"), signal.SIGKILL)
        # The task fails with its server (init: true), and the restart policy starts a new one.
        wait_until(
            lambda: container not in self.container_ids("db"), 60, "the killed db task to end"
        )

    def script_env(self):
        return {**self.env, "STACK_RUNTIME": "swarm"}
