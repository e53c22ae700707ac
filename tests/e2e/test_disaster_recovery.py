"""Disaster recovery onto a fresh host: a backup copy taken from the stack (either runtime)
restores into a stack that has never seen it, with secrets of its own, row for row."""

import os
import shutil
import subprocess

from tests.e2e.conftest import make_client
from tests.e2e.drill import POSTS, create_post, posts_state
from tests.stack import SCRIPTS, free_port
from tests.stack.native import NativeStack


def test_backup_copy_restores_onto_a_fresh_stack_with_its_own_secrets(
    stack, writer, certs_dir, tmp_path
):
    post = create_post(stack, writer, "survives the loss of the host")
    backup = stack.backup()
    at_backup = posts_state(stack)
    # The off-host copy: the file and its checksum, nothing else of the old host.
    offsite = tmp_path / "offsite"
    offsite.mkdir()
    for path in (backup, backup.with_name(backup.name + ".sha256")):
        shutil.copy(path, offsite)
    # The new host: `make secrets` (new passwords), `make native-up`, an empty schema at head.
    secrets = tmp_path / "secrets"
    subprocess.run(
        [SCRIPTS / "make-secrets.sh"], env={**os.environ, "SECRETS_DIR": str(secrets)},
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    fresh = NativeStack(tmp_path / "fresh", free_port(), free_port(), certs_dir, secrets)
    try:
        fresh.up()
        assert posts_state(fresh) != at_backup

        result = fresh.restore(offsite / backup.name)

        assert result.returncode == 0, result.stdout + result.stderr
        assert posts_state(fresh) == at_backup
        with make_client(fresh) as client:
            answer = client.get(f"{fresh.base_url}{POSTS}/{post}")
        assert answer.status_code == 200
        assert answer.json()["title"] == "survives the loss of the host"
    finally:
        fresh.down()
