"""Swarm tier: the stack on Docker Swarm keeps its secrets, its isolation and its site up while it
is updated, rolled back and broken (compose.swarm.yaml, scripts/swarm-*.sh, docs/swarm.md)."""

import base64
import io
import json
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import make_client
from tests.e2e.load import (
    SteadyReads,
    assert_nothing_failed_or_lost,
    stored_titles,
    under_deploy_load,
)
from tests.stack import REPO, migration_heads, secret_lines, wait_until
from tests.stack.swarm import docker

pytestmark = pytest.mark.swarm

SERVICES = ("proxy", "backend", "migrate", "db", "backup")
# Seconds a replaced or rolled-back replica may take to be healthy and serving (healthcheck every
# 15 s, update monitor 30 s).
CONVERGE = 180


@pytest.fixture(scope="module")
def stack(swarm_stack):
    return swarm_stack


@pytest.fixture(scope="module")
def secrets(stack):
    """Label -> value of every secret the stack was given: each password file, each API token,
    the database's TLS key pair, the proxy's TLS private key."""
    found = {}
    for path in sorted(Path(stack.secrets_dir).iterdir()):
        for number, line in enumerate(secret_lines(path.read_text()), 1):
            found[f"{path.name} line {number}"] = line
    key = (Path(stack.ca_bundle).parent / "server.key").read_text()
    for number, line in enumerate(secret_lines(key), 1):
        found[f"TLS key line {number}"] = line
    return found


def leaked(text, secrets):
    return [label for label, value in secrets.items() if value in text]


def service_image(stack, service):
    spec = "{{.Spec.TaskTemplate.ContainerSpec.Image}}"
    return docker("service", "inspect", "--format", spec, stack.service(service)).stdout.strip()


def replicas(stack, service):
    """Swarm's "running/desired" count of SERVICE (a replica counts once healthy)."""
    listing = docker("service", "ls", "--filter", f"name={stack.service(service)}", "--format",
                     "{{.Name}} {{.Replicas}}").stdout  # fmt: skip
    return dict(line.split(" ", 1) for line in listing.splitlines())[stack.service(service)]


def build_backend_variant(stack, name, instruction):
    """A new image FROM this session's backend image with one more Dockerfile INSTRUCTION, built
    by the engine itself (no buildx needed), tagged so that the stack's down() removes it."""
    base = stack.image_names["BACKEND_IMAGE"]
    tag = f"{base.rsplit(':', 1)[0]}:{stack.stack}-{name}"
    dockerfile = f"FROM {base}\n{instruction}\n".encode()
    built = stack.engine.build(
        fileobj=io.BytesIO(dockerfile), tag=tag, rm=True, forcerm=True, decode=True
    )
    for line in built:
        assert "error" not in line, line
    return tag


# --- secrets and isolation -------------------------------------------------------------------
def test_secrets_reach_the_services_as_swarm_secrets(stack):
    # Positive control for the searches below: the values really are in the services' files.
    password = (Path(stack.secrets_dir) / "db_app_password").read_text()
    inside = stack.exec("backend", "cat", "/run/secrets/db_app_password", check=True).stdout
    assert inside == password
    for name in ("db_app_password", "api_tokens", "tls_certificate", "tls_key"):
        assert docker("secret", "inspect", f"{stack.stack}_{name}").returncode == 0


def test_no_secret_in_any_service_spec(stack, secrets):
    for service in SERVICES:
        spec = docker("service", "inspect", stack.service(service)).stdout
        # Positive control: the spec names where the secrets are mounted.
        assert "/run/secrets/" in spec or service == "proxy" and "tls_key" in spec, service
        assert leaked(spec, secrets) == [], service


def test_no_secret_in_any_task_environment(stack, secrets):
    for service in ("proxy", "backend", "db", "backup"):
        for container in stack.container_ids(service):
            config = json.loads(docker("inspect", container).stdout)[0]["Config"]
            env = "\n".join(config["Env"])
            # PID 1's environment as the kernel holds it, not only as Docker recorded it.
            proc = docker("exec", container, "cat", "/proc/1/environ").stdout
            assert env and proc, service
            assert leaked(env, secrets) == [] and leaked(proc, secrets) == [], service


def test_no_secret_on_the_published_network(stack, secrets):
    # What anyone reaches on the published ports: pages, errors, health, the redirect.
    pages = ["/", "/api/posts", "/api/posts/999999999", "/healthz", "/readyz", "/nowhere"]
    with make_client(stack) as client:
        answers = [client.get(stack.base_url + page) for page in pages]
        answers.append(client.get(stack.http_url + "/", allow_redirects=False))
    for answer in answers:
        text = answer.text + json.dumps(dict(answer.headers))
        assert answer.status_code < 500 and text, answer.url
        assert leaked(text, secrets) == [], answer.url


def test_internal_networks_are_encrypted_overlays(stack):
    for name in ("appnet", "dbnet"):
        network = json.loads(docker("network", "inspect", f"{stack.stack}_{name}").stdout)[0]
        assert network["Driver"] == "overlay", name
        assert network["Internal"] is True, name
        assert network["Options"].get("encrypted") == "true", name


def test_proxy_can_neither_resolve_nor_reach_the_database(stack):
    db = json.loads(docker("inspect", stack.container_ids("db")[0]).stdout)[0]
    db_ip = next(
        net["IPAddress"]
        for name, net in db["NetworkSettings"]["Networks"].items()
        if name.endswith("_dbnet")
    )
    # A connection alone proves nothing here: a host's network may accept any TCP connection it
    # routes (this test machine's does for 10.0.0.0/8). MariaDB greets every client it reaches.
    greeting = (
        "import socket, sys\nprint(socket.create_connection((sys.argv[1], 3306), 3).recv(64))"
    )
    assert "MariaDB" in stack.exec("backend", "python", "-c", greeting, db_ip).stdout
    # The same tool that gets the backend's answer gets nothing from the database's address.
    http = "printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' | nc -w 3 backend 8000"
    assert "200" in stack.exec("proxy", "sh", "-c", http).stdout
    assert stack.exec("proxy", "getent", "hosts", "backend").returncode == 0
    assert stack.exec("proxy", "getent", "hosts", "db").returncode != 0
    probe = stack.exec("proxy", "sh", "-c", f"nc -w 3 {db_ip} 3306 </dev/null")
    assert "MariaDB" not in probe.stdout


def test_rotate_secret_refuses_swarm_and_says_where_the_procedure_is(stack):
    result = stack.rotate_secret("db_app_password")
    assert result.returncode != 0
    assert "Swarm secrets cannot change" in result.stderr
    assert "docs/swarm.md" in result.stderr


# --- updates, rollback, failures ---------------------------------------------------------------
def test_the_site_serves_once_swarm_deploy_returns(stack):
    # A first deploy starts the proxy before any backend replica is healthy, so before Swarm's
    # DNS names one: make swarm-deploy returns once the proxy reaches a backend, not merely once
    # every replica is healthy.
    assert set(stack.statuses_after_deploy) == {200}, stack.statuses_after_deploy


def test_rolling_update_of_the_backend_under_read_load_fails_no_request(stack):
    image = build_backend_variant(stack, "rolling", "LABEL stack.test=rolling-update")
    with SteadyReads(stack) as load:
        wait_until(lambda: load.results, 10, "the first request of the load")
        started = time.monotonic()
        deployed = stack.deploy(BACKEND_IMAGE=image)
        seconds = time.monotonic() - started
    print(f"\nrolling update: {seconds:.0f} s, {len(load.results)} requests, 0 expected failed")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert load.failures == [], f"{len(load.failures)} of {len(load.results)}: {load.failures[:10]}"
    assert service_image(stack, "backend") == image
    assert replicas(stack, "backend") == f"{stack.backend_replicas}/{stack.backend_replicas}"


def next_release_image(stack):
    """This session's backend image with the next release's expand migration added (posts.content,
    tests/releases/next): a release whose deploy adds a column."""
    migration = (
        REPO / "tests" / "releases" / "next" / "versions" / "expand" / "0006_posts_content.py"
    )
    encoded = base64.b64encode(migration.read_bytes()).decode()
    target = f"/app/migrations/versions/expand/{migration.name}"
    # The image's files are root's; its user is the app's.
    steps = f"USER root\nRUN echo {encoded} | base64 -d > {target}\nUSER 10001:10001"
    return build_backend_variant(stack, "next", steps)


def test_deploy_of_a_release_that_adds_a_column_and_back_fails_no_request_and_loses_no_write(
    stack,
):
    previous = service_image(stack, "backend")
    image = next_release_image(stack)
    try:
        deployed, reads, writes = under_deploy_load(
            stack, lambda: stack.deploy(BACKEND_IMAGE=image)
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        # The migrate job ran the expand migration before the replicas changed.
        assert "content" in stack.root_sql("SHOW COLUMNS FROM app.posts")
        assert_nothing_failed_or_lost(reads, writes, stored_titles(stack))

        # Back to the release before, as docs/swarm.md rolls back: its migrate job leaves the
        # later release's expanded schema as it is, and its replicas work on it.
        rolled, reads, writes = under_deploy_load(
            stack, lambda: stack.deploy(BACKEND_IMAGE=previous)
        )
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        assert service_image(stack, "backend") == previous
        assert "content" in stack.root_sql("SHOW COLUMNS FROM app.posts")
        assert_nothing_failed_or_lost(reads, writes, stored_titles(stack))
    finally:
        # What the other tests deploy on: this session's release and its schema.
        stack.root_sql(
            "ALTER TABLE app.posts DROP COLUMN IF EXISTS content;"
            f"UPDATE app.alembic_version SET version_num = '{migration_heads()['expand']}'"
            " WHERE version_num = '0006';"
        )
        if service_image(stack, "backend") != previous:
            restored = stack.deploy(BACKEND_IMAGE=previous)
            assert restored.returncode == 0, restored.stdout + restored.stderr


def test_restart_backend_replaces_every_task_under_read_load_and_fails_no_request(stack):
    before = set(stack.container_ids("backend"))
    with SteadyReads(stack) as load:
        wait_until(lambda: load.results, 10, "the first request of the load")
        stack.restart_backend()
    assert load.failures == [], f"{len(load.failures)} of {len(load.results)}: {load.failures[:10]}"
    after = set(stack.container_ids("backend"))
    assert len(after) == len(before) and not after & before, (before, after)
    assert replicas(stack, "backend") == f"{stack.backend_replicas}/{stack.backend_replicas}"


def test_a_backend_image_that_never_turns_healthy_is_rolled_back_and_the_site_serves(stack):
    previous = service_image(stack, "backend")
    # gunicorn never starts: /healthz never answers, so no new replica ever turns healthy.
    image = build_backend_variant(stack, "broken", 'CMD ["sleep", "86400"]')
    deployed, reads, writes = under_deploy_load(stack, lambda: stack.deploy(BACKEND_IMAGE=image))
    assert deployed.returncode != 0
    assert "rolled back to its previous version" in deployed.stderr
    assert_nothing_failed_or_lost(reads, writes, stored_titles(stack))
    assert service_image(stack, "backend") == previous
    with make_client(stack) as client:
        assert client.get(stack.base_url + "/readyz").status_code == 200


def test_a_killed_backend_task_is_replaced_and_no_idempotent_request_fails(stack):
    before = stack.container_ids("backend")
    with SteadyReads(stack) as load:
        wait_until(lambda: load.results, 10, "the first request of the load")
        docker("kill", "--signal", "KILL", before[0])
        killed = time.monotonic()

        def replaced():
            now = stack.container_ids("backend")
            full = replicas(stack, "backend") == f"{len(before)}/{len(before)}"
            return before[0] not in now and len(now) == len(before) and full

        wait_until(replaced, CONVERGE, "Swarm to replace the killed backend task")
        print(f"\nkilled backend task replaced and healthy after {time.monotonic() - killed:.0f} s")
        # The replacement takes traffic for a while too.
        ended = time.monotonic()
        wait_until(lambda: load.sent_between(ended, time.monotonic()) >= 20, 30, "20 more requests")
    assert load.failures == [], f"{len(load.failures)} of {len(load.results)}: {load.failures[:10]}"
