"""Session fixtures shared by every tier: generated certificates and secrets, the compose stack."""

import os
import subprocess

import pytest

from tests.stack import free_port
from tests.stack.compose import ROOT, ComposeStack


def _generate(script, variable, path):
    env = {**os.environ, variable: str(path), "SERVER_NAME": "localhost"}
    subprocess.run([ROOT / "scripts" / script], env=env, check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def certs_dir(tmp_path_factory):
    """A development CA and server certificate made by scripts/make-certs.sh for this run."""
    return _generate("make-certs.sh", "CERTS_DIR", tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def secrets_dir(tmp_path_factory):
    """Database passwords made by scripts/make-secrets.sh for this run."""
    return _generate("make-secrets.sh", "SECRETS_DIR", tmp_path_factory.mktemp("secrets"))


@pytest.fixture(scope="session")
def compose_stack(certs_dir, secrets_dir, tmp_path_factory):
    """dev+prod compose stack on 127.0.0.1, brought up once and removed with its volumes."""
    docker = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if docker.returncode != 0:
        pytest.skip(f"compose tier needs a Docker engine: {docker.stderr.strip()[:200]}")
    stack = ComposeStack(
        project=f"hstest{os.getpid()}",
        http_port=free_port(),
        https_port=free_port(),
        certs_dir=certs_dir,
        secrets_dir=secrets_dir,
        acme_dir=tmp_path_factory.mktemp("acme"),
    )
    try:
        stack.up()
        print(f"\ncompose stack healthy after `up --wait`: {stack.up_seconds:.0f} s")
        yield stack
    finally:
        stack.down()
