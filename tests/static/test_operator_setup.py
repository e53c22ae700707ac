"""Static tier: what an operator meets first (.env, make, install-deps, the tiers make test runs).

Each test runs the real files (Makefile, scripts/, compose files, .env.example) in a copy of the
checkout, with an environment cleared of every variable they read, so that neither the machine's
environment nor a developer's own .env can decide the outcome.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from native.compose import compose_command
from tests.stack.compose import ROOT

# What the Makefile, the scripts, the compose files and the suite read from the environment or
# .env, and what an outer make (`make lint`) hands down to the make under test.
STACK_VARIABLES = (
    "SERVER_NAME", "PUBLISH_ADDRESS", "HTTP_PORT", "HTTPS_PORT", "SECRETS_DIR", "CERTS_DIR",
    "ACME_WEBROOT", "LOG_LEVEL", "PYTHON_IMAGE", "NGINX_IMAGE", "MARIADB_IMAGE",
    "REQUIRE_COMPOSE_TIER", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
)  # fmt: skip
PROD = ("-f", "compose.yaml", "-f", "compose.prod.yaml")


def clean_env(**extra):
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in STACK_VARIABLES and not name.startswith("COMPOSE_")
    }
    return {**env, **extra}


@pytest.fixture
def checkout(tmp_path):
    """The files an operator runs, copied: Makefile, scripts/, compose files, .env.example."""
    copy = tmp_path / "checkout"
    copy.mkdir()
    for name in ("Makefile", "compose.yaml", "compose.prod.yaml", ".env.example"):
        shutil.copy2(ROOT / name, copy / name)
    shutil.copytree(ROOT / "scripts", copy / "scripts")
    (copy / "proxy").mkdir()
    shutil.copy2(ROOT / "proxy" / "proxy.env", copy / "proxy" / "proxy.env")
    return copy


def render(checkout, *files, env=None, check=True):
    """`docker compose config --format json` in the copy (it reads the copy's .env)."""
    result = subprocess.run(
        [*compose_command(), *files, "config", "--format", "json"],
        cwd=checkout,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
    return result


def make(checkout, *args, env=None):
    result = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=checkout,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# --- .env.example ------------------------------------------------------------------------
def test_prod_refuses_to_start_from_an_unchanged_env_example(checkout):
    shutil.copy2(checkout / ".env.example", checkout / ".env")
    refused = render(checkout, *PROD, check=False)
    assert refused.returncode != 0
    assert "required variable SERVER_NAME is missing a value" in refused.stderr
    # The same .env serves development, where the name defaults to localhost.
    dev = render(checkout, "-f", "compose.yaml")
    assert dev["services"]["proxy"]["environment"]["PROXY_SERVER_NAME"] == "localhost"
    # Control: with the one value production needs, the same files render.
    env_file = (checkout / ".env").read_text()
    named = re.sub(r"(?m)^SERVER_NAME=$", "SERVER_NAME=www.example.com", env_file)
    (checkout / ".env").write_text(named)
    prod = render(checkout, *PROD)
    assert prod["services"]["proxy"]["environment"]["PROXY_SERVER_NAME"] == "www.example.com"


def test_env_example_leaves_image_versions_to_the_compose_files(checkout):
    # A Dependabot bump edits the defaults in the compose files; a .env copied from the example
    # must not hold the old versions back.
    for name in ("compose.yaml", "compose.prod.yaml"):
        path = checkout / name
        path.write_text(
            re.sub(r"\$\{(\w+_IMAGE):-[^}]+\}", r"${\1:-bumped.example/\1:2}", path.read_text())
        )
    shutil.copy2(checkout / ".env.example", checkout / ".env")
    config = render(checkout, *PROD, env=clean_env(SERVER_NAME="www.example.com"))
    services = config["services"]
    assert services["db"]["image"] == "bumped.example/MARIADB_IMAGE:2"
    assert services["proxy"]["build"]["args"]["NGINX_IMAGE"] == "bumped.example/NGINX_IMAGE:2"
    for name in ("backend", "migrate"):
        assert services[name]["build"]["args"]["PYTHON_IMAGE"] == "bumped.example/PYTHON_IMAGE:2"


# --- one source of truth for the generated files ----------------------------------------
def test_make_writes_secrets_and_certs_where_compose_reads_them(checkout, tmp_path):
    secrets, certs = tmp_path / "operator secrets", tmp_path / "operator-certs"
    # Written as an operator would: quotes, `export`, a trailing comment, a commented default.
    (checkout / ".env").write_text(
        "SERVER_NAME=www.example.com\n"
        f'export SECRETS_DIR="{secrets}"\n'
        "#CERTS_DIR=./certs\n"
        f"CERTS_DIR={certs}   # outside the checkout\n"
    )
    make(checkout, "secrets")
    make(checkout, "certs")
    assert (secrets / "db_app_password").is_file()
    assert (certs / "server.crt").is_file()
    assert not (checkout / "secrets").exists()
    assert not (checkout / "certs").exists()
    # The certificate names the SERVER_NAME of .env.
    san = subprocess.run(
        ["openssl", "x509", "-in", certs / "server.crt", "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:www.example.com" in san

    config = render(checkout, *PROD)
    assert config["secrets"]["db_app_password"]["file"] == f"{secrets}/db_app_password"
    # Every secret file compose reads from SECRETS_DIR is one make secrets wrote.
    read = {s["file"] for s in config["secrets"].values() if s["file"].startswith(f"{secrets}/")}
    assert read and read <= {str(path) for path in secrets.iterdir()}
    mounts = {m["target"]: m["source"] for m in config["services"]["proxy"]["volumes"]}
    assert mounts["/etc/nginx/certs/server.crt"] == f"{certs}/server.crt"


def test_environment_and_command_line_win_over_env_file_as_in_compose(checkout, tmp_path):
    (checkout / ".env").write_text(f"SECRETS_DIR={tmp_path / 'from-env-file'}\n")
    make(checkout, "secrets", env=clean_env(SECRETS_DIR=str(tmp_path / "from-environment")))
    make(checkout, "secrets", f"SECRETS_DIR={tmp_path / 'from-command-line'}")
    assert (tmp_path / "from-environment" / "db_app_password").is_file()
    assert (tmp_path / "from-command-line" / "db_app_password").is_file()
    assert not (tmp_path / "from-env-file").exists()
    # Control: without either, .env decides.
    make(checkout, "secrets")
    assert (tmp_path / "from-env-file" / "db_app_password").is_file()
    # Compose's own precedence, which make follows.
    env = clean_env(SECRETS_DIR=str(tmp_path / "from-environment"))
    config = render(checkout, "-f", "compose.yaml", env=env)
    assert config["secrets"]["db_app_password"]["file"] == (
        f"{tmp_path}/from-environment/db_app_password"
    )


def test_relative_dirs_in_env_file_mean_the_same_place_to_make_and_compose(checkout):
    (checkout / ".env").write_text("SECRETS_DIR=./local-secrets\n")
    make(checkout, "secrets")
    assert (checkout / "local-secrets" / "db_app_password").is_file()
    config = render(checkout, "-f", "compose.yaml")
    assert config["secrets"]["db_app_password"]["file"] == (
        f"{checkout}/local-secrets/db_app_password"
    )


# --- project names -----------------------------------------------------------------------
def test_dev_and_prod_are_distinct_compose_projects(checkout):
    env = clean_env(SERVER_NAME="www.example.com")
    dev = render(checkout, "-f", "compose.yaml", env=env)
    prod = render(checkout, *PROD, env=env)
    assert dev["name"] == "hardened-stack-dev"
    assert prod["name"] == "hardened-stack-prod"
    # Volumes and networks are the project's: production's data is not the dev stack's.
    assert dev["volumes"]["dbdata"]["name"] == "hardened-stack-dev_dbdata"
    assert prod["volumes"]["dbdata"]["name"] == "hardened-stack-prod_dbdata"
    # The test runners pick their own project name, which wins over both.
    named = render(checkout, *PROD, env={**env, "COMPOSE_PROJECT_NAME": "hstest1"})
    assert named["name"] == "hstest1"


# --- install-deps on a machine with systemd ---------------------------------------------
STUB = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$STUB_LOG"
{body}
"""
STUBS = {
    # Installed: the packages named in STUB_INSTALLED (the package is the last argument).
    "dpkg-query": """
for p in $STUB_INSTALLED; do [[ $p == "${!#}" ]] && { echo installed; exit 0; }; done
exit 1""",
    "apt-get": "exit 0",
    # Known to the package sources: every package but those named in STUB_UNAVAILABLE.
    "apt-cache": """
for p in $STUB_UNAVAILABLE; do [[ $p == "${!#}" ]] && exit 100; done
exit 0""",
    # systemctl exits non-zero unless the state is "running" (e.g. "degraded" or "offline").
    "systemctl": """
[[ $1 == is-system-running ]] || exit 0
echo "$STUB_SYSTEM_STATE"
[[ $STUB_SYSTEM_STATE == running ]]""",
    "id": "echo 0",
    "sudo": "exit 1",
    "python3": "exit 0",
}
BROWSER = "chromium chromium-driver libnss3-tools fonts-noto-color-emoji"
# prometheus: promtool for the static tier (its server's service is disabled like the others).
ALL_PACKAGES = (
    "mariadb-server mariadb-client nginx openssl wrk ca-certificates gettext-base prometheus "
    f"docker.io {BROWSER}"
)


def run_install_deps(tmp_path, installed, system_state, unavailable=""):
    """scripts/install-deps.sh with stub apt-get, dpkg-query, systemctl...: (output, calls)."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, body in STUBS.items():
        (stubs / name).write_text(STUB.format(body=body))
        (stubs / name).chmod(0o755)
    log = tmp_path / "calls"
    log.touch()
    env = clean_env(
        PATH=f"{stubs}:/usr/bin:/bin",
        STUB_LOG=str(log),
        STUB_INSTALLED=installed,
        STUB_SYSTEM_STATE=system_state,
        STUB_UNAVAILABLE=unavailable,
    )
    result = subprocess.run(
        [ROOT / "scripts" / "install-deps.sh"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The calls that may change the machine (the others only look).
    calls = [
        c for c in log.read_text().splitlines() if c.split()[0] in ("apt-get", "systemctl", "sudo")
    ]
    return result.stdout + result.stderr, calls


def test_install_deps_stops_and_disables_only_the_services_it_installed(tmp_path):
    # nginx was there before (the owner's web server); mariadb-server is new.
    output, calls = run_install_deps(
        tmp_path,
        ALL_PACKAGES.replace("mariadb-server ", ""),
        "running",
    )
    assert "apt-get install -y -qq --no-install-recommends mariadb-server" in calls
    assert [c for c in calls if c.startswith("systemctl")] == [
        "systemctl is-system-running",
        "systemctl disable --now mariadb",
    ]
    assert "deps: stopped and disabled the system services mariadb (installed by this run" in output


def test_install_deps_disables_both_servers_when_it_installs_both(tmp_path):
    installed = f"openssl wrk ca-certificates gettext-base prometheus docker.io {BROWSER}"
    output, calls = run_install_deps(tmp_path, installed, "degraded")
    assert "systemctl disable --now mariadb nginx" in calls
    assert "deps: stopped and disabled the system services mariadb nginx" in output


def test_install_deps_without_systemd_installs_and_touches_no_service(tmp_path):
    installed = f"openssl wrk ca-certificates gettext-base prometheus docker.io {BROWSER}"
    output, calls = run_install_deps(tmp_path, installed, "offline")
    assert "apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client nginx" in (
        calls
    )
    assert [c for c in calls if c.startswith("systemctl")] == ["systemctl is-system-running"]
    assert "disabled" not in output


def test_install_deps_installs_the_browser_where_the_sources_have_it(tmp_path):
    installed = "mariadb-server mariadb-client nginx prometheus docker.io"
    output, calls = run_install_deps(tmp_path, installed, "offline")
    assert calls[1] == (
        "apt-get install -y -qq --no-install-recommends openssl wrk ca-certificates gettext-base "
        "chromium chromium-driver libnss3-tools fonts-noto-color-emoji"
    )
    assert "browser test will skip" not in output


def test_install_deps_leaves_out_browser_packages_the_sources_lack_and_says_so(tmp_path):
    # Ubuntu's package sources have neither chromium nor chromium-driver (a snap only).
    output, calls = run_install_deps(
        tmp_path,
        "mariadb-server mariadb-client nginx prometheus docker.io",
        "offline",
        "chromium chromium-driver",
    )
    assert calls[1] == (
        "apt-get install -y -qq --no-install-recommends openssl wrk ca-certificates gettext-base "
        "libnss3-tools fonts-noto-color-emoji"
    )
    assert (
        "deps: chromium is not in this system's package sources; the browser test will skip"
    ) in output
    # With nothing else missing there is nothing to install, and that is no failure.
    (tmp_path / "again").mkdir()
    output, calls = run_install_deps(
        tmp_path / "again", ALL_PACKAGES.replace("chromium ", ""), "running", "chromium"
    )
    assert calls == ["apt-get update -qq"]
    assert "deps: chromium is not in this system's package sources" in output


def test_install_deps_installs_docker_and_leaves_its_engine_running(tmp_path):
    without_docker = ALL_PACKAGES.replace("docker.io ", "")
    output, calls = run_install_deps(tmp_path, without_docker, "running")
    assert "apt-get install -y -qq --no-install-recommends docker.io" in calls
    # The container tiers need the engine: its service is not stopped like the servers' are.
    assert [c for c in calls if c.startswith("systemctl")] == ["systemctl is-system-running"]
    # Docker's own packages count as Docker.
    (tmp_path / "ce").mkdir()
    output, calls = run_install_deps(tmp_path / "ce", f"{without_docker} docker-ce", "running")
    assert output.startswith("deps: all present") and calls == [], output


def test_install_deps_with_everything_installed_changes_nothing(tmp_path):
    output, calls = run_install_deps(tmp_path, ALL_PACKAGES, "running")
    assert calls == []
    assert output.startswith("deps: all present")


# --- a compose tier that cannot run says why, once, and again at the end ----------------
PROBE = """
import pytest

pytestmark = pytest.mark.compose


def test_first(compose_stack):
    pass


def test_second(compose_stack):
    pass
"""


def run_compose_probe(tmp_path, **env):
    """Two compose tests using the suite's own compose_stack fixture and summary hook."""
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "test_compose_probe.py").write_text(PROBE)
    command = [
        sys.executable, "-m", "pytest", "-q", "-c", ROOT / "pyproject.toml", "-p", "tests.conftest",
        f"--basetemp={tmp_path / 'basetemp'}", probe,
    ]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout.splitlines()


def skip_reasons(lines):
    return {line.split(": ", 1)[1] for line in lines if line.startswith("SKIPPED [")}


def test_compose_tier_without_engine_skips_with_one_reason_repeated_at_the_end(tmp_path):
    code, lines = run_compose_probe(tmp_path, DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    assert code == 0, "\n".join(lines)
    assert lines[-1].startswith("2 skipped")
    (reason,) = skip_reasons(lines)
    assert reason.startswith("compose tier skipped: no Docker engine answers (")
    assert "no-engine.sock" in reason
    # The summary's last word before the counts: the same reason.
    assert lines[-2] == reason


def test_compose_tier_without_engine_fails_when_required(tmp_path):
    code, lines = run_compose_probe(
        tmp_path, DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock", REQUIRE_COMPOSE_TIER="1"
    )
    assert code == 1
    assert lines[-1].startswith("2 errors")
    assert lines[-2].startswith("compose tier failed (REQUIRE_COMPOSE_TIER=1): no Docker engine")


def engine_answers():
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return info.returncode == 0


@pytest.mark.skipif(not engine_answers(), reason="needs a Docker engine to ask for the images")
def test_compose_tier_with_unpullable_base_image_skips_with_one_reason(tmp_path):
    # A name under .invalid never resolves: the pull fails at once (measured: 0.03 s).
    images = {
        name: f"nonexistent.invalid/{name.lower()}:0"
        for name in ("PYTHON_IMAGE", "NGINX_IMAGE", "MARIADB_IMAGE")
    }
    code, lines = run_compose_probe(tmp_path, **images)
    assert code == 0, "\n".join(lines)
    assert lines[-1].startswith("2 skipped")
    (reason,) = skip_reasons(lines)
    assert re.match(
        r"compose tier skipped: base image nonexistent\.invalid/\w+:0 is not here and cannot be "
        r"pulled \(.+\); set PYTHON_IMAGE, NGINX_IMAGE and MARIADB_IMAGE",
        reason,
    ), reason
    assert lines[-2] == reason
