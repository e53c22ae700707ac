"""Static tier: what several files need is written in one of them, and the others refer to it.

Base image versions live in compose.yaml only (the Dockerfiles take them as build arguments, CI
tests on the same Python); healthchecks live in compose.yaml only; comments and documentation name
files that exist. Where two programs must agree and neither can read the other (nginx's and
Flask's body limit), a test holds both to the promised value.
"""

import re
import subprocess

import yaml

from app import create_app
from app.config import Config
from native.compose import service_environment
from tests.stack import db_client_env
from tests.stack.compose import ROOT
from tests.static.tree import repository_files

# The base image each Dockerfile builds on, by the build argument compose.yaml gives it.
DOCKERFILE_BASE = {"backend/Dockerfile": "PYTHON_IMAGE", "proxy/Dockerfile": "NGINX_IMAGE"}
HEALTHCHECK = re.compile(r"(?mi)^\s*HEALTHCHECK\s")
# An image name with a version, not a registry-free stand-in such as offline/python:3.11-slim.
IMAGE_VERSION = re.compile(r"(?<![\w./-])(python|nginx|mariadb|certbot/certbot):v?\d")
# How comment lines start: shell, Python, YAML, nginx, Makefile; Jinja; SQL; JavaScript and CSS.
COMMENT_MARKS = ("#", "{#", "--", "//", "/*", "*")
MARKDOWN_FILE = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w.-]+\.md)\b")


def text_of(path):
    try:
        return (ROOT / path).read_text()
    except UnicodeDecodeError:
        return ""


def compose_image_defaults():
    """NAME -> default of each ${NAME:-default} image variable in compose.yaml."""
    return dict(re.findall(r"\$\{(\w+_IMAGE):-([^}]+)\}", (ROOT / "compose.yaml").read_text()))


def test_base_image_versions_are_pinned_in_compose_yaml_only():
    pins = compose_image_defaults()
    # The base images, and the monitoring and certbot profiles' (which nothing builds on).
    profiles = {
        "PROMETHEUS_IMAGE",
        "MYSQLD_EXPORTER_IMAGE",
        "NGINX_EXPORTER_IMAGE",
        "CERTBOT_IMAGE",
    }
    assert set(pins) == {"PYTHON_IMAGE", "NGINX_IMAGE", "MARIADB_IMAGE", *profiles}
    for dockerfile, argument in DOCKERFILE_BASE.items():
        text = (ROOT / dockerfile).read_text()
        assert re.search(rf"(?m)^ARG {argument}$", text), (
            f"{dockerfile}: ARG {argument} has a default"
        )
        # Every stage builds on the argument or on an earlier stage.
        stages = re.findall(r"(?mi)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text)
        names = {name for _, name in stages}
        bases = {base for base, _ in stages if base not in names}
        assert bases == {f"${{{argument}}}"}, f"{dockerfile} builds on {bases}"
    # No other file names a version of these images: a stale copy would be believed.
    copies = [
        f"{path}: {match.group(0)}"
        for path in repository_files()
        if path != "compose.yaml" and not path.startswith("tests/")
        for match in IMAGE_VERSION.finditer(text_of(path))
    ]
    assert copies == []
    # Control: the search finds a pinned image, and passes over a stand-in.
    assert IMAGE_VERSION.search("FROM nginx:1.30-alpine")
    assert IMAGE_VERSION.search("image: certbot/certbot:v5.10.0")
    assert not IMAGE_VERSION.search("NGINX_IMAGE=offline/nginx:1.22")


def test_ci_tests_on_the_python_of_the_backend_image():
    minor = re.fullmatch(r"python:(\d+\.\d+)\.\d+-slim", compose_image_defaults()["PYTHON_IMAGE"])[
        1
    ]
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    versions = [
        step["with"]["python-version"]
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if step.get("uses", "").startswith("actions/setup-python@")
    ]
    assert versions, "no setup-python step"
    assert set(versions) == {minor}


def test_healthchecks_are_defined_in_compose_yaml_only():
    for dockerfile in DOCKERFILE_BASE:
        assert not HEALTHCHECK.search((ROOT / dockerfile).read_text()), dockerfile
    # Control: the search finds an instruction, indented or continued.
    assert HEALTHCHECK.search('EXPOSE 80\n  HEALTHCHECK --interval=5s \\\n    CMD ["true"]\n')


def test_nginx_and_the_backend_accept_request_bodies_up_to_the_same_128_kib(secrets_dir):
    # nginx answers 413 above it before the backend sees the body; the backend refuses the same
    # bodies where a request reaches gunicorn directly (the backend tier).
    proxy_env = service_environment("proxy")
    assert proxy_env["PROXY_CLIENT_MAX_BODY_SIZE"] == "128k"
    env = {
        # No connection is made: the port is never used.
        **db_client_env("app", "127.0.0.1", 9, secrets_dir),
        "API_TOKENS_FILE": str(secrets_dir / "api_tokens"),
    }
    app = create_app(Config.from_env(env))
    try:
        assert app.config["MAX_CONTENT_LENGTH"] == 128 * 1024
    finally:
        app.extensions["db_engine"].dispose()


def comments(path):
    """The comment lines of a file (all of it for Markdown): where readers are sent elsewhere."""
    lines = text_of(path).splitlines()
    if path.endswith(".md"):
        return lines
    return [line for line in lines if line.lstrip().startswith(COMMENT_MARKS)]


def test_every_markdown_file_a_comment_names_exists():
    missing = []
    for path in repository_files():
        if path == "tests/static/test_one_source.py":
            continue  # its controls name a missing file on purpose
        for line in comments(path):
            for name in MARKDOWN_FILE.findall(line):
                if name.startswith(".run/"):
                    continue  # written by `make bench` and the tests, git-ignored: not in a clone
                here = (ROOT / path).parent / name
                if not (ROOT / name).exists() and not here.exists():
                    missing.append(f"{path} names {name}")
    assert missing == []
    # Control: the search finds a name in a comment.
    assert MARKDOWN_FILE.findall("# accounts (docs/security.md) in") == ["docs/security.md"]


# A repository path in backticks: `proxy/snippets/tls.conf`, `db/initdb.d/*.sh`.
BACKTICKED_PATH = re.compile(r"`((?:\.?[\w-]+)(?:/[\w.*-]+)+)`")


def test_every_repository_path_the_documentation_names_exists():
    top = {path.split("/")[0] for path in repository_files()}
    named = {
        (doc, path)
        for doc in repository_files()
        if doc.endswith(".md")
        for path in BACKTICKED_PATH.findall(text_of(doc))
        if path.split("/")[0] in top
    }
    missing = sorted((doc, path) for doc, path in named if not any(ROOT.glob(path.rstrip("/"))))
    # What the generators write (make certs, make secrets) is git-ignored, not in a clone.
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *(path for _, path in missing)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    assert [(doc, path) for doc, path in missing if path not in ignored] == []
    # Control: the search finds the paths of a table row.
    assert BACKTICKED_PATH.findall("| `proxy/x.envsh` picks, `db/initdb.d/*.sh` |") == [
        "proxy/x.envsh",
        "db/initdb.d/*.sh",
    ]
