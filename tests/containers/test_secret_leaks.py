"""Compose tier: no secret of this session leaks anywhere the running stack could put it.

The secrets (tests/conftest.py, scripts/make-secrets.sh) exist before ComposeStack.up() builds
every project image without the layer cache, so an image that took a secret in would hold this
session's values. Each place is searched for every secret value, and each search first finds a
string that really is there (its positive control): a search that reads nothing cannot pass.
"""

import io
import json
import math
import re
import subprocess
import tarfile
from datetime import datetime
from pathlib import Path

import pytest
import requests

from tests.stack import secret_lines, wait_until
from tests.stack.compose import ROOT

pytestmark = pytest.mark.compose

# The images this project builds (a `build:` section); migrate has backend's recipe, built apart.
BUILT = ("proxy", "backend", "migrate")
RUNNING = ("proxy", "backend", "db")
# A file each built image copies from the build context, whose whole content must be found.
COPIED = {
    "proxy": ROOT / "proxy" / "nginx.conf",
    "backend": ROOT / "backend" / "gunicorn.conf.py",
    "migrate": ROOT / "backend" / "gunicorn.conf.py",
}
# A variable compose sets in each service: what `docker inspect` and PID 1's environment show.
ENVIRONMENT = {
    "proxy": "PROXY_SERVER_NAME=localhost",
    "backend": "DB_PASSWORD_FILE=/run/secrets/db_app_password",
    "migrate": "DB_PASSWORD_FILE=/run/secrets/db_migrator_password",
    "db": "MARIADB_ROOT_PASSWORD_FILE=/run/secrets/db_root_password",
}
# The program each running service's command lines name.
PROGRAM = {"proxy": "nginx", "backend": "gunicorn", "db": "mariadbd"}
# A line each service without requests to log writes while it starts.
STARTUP_LOG = {"migrate": "alembic", "db": "ready for connections"}


@pytest.fixture(scope="module")
def stack(compose_stack):
    return compose_stack


@pytest.fixture(scope="module")
def secrets(stack, secrets_dir):
    """Label -> value of every secret: each password file, each line of api_tokens and of the
    database's TLS key pair (not the PEM armour, nor a short last line), as they are now and as
    they were when the stack was built (tests/e2e/test_rotation.py changes them)."""
    found = {}
    files = {path.name: path.read_text() for path in sorted(Path(secrets_dir).iterdir())}
    for when, contents in (("", files), (" at build", stack.secrets_at_build)):
        for name, text in contents.items():
            for number, line in enumerate(secret_lines(text), 1):
                found[f"{name}{when} line {number}"] = line
    names = {label.split()[0] for label in found}
    assert {"db_root_password", "db_app_password", "db_migrator_password", "db_tls_key"} <= names
    # Long random values: finding one by accident is impossible, so any hit is a leak.
    assert all(len(value) >= 16 for value in found.values())
    return found


def leaked(text, secrets):
    """Labels of the secrets TEXT (str or bytes) contains."""
    if isinstance(text, bytes):
        return [label for label, value in secrets.items() if value.encode() in text]
    return [label for label, value in secrets.items() if value in text]


def docker(*args):
    return subprocess.run(["docker", *args], capture_output=True, check=True).stdout


def image_of(stack, service):
    return stack.inspect(service)[0]["Image"]


# --- images -------------------------------------------------------------------------------------
def test_project_images_were_built_after_the_secrets_existed(stack):
    """What the layer search below relies on: every step a project image adds to its base image
    ran after the secrets were made (no layer came from the build cache)."""
    # As they were when the stack was built: tests/e2e/test_rotation.py makes new ones later.
    made = math.floor(stack.secrets_made)
    config = stack.config()
    for service in BUILT:
        args = config["services"][service]["build"]["args"]
        (base,) = [value for name, value in args.items() if name.endswith("_IMAGE")]
        own, inherited = history(image_of(stack, service)), history(base)
        assert own[len(own) - len(inherited) :] == inherited, f"{service} is not built on {base}"
        added = own[: len(own) - len(inherited)]
        assert added, f"{service}: no layer of its own"
        stale = [step for created, step in added if created < made]
        assert not stale, f"{service}: steps older than this session's secrets: {stale}"


def history(image):
    """(created, step) of each history entry of IMAGE, newest first."""
    entries = []
    for line in docker("history", "--no-trunc", "--format", "{{json .}}", image).splitlines():
        entry = json.loads(line)
        created = datetime.fromisoformat(entry["CreatedAt"]).timestamp()
        entries.append((created, entry["CreatedBy"]))
    return entries


def test_no_secret_in_any_layer_of_the_project_images(stack, secrets):
    images = {service: image_of(stack, service) for service in BUILT}
    controls = {service: COPIED[service].read_bytes() for service in BUILT}
    found_controls, leaks = set(), []
    save = subprocess.Popen(["docker", "save", *set(images.values())], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=save.stdout, mode="r|") as archive:
        for member in archive:
            data = archive.extractfile(member).read() if member.isfile() else b""
            # Layers are tar files themselves (uncompressed in `docker save`); the other members
            # are the images' configuration (environment, history, labels) and manifests.
            for name, content in layer_files(member.name, data):
                leaks += [f"{name}: {label}" for label in leaked(name.encode() + content, secrets)]
                found_controls |= {s for s, control in controls.items() if control in content}
    assert save.wait(timeout=60) == 0
    assert found_controls == set(BUILT), "control: a copied file's content was not found"
    assert leaks == []


def layer_files(name, data):
    """(path, content) of every file in a `docker save` member: the member itself, and when it
    is a layer, each file inside."""
    yield name, data
    # Engine 20.10 saves layers as <id>/layer.tar, newer engines as OCI blobs (JSON ones too).
    is_layer_name = name.endswith(".tar") or re.fullmatch(r"blobs/sha256/[0-9a-f]{64}", name)
    if not is_layer_name or not tarfile.is_tarfile(io.BytesIO(data)):
        return
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as layer:
        for member in layer:
            content = layer.extractfile(member).read() if member.isfile() else b""
            yield f"{name}:{member.name}", content + member.linkname.encode()


# --- docker inspect -------------------------------------------------------------------------------
def test_no_secret_in_docker_inspect_of_any_container_or_image(stack, secrets):
    for service in stack.services:
        ids = stack.container_ids(service)
        text = docker("inspect", *ids).decode()
        assert ENVIRONMENT[service] in text, f"control: {service}'s environment not in inspect"
        assert leaked(text, secrets) == [], f"{service}: secret in `docker inspect`"
        image = json.loads(text)[0]["Image"]
        text = docker("image", "inspect", image).decode()
        text += docker("history", "--no-trunc", image).decode()
        assert "PATH=" in text, f"control: {service}'s image environment not in inspect"
        assert leaked(text, secrets) == [], f"{service}: secret in its image's configuration"


# --- processes ------------------------------------------------------------------------------------
# Every process of a container: "@@@ <pid> <ppid>", its command line, "@@@environ", its
# environment; "@@@unreadable" where a file could not be read. POSIX sh and coreutils/busybox
# only, so it runs in every image.
PROCESSES = r"""
for dir in /proc/[0-9]*; do
  printf '\n@@@ %s %s\n' "${dir#/proc/}" "$(sed -n 's/^PPid:[[:space:]]*//p' "$dir/status")"
  cat "$dir/cmdline" 2>/dev/null || printf '@@@unreadable'
  printf '\n@@@environ\n'
  cat "$dir/environ" 2>/dev/null || printf '@@@unreadable'
done
"""


def processes(container_id):
    """pid -> (ppid, command line, environment) of every process in the container (bytes)."""
    out = docker("exec", container_id, "sh", "-c", PROCESSES)
    found = {}
    for block in out.split(b"\n@@@ ")[1:]:
        head, rest = block.split(b"\n", 1)
        cmdline, environ = rest.rsplit(b"\n@@@environ\n", 1)
        pid, _, ppid = head.decode().partition(" ")
        found[int(pid)] = (int(ppid or 0), cmdline, environ)
    return found


def main_tree(procs):
    """PID 1 and its descendants: the container's own processes, not the ones `exec` started."""
    tree, grew = {1}, True
    while grew:
        more = {pid for pid, (ppid, _, _) in procs.items() if ppid in tree} - tree
        tree, grew = tree | more, bool(more)
    return {pid: procs[pid] for pid in tree if pid in procs}


@pytest.mark.parametrize("service", RUNNING)
def test_no_secret_in_any_process_command_line_or_environment(stack, secrets, service):
    for container in stack.container_ids(service):
        procs = processes(container)
        own = main_tree(procs)
        # Controls: every process of the service was read, and what is read is what runs.
        assert len(own) >= 2, f"{service}: only {own.keys()} under PID 1"
        unreadable = [pid for pid, (_, cmd, env) in own.items() if b"@@@unreadable" in cmd + env]
        assert not unreadable, f"{service}: could not read processes {unreadable}"
        assert any(PROGRAM[service].encode() in cmd for _, cmd, _ in own.values())
        assert ENVIRONMENT[service].encode() in own[1][2], f"control: {service}'s PID 1 env"
        for pid, (_, cmdline, environ) in procs.items():
            assert leaked(cmdline, secrets) == [], f"{service}: pid {pid}'s command line"
            assert leaked(environ, secrets) == [], f"{service}: pid {pid}'s environment"


# --- logs -----------------------------------------------------------------------------------------
def test_no_secret_in_the_log_of_any_service(stack, secrets):
    marker = "leak-search-control"
    # Through the proxy to the backend: both log this request's path.
    session = requests.Session()
    # Only the dev CA may vouch for the proxy (REQUESTS_CA_BUNDLE would override `verify`).
    session.trust_env = False
    session.verify = stack.ca_bundle
    assert session.get(f"{stack.base_url}/{marker}", timeout=10).status_code == 404
    controls = {**STARTUP_LOG, "proxy": marker, "backend": marker}
    for service in stack.services:
        text = log_showing(stack, service, controls[service])
        assert leaked(text, secrets) == [], f"{service}: secret in its log"


def log_showing(stack, service, control):
    """SERVICE's log, once it shows CONTROL (the log search's positive control)."""

    def find():
        text = stack.logs(service)
        return text if control in text else None

    return wait_until(find, 10, f"control: {control!r} in the {service} log")
