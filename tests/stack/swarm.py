"""The stack on Docker Swarm (compose.swarm.yaml), deployed by the scripts `make swarm-*` runs.

On a single-node swarm every task is a container of this engine, so the operations are the
compose runner's, reaching the containers by their Swarm service label instead of compose's.
"""

import os
import signal
import time

import requests

from native.compose import compose_command
from tests.stack import NGINX_WORKER, wait_until
from tests.stack.compose import ComposeStack, run

CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 3)"


def docker(*args, check=True, timeout=120, input=None):
    return run(["docker", *args], check=check, timeout=timeout, input=input)


def swarm_state():
    """This engine's swarm state: "active" (a node of a swarm), "inactive", ..."""
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


class SwarmStack(ComposeStack):
    """The production stack as a Swarm stack on this engine, published on every address of the
    host (Swarm's host-mode ports have no bind address), reached on 127.0.0.1.

    `up()` runs swarm-init (a single-node swarm unless the engine is in one), swarm-secrets,
    swarm-images and swarm-deploy; `down()` runs swarm-rm, then removes the stack's secrets,
    volume and images, and leaves the swarm if it made it and no other stack runs there.
    """

    # Made once from the files by swarm-secrets.sh: rotation and renewal are docs/swarm.md's
    # procedure there, not rotate-secret.sh and reload-proxy.sh.
    secret_files = False

    def __init__(self, stack, http_port, https_port, certs_dir, secrets_dir, run_dir):
        super().__init__(
            stack, http_port, https_port, certs_dir, secrets_dir, acme_dir=run_dir, run_dir=run_dir
        )
        self.stack = stack
        self.env.update(
            SWARM_STACK=stack,
            # This session's own tag, on this engine only (whatever .env says): never pushed.
            IMAGE_TAG=stack,
            REGISTRY="",
            BACKEND_IMAGE="",
            PROXY_IMAGE="",
            COMPOSE_COMMAND=" ".join(compose_command()),
        )
        self.made_swarm = False
        self.image_names = {}

    # --- lifecycle ------------------------------------------------------------------------
    def script(self, name, **env):
        """scripts/NAME with this stack's settings (as `make` runs it); raises with its output."""
        return self.run_script(name, timeout=900, env_override=env, check=True)

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
        # What a client gets in the 2 s after the deploy returned (tests/swarm/test_swarm.py).
        self.statuses_after_deploy = []
        deadline = time.monotonic() + 2
        with requests.Session() as client:
            while time.monotonic() < deadline:
                answer = client.get(self.base_url + "/healthz", verify=self.ca_bundle, timeout=10)
                self.statuses_after_deploy.append(answer.status_code)
                time.sleep(0.1)

    def deploy(self, **images):
        """scripts/swarm-deploy.sh (`make swarm-deploy`) with this session's images, or the
        BACKEND_IMAGE/PROXY_IMAGE given; the CompletedProcess, whatever its exit code."""
        images = {**self.image_names, **images}
        return self.run_script("swarm-deploy.sh", timeout=900, env_override=images)

    def down(self):
        # Each step whatever the others did: a failed one must not leave the engine a swarm.
        steps = [
            lambda: self.script("swarm-rm.sh"),
            lambda: wait_until(
                lambda: not self.networks(), 120, f"the networks of stack {self.stack} to go"
            ),
            self.remove_secrets_volume_and_images,
        ]
        if self.made_swarm:
            steps.append(self.leave_swarm_if_unused)
        errors = []
        for step in steps:
            try:
                step()
            except (RuntimeError, TimeoutError) as error:
                errors.append(str(error))
        if errors:
            raise RuntimeError("\n".join(errors))

    def remove_secrets_volume_and_images(self):
        secrets = docker("secret", "ls", "--quiet", "--filter", f"name={self.stack}_").stdout
        if secrets.split():
            docker("secret", "rm", *secrets.split(), check=False)
        docker("volume", "rm", f"{self.stack}_dbdata", check=False)
        # This session's tags: IMAGE_TAG, and the variants the swarm tier builds from it. By
        # name, not id: an image with a variant built on it cannot be removed by its id.
        for reference in (f"*:{self.stack}", f"*:{self.stack}-*"):
            listing = docker(
                "images", "--filter", f"reference={reference}",
                "--format", "{{.Repository}}:{{.Tag}}",
            ).stdout  # fmt: skip
            if listing.split():
                docker("image", "rm", *listing.split(), check=False)

    def leave_swarm_if_unused(self):
        # Another session's stack may have come to the swarm this one made.
        if not docker("stack", "ls", "--format", "{{.Name}}").stdout.split():
            docker("swarm", "leave", "--force", check=False)

    # --- what the compose runner reaches through compose ----------------------------------
    def service(self, name):
        return f"{self.stack}_{name}"

    def container_ids(self, service):
        """Ids of the running containers of SERVICE, in the order of their task slots."""
        label = f"com.docker.swarm.service.name={self.service(service)}"
        listing = docker(
            "ps", "--filter", f"label={label}",
            "--format", '{{.ID}} {{.Label "com.docker.swarm.task.name"}}',
        ).stdout  # fmt: skip
        rows = [line.split() for line in listing.splitlines()]
        return [container for container, _ in sorted(rows, key=lambda row: row[1])]

    def networks(self):
        label = f"label=com.docker.stack.namespace={self.stack}"
        return docker("network", "ls", "--quiet", "--filter", label).stdout.split()

    def exec(self, service, *command, index=1, check=False, input=None, timeout=600):
        container = self.container_ids(service)[index - 1]
        return docker("exec", "-i", container, *command, check=check, input=input, timeout=timeout)

    def logs(self, service):
        # Every container the service has had, oldest first: a replaced task's lines stay.
        label = f"label=com.docker.swarm.service.name={self.service(service)}"
        listing = docker("ps", "--all", "--filter", label, "--format", "{{.CreatedAt}}|{{.ID}}")
        containers = [line.split("|")[1] for line in sorted(listing.stdout.splitlines())]
        output = []
        for container in containers:
            result = docker("logs", container, check=False)
            output.append(result.stdout + result.stderr)
        return "".join(output)

    def all_logs(self):
        return "".join(
            f"--- {service} ---\n{self.logs(service)[-1500:]}"
            for service in ("db", "migrate", "backend", "proxy")
        )

    def reload_proxy(self):
        """nginx -s reload in the proxy's container. Swarm has no `make reload-proxy` (its
        configuration and certificate change by deploy), but a reload must still drop nothing."""
        (container,) = self.container_ids("proxy")

        def workers():
            return {pid for pid, args in self.processes(container) if NGINX_WORKER in args}

        before = workers()
        self.exec("proxy", "nginx", "-s", "reload", check=True)
        # Done once the old worker has finished its requests and exited, as reload-proxy.sh waits.
        wait_until(
            lambda: workers() and not workers() & before,
            15,
            "nginx's old worker to exit and a new one to serve after the reload",
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
                and self.exec("db", *self.db_check).returncode == 0
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
