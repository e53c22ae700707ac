"""Static tier: the stack file scripts/swarm-render.sh makes (`make swarm-config`) is one that
`docker stack deploy` reads, and keeps on Swarm what Swarm would otherwise drop without a word."""

import json
import os
import shutil
import subprocess

import pytest
import yaml

from native.compose import compose_command
from tests.stack.compose import PROD_FILES, ROOT, compose

HARDENED = ("proxy", "backend", "migrate", "db", "backup")


@pytest.fixture(scope="module")
def stack_file():
    env = {
        **os.environ,
        "SERVER_NAME": "stack.example.com",
        "SWARM_STACK": "policy",
        "IMAGE_TAG": "policy",
        "COMPOSE_COMMAND": " ".join(compose_command()),
    }
    rendered = subprocess.run(
        [ROOT / "scripts" / "swarm-render.sh"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return rendered.stdout


def render_production():
    """compose.yaml + compose.prod.yaml's services, as compose renders them."""
    env = {**os.environ, "SERVER_NAME": "stack.example.com"}
    rendered = compose(*PROD_FILES, "config", "--format", "json", env=env)
    return json.loads(rendered.stdout)["services"]


@pytest.fixture(scope="module")
def stack(stack_file):
    return yaml.safe_load(stack_file)


def has_stack_config():
    probe = ["docker", "stack", "config", "--help"]
    return subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0


@pytest.mark.skipif(not shutil.which("docker"), reason="no docker CLI")
def test_docker_stack_deploy_reads_the_rendered_file(stack_file):
    if not has_stack_config():
        pytest.skip("this docker CLI has no `stack config` (Docker 25+)")
    # `docker stack config` runs the loader and schema `docker stack deploy` runs; no engine.
    result = subprocess.run(
        ["docker", "stack", "config", "--compose-file", "-"],
        input=stack_file, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_every_service_keeps_its_hardening(stack):
    for name in HARDENED:
        service = stack["services"][name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["init"] is True, name
        assert service["user"].split(":")[0] not in ("0", "root"), name


def test_nothing_swarm_ignores_silently_is_left(stack):
    # tmpfs (short syntax) and security_opt are dropped by stack deploy, restart too: each has
    # its replacement (compose.swarm.yaml's header), and none may look like it still applies.
    for name, service in stack["services"].items():
        for key in ("tmpfs", "security_opt", "restart", "depends_on", "build", "dns_opt"):
            assert key not in service, f"{name}: {key}"
        assert "restart_policy" in service["deploy"], name


def compose_tmpfs_bytes(entry):
    """("/run", 1048576) from compose's short syntax "/run:size=1m,uid=101,..."."""
    path, options = entry.split(":", 1)
    size = dict(option.split("=") for option in options.split(","))["size"]
    return path, int(size[:-1]) * {"k": 1024, "m": 1024**2}[size[-1]]


def test_every_tmpfs_of_production_compose_is_the_same_tmpfs_on_swarm(stack):
    # The sizes live in compose.yaml and again in compose.swarm.yaml (Swarm ignores the short
    # syntax): held equal here. The backup service also covers its image's VOLUME, which would
    # otherwise leave an anonymous volume per task.
    production = render_production()
    extra = {"backup": {("/var/lib/mysql", 1048576)}}
    for name in HARDENED:
        expected = {compose_tmpfs_bytes(e) for e in production[name].get("tmpfs", [])}
        mounts = [v for v in stack["services"][name]["volumes"] if v["type"] == "tmpfs"]
        found = {(m["target"], m["tmpfs"]["size"]) for m in mounts}
        assert expected and found == expected | extra.get(name, set()), name


def test_internal_networks_are_encrypted_overlays_and_secrets_external(stack):
    networks = stack["networks"]
    assert {n["driver"] for n in networks.values()} == {"overlay"}
    for name in ("appnet", "dbnet"):
        assert networks[name]["internal"] is True, name
        assert networks[name]["driver_opts"]["encrypted"] == "true", name
    for name, secret in stack["secrets"].items():
        assert secret == {"external": True, "name": f"policy_{name}"}, name


def test_the_database_and_its_backups_stay_on_the_db_node(stack):
    for name in ("db", "backup"):
        deploy = stack["services"][name]["deploy"]
        assert deploy["replicas"] == 1, name
        assert deploy["placement"]["constraints"] == ["node.labels.db == true"], name
    # Never two servers on one data directory, not even during an update.
    assert stack["services"]["db"]["deploy"]["update_config"]["order"] == "stop-first"
