"""`make deploy` natively (docs/deploy.md, "Deploying a new version"): after a `git pull`, the new
code's expand migrations, then gunicorn's graceful reload onto it, under reads and writes, with no
failed request and each write stored once, and every answer after it from the new code. The
deploy changes the code under the running gunicorn, so it runs on a copy of this checkout with a
native stack of its own (`make native-up` there)."""

import os
import re
import shutil
import subprocess
import sys
import urllib.request

import pytest

from tests.e2e.conftest import make_client
from tests.e2e.load import assert_nothing_failed_or_lost, under_deploy_load
from tests.stack import REPO, free_port, next_release
from tests.stack.native import NativeStack

# The next release's code change: every answer says which release made it.
RELEASE_HEADER = """
    @app.after_request
    def _release(response):
        response.headers["X-Release"] = "next"
        return response

    return app
"""


def git_pull(checkout):
    """The next release arrives in CHECKOUT: its expand migration, and its code."""
    shutil.copytree(
        REPO / "tests" / "releases" / "next" / "versions" / "expand",
        checkout / "backend" / "migrations" / "versions" / "expand",
        dirs_exist_ok=True,
    )
    factory = checkout / "backend" / "app" / "__init__.py"
    code = factory.read_text()
    assert code.endswith("\n    return app\n")
    factory.write_text(code.removesuffix("\n    return app\n") + "\n" + RELEASE_HEADER)


def release_of(stack):
    with make_client(stack) as client:
        return client.get(stack.base_url + "/api/posts?limit=1").headers.get("X-Release")


@pytest.fixture
def native_checkout(tmp_path, certs_dir, secrets_dir):
    """A copy of this release, its native stack up; yields (the copy, that stack)."""
    checkout = next_release(tmp_path / "checkout", phases=())
    ports = {"HTTP_PORT": str(free_port()), "HTTPS_PORT": str(free_port())}
    env = {**os.environ, **ports, "CERTS_DIR": str(certs_dir), "SECRETS_DIR": str(secrets_dir)}

    def native(command):
        return subprocess.run(
            [sys.executable, "-m", "native", command],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    try:
        started = native("up")
        assert started.returncode == 0, started.stdout + started.stderr
        yield (
            checkout,
            NativeStack(
                checkout / ".run" / "native",
                int(ports["HTTP_PORT"]),
                int(ports["HTTPS_PORT"]),
                certs_dir,
                secrets_dir,
            ),
        )
    finally:
        native("down")


def schema_heads_of_workers(stack):
    """The migration heads each live gunicorn worker's code ships (backend_schema_heads)."""
    settings = (stack.run_dir / "stack.env").read_text()
    bind = re.search(r"^BACKEND_METRICS_BIND='?([^'\n]+)", settings, re.M).group(1)
    with urllib.request.urlopen(f"http://{bind}/metrics", timeout=10) as response:  # noqa: S310
        page = response.read().decode()
    return set(re.findall(r'^backend_schema_heads\{.*heads="([^"]*)".*\} 1\.0$', page, re.M))


def test_a_release_that_adds_a_column_and_changes_code_deploys_natively_with_no_failed_request(
    native_checkout,
):
    checkout, stack = native_checkout
    assert (schema_heads_of_workers(stack), release_of(stack)) == ({"0004,0005"}, None)
    git_pull(checkout)
    deployed, reads, writes = under_deploy_load(
        stack, lambda: stack.run_script("deploy.sh", checkout=checkout)
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "expand migrations done" in deployed.stdout
    # Every worker runs the new code, on the schema its expand step made.
    assert schema_heads_of_workers(stack) == {"0005,0006"}
    assert {release_of(stack) for _ in range(10)} == {"next"}
    sql = "SHOW COLUMNS FROM app.posts; SELECT title FROM app.posts"
    database = stack.run_script(
        "db-shell.sh", "--batch", "--skip-column-names", input=sql, checkout=checkout
    )
    assert "content" in database.stdout, database.stdout + database.stderr
    assert_nothing_failed_or_lost(reads, writes, database.stdout.splitlines())

    # Natively there is no image of the code before to go back to, and rollback says so.
    refused = stack.run_script("deploy.sh", "rollback", checkout=checkout)
    assert refused.returncode == 1
    assert "check out the release before, then make deploy" in refused.stderr
