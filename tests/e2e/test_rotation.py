"""Secret rotation without downtime (make rotate-secret NAME=...), in both runtimes: a steady read
load sees no failed request, the old password stops working, and no password, current or former,
ever reaches the binary log that point-in-time recovery ships off the host."""

import stat
import time

import pytest

from tests.e2e.load import SteadyReads
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
