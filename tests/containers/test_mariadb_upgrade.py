"""Upgrading MariaDB from the lowest supported version (10.11) to the shipped one (11.8), with the
commands of docs/deploy.md, "Upgrading MariaDB": every post comes back byte for byte with the
schema at head, and a backup taken on 10.11 restores on 11.8."""

import os

import pytest

from tests.e2e.conftest import POLITE, make_client
from tests.stack.compose import image_available

pytestmark = pytest.mark.compose

# The oldest supported MariaDB: scripts/prepare-docker.sh builds a stand-in where no registry is.
OLD_IMAGE = os.environ.get("MARIADB_UPGRADE_FROM_IMAGE", "mariadb:10.11")
# Text the versions treat differently (collation, client character set) and the longest body.
POSTS = [
    ("Straße 😀", "emoji 😁 and ß, combining e\u0301, tabs\tand\nnewlines"),
    ("STRASSE", "ss"),
    ("RTL \u05e9\u05dc\u05d5\u05dd \u2067isolated\u2069", "\u200b zero width"),
    ("long", "x" * 9_999 + "😀"),
]


@pytest.fixture
def old_stack(compose_stack, tmp_path, monkeypatch):
    """The production stack beside the session's, its database started on OLD_IMAGE; with the
    image it ships (MARIADB_IMAGE as set for this run, else compose.yaml's default)."""
    if not image_available(OLD_IMAGE):
        pytest.fail(f"{OLD_IMAGE} is neither here nor pullable (scripts/prepare-docker.sh)")
    stack = compose_stack.beside("upgrade", tmp_path)
    shipped = os.environ.get("MARIADB_IMAGE")
    # The environment wins over the stack's env file, as over a user's .env.
    monkeypatch.setenv("MARIADB_IMAGE", OLD_IMAGE)
    try:
        stack.up()
        yield stack, shipped
    finally:
        stack.down()


def posts_as_stored(stack, ids):
    """(title, body) of each post, as the API answers."""
    stored = []
    with make_client(stack) as client:
        for post_id in ids:
            post = client.get(f"{stack.base_url}/api/posts/{post_id}").json()
            stored.append((post["title"], post["body"]))
    return stored


def test_upgrade_from_10_11_keeps_every_post_and_restores_its_backup(old_stack, monkeypatch):
    stack, shipped = old_stack
    assert stack.root_sql("SELECT VERSION()").startswith("10.11")
    with make_client(stack, max_retries=POLITE) as writer:
        writer.headers["Authorization"] = f"Bearer {stack.write_token}"
        ids = []
        for title, body in POSTS:
            created = writer.post(
                f"{stack.base_url}/api/posts", json={"title": title, "body": body}
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
    head = stack.root_sql("SELECT version_num FROM app.alembic_version")
    backup = stack.backup()

    # The upgrade: the same command with the new image; the entrypoint upgrades the system tables
    # (MARIADB_AUTO_UPGRADE) on the data directory the old server left.
    if shipped:
        monkeypatch.setenv("MARIADB_IMAGE", shipped)
    else:
        monkeypatch.delenv("MARIADB_IMAGE")
    stack.compose("up", "--detach", "--wait", "--wait-timeout", "300", timeout=600)

    assert stack.root_sql("SELECT VERSION()").startswith("11.8")
    assert posts_as_stored(stack, ids) == POSTS
    assert stack.root_sql("SELECT version_num FROM app.alembic_version") == head

    # Everything written since the backup goes, and the backup's rows come back, on 11.8.
    with make_client(stack, max_retries=POLITE) as writer:
        writer.headers["Authorization"] = f"Bearer {stack.write_token}"
        for post_id in ids:
            assert writer.delete(f"{stack.base_url}/api/posts/{post_id}").status_code == 204
    restored = stack.restore(backup)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert posts_as_stored(stack, ids) == POSTS
