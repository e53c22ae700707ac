"""Secret rotation without downtime, in both runtimes: a steady load sees no failed request, and
what was rotated out stops working. Database passwords (make rotate-secret NAME=...) never reach
the binary log that point-in-time recovery ships off the host; API write tokens (make
rotate-token, then make retire-tokens) keep every writer writing until the old token is retired."""

import stat
import time

import pytest

from tests.e2e.load import SteadyReads, SteadyWrites
from tests.stack import wait_until

DATABASE_SECRETS = (
    "db_app_password",
    "db_migrator_password",
    "db_backup_password",
    "db_root_password",
)


def test_rotating_every_database_password_under_read_load_fails_no_request(
    stack, writer, secrets_dir, tmp_path
):
    if not stack.secret_files:
        pytest.skip("Swarm secrets are immutable: rotate-secret.sh refuses them (tests/swarm)")
    marker = "binlog-search-control-7f3a9c"
    created = writer.post(stack.base_url + "/api/posts", json={"title": marker, "body": marker})
    assert created.status_code == 201
    former = {name: (secrets_dir / name).read_text() for name in DATABASE_SECRETS}

    with SteadyReads(stack) as load:
        wait_until(lambda: load.results, 10, "the first request of the load")
        started = time.monotonic()
        for name in DATABASE_SECRETS:
            result = stack.rotate_secret(name)
            assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"
        ended = time.monotonic()
        # Clients keep arriving after the move (old workers or replicas finish meanwhile).
        wait_until(lambda: load.sent_between(ended, time.monotonic()) >= 20, 30, "20 more requests")

    assert load.failures == [], f"{len(load.failures)} of {len(load.results)}: {load.failures[:10]}"
    assert load.sent_between(started, ended) >= 1, "no request was sent during the rotations"
    current = {name: (secrets_dir / name).read_text() for name in DATABASE_SECRETS}
    for name in DATABASE_SECRETS:
        assert current[name] != former[name]
        assert len(current[name]) == 32
        mode = stat.S_IMODE((secrets_dir / name).stat().st_mode)
        assert mode == 0o644, f"{name} has mode {oct(mode)}"

    # Over the network, as their consumers log in: the new password only.
    for user in ("app", "migrator", "backup"):
        assert stack.db_login(user, current[f"db_{user}_password"]) is True
        assert stack.db_login(user, former[f"db_{user}_password"]) is False
    # Root, through the socket: the scripts use the new file; the old password is refused.
    assert stack.root_sql("SELECT 'root logs in'") == "root logs in\n"
    (tmp_path / "db_root_password").write_text(former["db_root_password"])
    refused = stack.run_script(
        "db-shell.sh", input="SELECT 1", env_override={"SECRETS_DIR": str(tmp_path)}
    )
    assert refused.returncode != 0 and "Access denied for user 'root'" in refused.stderr

    binlog = stack.binlog_text()
    # Positive control: the search sees the rows written through the app.
    assert marker in binlog
    for name in DATABASE_SECRETS:
        assert former[name] not in binlog, f"the former {name} is in the binary log"
        assert current[name] not in binlog, f"the current {name} is in the binary log"


def post_with(stack, client, token):
    """The status of a new post written with TOKEN."""
    return client.post(
        stack.base_url + "/api/posts",
        json={"title": "token rotation", "body": "written with a given token"},
        headers={"Authorization": f"Bearer {token}"},
    ).status_code


def test_rotating_the_write_token_under_load_refuses_no_writer_until_retired(stack, client):
    if not stack.secret_files:
        pytest.skip("Swarm secrets are immutable: rotate-token.sh refuses them (tests/swarm)")
    former = stack.write_token

    # Writers keep the former token throughout the move to the new file (each replica's restart
    # takes seconds: writes for up to 2 minutes).
    with SteadyReads(stack) as reads, SteadyWrites(stack, max_writes=480) as writes:
        wait_until(lambda: writes.acknowledged(), 15, "the first acknowledged write")
        added = stack.run_script("rotate-token.sh", "add", timeout=600)
        ended = time.monotonic()
        wait_until(lambda: reads.sent_between(ended, time.monotonic()) >= 10, 30, "10 more reads")
        wait_until(lambda: writes.acknowledged(since=ended), 30, "a write after the move")
    assert added.returncode == 0, added.stdout + added.stderr
    new = added.stdout.strip().splitlines()[-1]
    assert len(new) >= 32 and new != former
    refused = [write for write in writes.writes if write.outcome != 201]
    assert refused == [], f"{len(refused)} of {len(writes.writes)} writes: {refused[:5]}"
    assert reads.failures == [], reads.failures[:10]
    assert (post_with(stack, client, former), post_with(stack, client, new)) == (201, 201)

    with SteadyReads(stack) as reads:
        wait_until(lambda: reads.results, 10, "the first read")
        retired = stack.run_script("rotate-token.sh", "retire", timeout=600)
    assert retired.returncode == 0, retired.stdout + retired.stderr
    assert reads.failures == [], reads.failures[:10]
    assert (post_with(stack, client, former), post_with(stack, client, new)) == (401, 201)
    # The file the stack starts from holds the new token alone: the tests after this one use it.
    assert stack.write_token == new
