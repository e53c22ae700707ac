"""The README's production command, typed as written on a fresh checkout (SERVER_NAME in .env,
`make secrets`, `make certs`), brings every service up healthy, and the backup service writes its
first backup: no `make backup-dir` or other step the README does not name."""

import json
import os
import re
import shutil
import stat
import subprocess

import pytest

from tests.stack import free_port
from tests.stack.compose import ROOT
from tests.static.tree import repository_files

pytestmark = pytest.mark.compose

# The settings a user's shell does not have: make exports them, and compose lets the environment
# win over .env. The *_IMAGE ones (the stand-ins where no registry is reachable) stay.
MAKE_EXPORTS = ("SECRETS_DIR", "CERTS_DIR", "BACKUP_DIR", "BACKUP_COPY_DIR", "COMPOSE_FILE")


PROD = ["docker", "compose", "-f", "compose.yaml", "-f", "compose.prod.yaml"]


def readme_production_command():
    readme = (ROOT / "README.md").read_text()
    (command,) = re.findall(
        r"^(docker compose -f compose\.yaml -f compose\.prod\.yaml up[^#\n]*)", readme, re.M
    )
    return command.strip()


def fresh_checkout(destination):
    """The repository's files as a clone has them: tracked and not ignored, none generated."""
    for name in repository_files():
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, destination / name)
    return destination


@pytest.fixture
def checkout(compose_stack, tmp_path):
    """A fresh checkout with `.env` (SERVER_NAME, ports on loopback, its own project name),
    secrets and a certificate; everything its stack made is removed afterwards."""
    # compose_stack: the compose tier runs here (it skips or fails with the reason otherwise).
    repo = fresh_checkout(tmp_path / "repo")
    project = f"{compose_stack.project}readme"
    (repo / ".env").write_text(
        f"COMPOSE_PROJECT_NAME={project}\nSERVER_NAME=localhost\nPUBLISH_ADDRESS=127.0.0.1\n"
        f"HTTP_PORT={free_port()}\nHTTPS_PORT={free_port()}\n"
    )
    env = {name: value for name, value in os.environ.items() if name not in MAKE_EXPORTS}
    for target in ("secrets", "certs"):
        subprocess.run(
            ["make", target], cwd=repo, env=env, check=True, capture_output=True, timeout=120
        )
    yield repo, env
    subprocess.run(
        [*PROD, "--profile", "*", "down", "--volumes", "--rmi", "local", "--timeout", "10"],
        cwd=repo, env=env, capture_output=True, timeout=300, check=False,
    )  # fmt: skip


def test_readme_production_command_brings_every_service_up_healthy_and_backs_up(checkout):
    repo, env = checkout
    command = readme_production_command()
    assert "--wait" in command, f"the README's command returns before the stack is up: {command}"

    # As a user's shell runs it.
    up = subprocess.run(
        ["bash", "-c", command], cwd=repo, env=env, capture_output=True, text=True, timeout=900
    )
    assert up.returncode == 0, f"{command} failed:\n{up.stderr[-4000:]}"

    listed = subprocess.run(
        [*PROD, "ps", "--all", "--format", "json"],
        cwd=repo, env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    containers = [json.loads(line) for line in listed.splitlines() if line.strip()]
    states = {(c["Service"], c["State"], c["Health"], c["ExitCode"]) for c in containers}
    one_shots = {"migrate", "backup-dir"}
    assert {s for s in states if s[0] in one_shots} == {(s, "exited", "", 0) for s in one_shots}
    long_running = {s for s in states if s[0] not in one_shots}
    assert {s[0] for s in long_running} == {"proxy", "backend", "db", "backup"}
    assert {s[1:3] for s in long_running} == {("running", "healthy")}, states

    backups = repo / "backups"
    assert stat.S_IMODE(backups.stat().st_mode) == 0o700
    assert (backups.stat().st_uid, backups.stat().st_gid) == (999, 999)
    dumps = sorted(backups.glob("app-*.sql.gz"))
    assert len(dumps) == 1, sorted(p.name for p in backups.iterdir())
    assert (backups / f"{dumps[0].name}.sha256").exists()
