"""Session fixtures shared by every tier: generated certificates and secrets, the compose stack."""

import os
import subprocess

import pytest

from native.compose import compose_command
from tests.stack import free_port
from tests.stack.compose import ROOT, ComposeStack
from tests.stack.swarm import SwarmStack

# Why each Docker tier (compose, swarm) could not run in this session, for the closing summary.
DOCKER_TIER_PROBLEMS = pytest.StashKey[dict[str, str]]()
# A pull of a base image that does not finish by then counts as "cannot be pulled".
PULL_TIMEOUT = 600


def _generate(script, variable, path):
    env = {**os.environ, variable: str(path), "SERVER_NAME": "localhost"}
    subprocess.run(
        [ROOT / "scripts" / script], env=env, check=True, capture_output=True, timeout=60
    )
    return path


@pytest.fixture(scope="session")
def certs_dir(tmp_path_factory):
    """A development CA and server certificate made by scripts/make-certs.sh for this run."""
    return _generate("make-certs.sh", "CERTS_DIR", tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def secrets_dir(tmp_path_factory):
    """The secrets made by scripts/make-secrets.sh for this run (database passwords, API tokens):
    the one set of every tier but the swarm one (swarm_stack), never the developer's own."""
    return _generate("make-secrets.sh", "SECRETS_DIR", tmp_path_factory.mktemp("secrets"))


def _last_line(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _base_images(stack):
    """Every base image the stack needs, from its rendered dev+prod config: the images of the
    services that run one, and the *_IMAGE build arguments of those that build on one (set by
    PYTHON_IMAGE, NGINX_IMAGE, MARIADB_IMAGE, else the compose files' defaults)."""
    config = stack.config()
    images = []
    for service in config["services"].values():
        if "build" in service:
            args = service["build"].get("args") or {}
            images += [value for name, value in args.items() if name.endswith("_IMAGE")]
        else:
            images.append(service["image"])
    return sorted(set(images))


def _docker(*args, timeout=30):
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def compose_tier_problem(stack):
    """Why the Docker tiers (compose, swarm) cannot run here (one sentence), or None."""
    try:
        info = _docker("info", "--format", "{{.ServerVersion}}")
    except FileNotFoundError:
        return "no docker command (as root, scripts/prepare-docker.sh installs docker.io)"
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30 s"
    if info.returncode != 0:
        return (
            f"no Docker engine answers ({_last_line(info.stderr)}); as root, "
            "scripts/prepare-docker.sh installs and starts one"
        )
    try:
        compose_command()
    except RuntimeError as error:
        return str(error)
    for image in _base_images(stack):
        if _docker("image", "inspect", image).returncode == 0:
            continue
        try:
            pull = _docker("pull", image, timeout=PULL_TIMEOUT)
            error = _last_line(pull.stderr) if pull.returncode != 0 else None
        except subprocess.TimeoutExpired:
            error = f"no pull within {PULL_TIMEOUT} s"
        if error:
            return (
                f"base image {image} is not here and cannot be pulled ({error}); set "
                "PYTHON_IMAGE, NGINX_IMAGE and MARIADB_IMAGE to images this engine has "
                "(scripts/prepare-docker.sh builds registry-free stand-ins)"
            )
    return None


def _docker_stack(request, stack, tier):
    """Bring STACK (a ComposeStack or SwarmStack) up for the session, and down at its end.

    Where no Docker engine answers or a base image is neither here nor pullable, every test of
    the TIER skips with that one reason, and the summary repeats it; with REQUIRE_COMPOSE_TIER=1
    (CI, whose machine can run the Docker tiers) they fail instead."""
    # Compose lets the process environment win over the stack's env file, and make exports
    # SECRETS_DIR, CERTS_DIR, BACKUP_DIR (and REGISTRY, IMAGE_TAG...) from .env: the stack's
    # settings are its own.
    with pytest.MonkeyPatch.context() as environment:
        for name in stack.env:
            environment.delenv(name, raising=False)
        problem = compose_tier_problem(stack)
        if problem:
            request.config.stash.setdefault(DOCKER_TIER_PROBLEMS, {})[tier] = problem
            if os.environ.get("REQUIRE_COMPOSE_TIER") == "1":
                pytest.fail(f"{tier} tier required (REQUIRE_COMPOSE_TIER=1): {problem}", False)
            pytest.skip(f"{tier} tier skipped: {problem}")
        try:
            stack.up()
            print(f"\n{tier} stack healthy after {stack.up_seconds:.0f} s")
            yield stack
        finally:
            stack.down()


@pytest.fixture(scope="session")
def compose_stack(request, certs_dir, secrets_dir, tmp_path_factory):
    """dev+prod compose stack on 127.0.0.1, brought up once and removed with its volumes."""
    stack = ComposeStack(
        project=f"hstest{os.getpid()}",
        http_port=free_port(),
        https_port=free_port(),
        certs_dir=certs_dir,
        secrets_dir=secrets_dir,
        acme_dir=tmp_path_factory.mktemp("acme"),
        run_dir=tmp_path_factory.mktemp("compose"),
    )
    yield from _docker_stack(request, stack, "compose")


@pytest.fixture(scope="session")
def swarm_stack(request, tmp_path_factory):
    """The production stack on a single-node swarm (made by the test unless this engine is in
    one already), deployed as `make swarm-deploy` does, and removed with its volume and secrets.
    Its own certificates and secrets: the Swarm keeps copies, which the compose and native tiers'
    rotation and renewal tests would leave behind their files."""
    stack = SwarmStack(
        f"hs{os.getpid()}",
        http_port=free_port(),
        https_port=free_port(),
        certs_dir=_generate("make-certs.sh", "CERTS_DIR", tmp_path_factory.mktemp("swarm-certs")),
        secrets_dir=_generate(
            "make-secrets.sh", "SECRETS_DIR", tmp_path_factory.mktemp("swarm-secrets")
        ),
        run_dir=tmp_path_factory.mktemp("swarm"),
    )
    yield from _docker_stack(request, stack, "swarm")


# Outermost (wrapper, tryfirst): the line comes after pytest's short summary, right above the
# final counts, where a skipped tier cannot be missed.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, config):
    """Repeat at the end why a Docker tier did not run."""
    yield
    required = os.environ.get("REQUIRE_COMPOSE_TIER") == "1"
    verdict = "failed (REQUIRE_COMPOSE_TIER=1)" if required else "skipped"
    for tier, problem in config.stash.get(DOCKER_TIER_PROBLEMS, {}).items():
        terminalreporter.write_line(f"{tier} tier {verdict}: {problem}", red=required, yellow=True)
